//! Findings about the user's project, and how they are shown.
//!
//! A mistake in a project is a [`Diagnostic`]: a severity, a message, where it is (a file of
//! the project and a byte span in it), a help line and related places ("called from ...").
//! Every stage collects diagnostics into a [`Diagnostics`] list instead of stopping at the first,
//! so one run reports every mistake. [`Files`] keeps the text of every file a diagnostic may
//! point into; [`render`] draws them rustc-style with annotate-snippets. Nothing here prints.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Warning,
    Error,
}

/// A place in a project file: its path relative to the project root and a byte span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) file: Arc<str>,
    pub(crate) span: Range<usize>,
}

impl Loc {
    pub(crate) fn new(file: &Arc<str>, span: Range<usize>) -> Loc {
        Loc {
            file: file.clone(),
            span,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) message: String,
    pub(crate) loc: Option<Loc>,
    /// A short label under the caret.
    pub(crate) label: Option<String>,
    pub(crate) help: Option<String>,
    /// Other places that explain this one, e.g. the macro call chain, outermost last.
    pub(crate) related: Vec<(Loc, String)>,
}

impl Diagnostic {
    pub(crate) fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            loc: None,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub(crate) fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub(crate) fn at(mut self, loc: Loc) -> Diagnostic {
        self.loc = Some(loc);
        self
    }

    pub(crate) fn at_opt(mut self, loc: Option<Loc>) -> Diagnostic {
        self.loc = loc;
        self
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    pub(crate) fn related(mut self, loc: Loc, note: impl Into<String>) -> Diagnostic {
        self.related.push((loc, note.into()));
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The findings of one run, in the order they were made.
#[derive(Default, Debug)]
pub(crate) struct Diagnostics(Vec<Diagnostic>);

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub(crate) fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(ds);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// Errors first, then by file and position, so the output reads like a compiler's.
    pub(crate) fn sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by_key(sort_key);
        self.0
    }
}

/// Errors before warnings, then by file and position.
fn sort_key(d: &Diagnostic) -> (std::cmp::Reverse<Severity>, Option<(Arc<str>, usize)>) {
    let loc = d.loc.as_ref().map(|l| (l.file.clone(), l.span.start));
    (std::cmp::Reverse(d.severity), loc)
}

/// The text of every project file a diagnostic may point into, by relative path.
#[derive(Default, Debug)]
pub(crate) struct Files(HashMap<Arc<str>, Arc<str>>);

impl Files {
    pub(crate) fn insert(&mut self, path: &Arc<str>, text: &Arc<str>) {
        self.0.insert(path.clone(), text.clone());
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Arc<str>> {
        self.0.get(path)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, loc: &Loc) -> (usize, usize) {
        self.get(&loc.file)
            .map_or((1, 1), |text| line_col(text, loc.span.start))
    }
}

pub(crate) fn line_span(text: &str, line: usize) -> Range<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[start.min(text.len())..];
    let len = rest.find('\n').unwrap_or(rest.len());
    let len = rest[..len].trim_end_matches('\r').len();
    start..start + len
}

pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Byte offset of a 1-based line and 0-based character column.
pub(crate) fn offset_of(text: &str, line: usize, char_col: usize) -> usize {
    let span = line_span(text, line);
    let line_text = &text[span.clone()];
    let within = line_text
        .char_indices()
        .nth(char_col)
        .map_or(line_text.len(), |(i, _)| i);
    span.start + within
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Draws diagnostics like rustc does. `color` adds ANSI styles.
pub(crate) fn render(diagnostics: &[Diagnostic], files: &Files, color: bool) -> String {
    let renderer = renderer(color);
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&renderer.render(&report(d, files)));
        out.push_str("\n\n");
    }
    out
}

fn renderer(color: bool) -> Renderer {
    if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
}

fn report<'a>(d: &'a Diagnostic, files: &'a Files) -> Vec<Group<'a>> {
    let mut group = Group::with_title(level(d.severity).primary_title(d.message.as_str()));
    if let Some(loc) = &d.loc {
        group = group.element(snippet(
            loc,
            files,
            AnnotationKind::Primary,
            d.label.as_deref(),
        ));
    }
    for (loc, note) in &d.related {
        group = group.element(snippet(loc, files, AnnotationKind::Context, Some(note)));
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    vec![group]
}

fn level(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    }
}

fn snippet<'a>(
    loc: &'a Loc,
    files: &'a Files,
    kind: AnnotationKind,
    label: Option<&'a str>,
) -> Snippet<'a, annotate_snippets::Annotation<'a>> {
    let text: &str = files.get(&loc.file).map_or("", |t| t);
    let start = floor_char_boundary(text, loc.span.start);
    let end = floor_char_boundary(text, loc.span.end.max(start));
    let mut annotation = kind.span(start..end);
    if let Some(label) = label {
        annotation = annotation.label(label);
    }
    Snippet::source(text)
        .path(&*loc.file)
        .fold(true)
        .annotation(annotation)
}

/// The closest of `candidates` to `name`, for "did you mean" hints.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or None.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}
