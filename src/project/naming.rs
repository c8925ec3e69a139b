//! The naming standard `xform lint` checks names against: project.yml's `naming:` rules and
//! the glossary of standard words (`glossary.csv`: word, abbreviation, meaning — the
//! dictionary of approved terms a data team keeps, in Korean or English).

use std::path::Path;
use std::sync::Arc;

use super::yaml::{Node, Src, to_json};
use crate::diagnostics::{Diagnostic, Diagnostics, Files, Loc, Severity};

const KEYS: &[&str] = &[
    "glossary",
    "encoding",
    "case",
    "separator",
    "suffixes",
    "allowed",
    "max_length",
    "models",
    "severity",
    "on_compile",
];

/// How names must be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    /// `cust_nm`: lower-case words.
    Snake,
    /// `CUST_NM`: upper-case words.
    Upper,
}

/// One standard word: `고객, cust, customer`.
#[derive(Clone, Debug)]
pub(crate) struct Term {
    pub(crate) word: String,
    pub(crate) abbreviation: String,
    pub(crate) meaning: String,
}

/// `naming:` as declared, with its glossary read.
#[derive(Clone, Debug)]
pub(crate) struct Naming {
    pub(crate) at: Loc,
    pub(crate) case: Case,
    pub(crate) separator: String,
    /// Class words a column must end with (`dt`, `amt`, `cnt`), without the separator.
    pub(crate) suffixes: Vec<String>,
    /// Words allowed besides the glossary's abbreviations.
    pub(crate) allowed: Vec<String>,
    pub(crate) max_length: Option<usize>,
    /// Model names are checked too (the default).
    pub(crate) models: bool,
    pub(crate) severity: Severity,
    /// `xform compile` checks names too.
    pub(crate) on_compile: bool,
    pub(crate) glossary: Vec<Term>,
    glossary_path: Option<(String, Loc)>,
    encoding: String,
}

/// Reads `naming:` (the glossary is read later, by [`read_glossary`]).
pub(super) fn parse(src: &Src, node: &Node, diags: &mut Diagnostics) -> Naming {
    let mut n = Naming {
        at: src.loc(node),
        case: Case::Snake,
        separator: "_".into(),
        suffixes: Vec::new(),
        allowed: Vec::new(),
        max_length: None,
        models: true,
        severity: Severity::Warning,
        on_compile: false,
        glossary: Vec::new(),
        glossary_path: None,
        encoding: "utf-8".into(),
    };
    for (key, _, v) in src.fields(node, "`naming`", KEYS, diags) {
        set(&mut n, src, (key, v), diags);
    }
    n
}

fn set(n: &mut Naming, src: &Src, (key, v): (&str, &Node), diags: &mut Diagnostics) {
    let what = format!("`naming.{key}`");
    let bad = |help: &str| {
        src.err(v, format!("{what} is not valid"))
            .help(help.to_string())
    };
    match key {
        "glossary" => n.glossary_path = src.text(v, &what, diags).map(|p| (p, src.loc(v))),
        "encoding" => n.encoding = src.text(v, &what, diags).unwrap_or_default(),
        "separator" => n.separator = src.text(v, &what, diags).unwrap_or_else(|| "_".into()),
        "suffixes" | "allowed" => {
            let words = src.strings(v, &what, diags).into_iter();
            let words = words.map(|w| w.trim_start_matches(['_', '-']).to_lowercase());
            match key {
                "suffixes" => n.suffixes = words.collect(),
                _ => n.allowed = words.collect(),
            }
        }
        "case" => match src.text(v, &what, diags).as_deref() {
            Some("snake_case" | "snake" | "lower") => n.case = Case::Snake,
            Some("upper" | "upper_snake_case" | "UPPER_SNAKE_CASE") => n.case = Case::Upper,
            Some(_) => diags.push(bad("use `snake_case` (cust_nm) or `upper` (CUST_NM)")),
            None => {}
        },
        "max_length" => match to_json(v).as_u64() {
            Some(len) if len > 0 => n.max_length = Some(len as usize),
            _ => diags.push(bad("a number of characters, e.g. `max_length: 30`")),
        },
        "models" | "on_compile" => match to_json(v).as_bool() {
            Some(b) if key == "models" => n.models = b,
            Some(b) => n.on_compile = b,
            None => diags.push(bad("true or false")),
        },
        "severity" => match src.text(v, &what, diags).as_deref() {
            Some("warn" | "warning") => n.severity = Severity::Warning,
            Some("error") => n.severity = Severity::Error,
            _ => diags.push(bad("`warn` or `error`")),
        },
        _ => {}
    }
}

/// Reads the glossary into `n`: a CSV with a header, whose columns are found by name (`word`
/// or `표준단어명`, `abbreviation` or `영문약어명`, `meaning` or `설명`), else taken in that
/// order. A missing or broken file is an error at `glossary:`'s line or the file's.
pub(super) fn read_glossary(
    root: &Path,
    n: &mut Naming,
    (files, diags): (&mut Files, &mut Diagnostics),
) {
    let Some((path, at)) = n.glossary_path.clone() else {
        return;
    };
    let Some(encoding) = super::encoding(&n.encoding) else {
        let d = Diagnostic::error(format!(
            "`naming.encoding`: `{}` is not an encoding xform knows",
            n.encoding
        ));
        return diags.push(d.at(n.at.clone()).help("utf-8 (the default) or cp949"));
    };
    let text = match super::read_encoded(&root.join(&path), encoding) {
        Ok(text) => text,
        Err((line, msg)) => {
            let d = Diagnostic::error(format!("glossary `{path}`: {msg} (line {line})"));
            return diags.push(
                d.at(at)
                    .help("is `naming.encoding` right? cp949 for a Korean spreadsheet's CSV"),
            );
        }
    };
    let file: Arc<str> = Arc::from(path.as_str());
    files.insert(&file, &Arc::from(text.as_str()));
    n.glossary = terms(&file, &text, diags);
}

/// The glossary's terms; a row without an abbreviation is an error at its line.
fn terms(file: &Arc<str>, text: &str, diags: &mut Diagnostics) -> Vec<Term> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map(|h| h.iter().map(|c| c.trim().to_lowercase()).collect())
        .unwrap_or_default();
    let find = |names: &[&str], default: usize| {
        header
            .iter()
            .position(|h| names.contains(&h.as_str()))
            .unwrap_or(default)
    };
    let word = find(
        &["word", "standard_word", "표준단어명", "표준단어", "단어명"],
        0,
    );
    let abbr = find(
        &["abbreviation", "abbr", "영문약어명", "영문약어", "약어"],
        1,
    );
    let meaning = find(
        &[
            "meaning",
            "description",
            "english",
            "영문명",
            "설명",
            "의미",
        ],
        2,
    );
    let mut out = Vec::new();
    for record in reader.records() {
        let Ok(r) = record else { continue };
        let cell = |k: usize| r.get(k).unwrap_or("").trim().to_string();
        let line = r.position().map_or(0, |p| p.line() as usize);
        if cell(abbr).is_empty() {
            let at = line_loc(file, text, line);
            diags.push(Diagnostic::error("a glossary row without an abbreviation").at(at));
            continue;
        }
        out.push(Term {
            word: cell(word),
            abbreviation: cell(abbr).to_lowercase(),
            meaning: cell(meaning),
        });
    }
    out
}

/// Line `line` (1-based) of `text` as a place.
fn line_loc(file: &Arc<str>, text: &str, line: usize) -> Loc {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let len = text[start.min(text.len())..]
        .find('\n')
        .unwrap_or(text.len() - start.min(text.len()));
    Loc::new(file, start..start + len)
}
