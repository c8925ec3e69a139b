//! Property files (`*.yml` under models/, seeds/, tests/): descriptions, columns, data tests,
//! sources and unit tests, in dbt's shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::config::Config;
use super::settings::config_block;
use super::yaml::{Node, Src, to_json};
use crate::diagnostics::{Diagnostic, Diagnostics, Loc};

const TOP_KEYS: &[&str] = &[
    "version",
    "models",
    "seeds",
    "sources",
    "snapshots",
    "unit_tests",
    "macros",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "groups",
    "analyses",
    "data_tests",
];
const RESOURCE_KEYS: &[&str] = &[
    "name",
    "description",
    "config",
    "columns",
    "tests",
    "data_tests",
    "docs",
    "meta",
    "tags",
    "access",
    "constraints",
    "latest_version",
    "versions",
    "group",
    "deprecation_date",
    "relation",
];
const COLUMN_KEYS: &[&str] = &[
    "name",
    "description",
    "data_type",
    "tests",
    "data_tests",
    "meta",
    "tags",
    "quote",
    "constraints",
    "granularity",
    "policy_tags",
    "config",
];
const SOURCE_KEYS: &[&str] = &[
    "name",
    "description",
    "database",
    "schema",
    "tables",
    "loader",
    "loaded_at_field",
    "freshness",
    "config",
    "meta",
    "tags",
    "quoting",
    "overrides",
];
const TABLE_KEYS: &[&str] = &[
    "name",
    "description",
    "identifier",
    "columns",
    "tests",
    "data_tests",
    "loaded_at_field",
    "freshness",
    "external",
    "config",
    "meta",
    "tags",
    "quoting",
];
const UNIT_KEYS: &[&str] = &[
    "name",
    "model",
    "description",
    "given",
    "expect",
    "overrides",
    "config",
    "versions",
];
const GIVEN_KEYS: &[&str] = &["input", "rows", "format", "fixture"];
const EXPECT_KEYS: &[&str] = &["rows", "format", "fixture"];

/// A data test as declared: `- unique` or `- accepted_values: {values: [...]}`.
#[derive(Clone, Debug)]
pub(crate) struct TestDecl {
    pub(crate) test_name: String,
    pub(crate) args: BTreeMap<String, Json>,
    pub(crate) config: Config,
    pub(crate) at: Loc,
}

#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_type: Option<String>,
    #[serde(skip)]
    pub(crate) tests: Vec<TestDecl>,
}

/// Properties of a model or seed.
#[derive(Clone, Debug)]
pub(crate) struct ResourceProps {
    pub(crate) name: String,
    pub(crate) at: Loc,
    pub(crate) description: String,
    pub(crate) config: Config,
    pub(crate) columns: Vec<Column>,
    pub(crate) tests: Vec<TestDecl>,
    /// A snapshot declared in YAML: what it snapshots (`ref('x')` or `source('a', 'b')`).
    pub(crate) relation: Option<(String, Loc)>,
}

#[derive(Clone, Debug)]
pub(crate) struct SourceTable {
    pub(crate) source: String,
    pub(crate) name: String,
    pub(crate) at: Loc,
    pub(crate) schema: String,
    pub(crate) identifier: String,
    pub(crate) description: String,
    pub(crate) config: Config,
    pub(crate) columns: Vec<Column>,
    pub(crate) tests: Vec<TestDecl>,
}

/// A mocked input or expected output of a unit test.
#[derive(Clone, Debug)]
pub(crate) struct Fixture {
    /// `ref('x')` / `source('a', 'b')` for inputs; empty for `expect`.
    pub(crate) input: String,
    pub(crate) format: String,
    pub(crate) rows: Json,
    pub(crate) at: Loc,
}

#[derive(Clone, Debug)]
pub(crate) struct UnitTestProps {
    pub(crate) name: String,
    pub(crate) model: String,
    pub(crate) at: Loc,
    pub(crate) model_at: Loc,
    pub(crate) description: String,
    pub(crate) given: Vec<Fixture>,
    pub(crate) expect: Option<Fixture>,
    pub(crate) config: Config,
}

/// An exposure: a dashboard, report or application that reads the project's relations.
#[derive(Clone, Debug)]
pub(crate) struct Exposure {
    pub(crate) name: String,
    pub(crate) at: Loc,
    /// `dashboard`, `notebook`, `analysis`, `ml`, `application`.
    pub(crate) kind: String,
    pub(crate) label: String,
    pub(crate) description: String,
    pub(crate) url: String,
    pub(crate) maturity: String,
    /// `owner: {name, email}` as written.
    pub(crate) owner: Json,
    pub(crate) tags: Vec<String>,
    /// `ref('x')` / `source('a', 'b')` as written, with where.
    pub(crate) depends_on: Vec<(String, Loc)>,
}

#[derive(Debug, Default)]
pub(crate) struct Props {
    pub(crate) models: Vec<ResourceProps>,
    pub(crate) seeds: Vec<ResourceProps>,
    pub(crate) snapshots: Vec<ResourceProps>,
    pub(crate) sources: Vec<SourceTable>,
    pub(crate) unit_tests: Vec<UnitTestProps>,
    pub(crate) exposures: Vec<Exposure>,
}

impl Props {
    pub(crate) fn extend(&mut self, other: Props) {
        self.exposures.extend(other.exposures);
        self.models.extend(other.models);
        self.seeds.extend(other.seeds);
        self.snapshots.extend(other.snapshots);
        self.sources.extend(other.sources);
        self.unit_tests.extend(other.unit_tests);
    }
}

pub(crate) fn parse(file: &Arc<str>, text: &str, props: &mut Props, diags: &mut Diagnostics) {
    let src = Src::new(file, text);
    let root = match src.parse() {
        Ok(Some(root)) => root,
        Ok(None) => return,
        Err(d) => return diags.push(d),
    };
    for (key, knode, v) in src.fields(&root, "a property file", TOP_KEYS, diags) {
        match key {
            "version" if to_json(v) != 2 => {
                diags.push(Diagnostic::warning("property files use `version: 2`").at(src.loc(v)));
            }
            "version" => {}
            "models" => props.models.extend(resources(&src, v, "model", diags)),
            "seeds" => props.seeds.extend(resources(&src, v, "seed", diags)),
            "snapshots" => props
                .snapshots
                .extend(resources(&src, v, "snapshot", diags)),
            "sources" => props.sources.extend(sources(&src, v, diags)),
            "unit_tests" => props.unit_tests.extend(unit_tests(&src, v, diags)),
            "exposures" => props.exposures.extend(exposures(&src, v, diags)),
            // dbt's semantic layer and catalog entries: they build and test nothing.
            "semantic_models" | "metrics" | "saved_queries" | "groups" => {}
            _ => diags.push(
                Diagnostic::warning(format!(
                    "`{key}` in property files is not used yet by this xform"
                ))
                .at(src.loc(knode)),
            ),
        }
    }
}

const EXPOSURE_KEYS: &[&str] = &[
    "name",
    "label",
    "type",
    "description",
    "url",
    "maturity",
    "owner",
    "depends_on",
    "tags",
    "meta",
    "config",
];

fn exposures(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<Exposure> {
    let mut out = Vec::new();
    for item in src.seq(node, "`exposures`", diags) {
        let mut e = Exposure {
            name: String::new(),
            at: src.loc(item),
            kind: String::new(),
            label: String::new(),
            description: String::new(),
            url: String::new(),
            maturity: String::new(),
            owner: Json::Null,
            tags: Vec::new(),
            depends_on: Vec::new(),
        };
        for (key, _, v) in src.fields(item, "an exposure", EXPOSURE_KEYS, diags) {
            let field = match key {
                "name" => Some(&mut e.name),
                "label" => Some(&mut e.label),
                "type" => Some(&mut e.kind),
                "description" => Some(&mut e.description),
                "url" => Some(&mut e.url),
                "maturity" => Some(&mut e.maturity),
                _ => None,
            };
            if let Some(field) = field {
                *field = src.text(v, &format!("`{key}`"), diags).unwrap_or_default();
                continue;
            }
            match key {
                "owner" => e.owner = to_json(v),
                "tags" => e.tags = src.strings(v, "`tags`", diags),
                "depends_on" => {
                    for d in src.seq(v, "`depends_on`", diags) {
                        if let Some(t) = src.text(d, "a `depends_on` entry", diags) {
                            e.depends_on.push((t, src.loc(d)));
                        }
                    }
                }
                _ => {}
            }
        }
        if e.name.is_empty() {
            diags.push(src.err(item, "an exposure has no `name`"));
        } else {
            out.push(e);
        }
    }
    out
}

fn resources(src: &Src, node: &Node, kind: &str, diags: &mut Diagnostics) -> Vec<ResourceProps> {
    let mut out = Vec::new();
    for item in src.seq(node, &format!("`{kind}s`"), diags) {
        let what = format!("a {kind} entry");
        let r = resource(src, item, &what, diags);
        if r.name.is_empty() {
            diags.push(src.err(item, format!("{what} has no `name`")));
        } else {
            out.push(r);
        }
    }
    out
}

/// One entry of a `models:`, `seeds:` or `snapshots:` list; its name is empty if it has none.
fn resource(src: &Src, item: &Node, what: &str, diags: &mut Diagnostics) -> ResourceProps {
    let mut r = ResourceProps {
        name: String::new(),
        at: src.loc(item),
        description: String::new(),
        config: Config::default(),
        columns: Vec::new(),
        tests: Vec::new(),
        relation: None,
    };
    for (key, _, v) in src.fields(item, what, RESOURCE_KEYS, diags) {
        resource_field(src, &mut r, key, v, diags);
    }
    r
}

fn resource_field(src: &Src, r: &mut ResourceProps, key: &str, v: &Node, diags: &mut Diagnostics) {
    match key {
        "name" => {
            r.name = src.text(v, "`name`", diags).unwrap_or_default();
            r.at = src.loc(v);
        }
        "description" => r.description = src.text(v, "`description`", diags).unwrap_or_default(),
        "config" => r.config.overlay(&config_block(src, v, diags)),
        "columns" => r.columns = columns(src, v, diags),
        "tests" | "data_tests" => r.tests.extend(tests(src, v, diags)),
        "tags" | "meta" | "docs" => r.config.set(key, to_json(v), Some(src.loc(v))),
        "relation" => {
            r.relation = src
                .text(v, "`relation`", diags)
                .map(|text| (text, src.loc(v)))
        }
        _ => {}
    }
}

fn columns(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<Column> {
    let mut out = Vec::new();
    for item in src.seq(node, "`columns`", diags) {
        let c = column(src, item, diags);
        if c.name.is_empty() && super::yaml::is_map(item) {
            diags.push(src.err(item, "a column has no `name`"));
        } else {
            out.push(c);
        }
    }
    out
}

/// One entry of a `columns:` list; its name is empty if it has none.
fn column(src: &Src, item: &Node, diags: &mut Diagnostics) -> Column {
    let mut c = Column {
        name: String::new(),
        description: String::new(),
        data_type: None,
        tests: Vec::new(),
    };
    for (key, _, v) in src.fields(item, "a column", COLUMN_KEYS, diags) {
        match key {
            "name" => c.name = src.text(v, "column `name`", diags).unwrap_or_default(),
            "description" => {
                c.description = src.text(v, "`description`", diags).unwrap_or_default()
            }
            "data_type" => c.data_type = src.text(v, "`data_type`", diags),
            "tests" | "data_tests" => c.tests.extend(tests(src, v, diags)),
            _ => {}
        }
    }
    c
}

/// `- not_null`, `- accepted_values: {values: [..], config: {severity: warn}}`, or dbt 1.10's
/// `- accepted_values: {arguments: {values: [..]}}`.
fn tests(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<TestDecl> {
    let mut out = Vec::new();
    for item in src.seq(node, "`data_tests`", diags) {
        if let Some(t) = test_decl(src, item, diags) {
            out.push(t);
        }
    }
    out
}

/// One data test: a bare name, or a mapping of the name to its arguments and config.
fn test_decl(src: &Src, item: &Node, diags: &mut Diagnostics) -> Option<TestDecl> {
    if let Json::String(name) = to_json(item) {
        return Some(bare_test(name, src.loc(item)));
    }
    let entries = src.map(item, "a data test", diags);
    let [(name, _, body)] = entries.as_slice() else {
        if super::yaml::is_map(item) {
            diags.push(
                src.err(
                    item,
                    "a data test is a name or a mapping with one key, the test's name",
                )
                .help("e.g. `- accepted_values: {values: ['a', 'b']}`"),
            );
        }
        return None;
    };
    let mut t = bare_test(name.to_string(), src.loc(item));
    for (key, knode, v) in src.map(body, &format!("test `{name}`"), diags) {
        test_field(src, &mut t, key, knode, v, diags);
    }
    Some(t)
}

fn bare_test(test_name: String, at: Loc) -> TestDecl {
    TestDecl {
        test_name,
        args: BTreeMap::new(),
        config: Config::default(),
        at,
    }
}

/// One key of a data test's mapping: its config, its arguments, or a config key or argument
/// written directly.
fn test_field(
    src: &Src,
    t: &mut TestDecl,
    key: &str,
    knode: &Node,
    v: &Node,
    diags: &mut Diagnostics,
) {
    match key {
        "config" => t.config.overlay(&config_block(src, v, diags)),
        "arguments" => t.args.extend(
            src.map(v, "`arguments`", diags)
                .into_iter()
                .map(|(k, _, a)| (k.to_string(), to_json(a))),
        ),
        "severity" | "where" | "limit" | "warn_if" | "error_if" | "store_failures" | "tags"
        | "enabled" => t.config.set(key, to_json(v), Some(src.loc(v))),
        "name" => t.config.set("name", to_json(v), Some(src.loc(knode))),
        _ => {
            t.args.insert(key.to_string(), to_json(v));
        }
    }
}

fn sources(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<SourceTable> {
    let mut out = Vec::new();
    for item in src.seq(node, "`sources`", diags) {
        out.extend(source(src, item, diags));
    }
    out
}

/// The tables of one entry of `sources:`, each with the source's schema and config.
fn source(src: &Src, item: &Node, diags: &mut Diagnostics) -> Vec<SourceTable> {
    let (mut name, mut schema, mut config, mut tables) =
        (String::new(), None, Config::default(), None);
    for (key, _, v) in src.fields(item, "a source", SOURCE_KEYS, diags) {
        match key {
            "name" => name = src.text(v, "source `name`", diags).unwrap_or_default(),
            "schema" => schema = src.text(v, "`schema`", diags),
            "config" => config.overlay(&config_block(src, v, diags)),
            "loaded_at_field" | "freshness" | "tags" | "meta" => {
                config.set(key, to_json(v), Some(src.loc(v)))
            }
            "tables" => tables = Some(v),
            _ => {}
        }
    }
    if name.is_empty() {
        diags.push(src.err(item, "a source has no `name`"));
        return Vec::new();
    }
    let schema = schema.unwrap_or_else(|| name.clone());
    let tables = tables.map_or(&[][..], |t| src.seq(t, "`tables`", diags));
    tables
        .iter()
        .filter_map(|t| source_table(src, t, &name, &schema, &config, diags))
        .collect()
}

fn source_table(
    src: &Src,
    node: &Node,
    source: &str,
    schema: &str,
    parent: &Config,
    diags: &mut Diagnostics,
) -> Option<SourceTable> {
    let mut t = SourceTable {
        source: source.to_string(),
        name: String::new(),
        at: src.loc(node),
        schema: schema.to_string(),
        identifier: String::new(),
        description: String::new(),
        config: parent.clone(),
        columns: Vec::new(),
        tests: Vec::new(),
    };
    for (key, _, v) in src.fields(node, "a source table", TABLE_KEYS, diags) {
        source_table_field(src, &mut t, key, v, diags);
    }
    if t.name.is_empty() {
        diags.push(src.err(node, format!("a table of source `{source}` has no `name`")));
        return None;
    }
    if t.identifier.is_empty() {
        t.identifier = t.name.clone();
    }
    Some(t)
}

/// One key of a source table; keys xform does not read are kept in its config.
fn source_table_field(
    src: &Src,
    t: &mut SourceTable,
    key: &str,
    v: &Node,
    diags: &mut Diagnostics,
) {
    match key {
        "name" => {
            t.name = src.text(v, "table `name`", diags).unwrap_or_default();
            t.at = src.loc(v);
        }
        "identifier" => t.identifier = src.text(v, "`identifier`", diags).unwrap_or_default(),
        "description" => t.description = src.text(v, "`description`", diags).unwrap_or_default(),
        "columns" => t.columns = columns(src, v, diags),
        "tests" | "data_tests" => t.tests.extend(tests(src, v, diags)),
        "config" => t.config.overlay(&config_block(src, v, diags)),
        _ => t.config.set(key, to_json(v), Some(src.loc(v))),
    }
}

fn unit_tests(src: &Src, node: &Node, diags: &mut Diagnostics) -> Vec<UnitTestProps> {
    let mut out = Vec::new();
    for item in src.seq(node, "`unit_tests`", diags) {
        let u = unit_test(src, item, diags);
        if is_complete(src, item, &u, diags) {
            out.push(u);
        }
    }
    out
}

/// One entry of `unit_tests:`, as written.
fn unit_test(src: &Src, item: &Node, diags: &mut Diagnostics) -> UnitTestProps {
    let mut u = UnitTestProps {
        name: String::new(),
        model: String::new(),
        at: src.loc(item),
        model_at: src.loc(item),
        description: String::new(),
        given: Vec::new(),
        expect: None,
        config: Config::default(),
    };
    for (key, _, v) in src.fields(item, "a unit test", UNIT_KEYS, diags) {
        unit_test_field(src, &mut u, key, v, diags);
    }
    u
}

fn unit_test_field(src: &Src, u: &mut UnitTestProps, key: &str, v: &Node, diags: &mut Diagnostics) {
    match key {
        "name" => {
            u.name = src.text(v, "unit test `name`", diags).unwrap_or_default();
            u.at = src.loc(v);
        }
        "model" => {
            u.model = src.text(v, "`model`", diags).unwrap_or_default();
            u.model_at = src.loc(v);
        }
        "description" => u.description = src.text(v, "`description`", diags).unwrap_or_default(),
        "given" => {
            u.given = src
                .seq(v, "`given`", diags)
                .iter()
                .filter_map(|g| fixture(src, g, GIVEN_KEYS, diags))
                .collect()
        }
        "expect" => u.expect = fixture(src, v, EXPECT_KEYS, diags),
        "config" => u.config = config_block(src, v, diags),
        _ => {}
    }
}

/// Reports each of `name`, `model` and `expect` a unit test lacks; whether it has them all.
fn is_complete(src: &Src, item: &Node, u: &UnitTestProps, diags: &mut Diagnostics) -> bool {
    let problems = [
        (u.name.is_empty(), "a unit test has no `name`"),
        (u.model.is_empty(), "a unit test has no `model`"),
        (u.expect.is_none(), "a unit test has no `expect`"),
    ];
    let before = diags.error_count();
    for (_, msg) in problems.iter().filter(|(bad, _)| *bad) {
        diags.push(
            src.err(item, *msg)
                .help("a unit test needs `name`, `model`, `given` and `expect`"),
        );
    }
    diags.error_count() == before
}

fn fixture(src: &Src, node: &Node, known: &[&str], diags: &mut Diagnostics) -> Option<Fixture> {
    let before = diags.error_count();
    let mut f = Fixture {
        input: String::new(),
        format: "dict".into(),
        rows: Json::Null,
        at: src.loc(node),
    };
    for (key, _, v) in src.fields(node, "a unit test fixture", known, diags) {
        match key {
            "input" => f.input = src.text(v, "`input`", diags).unwrap_or_default(),
            "format" => f.format = src.text(v, "`format`", diags).unwrap_or_default(),
            "rows" => f.rows = to_json(v),
            "fixture" => {
                diags.push(src.err(v, "fixture files are not supported; write the rows inline"))
            }
            _ => {}
        }
    }
    check_rows(src, node, &f, diags);
    if known.contains(&"input") && f.input.is_empty() {
        diags.push(
            src.err(node, "a `given` entry has no `input`")
                .help("e.g. `input: ref('orders')`"),
        );
    }
    (diags.error_count() == before).then_some(f)
}

/// Reports `rows` that do not fit the fixture's format.
fn check_rows(src: &Src, node: &Node, f: &Fixture, diags: &mut Diagnostics) {
    if rows_fit_format(src, node, f, diags) {
        return;
    }
    diags.push(
        src.err(node, format!("malformed `rows` for format `{}`", f.format))
            .help(rows_help(&f.format)),
    );
}

/// What `rows` looks like in a fixture of `format`.
fn rows_help(format: &str) -> &'static str {
    if format == "dict" {
        "`rows` is a list of mappings, e.g. `- {id: 1, name: 'a'}`"
    } else {
        "`rows` is a block string"
    }
}

/// Whether `rows` has the shape its format needs; an unknown format is reported instead.
fn rows_fit_format(src: &Src, node: &Node, f: &Fixture, diags: &mut Diagnostics) -> bool {
    match (f.format.as_str(), &f.rows) {
        ("dict", Json::Array(rows)) => rows.iter().all(Json::is_object),
        ("csv" | "sql", Json::String(_)) => true,
        ("dict" | "csv" | "sql", _) => false,
        (other, _) => {
            diags.push(
                src.err(node, format!("unknown fixture format `{other}`"))
                    .help("use `dict`, `csv` or `sql`"),
            );
            true
        }
    }
}
