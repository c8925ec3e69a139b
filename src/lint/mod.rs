//! `xform lint`: model and column names against the project's naming standard (`naming:` in
//! project.yml and its glossary of standard words). A column is checked where its model's SQL
//! names it (`... as cust_nm`), with the closest standard term as the help.

use std::ops::Range;

use crate::compile::Compiled;
use crate::diagnostics::{Diagnostic, Loc};
use crate::lineage::Lineage;
use crate::project::NodeKind;
use crate::project::naming::{Case, Naming, Term};

/// Every finding, in the order of the nodes; none when the project has no `naming:`.
pub(crate) fn lint(c: &Compiled, l: &Lineage) -> Vec<Diagnostic> {
    let Some(naming) = &c.project.naming else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, n) in c.nodes().iter().enumerate() {
        let own = n.fqn.first() == Some(&c.project.name);
        if !own || !matches!(n.kind, NodeKind::Model | NodeKind::Snapshot) {
            continue;
        }
        let raw = n.raw.as_deref().unwrap_or("");
        if naming.models {
            let at = Loc::new(&n.path, 0..0);
            let found = findings(naming, (&n.name, &format!("model `{}`", n.name)), false);
            out.extend(found.into_iter().map(|f| f.at(at.clone())));
        }
        for col in l.nodes[i].iter().flat_map(|nl| &nl.columns) {
            let at = Loc::new(&n.path, named_at(raw, &col.name).unwrap_or(0..0));
            let what = format!("column `{}` of `{}`", col.name, n.name);
            let found = findings(naming, (&col.name, &what), true);
            out.extend(found.into_iter().map(|f| f.at(at.clone())));
        }
    }
    out
}

/// What is wrong with `name` (`what` says whose it is); only a column must end in a class
/// word.
fn findings(naming: &Naming, (name, what): (&str, &str), column: bool) -> Vec<Diagnostic> {
    let finding = |message: String| match naming.severity {
        crate::diagnostics::Severity::Error => Diagnostic::error(message),
        crate::diagnostics::Severity::Warning => Diagnostic::warning(message),
    };
    let mut out = Vec::new();
    if let Some(help) = case_problem(naming, name) {
        out.push(finding(format!("{what} is not {}", case_name(naming.case))).help(help));
    }
    if let Some(max) = naming.max_length.filter(|&m| name.chars().count() > m) {
        out.push(finding(format!("{what} is longer than {max} characters")));
    }
    let words: Vec<String> = name
        .split(naming.separator.as_str())
        .map(str::to_lowercase)
        .collect();
    if !naming.glossary.is_empty() || !naming.allowed.is_empty() {
        for w in words.iter().filter(|w| !standard(naming, w)) {
            let message = format!("{what}: `{w}` is not a standard word");
            out.push(finding(message).help(closest_term(naming, w)));
        }
    }
    let last = words.last().map(String::as_str).unwrap_or("");
    if column && !naming.suffixes.is_empty() && !naming.suffixes.iter().any(|s| s == last) {
        let list: Vec<String> = naming
            .suffixes
            .iter()
            .map(|s| format!("{}{s}", naming.separator))
            .collect();
        let message = format!("{what} does not end in a class word");
        out.push(finding(message).help(format!("end it in one of: {}", list.join(", "))));
    }
    out
}

fn case_name(case: Case) -> &'static str {
    match case {
        Case::Snake => "snake_case (lower-case words)",
        Case::Upper => "UPPER_SNAKE_CASE",
    }
}

/// Why `name` breaks the case rule, as a help with the name written right.
fn case_problem(naming: &Naming, name: &str) -> Option<String> {
    let fixed = match naming.case {
        Case::Snake => name.to_lowercase(),
        Case::Upper => name.to_uppercase(),
    };
    let ok_chars = name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || naming.separator.contains(ch));
    let starts = name
        .chars()
        .next()
        .is_some_and(|ch| ch.is_ascii_alphabetic());
    if fixed == name && ok_chars && starts {
        return None;
    }
    let fixed: String = fixed
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
        .collect();
    Some(format!(
        "write it `{fixed}`: letters, digits and `{}` only, starting with a letter",
        naming.separator
    ))
}

/// A glossary abbreviation, an allowed word, a class word or a number.
fn standard(naming: &Naming, word: &str) -> bool {
    word.is_empty()
        || word.chars().all(|ch| ch.is_ascii_digit())
        || naming.glossary.iter().any(|t| t.abbreviation == word)
        || naming.allowed.iter().any(|a| a == word)
        || naming.suffixes.iter().any(|s| s == word)
}

/// The standard term for a word: one whose word or meaning it is, else the nearest
/// abbreviation by spelling.
fn closest_term(naming: &Naming, word: &str) -> String {
    let describe = |t: &Term| match (t.word.is_empty(), t.meaning.is_empty()) {
        (false, false) => format!("`{}` ({}, {})", t.abbreviation, t.word, t.meaning),
        (false, true) => format!("`{}` ({})", t.abbreviation, t.word),
        (true, false) => format!("`{}` ({})", t.abbreviation, t.meaning),
        (true, true) => format!("`{}`", t.abbreviation),
    };
    let means = |t: &&Term| {
        t.word.eq_ignore_ascii_case(word)
            || t.meaning
                .split(|ch: char| !ch.is_alphanumeric())
                .any(|m| m.eq_ignore_ascii_case(word))
    };
    if let Some(t) = naming.glossary.iter().find(means) {
        return format!("the standard word is {}", describe(t));
    }
    let nearest = (naming.glossary.iter())
        .map(|t| (strsim::levenshtein(&t.abbreviation, word), t))
        .filter(|(d, _)| *d <= if word.chars().count() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d);
    match nearest {
        Some((_, t)) => format!("closest standard word: {}", describe(t)),
        None => "add it to the glossary, or to `naming.allowed`".into(),
    }
}

/// Where the SQL names a column: its last `as <name>`, else its last mention as a word.
fn named_at(raw: &str, name: &str) -> Option<Range<usize>> {
    let word = regex::escape(name);
    let alias = regex::RegexBuilder::new(&format!(r#"(?i)\bas\s+["`]?({word})["`]?(?:\W|$)"#))
        .build()
        .ok()?;
    if let Some(m) = alias.captures_iter(raw).last().and_then(|c| c.get(1)) {
        return Some(m.range());
    }
    let bare = regex::RegexBuilder::new(&format!(r"(?i)\b{word}\b"))
        .build()
        .ok()?;
    bare.find_iter(raw).last().map(|m| m.range())
}
