//! Node configuration: the `+key: value` settings that cascade from project.yml folders down
//! to property files and `config()` calls, each remembering where it was set.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::diagnostics::Loc;

/// Config keys xform applies (or keeps for selectors and the manifest: `tags`, `meta`, ...).
pub(crate) const APPLIED_KEYS: &[&str] = &[
    "access",
    "alias",
    "audit",
    "backup",
    "batch_size",
    "begin",
    "bind",
    "check_cols",
    "column_types",
    "concurrent_batches",
    "contract",
    "delimiter",
    "dist",
    "docs",
    "enabled",
    "encoding",
    "error_if",
    "event_time",
    "external_location",
    "fail_calc",
    "freshness",
    "full_refresh",
    "grants",
    "group",
    "hard_deletes",
    "header",
    "hive_partitioning",
    "incremental_predicates",
    "incremental_strategy",
    "indexes",
    "invalidate_hard_deletes",
    "limit",
    "loaded_at_field",
    "lookback",
    "materialized",
    "merge_exclude_columns",
    "merge_update_columns",
    "meta",
    "on_schema_change",
    "persist_docs",
    "post_hook",
    "pre_hook",
    "predicates",
    "quote",
    "quote_columns",
    "schema",
    "severity",
    "snapshot_meta_column_names",
    "sort",
    "sort_type",
    "sql_check",
    "sql_header",
    "store_failures",
    "store_failures_as",
    "strategy",
    "tags",
    "target_schema",
    "unique_key",
    "updated_at",
    "warn_if",
    "where",
];

/// Config keys of a relation's physical layout, applied where the warehouse has one
/// (`Dialect::layout_keys`) and warned of elsewhere.
pub(crate) const LAYOUT_KEYS: &[&str] = &[
    "dist",
    "sort",
    "sort_type",
    "backup",
    "bind",
    "indexes",
    "partition_by",
    "file_format",
];

/// Config keys of dbt's that xform accepts but does not apply yet: a project that sets one is
/// warned, once per key, where it first sets it.
pub(crate) const NOT_APPLIED_KEYS: &[&str] = &["cluster_by", "database"];

/// Every config key xform knows.
pub(crate) fn is_known_key(key: &str) -> bool {
    APPLIED_KEYS.contains(&key) || NOT_APPLIED_KEYS.contains(&key)
}

/// Every config key xform knows, for suggestions.
pub(crate) fn known_keys() -> impl Iterator<Item = &'static str> {
    APPLIED_KEYS.iter().chain(NOT_APPLIED_KEYS).copied()
}

/// Materializations a model may have.
pub(crate) const MODEL_MATERIALIZATIONS: &[&str] = &["view", "table", "incremental", "ephemeral"];

#[derive(Clone, Debug)]
pub(crate) struct Setting {
    pub(crate) value: Json,
    pub(crate) at: Option<Loc>,
}

#[derive(Clone, Debug, Default)]
/// Settings in the order first set. A few keys per node: a vector is smaller and faster
/// than a map here (tens of thousands of nodes each carry one).
pub(crate) struct Config(Vec<(String, Setting)>);

/// Privileges and their grantees (`{select: [a, b], usage: c}`); anything else grants nothing.
pub(crate) fn grant_list(value: &Json) -> Vec<(String, Vec<String>)> {
    let Json::Object(map) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(privilege, who)| {
            let grantees = match who {
                Json::Array(a) => a
                    .iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect(),
                Json::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            (privilege.clone(), grantees)
        })
        .collect()
}

/// `pre-hook` and `pre_hook` are the same key, as in dbt.
pub(crate) fn normalize_key(key: &str) -> String {
    key.trim_start_matches('+').replace('-', "_")
}

impl Config {
    /// Sets `key`; `tags` accumulate, `meta` merges, and hooks append (a folder's run
    /// before the model's own), as dbt users expect.
    pub(crate) fn set(&mut self, key: &str, value: Json, at: Option<Loc>) {
        let key = normalize_key(key);
        let merged = match (key.as_str(), self.setting(&key).map(|s| &s.value)) {
            ("tags", Some(old)) => merge_tags(old, &value),
            ("pre_hook" | "post_hook", Some(old)) => {
                let list = |v: &Json| match v {
                    Json::Array(items) => items.clone(),
                    Json::Null => Vec::new(),
                    one => vec![one.clone()],
                };
                Json::Array([list(old), list(&value)].concat())
            }
            ("meta", Some(Json::Object(old))) => match value {
                Json::Object(new) => {
                    let mut m = old.clone();
                    m.extend(new);
                    Json::Object(m)
                }
                other => other,
            },
            _ => value,
        };
        let setting = Setting { value: merged, at };
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) => *s = setting,
            None => self.0.push((key, setting)),
        }
    }

    /// Applies every setting of `other` on top of this one.
    pub(crate) fn overlay(&mut self, other: &Config) {
        for (k, s) in &other.0 {
            self.set(k, s.value.clone(), s.at.clone());
        }
    }

    fn setting(&self, key: &str) -> Option<&Setting> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        self.setting(key).map(|s| &s.value)
    }

    /// A hook setting's statements (`pre_hook`, `post_hook`): a string, a list of strings, or
    /// dbt's `{sql: ...}` forms.
    pub(crate) fn hooks(&self, key: &str) -> Vec<String> {
        fn sql(v: &Json) -> Option<String> {
            match v {
                Json::String(s) => Some(s.clone()),
                Json::Object(o) => o.get("sql").and_then(Json::as_str).map(str::to_string),
                _ => None,
            }
        }
        match self.get(key) {
            Some(Json::Array(items)) => items.iter().filter_map(sql).collect(),
            Some(v) => sql(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// `grants: {select: [a, b]}`: each privilege with its grantees (one grantee may be
    /// given as a string); None when the key is not set.
    pub(crate) fn grants(&self) -> Option<Vec<(String, Vec<String>)>> {
        Some(grant_list(self.get("grants")?))
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Json::as_str)
    }

    /// A column or a list of columns (`unique_key: id`, `[day, shop_id]`), blank names left
    /// out (`unique_key: ''` is no key, as in dbt: the list is empty); the value itself when
    /// it is neither.
    pub(crate) fn columns(&self, key: &str) -> Result<Option<Vec<String>>, &Json> {
        let names: Vec<&str> = match self.get(key) {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::String(s)) => vec![s],
            Some(Json::Array(items)) if items.iter().all(Json::is_string) => {
                items.iter().filter_map(Json::as_str).collect()
            }
            Some(other) => return Err(other),
        };
        let named = names.into_iter().filter(|s| !s.trim().is_empty());
        Ok(Some(named.map(str::to_string).collect()))
    }

    pub(crate) fn at(&self, key: &str) -> Option<&Loc> {
        self.setting(key).and_then(|s| s.at.as_ref())
    }

    pub(crate) fn materialized(&self) -> &str {
        self.str("materialized").unwrap_or("view")
    }

    pub(crate) fn enabled(&self) -> bool {
        self.get("enabled").and_then(Json::as_bool).unwrap_or(true)
    }

    pub(crate) fn tags(&self) -> Vec<&str> {
        match self.get("tags") {
            Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
            Some(Json::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        }
    }

    /// Renders every string setting holding `{{`/`{%` but the hooks and a test's `where`
    /// (rendered with the node, later) with `render`, reading the result as dbt does (`False` is false, `3` a number).
    pub(crate) fn render_strings(
        &mut self,
        render: &dyn Fn(&str) -> Result<String, String>,
        diags: &mut crate::diagnostics::Diagnostics,
    ) {
        for (key, setting) in &mut self.0 {
            let Json::String(text) = &setting.value else {
                continue;
            };
            let templated = text.contains("{{") || text.contains("{%");
            // Hooks and a test's `where` are rendered with the node, later.
            if !templated || ["pre_hook", "post_hook", "where"].contains(&key.as_str()) {
                continue;
            }
            match render(text) {
                Ok(out) => setting.value = native(&out),
                Err(e) => {
                    diags.push(crate::diagnostics::Diagnostic::error(e).at_opt(setting.at.clone()))
                }
            }
        }
    }

    pub(crate) fn to_json(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect(),
        )
    }
}

/// A rendered string as the value it spells: a boolean, none, a number, or the text.
fn native(text: &str) -> Json {
    match text.trim() {
        "True" | "true" => Json::Bool(true),
        "False" | "false" => Json::Bool(false),
        "None" | "none" => Json::Null,
        t => t
            .parse::<i64>()
            .map(Json::from)
            .ok()
            .or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Json::Number))
            })
            .unwrap_or_else(|| Json::String(text.to_string())),
    }
}

fn merge_tags(old: &Json, new: &Json) -> Json {
    let mut tags: Vec<Json> = Vec::new();
    for v in [old, new] {
        for item in as_list(v) {
            if !tags.contains(&item) {
                tags.push(item);
            }
        }
    }
    Json::Array(tags)
}

/// A list's items, or a single value as a list of one.
fn as_list(v: &Json) -> Vec<Json> {
    match v {
        Json::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// One level of a folder-config tree from project.yml (`models:`, `seeds:`, `data_tests:`).
#[derive(Clone, Debug, Default)]
pub(crate) struct FolderConfig {
    pub(crate) config: Config,
    pub(crate) children: BTreeMap<String, (Loc, FolderConfig)>,
}

impl FolderConfig {
    /// The config for a resource at `path` (folders under the resource root, then its name):
    /// every level's settings from the top down, deeper levels winning.
    /// A level named after the project (`models: { shop: {...} }`, as in dbt) applies too.
    pub(crate) fn resolve(&self, project: &str, path: &[String]) -> Config {
        let mut out = self.resolve_path(path);
        if let Some((_, child)) = self.children.get(project) {
            out.overlay(&child.resolve_path(path));
        }
        out
    }

    fn resolve_path(&self, path: &[String]) -> Config {
        let mut out = self.config.clone();
        let mut level = self;
        for part in path {
            match level.children.get(part) {
                Some((_, child)) => {
                    out.overlay(&child.config);
                    level = child;
                }
                None => break,
            }
        }
        out
    }

    /// `other`'s settings on top of these, level by level (the root project's
    /// `models: {package: ...}` over a package's own).
    pub(crate) fn overlay_tree(&mut self, other: &FolderConfig) {
        self.config.overlay(&other.config);
        for (key, (loc, child)) in &other.children {
            let mine = self.children.entry(key.clone());
            let (_, level) = mine.or_insert_with(|| (loc.clone(), FolderConfig::default()));
            level.overlay_tree(child);
        }
    }

    /// Renders the templated settings of every level (see [`Config::render_strings`]).
    pub(crate) fn render_strings(
        &mut self,
        render: &dyn Fn(&str) -> Result<String, String>,
        diags: &mut crate::diagnostics::Diagnostics,
    ) {
        self.config.render_strings(render, diags);
        for (_, child) in self.children.values_mut() {
            child.render_strings(render, diags);
        }
    }

    /// Every configured path (e.g. `["analytics", "part_001"]`) with where it is written.
    pub(crate) fn paths(&self) -> Vec<(Vec<String>, Loc)> {
        let mut out = Vec::new();
        for (name, (loc, child)) in &self.children {
            out.push((vec![name.clone()], loc.clone()));
            for (mut sub, l) in child.paths() {
                sub.insert(0, name.clone());
                out.push((sub, l));
            }
        }
        out
    }
}
