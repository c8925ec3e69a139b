//! The per-render Jinja objects: `ref`, `source`, `config`, and the relations they return.
//!
//! A relation renders as a placeholder (`\x01<node index>\x02`) that compile replaces with the
//! final quoted name or an ephemeral CTE once every model's own `config()` is known, so each
//! model renders exactly once. Reading a relation's attributes (`ref('x').schema`) marks the
//! render as late-bound; such models are rendered again with final names.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;

use crate::diagnostics::did_you_mean;
use crate::project::Config;
use crate::sql::Dialect;

pub(crate) const PLACEHOLDER_OPEN: char = '\u{1}';
pub(crate) const PLACEHOLDER_CLOSE: char = '\u{2}';

/// `sql` with each relation placeholder (`\x01<node>\x02`) replaced by what `name` gives for
/// its node; a placeholder it gives nothing for is left as it is.
pub(crate) fn replace_placeholders(sql: &str, name: impl Fn(usize) -> Option<String>) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(open) = rest.find(PLACEHOLDER_OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + PLACEHOLDER_OPEN.len_utf8()..];
        let Some(close) = after.find(PLACEHOLDER_CLOSE) else {
            break;
        };
        let end = close + PLACEHOLDER_CLOSE.len_utf8();
        match after[..close].parse().ok().and_then(&name) {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[open..open + PLACEHOLDER_OPEN.len_utf8() + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A node's relation as `ref()` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelName {
    pub(crate) schema: String,
    pub(crate) identifier: String,
    pub(crate) ephemeral: bool,
    /// An external source: the expression reading its files, in place of a relation name.
    pub(crate) external: Option<String>,
}

/// What every render may look up: names of refable nodes and their relations.
#[derive(Clone)]
pub(crate) struct Names {
    pub(crate) dialect: &'static dyn Dialect,
    pub(crate) by_ref: HashMap<String, usize>,
    /// Models, seeds and snapshots left out for `enabled: false`.
    pub(crate) disabled: std::collections::BTreeSet<String>,
    pub(crate) by_source: HashMap<(String, String), usize>,
    pub(crate) relations: Vec<Option<RelName>>,
    /// dbt's `--empty`: what a model reads (but itself) is its relation with no rows.
    pub(crate) empty: bool,
}

/// What one render recorded.
#[derive(Default, Debug)]
pub(crate) struct RenderLog {
    pub(crate) refs: Vec<usize>,
    pub(crate) config: Vec<(String, Json)>,
    pub(crate) late_bound: bool,
    /// Help for the error that stopped the render (closest names and the like).
    pub(crate) help: Option<String>,
    pub(crate) macro_depth: usize,
    /// Project macros called, directly or through other macros.
    pub(crate) macros: std::collections::BTreeSet<String>,
    /// The render asked the warehouse something (`run_query`, `statement`, the columns of a
    /// relation): its node renders again when it is built, against the warehouse.
    pub(crate) needs_warehouse: bool,
    /// What `log(msg, info=True)` said, for the command line to print.
    pub(crate) messages: Vec<String>,
}

/// A query's column names and rows, values as text.
pub(crate) type QueryRows = (Vec<String>, Vec<Vec<Option<String>>>, Vec<String>);

/// The warehouse as a node's render sees it while the node is built.
pub(crate) trait Querier: Send + Sync {
    /// A query's column names and rows.
    fn query(&self, sql: &str) -> Result<QueryRows, String>;
    /// A relation's columns and their types; None when it does not exist.
    fn columns(
        &self,
        relation: &crate::sql::Relation,
    ) -> Result<Option<Vec<(String, String)>>, String>;
}

/// Shared by the objects of one render.
pub(crate) struct RenderScope {
    pub(crate) node: usize,
    pub(crate) names: Arc<Names>,
    pub(crate) base_config: Config,
    pub(crate) log: Mutex<RenderLog>,
    /// The warehouse, when the node renders as it is built (`execute` is then true).
    pub(crate) warehouse: Option<Arc<dyn Querier>>,
    /// `execute`: false while rendering without the warehouse what needs it.
    pub(crate) execute: bool,
    /// `{% call statement('name') %}` results, for `load_result('name')`.
    pub(crate) results: Mutex<HashMap<String, Value>>,
}

impl RenderScope {
    pub(crate) fn log(&self) -> MutexGuard<'_, RenderLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, message: String, help: Option<String>) -> Error {
        self.log().help = help;
        Error::new(ErrorKind::InvalidOperation, message)
    }

    /// A scope for rendering node `node` (with the warehouse, when it is being built).
    pub(crate) fn new(
        (node, base_config): (usize, &Config),
        names: &Arc<Names>,
        warehouse: Option<Arc<dyn Querier>>,
        execute: bool,
    ) -> RenderScope {
        RenderScope {
            node,
            names: names.clone(),
            base_config: base_config.clone(),
            log: Mutex::new(RenderLog::default()),
            warehouse,
            execute,
            results: Mutex::new(HashMap::new()),
        }
    }

    /// `text` with every relation placeholder as the relation's quoted name (SQL a macro
    /// sends to the warehouse while its node renders).
    pub(crate) fn resolve(&self, text: &str) -> String {
        let dialect = self.names.dialect;
        replace_placeholders(text, |n| Some(dialect.relation(&self.sql_relation(n)?)))
    }

    /// Node `node`'s relation as the warehouse names it (none for an ephemeral model).
    pub(crate) fn sql_relation(&self, node: usize) -> Option<crate::sql::Relation> {
        let r = self
            .names
            .relations
            .get(node)?
            .as_ref()
            .filter(|r| !r.ephemeral)?;
        Some(crate::sql::Relation {
            database: None,
            schema: r.schema.clone(),
            name: r.identifier.clone(),
        })
    }

    pub(crate) fn relation(self: &Arc<Self>, node: usize) -> Value {
        Value::from_object(Relation {
            node,
            scope: self.clone(),
        })
    }
}

#[derive(Debug)]
pub(crate) struct Relation {
    node: usize,
    scope: Arc<RenderScope>,
}

impl Relation {
    /// The relation as the warehouse names it.
    pub(crate) fn sql_relation(&self) -> Option<crate::sql::Relation> {
        self.scope.sql_relation(self.node)
    }
}

impl fmt::Debug for RenderScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RenderScope({})", self.node)
    }
}

/// A relation looks like dbt's to macros that check (`dbt_utils._is_relation`): a mapping
/// whose `metadata.type` ends in `Relation`, with `is_cte` for an ephemeral model.
impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let rel = self.scope.names.relations.get(self.node)?.as_ref()?;
        let value = match key.as_str()? {
            "metadata" => return Some(minijinja::context! { type => "BaseRelation" }),
            "is_cte" | "is_ephemeral" => return Some(Value::from(rel.ephemeral)),
            "schema" => Value::from(rel.schema.clone()),
            "identifier" | "name" | "table" => Value::from(rel.identifier.clone()),
            "database" => Value::from(()),
            _ => return None,
        };
        self.scope.log().late_bound = true;
        Some(value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["database", "schema", "identifier", "metadata"])
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let rendered = format!("{PLACEHOLDER_OPEN}{}{PLACEHOLDER_CLOSE}", self.node);
        relation_method(Value::from_dyn_object(self.clone()), method, args, rendered)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PLACEHOLDER_OPEN}{}{PLACEHOLDER_CLOSE}", self.node)
    }
}

/// A relation by its name, not a node's: `api.Relation.create(...)`, `adapter.get_relation`.
pub(crate) struct NamedRelation {
    pub(crate) rel: crate::sql::Relation,
    pub(crate) dialect: &'static dyn Dialect,
}

impl fmt::Debug for NamedRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rel)
    }
}

impl Object for NamedRelation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "metadata" => minijinja::context! { type => "BaseRelation" },
            "is_cte" | "is_ephemeral" => Value::from(false),
            "schema" => Value::from(self.rel.schema.clone()),
            "identifier" | "name" | "table" => Value::from(self.rel.name.clone()),
            "database" => Value::from(self.rel.database.clone()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["database", "schema", "identifier", "metadata"])
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        relation_method(
            Value::from_dyn_object(self.clone()),
            method,
            args,
            self.name(),
        )
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl NamedRelation {
    /// Its quoted name, without the parts it was not given (as dbt's relations render).
    fn name(&self) -> String {
        let r = &self.rel;
        let schema = Some(r.schema.as_str()).filter(|s| !s.is_empty());
        let parts = [r.database.as_deref(), schema, Some(r.name.as_str())];
        let quoted: Vec<String> = parts
            .into_iter()
            .flatten()
            .map(|p| self.dialect.quote(p))
            .collect();
        quoted.join(".")
    }
}

/// What a relation answers besides its parts: `get(key, default)` as on a mapping, `render()`
/// (`rendered`), and `include(...)`, `quote(...)`, `incorporate(...)`, which give the relation
/// itself (xform names every relation in full).
fn relation_method(
    this: Value,
    method: &str,
    args: &[Value],
    rendered: String,
) -> Result<Value, Error> {
    match method {
        "get" => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            let found = this.get_item(&key).ok().filter(|v| !v.is_undefined());
            Ok(found.or(default).unwrap_or(Value::from(())))
        }
        "render" => Ok(Value::from(rendered)),
        "include" | "quote" | "incorporate" => Ok(this),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// The warehouse's name of a relation value: a node's (`ref`, `source`, `this`) or a named one.
pub(crate) fn relation_of(value: &Value) -> Option<crate::sql::Relation> {
    if let Some(r) = value.downcast_object_ref::<Relation>() {
        return r.sql_relation();
    }
    Some(value.downcast_object_ref::<NamedRelation>()?.rel.clone())
}

/// The scope of the render `state` belongs to (macros see their caller's).
pub(crate) fn scope_of(state: &State) -> Option<Arc<RenderScope>> {
    let r = state.lookup("ref")?;
    Some(r.downcast_object::<RefFn>()?.0.clone())
}

/// `ref('model')` (or `ref('package', 'model')`).
#[derive(Debug)]
pub(crate) struct RefFn(pub Arc<RenderScope>);

impl Object for RefFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (first, second, _version): (String, Option<String>, Kwargs) =
            from_args(args).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "ref() takes a model name: ref('orders')",
                )
            })?;
        let name = second.unwrap_or(first);
        let scope = &self.0;
        match scope.names.by_ref.get(&name) {
            Some(&idx) => {
                scope.log().refs.push(idx);
                Ok(scope.relation(idx))
            }
            None if scope.names.disabled.contains(&name) => Err(scope.fail(
                format!("ref('{name}'): `{name}` is disabled"),
                Some(
                    "its config says `enabled: false`: enable it, or leave out what reads it"
                        .into(),
                ),
            )),
            None => {
                let help = did_you_mean(&name, scope.names.by_ref.keys().map(String::as_str))
                    .or_else(|| {
                        Some(
                            "ref() names a model or seed by its file name, without .sql/.csv"
                                .into(),
                        )
                    });
                Err(scope.fail(
                    format!("ref('{name}'): there is no model or seed named `{name}`"),
                    help,
                ))
            }
        }
    }
}

/// `source('source_name', 'table_name')`.
#[derive(Debug)]
pub(crate) struct SourceFn(pub Arc<RenderScope>);

impl Object for SourceFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (source, table): (String, String) = from_args(args).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "source() takes a source name and a table name: source('raw_data', 'orders')",
            )
        })?;
        let scope = &self.0;
        match scope.names.by_source.get(&(source.clone(), table.clone())) {
            Some(&idx) => {
                scope.log().refs.push(idx);
                Ok(scope.relation(idx))
            }
            None => {
                let known: Vec<String> = scope
                    .names
                    .by_source
                    .keys()
                    .map(|(s, t)| format!("{s}.{t}"))
                    .collect();
                let wanted = format!("{source}.{table}");
                let help = did_you_mean(&wanted, known.iter().map(String::as_str)).or_else(|| {
                    Some("declare it under `sources:` in a .yml file next to your models".into())
                });
                Err(scope.fail(
                    format!("source('{source}', '{table}'): no such source table is declared"),
                    help,
                ))
            }
        }
    }
}

/// `{{ config(materialized='table') }}` and `config.get('key', default)`.
#[derive(Debug)]
pub(crate) struct ConfigFn(pub Arc<RenderScope>);

impl Object for ConfigFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (kwargs,): (Kwargs,) = from_args(args).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "config() takes keyword arguments: config(materialized='table')",
            )
        })?;
        let mut log = self.0.log();
        for key in kwargs.args() {
            let value: Value = kwargs.get(key)?;
            let json = serde_json::to_value(&value).unwrap_or(Json::Null);
            log.config.push((key.to_string(), json));
        }
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (key, default): (String, Option<Value>) = from_args(args)?;
        let found = self.lookup(&key);
        match (method, found) {
            ("get", found) => Ok(found.or(default).unwrap_or(Value::from(()))),
            ("require", Some(v)) => Ok(v),
            ("require", None) => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("config `{key}` is required but not set"),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl ConfigFn {
    fn lookup(&self, key: &str) -> Option<Value> {
        let key = crate::project::config::normalize_key(key);
        let log = self.0.log();
        let set = log
            .config
            .iter()
            .rev()
            .find(|(k, _)| crate::project::config::normalize_key(k) == key)
            .map(|(_, v)| v.clone());
        drop(log);
        set.or_else(|| self.0.base_config.get(&key).cloned())
            .map(|v| Value::from(minijinja::value::Serde(v)))
    }
}
