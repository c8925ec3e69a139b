//! SQL text in string literals outside `sql/` and `adapter/`.

use super::*;

/// Each string literal outside src/sql and src/adapter/ (and `#[cfg(test)]` modules) that
/// looks like SQL xform would run.
pub(super) fn sql_offences(files: &[File]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|f| !sql_home(&f.0)) {
        for (at, literal) in lexed(text).literals {
            if let Some(phrase) = sql_phrase(&unescape(literal_body(literal))) {
                out.push(format!(
                    "{path}:{}: `{phrase}` in {}",
                    line_of(text, at),
                    shorten(literal)
                ));
            }
        }
    }
    out
}

pub(super) fn sql_home(path: &str) -> bool {
    ["src/sql.rs", "src/adapter.rs"].contains(&path)
        || path.starts_with("src/sql/")
        || path.starts_with("src/adapter/")
}

/// A literal without its prefix, quotes and hashes.
pub(super) fn literal_body(literal: &str) -> &str {
    let start = literal.find('"').map_or(0, |n| n + 1);
    let end = literal
        .rfind('"')
        .filter(|&n| n >= start)
        .unwrap_or(literal.len());
    &literal[start..end]
}

/// Escapes that separate words become spaces; others become the escaped character.
pub(super) fn unescape(body: &str) -> String {
    let (mut out, mut chars) = (String::new(), body.chars());
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n' | 't' | 'r' | '\n') | None => out.push(' '),
                Some(other) => out.push(other),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

pub(super) fn shorten(literal: &str) -> String {
    let flat: String = literal.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(70) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Phrases of SQL as word sequences; `_` is any name, `(` and `'` are themselves.
pub(super) const SQL_PHRASES: &[&str] = &[
    "select 1",
    "drop table",
    "drop view",
    "drop schema",
    "alter table",
    "insert into",
    "delete from",
    "cast (",
    "describe select",
    "attach '",
    "with _ as (",
    "qualify _",
    "union all",
];

/// The SQL phrase a text contains, case-insensitively: one of `SQL_PHRASES`,
/// `create [or replace] [temp|temporary] table|view|schema`, or `select` followed later by
/// `from`. English that names SELECT (`a model is one SELECT statement`) has none of them.
pub(super) fn sql_phrase(text: &str) -> Option<String> {
    let words = sql_words(text);
    let select = words.iter().position(|w| w == "select");
    if select.is_some_and(|s| words[s..].iter().any(|w| w == "from")) {
        return Some("select … from".to_string());
    }
    let phrases = SQL_PHRASES
        .iter()
        .map(|p| p.to_string())
        .chain(create_phrases());
    phrases.into_iter().find(|p| contains_phrase(&words, p))
}

pub(super) fn create_phrases() -> Vec<String> {
    let mut out = Vec::new();
    for replace in ["", " or replace"] {
        for temp in ["", " temp", " temporary"] {
            for what in ["table", "view", "schema"] {
                out.push(format!("create{replace}{temp} {what}"));
            }
        }
    }
    out
}

/// Lowercase words and single punctuation characters of a text, whitespace dropped.
pub(super) fn sql_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut prev_word = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let word = c.is_alphanumeric() || c == '_';
        match words.last_mut() {
            Some(last) if word && prev_word => last.push(c),
            _ if !c.is_whitespace() => words.push(c.to_string()),
            _ => {}
        }
        prev_word = word;
    }
    words
}

pub(super) fn contains_phrase(words: &[String], phrase: &str) -> bool {
    let want: Vec<&str> = phrase.split(' ').collect();
    let fits = |(w, p): (&String, &&str)| w == p || (*p == "_" && is_word(w));
    words
        .windows(want.len())
        .any(|window| window.iter().zip(&want).all(fits))
}
