//! A limit on Jinja text, checked before minijinja parses it. minijinja reads a chain of
//! filters or operators (`x | f | f ...`, `a ~ b ~ ...`, `x.a.a...`) into a tree as deep as the
//! chain is long and then walks that tree recursively, so a chain tens of thousands long
//! exhausts the stack and aborts the process. No real template comes near the limit. Used by
//! every place that compiles Jinja: project settings here, models and macros in `template`.

use std::ops::Range;
use std::sync::Arc;

use crate::diagnostics::{Diagnostic, Loc};

/// Filters and operators one `{{ }}` or `{% %}` may hold.
pub(crate) const MAX_OPERATORS: usize = 1000;

const WORD_OPERATORS: &[&str] = &["and", "or", "not", "is", "in", "if", "else"];

/// An error at the first `{{ }}` or `{% %}` of `text` (the file `path`) that holds more than
/// [`MAX_OPERATORS`] filters and operators.
pub(crate) fn check_length(path: &str, text: &str) -> Result<(), Diagnostic> {
    match too_long(text) {
        None => Ok(()),
        Some((span, message)) => Err(Diagnostic::error(message)
            .at(Loc::new(&Arc::from(path), span.start..span.start + 2))
            .help("split it into steps with {% set %}")),
    }
}

/// Where the first overlong tag starts and ends, and what is wrong with it.
pub(crate) fn too_long(text: &str) -> Option<(Range<usize>, String)> {
    let (span, count) = overlong(text)?;
    Some((
        span,
        format!(
            "Jinja expression too long: {count} filters and operators in one tag (at most {MAX_OPERATORS})"
        ),
    ))
}

/// The span and operator count of the first overlong tag.
fn overlong(text: &str) -> Option<(Range<usize>, usize)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text.get(at..)?.find('{') {
        let start = at + found;
        let close = match bytes.get(start + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => {
                at = text[start..]
                    .find("#}")
                    .map_or(text.len(), |e| start + e + 2);
                continue;
            }
            _ => {
                at = start + 1;
                continue;
            }
        };
        let (end, count) = scan_tag(text, start + 2, close);
        if count > MAX_OPERATORS {
            return Some((start..end, count));
        }
        at = if close == "%}" && is_raw(&text[start + 2..end]) {
            text[end..].find("endraw").map_or(text.len(), |e| end + e)
        } else {
            end
        };
    }
    None
}

fn is_raw(inner: &str) -> bool {
    inner.trim_matches(['-', '+', '%', '}']).trim() == "raw"
}

/// Scans a tag's inside from `from` to its `close`, skipping string literals: where it ends,
/// and how many operators it holds.
fn scan_tag(text: &str, from: usize, close: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' => i = skip_string(bytes, i),
            _ if bytes[i..].starts_with(close.as_bytes()) => return (i + close.len(), count),
            b'|' | b'.' | b'[' | b'(' | b'~' | b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>'
            | b'=' | b'!' => {
                count += 1;
                i += 1;
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                count += usize::from(WORD_OPERATORS.contains(&&text[i..i + len]));
                i += len;
            }
            _ => i += 1,
        }
    }
    (bytes.len(), count)
}

/// The index just past the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_operators_outside_strings_per_tag() {
        assert_eq!(overlong("{{ x | lower }}"), None);
        let long = format!(
            "select 1 {{# {} #}} {{{{ 'a|b' {} }}}}",
            "|".repeat(5000),
            "| f ".repeat(1001)
        );
        let (span, n) = overlong(&long).unwrap();
        assert_eq!(n, 1001);
        assert!(long[span].starts_with("{{ 'a|b'"));
        let words = format!("{{% if {} x %}}{{% endif %}}", "not ".repeat(1001));
        assert_eq!(overlong(&words).map(|(_, n)| n), Some(1002));
        let raw = format!("{{% raw %}}{{{{ {} }}}}{{% endraw %}}", "|".repeat(2000));
        assert_eq!(overlong(&raw), None);
        // `{{ raw }}` is a variable, not the start of a raw block.
        let after_raw = format!("{{{{ raw }}}}{{{{ 1 {} }}}}", "~ 1 ".repeat(1001));
        assert_eq!(overlong(&after_raw).map(|(_, n)| n), Some(1001));
        // Multi-byte text inside a tag.
        assert_eq!(overlong("{% mac\u{fffd}o x %}{{ '고객' | f }}"), None);
    }
}
