//! Reading YAML with positions: the typed access that project.yml and property files need.
//!
//! saphyr gives a tree whose nodes carry line/column spans; this module turns those into
//! byte-span [`Loc`]s and offers small checked accessors (a mapping with known keys, a string,
//! a list) that record a diagnostic for every wrong type or unknown key instead of stopping.
//! It knows nothing about what the keys mean.

use std::sync::Arc;

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::{Event, Marker, Parser, ScanError, Span, SpannedEventReceiver};
use serde_json::Value as Json;

use crate::diagnostics::{Diagnostic, Diagnostics, Loc, did_you_mean};

pub(crate) type Node<'t> = MarkedYaml<'t>;

/// How deep mappings and lists may nest (saphyr stops flow-style nesting at 255 by itself).
pub(crate) const MAX_DEPTH: usize = 200;

/// saphyr's loader, given the parser's events only while the nesting stays within
/// [`MAX_DEPTH`]; past it the place is remembered and loading stops.
struct Bounded<'t> {
    loader: YamlLoader<'t, Node<'t>>,
    depth: usize,
    too_deep: Option<Marker>,
}

impl<'t> SpannedEventReceiver<'t> for Bounded<'t> {
    fn on_event(&mut self, ev: Event<'t>, span: Span) {
        if self.too_deep.is_some() {
            return;
        }
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    self.too_deep = Some(span.start);
                    return;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.loader.on_event(ev, span);
    }
}

/// One YAML file being read: where diagnostics point.
pub(crate) struct Src<'t> {
    pub(crate) file: Arc<str>,
    pub(crate) text: &'t str,
    /// Byte offset where each line starts.
    lines: Vec<usize>,
}

impl<'t> Src<'t> {
    pub(crate) fn new(file: &Arc<str>, text: &'t str) -> Src<'t> {
        let lines = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Src {
            file: file.clone(),
            text,
            lines,
        }
    }

    /// Byte offset of a 1-based line and 0-based character column.
    fn offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.lines.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i)
    }

    /// Parses the first document; an empty file is `None`. Nesting deeper than
    /// [`MAX_DEPTH`] is an error at the line where it goes too deep (deeper trees would
    /// exhaust the stack of whatever walks them).
    pub(crate) fn parse(&self) -> Result<Option<Node<'t>>, Diagnostic> {
        let (bounded, error) = self.load_bounded();
        if let Some(at) = bounded.too_deep {
            return Err(self.too_deep(at));
        }
        if let Some(e) = error {
            return Err(self.invalid_yaml(&e));
        }
        let mut docs = bounded.loader.into_documents();
        Ok((!docs.is_empty()).then(|| docs.swap_remove(0)))
    }

    /// The parser's events fed to a [`Bounded`] loader until the first error or too deep a
    /// nesting; the error, if any.
    fn load_bounded(&self) -> (Bounded<'t>, Option<ScanError>) {
        let mut bounded = Bounded {
            loader: YamlLoader::default(),
            depth: 0,
            too_deep: None,
        };
        // Events one by one: saphyr's own `load` recurses once per level of nesting.
        let mut error = None;
        for event in Parser::new_from_str(self.text) {
            match event {
                Ok((ev, span)) => bounded.on_event(ev, span),
                Err(e) => error = Some(e),
            }
            if error.is_some() || bounded.too_deep.is_some() {
                break;
            }
        }
        let error = error.or_else(|| bounded.loader.error().cloned());
        (bounded, error)
    }

    fn too_deep(&self, at: Marker) -> Diagnostic {
        let at = self.offset(at.line(), at.col());
        Diagnostic::error(format!("YAML nested more than {MAX_DEPTH} levels deep"))
            .at(Loc::new(&self.file, at..at))
            .help("flatten the structure: no project or property file needs this depth")
    }

    /// A syntax error, pointing at the character where the parser stopped.
    fn invalid_yaml(&self, e: &ScanError) -> Diagnostic {
        let m = e.marker();
        let at = self.offset(m.line(), m.col());
        let end = self.char_end(at);
        Diagnostic::error(format!("invalid YAML: {}", e.info()))
            .at(Loc::new(&self.file, at..end))
            .help("check the indentation and quoting on this line")
    }

    /// Where the character at byte `at` ends (`at` itself at the end of the text).
    fn char_end(&self, at: usize) -> usize {
        self.text[at..]
            .chars()
            .next()
            .map_or(at, |c| at + c.len_utf8())
    }

    pub(crate) fn loc(&self, node: &Node) -> Loc {
        let (s, e) = (node.span.start, node.span.end);
        let start = self.offset(s.line(), s.col());
        let mut end = self.offset(e.line(), e.col());
        if end <= start || e.line() != s.line() {
            end = self.text[start..]
                .find('\n')
                .map_or(self.text.len(), |n| start + n);
        }
        Loc::new(&self.file, start..end.max(start))
    }

    pub(crate) fn err(&self, node: &Node, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message).at(self.loc(node))
    }

    /// The entries of a mapping node; anything else is reported as `what` of the wrong type.
    pub(crate) fn map<'n>(
        &self,
        node: &'n Node<'t>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Vec<(&'n str, &'n Node<'t>, &'n Node<'t>)> {
        match &node.data {
            YamlData::Mapping(m) => m
                .iter()
                .filter_map(|(k, v)| match scalar_str(k) {
                    Some(key) => Some((key, k, v)),
                    None => {
                        diags.push(self.err(k, format!("{what}: keys must be strings")));
                        None
                    }
                })
                .collect(),
            _ if is_null(node) => Vec::new(),
            _ => {
                diags.push(self.type_error(node, what, "a mapping"));
                Vec::new()
            }
        }
    }

    /// Like [`Src::map`], warning about keys not in `known`.
    pub(crate) fn fields<'n>(
        &self,
        node: &'n Node<'t>,
        what: &str,
        known: &[&str],
        diags: &mut Diagnostics,
    ) -> Vec<(&'n str, &'n Node<'t>, &'n Node<'t>)> {
        let entries = self.map(node, what, diags);
        for (key, knode, _) in &entries {
            if !known.contains(key) {
                diags.push(self.unknown_key(key, knode, what, known));
            }
        }
        entries
    }

    fn unknown_key(&self, key: &str, knode: &Node, what: &str, known: &[&str]) -> Diagnostic {
        Diagnostic::warning(format!("unknown key `{key}` in {what} (ignored)"))
            .at(self.loc(knode))
            .help_opt(did_you_mean(key, known.iter().copied()))
    }

    pub(crate) fn seq<'n>(
        &self,
        node: &'n Node<'t>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> &'n [Node<'t>] {
        match &node.data {
            YamlData::Sequence(items) => items,
            _ if is_null(node) => &[],
            _ => {
                diags.push(self.type_error(node, what, "a list"));
                &[]
            }
        }
    }

    /// A string, or a scalar number/bool written where text was meant (`schema: 2023`).
    pub(crate) fn text(
        &self,
        node: &Node<'t>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        match scalar(node) {
            Some(Scalar::String(s)) => Some(s.to_string()),
            Some(Scalar::Integer(i)) => Some(i.to_string()),
            Some(Scalar::FloatingPoint(f)) => Some(f.to_string()),
            Some(Scalar::Boolean(b)) => Some(b.to_string()),
            _ => {
                diags.push(self.type_error(node, what, "a string"));
                None
            }
        }
    }

    /// A string or a list of strings (`tags: nightly` or `tags: [a, b]`).
    pub(crate) fn strings(
        &self,
        node: &Node<'t>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Vec<String> {
        match &node.data {
            YamlData::Sequence(items) => items
                .iter()
                .filter_map(|i| self.text(i, what, diags))
                .collect(),
            _ => self.text(node, what, diags).into_iter().collect(),
        }
    }

    fn type_error(&self, node: &Node, what: &str, expected: &str) -> Diagnostic {
        self.err(
            node,
            format!("{what} must be {expected}, found {}", kind_name(node)),
        )
        .label(format!("expected {expected}"))
    }
}

fn scalar<'a, 't>(node: &'a Node<'t>) -> Option<&'a Scalar<'t>> {
    match &node.data {
        YamlData::Value(s) => Some(s),
        YamlData::Tagged(_, inner) => scalar(inner),
        _ => None,
    }
}

fn scalar_str<'a>(node: &'a Node) -> Option<&'a str> {
    match scalar(node) {
        Some(Scalar::String(s)) => Some(s),
        _ => None,
    }
}

pub(crate) fn is_null(node: &Node) -> bool {
    matches!(scalar(node), Some(Scalar::Null))
}

pub(crate) fn is_map(node: &Node) -> bool {
    matches!(node.data, YamlData::Mapping(_))
}

fn kind_name(node: &Node) -> &'static str {
    match &node.data {
        YamlData::Mapping(_) => "a mapping",
        YamlData::Sequence(_) => "a list",
        _ => scalar_kind_name(scalar(node)),
    }
}

fn scalar_kind_name(s: Option<&Scalar>) -> &'static str {
    match s {
        Some(Scalar::Null) => "nothing (null)",
        Some(Scalar::Boolean(_)) => "a boolean",
        Some(Scalar::Integer(_)) | Some(Scalar::FloatingPoint(_)) => "a number",
        Some(Scalar::String(_)) => "a string",
        None => "an unsupported value",
    }
}

/// Any YAML node as JSON (config values, vars, test arguments).
pub(crate) fn to_json(node: &Node) -> Json {
    match &node.data {
        YamlData::Mapping(m) => mapping_json(m),
        YamlData::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        YamlData::Tagged(_, inner) => to_json(inner),
        YamlData::Value(s) => scalar_json(s),
        YamlData::Representation(raw, _, _) => Json::String(raw.to_string()),
        _ => Json::Null,
    }
}

/// A mapping as a JSON object, its keys as text.
fn mapping_json(m: &saphyr::AnnotatedMapping<Node<'_>>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (scalar_text(k).unwrap_or_default(), to_json(v)))
            .collect(),
    )
}

fn scalar_json(s: &Scalar) -> Json {
    match s {
        Scalar::Null => Json::Null,
        Scalar::Boolean(b) => Json::Bool(*b),
        Scalar::Integer(i) => Json::from(*i),
        Scalar::FloatingPoint(f) => {
            serde_json::Number::from_f64(f.0).map_or(Json::Null, Json::Number)
        }
        Scalar::String(s) => Json::String(s.to_string()),
    }
}

fn scalar_text(node: &Node) -> Option<String> {
    match to_json(node) {
        Json::String(s) => Some(s),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}
