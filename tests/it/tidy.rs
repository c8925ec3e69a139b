//! Tidy: the architecture's walls, read from `src/`. Modules keep to the layer table in
//! ARCHITECTURE.md, no files form an import cycle, SQL text lives only in `sql` and `adapter`,
//! and function bodies stay short (STYLE.md). The source is lexed by hand (no regex crate):
//! comments, literals and `#[cfg(test)]` modules are blanked first, keeping byte offsets and
//! lines, so each check reads only the code that ships. Each check is a function over
//! `(path, text)` pairs; the tests at the bottom feed it synthetic sources.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// A source file: its path from the crate root (`src/cli/mod.rs`) and its text.
type File = (String, String);

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers(&read("ARCHITECTURE.md"));
    let offences = layer_offences(&layers, &sources());
    assert!(
        offences.is_empty(),
        "{} references break the layer table in ARCHITECTURE.md (a module uses only modules on \
         rows above its own; `sql` and `diagnostics` use nothing of the crate). Move the item \
         down to a lower layer, or pass it in from the caller:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn no_cycles_between_files() {
    let cycles = file_cycles(&sources());
    assert!(
        cycles.is_empty(),
        "{} groups of files import each other in a cycle; move what they share into one of \
         them (or a new file below both) so the references point one way:\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

#[test]
fn sql_text_only_in_sql_and_adapter() {
    let offences = sql_offences(&sources());
    assert!(
        offences.is_empty(),
        "{} string literals outside src/sql and src/adapter/ look like SQL; xform's own SQL \
         belongs behind the adapter (a method on the adapter or its dialect) or in src/sql:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn function_bodies_are_short() {
    let f = figures(&sources());
    eprintln!("{}", f.summary());
    let over = f.over_30();
    assert!(
        f.median <= 8.0 && over.len() * 10 <= f.bodies.len(),
        "function bodies are long (STYLE.md: mostly under 10 lines, rarely over 30): median {} \
         (at most 8), {} of {} over 30 lines (at most 10%). Split these (lines file:line fn):\n{}",
        f.median,
        over.len(),
        f.bodies.len(),
        over.join("\n")
    );
}

// ---- sources -------------------------------------------------------------------------------

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` file under src/, sorted by path.
fn sources() -> Vec<File> {
    let mut paths = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "src",
        &mut paths,
    );
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), read(&p))).collect()
}

fn rust_files(dir: &Path, relative: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("dir entry"))
    {
        let name = format!("{relative}/{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            rust_files(&entry.path(), &name, out);
        } else if name.ends_with(".rs") {
            out.push(name);
        }
    }
}

/// The module a file defines: src/cli/mod.rs and src/cli.rs are `[cli]`, src/cli/out.rs is
/// `[cli, out]`, src/lib.rs is the crate root `[]`.
fn module_of(path: &str) -> Vec<String> {
    let inner = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = inner.split('/').map(String::from).collect();
    if module.last().is_some_and(|m| m == "mod") || path == "src/lib.rs" {
        module.pop();
    }
    module
}

/// src/main.rs is the binary's crate, which reaches the library only as `xform::`.
fn in_library(file: &&File) -> bool {
    file.0 != "src/main.rs"
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + text[..offset].matches('\n').count()
}

// ---- lexing --------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Comment,
    Str,
    Char,
}

/// Enough of Rust's lexer for tidy: the comments and literals of a source, in order. Knows
/// nested block comments, escapes, raw/byte/C strings, and char literals from lifetimes.
fn lex(text: &str) -> Vec<(Kind, Range<usize>)> {
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
fn lexeme_at(b: &[u8], i: usize) -> (Option<Kind>, usize) {
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
fn word_or_prefixed_literal(b: &[u8], i: usize) -> (Option<Kind>, usize) {
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

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n)
}

fn block_comment_end(b: &[u8], mut i: usize) -> usize {
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
fn string_end(b: &[u8], mut i: usize) -> usize {
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
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
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
fn char_end(b: &[u8], i: usize) -> Option<usize> {
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
struct Lexed<'a> {
    code: String,
    literals: Vec<(usize, &'a str)>,
}

fn lexed(text: &str) -> Lexed<'_> {
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
fn blank(code: &mut [u8], span: Range<usize>) {
    code[span]
        .iter_mut()
        .filter(|c| **c != b'\n')
        .for_each(|c| *c = b' ');
}

/// The spans of `#[cfg(test)] mod x { … }` in blanked code (unit tests may use anything).
fn test_modules(code: &str) -> Vec<Range<usize>> {
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
fn matching_brace(code: &[u8], open: usize) -> usize {
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
fn tokens(code: &str) -> Vec<(usize, &str)> {
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

fn is_word(token: &str) -> bool {
    token.bytes().next().is_some_and(is_ident)
}

// ---- references ----------------------------------------------------------------------------

/// A path into the crate that code names, from the crate root (`[cli, output, Printer]`),
/// with the offset of its last segment.
struct Reference {
    path: Vec<String>,
    at: usize,
}

/// Every path into the crate in blanked code: `crate::…` in `use` trees (grouped and nested
/// too) and inline, and `super::…`/`self::…` resolved from `module`, the file's own module.
fn references(module: &[String], code: &str) -> Vec<Reference> {
    let toks = tokens(code);
    let (mut out, mut i) = (Vec::new(), 0);
    while i < toks.len() {
        let starts = matches!(toks[i].1, "crate" | "super" | "self")
            && toks.get(i + 1).is_some_and(|t| t.1 == "::");
        if !starts {
            i += 1;
            continue;
        }
        let base = if toks[i].1 == "crate" {
            Vec::new()
        } else {
            module.to_vec()
        };
        i = use_tree(&toks, i, base, &mut out);
    }
    out
}

/// Reads `a::b::{…}` from token `i` onto `path`, pushing each leaf; returns the next token.
fn use_tree(
    toks: &[(usize, &str)],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Reference>,
) -> usize {
    let mut at = toks[i].0;
    while let Some(&(offset, token)) = toks.get(i) {
        match token {
            "{" => return use_group(toks, i + 1, &path, out),
            "*" => i += 1,
            t if is_word(t) => {
                step(&mut path, t);
                (at, i) = (offset, i + 1);
            }
            _ => {}
        }
        if token == "*" || toks.get(i).is_none_or(|t| t.1 != "::") {
            break;
        }
        i += 1;
    }
    out.push(Reference { path, at });
    i
}

/// Reads the trees of a `{…}` group from token `i`; returns the token after its `}`.
fn use_group(
    toks: &[(usize, &str)],
    mut i: usize,
    path: &[String],
    out: &mut Vec<Reference>,
) -> usize {
    while let Some(&(_, token)) = toks.get(i) {
        match token {
            "}" => return i + 1,
            "as" => i += 2,
            t if t == "{" || t == "*" || is_word(t) => i = use_tree(toks, i, path.to_vec(), out),
            _ => i += 1,
        }
    }
    i
}

fn step(path: &mut Vec<String>, segment: &str) {
    match segment {
        "crate" | "self" => {}
        "super" => {
            path.pop();
        }
        _ => path.push(segment.to_string()),
    }
}

// ---- check 1: layers -----------------------------------------------------------------------

/// A row of the layer table: its position (0 = top) and its label (`0`, `1`, …).
struct Layer {
    rank: usize,
    label: String,
}

/// The `## Layers` table of ARCHITECTURE.md: each module (in backticks) with its row.
fn layers(doc: &str) -> BTreeMap<String, Layer> {
    let section = doc.split("\n## ").find(|s| s.starts_with("Layers\n"));
    let section = section.expect("ARCHITECTURE.md needs the `## Layers` table that tidy.rs reads");
    let rows = section
        .lines()
        .filter(|l| l.starts_with('|') && l.contains('`'));
    let mut table = BTreeMap::new();
    for (rank, row) in rows.enumerate() {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let modules = cells
            .get(1)
            .copied()
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2);
        for module in modules {
            let label = cells[0].to_string();
            table.insert(module.to_string(), Layer { rank, label });
        }
    }
    assert!(
        !table.is_empty(),
        "the `## Layers` section of ARCHITECTURE.md has no table rows"
    );
    table
}

/// Each reference that leaves its top-level module for one on its own or a higher row (or,
/// from row 0, for anything of the crate), and each module missing from the table.
fn layer_offences(layers: &BTreeMap<String, Layer>, files: &[File]) -> Vec<String> {
    let (mut out, mut unknown) = (Vec::new(), BTreeSet::new());
    for (path, text) in files.iter().filter(in_library) {
        let module = module_of(path);
        let Some(top) = module.first() else { continue };
        let Some(own) = layers.get(top) else {
            if unknown.insert(top.clone()) {
                out.push(format!(
                    "{path}: module `{top}` is not in the layer table: add it to the layer \
                     table in ARCHITECTURE.md"
                ));
            }
            continue;
        };
        let code = lexed(text).code;
        for r in references(&module, &code) {
            if let Some(why) = layer_breach(layers, top, own, &r.path) {
                out.push(format!("{path}:{}: {why}", line_of(&code, r.at)));
            }
        }
    }
    out.dedup();
    out
}

fn layer_breach(
    layers: &BTreeMap<String, Layer>,
    top: &str,
    own: &Layer,
    target: &[String],
) -> Option<String> {
    let used = target.first().filter(|t| *t != top)?;
    let (name, mine) = (format!("crate::{}", target.join("::")), &own.label);
    if own.rank == 0 {
        return Some(format!(
            "`{top}` (layer {mine}) uses `{name}`, but layer {mine} uses nothing of the crate"
        ));
    }
    let theirs = layers.get(used).filter(|l| l.rank >= own.rank)?;
    Some(format!(
        "`{top}` (layer {mine}) uses `{name}` (layer {}), which is not above it",
        theirs.label
    ))
}

// ---- check 2: cycles between files ---------------------------------------------------------

/// One message per strongly connected group of file modules, naming its files and one
/// reference (file:line) for each edge inside it. Edges between a file and its own ancestor
/// or descendant are left out: a child using its parent's types is normal Rust.
fn file_cycles(files: &[File]) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .filter(in_library)
        .map(|f| module_of(&f.0))
        .collect();
    let edges = file_edges(files, &modules);
    let graph: DiGraphMap<&str, ()> = edges
        .keys()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut groups: Vec<Vec<&str>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|g| g.len() > 1)
        .collect();
    groups.iter_mut().for_each(|g| g.sort());
    groups.sort();
    groups.iter().map(|g| describe_cycle(g, &edges)).collect()
}

/// (from, to) file modules, each with its first reference as `file:line`.
fn file_edges(
    files: &[File],
    modules: &BTreeSet<Vec<String>>,
) -> BTreeMap<(String, String), String> {
    let mut edges = BTreeMap::new();
    for (path, text) in files.iter().filter(in_library) {
        let from = module_of(path);
        let code = lexed(text).code;
        for r in references(&from, &code) {
            let to = owner(modules, &r.path);
            if !from.starts_with(&to) && !to.starts_with(&from) {
                let at = format!("{path}:{}", line_of(&code, r.at));
                edges.entry((display(&from), display(&to))).or_insert(at);
            }
        }
    }
    edges
}

/// The longest file module a path names.
fn owner(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

fn display(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

fn describe_cycle(group: &[&str], edges: &BTreeMap<(String, String), String>) -> String {
    let inside =
        |(a, b): &&(String, String)| group.contains(&a.as_str()) && group.contains(&b.as_str());
    let lines = edges
        .keys()
        .filter(inside)
        .map(|(a, b)| format!("    {a} -> {b} at {}", edges[&(a.clone(), b.clone())]));
    format!(
        "cycle between {}:\n{}",
        group.join(", "),
        lines.collect::<Vec<_>>().join("\n")
    )
}

// ---- check 3: SQL text ---------------------------------------------------------------------

/// Each string literal outside src/sql and src/adapter/ (and `#[cfg(test)]` modules) that
/// looks like SQL xform would run.
fn sql_offences(files: &[File]) -> Vec<String> {
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

fn sql_home(path: &str) -> bool {
    ["src/sql.rs", "src/adapter.rs"].contains(&path)
        || path.starts_with("src/sql/")
        || path.starts_with("src/adapter/")
}

/// A literal without its prefix, quotes and hashes.
fn literal_body(literal: &str) -> &str {
    let start = literal.find('"').map_or(0, |n| n + 1);
    let end = literal
        .rfind('"')
        .filter(|&n| n >= start)
        .unwrap_or(literal.len());
    &literal[start..end]
}

/// Escapes that separate words become spaces; others become the escaped character.
fn unescape(body: &str) -> String {
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

fn shorten(literal: &str) -> String {
    let flat: String = literal.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(70) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Phrases of SQL as word sequences; `_` is any name, `(` and `'` are themselves.
const SQL_PHRASES: &[&str] = &[
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
fn sql_phrase(text: &str) -> Option<String> {
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

fn create_phrases() -> Vec<String> {
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
fn sql_words(text: &str) -> Vec<String> {
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

fn contains_phrase(words: &[String], phrase: &str) -> bool {
    let want: Vec<&str> = phrase.split(' ').collect();
    let fits = |(w, p): (&String, &&str)| w == p || (*p == "_" && is_word(w));
    words
        .windows(want.len())
        .any(|window| window.iter().zip(&want).all(fits))
}

// ---- check 4: function bodies --------------------------------------------------------------

/// Every `fn` with a body in blanked code: its name, the offset of `fn` and its body's lines
/// (those strictly between the braces' lines; a one-line body counts 1).
fn bodies(code: &str) -> Vec<(String, usize, usize)> {
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
fn signature_end(toks: &[(usize, &str)]) -> Option<usize> {
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
struct Figures {
    bodies: Vec<(usize, String)>,
    median: f64,
}

fn figures(files: &[File]) -> Figures {
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
    fn over_30(&self) -> Vec<String> {
        let over = self.bodies.iter().filter(|b| b.0 > 30);
        over.map(|(lines, at)| format!("{lines} {at}")).collect()
    }

    fn summary(&self) -> String {
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

// ---- the checkers on synthetic sources -----------------------------------------------------

/// Files given as `-- file: path` sections of one string.
fn files(fixture: &str) -> Vec<File> {
    let sections = fixture.split("-- file: ").skip(1);
    let split = sections.map(|s| s.split_once('\n').expect("a path line"));
    split.map(|(p, t)| (p.to_string(), t.to_string())).collect()
}

const TABLE: &str = r"# xform

## Layers

Prose with `backticks` is not a row.

| layer | modules |
|---|---|
| 0 | `sql`, `diagnostics` |
| 1 | `project` |
| 2 | `adapter` |
| 3 | `cli` |

## Next

| 9 | `late` |
";

#[test]
fn layer_table_is_read_in_row_order() {
    let t = layers(TABLE);
    let ranks: Vec<(&str, usize)> = t.iter().map(|(m, l)| (m.as_str(), l.rank)).collect();
    let want = [
        ("adapter", 2),
        ("cli", 3),
        ("diagnostics", 0),
        ("project", 1),
        ("sql", 0),
    ];
    assert_eq!(ranks, want);
}

#[test]
fn upward_and_layer_zero_references_are_flagged() {
    let src = files(
        r#"-- file: src/adapter/mod.rs
fn f() { super::cli::run(); crate::checksum(""); }
#[cfg(test)]
mod tests { use crate::cli; }
-- file: src/extra/mod.rs
use crate::cli;
-- file: src/project/x.rs
//! uses crate::cli in a comment
use crate::cli::x;
fn f() { crate::diagnostics::g("crate::cli") }
-- file: src/project/y.rs
use crate::{
    diagnostics,
    cli::{self, out::{a, b as c}},
};
-- file: src/sql.rs
fn f() -> usize { crate::STACK_SIZE }
"#,
    );
    let found = layer_offences(&layers(TABLE), &src);
    let at: Vec<&str> = found
        .iter()
        .map(|o| o.split(": ").next().unwrap())
        .collect();
    let y = "src/project/y.rs:3";
    let want = [
        "src/adapter/mod.rs:1",
        "src/extra/mod.rs",
        "src/project/x.rs:2",
        y,
        y,
        y,
        "src/sql.rs:1",
    ];
    assert_eq!(at, want, "{found:#?}");
    assert!(found[1].contains("add it to the layer table"), "{found:#?}");
    let upward = "`project` (layer 1) uses `crate::cli::x` (layer 3), which is not above it";
    assert!(found[2].ends_with(upward), "{found:#?}");
    assert!(found[6].contains("`crate::STACK_SIZE`"), "{found:#?}");
}

#[test]
fn two_file_cycle_is_found_and_parent_child_is_not() {
    let src = files(
        r"-- file: src/cli/mod.rs
mod a;
use self::a::A;
pub struct G;
-- file: src/cli/a.rs
use super::G;
use super::b::B;
-- file: src/cli/b.rs
fn f() {
    crate::cli::a::run()
}
-- file: src/other.rs
use crate::cli::a;
",
    );
    let want = "cycle between cli::a, cli::b:
    cli::a -> cli::b at src/cli/a.rs:2
    cli::b -> cli::a at src/cli/b.rs:2";
    assert_eq!(file_cycles(&src), [want]);
}

#[test]
fn sql_literals_are_flagged_outside_sql_and_adapter() {
    let code = r#"fn f<'a>(rel: &'a str) -> (char, String) {
    let q = '"';
    (q, format!("SELECT * FROM {rel}"))
}
"#;
    let fixture = [
        "src/cli/x.rs",
        "src/adapter/x.rs",
        "src/sql/x.rs",
        "src/sql.rs",
    ]
    .map(|path| format!("-- file: {path}\n{code}"))
    .concat();
    let want = r#"src/cli/x.rs:3: `select … from` in "SELECT * FROM {rel}""#;
    assert_eq!(sql_offences(&files(&fixture)), [want]);
}

#[test]
fn sql_in_raw_and_byte_strings_is_flagged_but_not_in_tests() {
    let src = files(
        r###"-- file: src/compile/y.rs
const A: &str = r#"create or replace temp table "t" as"#;
const B: &[u8] = b"DROP VIEW v";
#[cfg(test)]
mod tests { const C: &str = "select 1"; }
"###,
    );
    let found = sql_offences(&src);
    let at: Vec<&str> = found
        .iter()
        .map(|o| o.split(" in ").next().unwrap())
        .collect();
    let want = [
        "src/compile/y.rs:1: `create or replace temp table`",
        "src/compile/y.rs:2: `drop view`",
    ];
    assert_eq!(at, want, "{found:#?}");
}

#[test]
fn english_about_sql_is_not_flagged() {
    let prose = [
        "a model is one SELECT statement",
        "write only the SELECT; xform creates the view or table around it",
        "wrap the query: {% snapshot x %} select ... {% endsnapshot %}",
        "selector `{}` needs --state DIR, a folder with {missing} from an earlier run",
        "cannot attach target `{t}`: {e}",
    ];
    for text in prose {
        assert_eq!(sql_phrase(text), None, "{text}");
    }
    let sql = [
        "select 1",
        "WITH a AS (select 2)",
        "x\nUNION ALL y",
        "CAST(x AS int)",
        "ATTACH 'f.db'",
    ];
    for text in sql {
        assert!(sql_phrase(text).is_some(), "{text}");
    }
}

#[test]
fn lexer_tells_chars_from_lifetimes_and_nests_comments() {
    let text = r####"fn a<'b>(x: &'b u8) -> u8 { /* a /* b */ " */ b'"' } // "
let s = "q\""; let r = r##"a"#b"##; let c = '\''; let k = '가';"####;
    let found: Vec<(Kind, &str)> = lex(text).into_iter().map(|(k, s)| (k, &text[s])).collect();
    use Kind::*;
    let want = [
        (Comment, r#"/* a /* b */ " */"#),
        (Char, r#"b'"'"#),
        (Comment, r#"// ""#),
        (Str, r#""q\"""#),
        (Str, r###"r##"a"#b"##"###),
        (Char, r"'\''"),
        (Char, "'가'"),
    ];
    assert_eq!(found, want);
}

#[test]
fn bodies_count_lines_between_braces_and_skip_tests() {
    let text = r#"fn one() { 1 }
fn two(
    x: [u8; 2],
) -> u8 {
    let y = "}";
    x[0]
}
trait T { fn declared(&self); }
#[cfg(test)]
mod tests {
    fn hidden() {}
}
"#;
    let found: Vec<(String, usize)> = bodies(&lexed(text).code)
        .into_iter()
        .map(|(name, _, lines)| (name, lines))
        .collect();
    assert_eq!(found, [("one".to_string(), 1), ("two".to_string(), 2)]);
}

#[test]
fn a_tidy_tree_passes_every_check() {
    let src = files(
        r##"-- file: src/lib.rs
pub mod adapter;
pub mod cli;
pub const STACK_SIZE: usize = 1;
-- file: src/sql.rs
//! No `crate::` here, only in comments: crate::cli.
pub fn parse(text: &str) -> &str {
    text
}
-- file: src/project/mod.rs
mod nodes;
use crate::{diagnostics::Diagnostic, sql};
pub(crate) fn load() -> usize {
    nodes::count() + crate::STACK_SIZE
}
-- file: src/project/nodes.rs
use super::load;
pub fn count() -> usize { 1 }
-- file: src/adapter/mod.rs
pub fn create(rel: &str) -> String {
    format!("CREATE OR REPLACE TABLE {rel} AS SELECT * FROM x")
}
#[cfg(test)]
mod tests {
    use crate::cli::run;
}
-- file: src/cli/mod.rs
mod out;
use crate::{adapter::create, project};
pub fn run<'a>(name: &'a str) -> char {
    out::say("write only the SELECT; xform creates the view or table around it");
    let _ = r#"a model is one SELECT statement"#;
    '"'
}
-- file: src/cli/out.rs
pub fn say(text: &str) {
    super::run(text);
}
"##,
    );
    let table = layers(TABLE);
    assert_eq!(layer_offences(&table, &src), Vec::<String>::new());
    assert_eq!(file_cycles(&src), Vec::<String>::new());
    assert_eq!(sql_offences(&src), Vec::<String>::new());
    let f = figures(&src);
    assert_eq!(
        (f.bodies.len(), f.median, f.over_30().len()),
        (6, 1.0, 0),
        "{}",
        f.summary()
    );
}
