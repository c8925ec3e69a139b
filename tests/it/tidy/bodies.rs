//! Function body sizes.

use super::*;

/// Every `fn` with a body in blanked code: its name, the offset of `fn` and its body's lines
/// (those strictly between the braces' lines; a one-line body counts 1).
pub(super) fn bodies(code: &str) -> Vec<(String, usize, usize)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    for (i, &(at, token)) in toks.iter().enumerate() {
        let Some(&(_, name)) = toks.get(i + 1).filter(|t| token == "fn" && is_word(t.1)) else {
            continue;
        };
        let Some(open) = signature_end(&toks[i + 2..]) else {
            continue;
        };
        let close = matching_brace(code.as_bytes(), open);
        let (first, last) = (line_of(code, open), line_of(code, close));
        out.push((
            name.to_string(),
            at,
            if first == last { 1 } else { last - first - 1 },
        ));
    }
    out
}

/// The offset of the `{` opening a body, or None when a `;` ends the signature first.
pub(super) fn signature_end(toks: &[(usize, &str)]) -> Option<usize> {
    let mut depth = 0i32;
    for &(at, token) in toks {
        match token {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "{" if depth == 0 => return Some(at),
            ";" if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Body lengths over files: each with `file:line name`, longest first.
pub(super) struct Figures {
    pub(super) bodies: Vec<(usize, String)>,
    pub(super) median: f64,
}

pub(super) fn figures(files: &[File]) -> Figures {
    let mut all = Vec::new();
    for (path, text) in files {
        let code = lexed(text).code;
        for (name, at, lines) in bodies(&code) {
            all.push((lines, format!("{path}:{} {name}", line_of(&code, at))));
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let n = all.len();
    let median = match n {
        0 => 0.0,
        _ if n % 2 == 1 => all[n / 2].0 as f64,
        _ => (all[n / 2 - 1].0 + all[n / 2].0) as f64 / 2.0,
    };
    Figures {
        bodies: all,
        median,
    }
}

impl Figures {
    pub(super) fn over_30(&self) -> Vec<String> {
        let over = self.bodies.iter().filter(|b| b.0 > 30);
        over.map(|(lines, at)| format!("{lines} {at}")).collect()
    }

    pub(super) fn summary(&self) -> String {
        let over = self.over_30().len();
        let share = 100.0 * over as f64 / self.bodies.len().max(1) as f64;
        let longest: Vec<String> = self
            .bodies
            .iter()
            .take(10)
            .map(|b| format!("  {:>4} {}", b.0, b.1))
            .collect();
        format!(
            "function bodies: {} functions, median {} lines, {over} ({share:.1}%) over 30; longest:\n{}",
            self.bodies.len(),
            self.median,
            longest.join("\n")
        )
    }
}
