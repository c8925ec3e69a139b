//! Enough of Rust's lexer for tidy: comments, literals and `#[cfg(test)]` modules blanked
//! (offsets and lines kept), the tokens of what remains.

use super::*;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Kind {
    Comment,
    Str,
    Char,
}

/// Enough of Rust's lexer for tidy: the comments and literals of a source, in order. Knows
/// nested block comments, escapes, raw/byte/C strings, and char literals from lifetimes.
pub(super) fn lex(text: &str) -> Vec<(Kind, Range<usize>)> {
    let b = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let (kind, end) = lexeme_at(b, i);
        if let Some(kind) = kind {
            out.push((kind, i..end));
        }
        i = end;
    }
    out
}

/// The comment or literal starting at `i`, if any, and where scanning resumes.
pub(super) fn lexeme_at(b: &[u8], i: usize) -> (Option<Kind>, usize) {
    match (b[i], b.get(i + 1)) {
        (b'/', Some(b'/')) => (Some(Kind::Comment), line_end(b, i)),
        (b'/', Some(b'*')) => (Some(Kind::Comment), block_comment_end(b, i)),
        (b'"', _) => (Some(Kind::Str), string_end(b, i + 1)),
        (b'\'', _) => match char_end(b, i) {
            Some(end) => (Some(Kind::Char), end),
            None => (None, i + 1), // a lifetime or label
        },
        (c, _) if is_ident(c) => word_or_prefixed_literal(b, i),
        _ => (None, i + 1),
    }
}

/// A whole identifier (so the `r` of `bar` never starts a raw string), or a literal with a
/// prefix: `r"…"`, `r#"…"#`, `br"…"`, `b"…"`, `c"…"`, `b'x'`.
pub(super) fn word_or_prefixed_literal(b: &[u8], i: usize) -> (Option<Kind>, usize) {
    let end = i + b[i..].iter().take_while(|&&c| is_ident(c)).count();
    match (&b[i..end], b.get(end)) {
        (b"r" | b"br" | b"cr", Some(b'"' | b'#')) => match raw_string_end(b, end) {
            Some(close) => (Some(Kind::Str), close),
            None => (None, end), // a raw identifier, r#type
        },
        (b"b" | b"c", Some(b'"')) => (Some(Kind::Str), string_end(b, end + 1)),
        (b"b", Some(b'\'')) => (Some(Kind::Char), char_end(b, end).unwrap_or(end + 1)),
        _ => (None, end),
    }
}

pub(super) fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

pub(super) fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n)
}

pub(super) fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'/', Some(b'*')) => (depth, i) = (depth + 1, i + 2),
            (b'*', Some(b'/')) if depth == 1 => return i + 2,
            (b'*', Some(b'/')) => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of a string whose body starts at `i` (after the opening quote).
pub(super) fn string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of a raw string whose `#`s or quote start at `i`; None for a raw identifier.
pub(super) fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    if b.get(i + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.resize(hashes + 1, b'#');
    let body = i + hashes + 1;
    let found = b[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice());
    Some(found.map_or(b.len(), |n| body + n + close.len()))
}

/// The end of a char literal at the quote `i`, or None when the quote starts a lifetime.
pub(super) fn char_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&b'\\') {
        let close = b.get(i + 3..)?.iter().position(|&c| c == b'\'')?;
        return Some(i + 3 + close + 1);
    }
    let width = match b.get(i + 1)? {
        c if *c < 0x80 => 1,
        c if *c >= 0xF0 => 4,
        c if *c >= 0xE0 => 3,
        _ => 2,
    };
    (b.get(i + 1 + width) == Some(&b'\'')).then_some(i + 2 + width)
}

/// A file as the checks read it: the code with comments, literals and `#[cfg(test)]` modules
/// blanked (offsets and lines kept), and the string literals outside those modules with
/// their offsets.
pub(super) struct Lexed<'a> {
    pub(super) code: String,
    pub(super) literals: Vec<(usize, &'a str)>,
}

pub(super) fn lexed(text: &str) -> Lexed<'_> {
    let lexemes = lex(text);
    let mut code = text.as_bytes().to_vec();
    lexemes
        .iter()
        .for_each(|(_, span)| blank(&mut code, span.clone()));
    let tests = test_modules(std::str::from_utf8(&code).expect("blanking keeps UTF-8"));
    tests.iter().for_each(|span| blank(&mut code, span.clone()));
    let shipped = |start: &usize| !tests.iter().any(|t| t.contains(start));
    let literals = lexemes
        .into_iter()
        .filter(|(kind, span)| *kind == Kind::Str && shipped(&span.start))
        .map(|(_, span)| (span.start, &text[span]))
        .collect();
    Lexed {
        code: String::from_utf8(code).expect("blanking keeps UTF-8"),
        literals,
    }
}

/// Spaces over a span, newlines kept.
pub(super) fn blank(code: &mut [u8], span: Range<usize>) {
    code[span]
        .iter_mut()
        .filter(|c| **c != b'\n')
        .for_each(|c| *c = b' ');
}

/// The spans of `#[cfg(test)] mod x { … }` in blanked code (unit tests may use anything).
pub(super) fn test_modules(code: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    for (at, attr) in code.match_indices("#[cfg(test)]") {
        let item = at + attr.len();
        let Some(open) = code[item..].find(['{', ';']).map(|n| item + n) else {
            continue;
        };
        let header = &code[item..open];
        if code.as_bytes()[open] == b'{' && header.split_whitespace().any(|w| w == "mod") {
            spans.push(at..matching_brace(code.as_bytes(), open) + 1);
        }
    }
    spans
}

/// The index of the `}` closing the `{` at `open` in blanked code (the end if unbalanced).
pub(super) fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' if depth == 1 => return i,
            b'}' => depth -= 1,
            _ => {}
        }
    }
    code.len() - 1
}

/// The words and punctuation of blanked code with their offsets; `::` is one token.
pub(super) fn tokens(code: &str) -> Vec<(usize, &str)> {
    let b = code.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let len = match b[i] {
            c if c.is_ascii_whitespace() => 0,
            c if is_ident(c) => b[i..].iter().take_while(|&&c| is_ident(c)).count(),
            b':' if b.get(i + 1) == Some(&b':') => 2,
            c if c < 0x80 => 1,
            _ => 0,
        };
        if len > 0 {
            out.push((i, &code[i..i + len]));
        }
        i += len.max(1);
    }
    out
}

pub(super) fn is_word(token: &str) -> bool {
    token.bytes().next().is_some_and(is_ident)
}
