//! Lightweight scanning of Jinja SQL text, without rendering: the `{% macro %}` / `{% test %}`
//! definitions of a macro file, dbt's `{% test %}` blocks rewritten as macros, and where a
//! `ref('x')` or `config(` call is written (for pointing diagnostics at it).

use std::borrow::Cow;
use std::ops::Range;

/// A `{% macro name(` or `{% test name(` definition.
pub(crate) struct Definition {
    pub(crate) is_test: bool,
    pub(crate) name: String,
    pub(crate) span: Range<usize>,
}

/// Every `{% tag word ...` in `text`: (tag, the word after it, span of the word).
fn tags(text: &str) -> impl Iterator<Item = (&str, &str, Range<usize>)> {
    text.match_indices("{%")
        .map(move |(at, _)| tag_at(text, at))
}

/// The tag of the `{%` at `at`, the word after it and the word's span.
fn tag_at(text: &str, at: usize) -> (&str, &str, Range<usize>) {
    let rest = &text[at + 2..];
    let rest_trim = rest.trim_start_matches(['-', '+']).trim_start();
    let tag_start = at + 2 + (rest.len() - rest_trim.len());
    let tag_len = word_len(rest_trim);
    let tag = &rest_trim[..tag_len];
    let after = &rest_trim[tag_len..];
    let word_off = after.len() - after.trim_start().len();
    let word_start = tag_start + tag_len + word_off;
    let word_len = word_len(&text[word_start..]);
    (
        tag,
        &text[word_start..word_start + word_len],
        word_start..word_start + word_len,
    )
}

/// The length of the identifier `text` starts with.
fn word_len(text: &str) -> usize {
    text.find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(text.len())
}

pub(crate) fn definitions(text: &str) -> Vec<Definition> {
    tags(text)
        .filter(|(tag, name, _)| matches!(*tag, "macro" | "test") && !name.is_empty())
        .map(|(tag, name, span)| Definition {
            is_test: tag == "test",
            name: name.to_string(),
            span,
        })
        .collect()
}

/// dbt's `{% test name(...) %}...{% endtest %}` as minijinja macros named `TEST_name` (the
/// prefix in capitals, as [`rename_definitions`] leaves every macro's name in the file).
pub(crate) fn rewrite_tests(text: &str) -> Cow<'_, str> {
    if !text.contains("test") {
        return Cow::Borrowed(text);
    }
    let edits = test_tag_edits(text);
    if edits.is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(apply_edits(text, edits))
}

/// Where each `test` and `endtest` tag name is, and what replaces it.
fn test_tag_edits(text: &str) -> Vec<(Range<usize>, &'static str)> {
    let mut edits: Vec<(Range<usize>, &str)> = Vec::new();
    for (tag, _, span) in tags(text) {
        let tag_span = |len: usize| {
            let start = text[..span.start].rfind(tag).unwrap_or(span.start);
            start..start + len
        };
        match tag {
            "test" => edits.push((tag_span(4), "macro TEST_")),
            "endtest" => edits.push((tag_span(7), "endmacro")),
            _ => {}
        }
    }
    edits
}

fn apply_edits(text: &str, edits: Vec<(Range<usize>, &str)>) -> String {
    let mut out = String::with_capacity(text.len() + edits.len() * 8);
    let mut last = 0;
    for (range, with) in edits {
        out.push_str(&text[last..range.start]);
        if with == "macro TEST_" {
            // `{% test name(` becomes `{% macro TEST_name(`: drop the space after the tag.
            out.push_str(with);
            let after = &text[range.end..];
            last = range.end + (after.len() - after.trim_start().len());
        } else {
            out.push_str(with);
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The name a macro has inside its own file: its letters' case swapped (`date_trunc` is
/// `DATE_TRUNC`). Calls in the file then reach the macro the way calls from other files do
/// (with `return()`, dispatch and namespaces working), and every offset stays where it was.
pub(crate) fn inner_name(name: &str) -> String {
    name.chars()
        .map(|c| match c.is_ascii_lowercase() {
            true => c.to_ascii_uppercase(),
            false => c.to_ascii_lowercase(),
        })
        .collect()
}

/// `text` with every `{% macro name(` / `{% test name(` definition's name made its
/// [`inner_name`] (same length, so diagnostics still point at the user's text).
pub(crate) fn rename_definitions(text: &str) -> String {
    let mut out = text.to_string();
    for d in definitions(text) {
        out.replace_range(d.span.clone(), &inner_name(&d.name));
    }
    out
}

/// Where `func('name'` is written in `text` (any quote, spaces allowed), or the first
/// `func(` when `arg` is None.
pub(crate) fn find_call(text: &str, func: &str, arg: Option<&str>) -> Option<Range<usize>> {
    let pattern = format!("{func}(");
    for (at, _) in text.match_indices(&pattern) {
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if !before_ok {
            continue;
        }
        let rest = &text[at + pattern.len()..];
        let close = rest.find(')').map_or(rest.len(), |c| c + 1);
        let Some(name) = arg else {
            return Some(at..at + pattern.len() + close);
        };
        let args = rest[..close].trim_end_matches(')');
        let last = args
            .rsplit(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['\'', '"']);
        if last == name {
            return Some(at..at + pattern.len() + close);
        }
    }
    None
}

/// Each `{% macro %}`/`{% test %}` definition's name and its text up to its end tag, with
/// Jinja comments dropped and whitespace collapsed: what a change to the macro means.
pub(crate) fn macro_bodies(text: &str) -> Vec<(String, String)> {
    (macro_spans(text).into_iter())
        .map(|(name, span)| (name, normalized(&text[span])))
        .collect()
}

/// Each `{% macro %}`/`{% test %}` definition's name and its text as written, end tag
/// included.
pub(crate) fn macro_texts(text: &str) -> Vec<(String, String)> {
    (macro_spans(text).into_iter())
        .map(|(name, span)| {
            let end = text[span.end..]
                .find("%}")
                .map_or(text.len(), |e| span.end + e + 2);
            (name, text[span.start..end].to_string())
        })
        .collect()
}

/// Each definition's name and its span up to its end tag.
fn macro_spans(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let ends: Vec<usize> = tags(text)
        .filter(|(tag, _, _)| matches!(*tag, "endmacro" | "endtest"))
        .map(|(_, _, span)| span.start)
        .collect();
    definitions(text)
        .into_iter()
        .map(|d| {
            let end = ends
                .iter()
                .copied()
                .find(|&e| e > d.span.end)
                .unwrap_or(text.len());
            (d.name, d.span.start..end)
        })
        .collect()
}

fn normalized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{#") {
        out.push_str(&rest[..open]);
        rest = rest[open..]
            .find("#}")
            .map_or("", |c| &rest[open + c + 2..]);
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_bodies_ignore_layout_and_jinja_comments() {
        let a = macro_bodies(
            "{% macro cents(x) %}\n  {{ x }} * 100\n{% endmacro %}\n{% macro b() %}1{% endmacro %}",
        );
        let b = macro_bodies(
            "{# money #}{% macro cents(x) %} {#- scale -#} {{ x }}   * 100 {% endmacro %}",
        );
        assert_eq!(a[0], b[0]);
        assert_eq!(a[1].0, "b");
        let c = macro_bodies("{% macro cents(x) %}{{ x }} * 1000{% endmacro %}");
        assert_ne!(a[0], c[0]);
    }
}
