//! dbt's Jinja surface around a project's macros: `return()`, `adapter.dispatch` with dbt's
//! search order, macro namespaces (`dbt.date_trunc`, `dbt_utils.star`), and the small helpers
//! dbt's macros expect (`execute`, `fromjson`, `zip`, ...). xform's own implementations of
//! dbt's cross-database macros are in `dbt_macros.sql`, rendered like a package named `dbt`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, Value, ValueKind, from_args};

use super::objects::{NamedRelation, RenderScope, relation_of, scope_of};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::sql::Kind;

/// The name diagnostics give xform's implementations of dbt's macros.
pub(crate) const DBT_MACROS_PATH: &str = "<xform dbt macros>";
pub(super) const DBT_MACROS: &str = include_str!("dbt_macros.sql");
/// The namespace of dbt's own macros (`dbt.date_trunc`).
pub(super) const DBT_NAMESPACE: &str = "dbt";

thread_local! {
    /// The value a macro gave to `return()`, until the macro's call takes it.
    static RETURNED: RefCell<Option<Value>> = const { RefCell::new(None) };
}

const RETURN_OUTSIDE: &str = "return() is only meaningful inside a macro";

/// `return(value)`: ends the macro being run; its call's value is `value`.
fn return_value(value: Value) -> Result<Value, Error> {
    RETURNED.with(|r| *r.borrow_mut() = Some(value));
    Err(Error::new(ErrorKind::InvalidOperation, RETURN_OUTSIDE))
}

/// The value the macro just run gave to `return()`, if it did.
pub(super) fn take_returned() -> Option<Value> {
    RETURNED.with(|r| r.borrow_mut().take())
}

/// Where each macro a name or a namespace may mean lives, filled once every macro file is
/// read.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) root: String,
    /// The project's own macros.
    pub(super) project: BTreeMap<String, Value>,
    /// xform's implementations of dbt's macros.
    pub(super) builtin: BTreeMap<String, Value>,
    /// Each installed package's macros.
    pub(super) packages: BTreeMap<String, BTreeMap<String, Value>>,
    /// `dispatch:` from dbt_project.yml: per namespace, the packages searched in order.
    pub(super) dispatch: Vec<(String, Vec<String>)>,
}

impl Registry {
    /// The macros of package `p` (the root project, `dbt`, or an installed package).
    fn package(&self, p: &str) -> Option<&BTreeMap<String, Value>> {
        match p {
            _ if p == self.root => Some(&self.project),
            DBT_NAMESPACE => Some(&self.builtin),
            _ => self.packages.get(p),
        }
    }

    /// dbt's dispatch: for each package in the search order, `<adapter>__name` for each of
    /// the warehouse's adapter names, then `default__name`.
    fn dispatch(
        &self,
        (kind, here): (Kind, Option<&str>),
        name: &str,
        namespace: Option<&str>,
    ) -> Result<Value, Error> {
        let configured = namespace.and_then(|ns| self.dispatch.iter().find(|(n, _)| n == ns));
        let order: Vec<&str> = match (namespace, configured) {
            (_, Some((_, order))) => order.iter().map(String::as_str).collect(),
            (Some(DBT_NAMESPACE), None) => vec![self.root.as_str(), DBT_NAMESPACE],
            (Some(ns), None) => vec![ns],
            (None, None) => here
                .into_iter()
                .chain([self.root.as_str(), DBT_NAMESPACE])
                .collect(),
        };
        let prefixes = kind.dispatch_prefixes();
        for package in &order {
            let Some(macros) = self.package(package) else {
                continue;
            };
            for prefix in prefixes {
                if let Some(m) = macros.get(&format!("{prefix}__{name}")) {
                    return Ok(m.clone());
                }
            }
        }
        let tried: Vec<String> = prefixes.iter().map(|p| format!("{p}__{name}")).collect();
        Err(Error::new(
            ErrorKind::UnknownFunction,
            format!(
                "adapter.dispatch('{name}'): no macro {} in {}",
                tried.join(" or "),
                order.join(", ")
            ),
        ))
    }
}

/// A package's macros as `package.name` (`dbt_utils.star`, `dbt.date_trunc`).
#[derive(Debug)]
pub(super) struct Namespace {
    pub(super) name: String,
    pub(super) registry: Arc<OnceLock<Registry>>,
}

impl Object for Namespace {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let registry = self.registry.get()?;
        registry.package(&self.name)?.get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys = (self.registry.get())
            .and_then(|r| r.package(&self.name))
            .map(|m| m.keys().cloned().map(Value::from).collect::<Vec<_>>())
            .unwrap_or_default();
        Enumerator::Values(keys)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<macros of {}>", self.root)
    }
}

/// dbt's `adapter`: `dispatch`, `quote`, `type`.
#[derive(Debug)]
struct Adapter {
    kind: Kind,
    registry: Arc<OnceLock<Registry>>,
}

impl Object for Adapter {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "dispatch" => {
                let (name, namespace): (String, Option<String>) = from_args(args)?;
                let here = state.lookup(PACKAGE_VAR);
                let registry = self.registry.get().ok_or_else(not_ready)?;
                registry.dispatch(
                    (self.kind, here.as_ref().and_then(Value::as_str)),
                    &name,
                    namespace.as_deref(),
                )
            }
            "quote" => {
                let (ident,): (String,) = from_args(args)?;
                Ok(Value::from(self.kind.dialect().quote(&ident)))
            }
            "type" => Ok(Value::from(self.kind.name())),
            "get_columns_in_relation" => columns_in(state, args),
            "get_missing_columns" => missing_columns(state, args),
            // Text columns here have no length to widen (Redshift's are sized when created).
            "expand_target_column_types" => Ok(Value::from("")),
            "get_relation" => {
                let (Rest(given), kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
                let part = |i: usize, key: &str| -> Result<Option<String>, Error> {
                    let named: Option<String> = kwargs.get(key)?;
                    let text = given.get(i).filter(|v| !v.is_none()).map(|v| v.to_string());
                    Ok(named.or(text))
                };
                let (database, schema, identifier) = (
                    part(0, "database")?,
                    part(1, "schema")?,
                    part(2, "identifier")?,
                );
                kwargs.assert_all_used()?;
                let (schema, identifier) =
                    (schema.unwrap_or_default(), identifier.unwrap_or_default());
                let rel = crate::sql::Relation {
                    database: database.filter(|d| !d.is_empty()),
                    ..crate::sql::Relation::new(schema, identifier)
                };
                existing(state, rel, "adapter.get_relation")
            }
            other => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!(
                    "adapter.{other}() needs the warehouse while compiling, which xform does not do yet"
                ),
            )),
        }
    }
}

/// `run_query(sql)`: the rows of a query (as dbt's agate table) while the node is built;
/// none while it compiles, which marks the node to render again then.
fn run_query(state: &State, sql: String) -> Result<Value, Error> {
    let scope = scope_of(state).ok_or_else(|| outside_a_node("run_query"))?;
    Ok(query(&scope, &sql)?.unwrap_or(Value::from(())))
}

/// The warehouse's answer to `sql` as a table value; None without a warehouse (the render is
/// marked as needing one).
fn query(scope: &RenderScope, sql: &str) -> Result<Option<Value>, Error> {
    let Some(warehouse) = &scope.warehouse else {
        scope.log().needs_warehouse = true;
        return Ok(None);
    };
    let (columns, rows, types) = warehouse
        .query(&scope.resolve(sql))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("query failed: {e}")))?;
    Ok(Some(table(columns, rows, &types)))
}

/// dbt's agate table: `rows` (indexed by position or column name), `columns` (each with its
/// `name` and `values()`), `column_names`.
fn table(columns: Vec<String>, rows: Vec<Vec<Option<String>>>, types: &[String]) -> Value {
    let names = Arc::new(columns);
    let kinds: Vec<Option<ValueKind>> = (0..names.len())
        .map(|i| types.get(i).and_then(|t| kind_of(t)))
        .collect();
    let rows: Vec<Vec<Value>> = (rows.into_iter())
        .map(|r| {
            let cells = r.into_iter().enumerate();
            cells
                .map(|(i, v)| typed(v, kinds.get(i).copied().flatten()))
                .collect()
        })
        .collect();
    let column_values = (0..names.len()).map(|i| {
        let values = rows
            .iter()
            .map(|r| r.get(i).cloned().unwrap_or(Value::from(())))
            .collect();
        Value::from_object(TableColumn {
            name: names[i].clone(),
            values,
        })
    });
    let column_values: Vec<Value> = column_values.collect();
    let row_values = rows.into_iter().map(|values| {
        Value::from_object(Row {
            names: names.clone(),
            values,
        })
    });
    Value::from_object(Table {
        column_names: Value::from(names.to_vec()),
        columns: Value::from_object(Columns(column_values)),
        rows: row_values.collect(),
    })
}

/// agate's table: its rows when iterated or indexed (`for row in table`, `table[0]`), and
/// `rows`, `columns`, `column_names`.
#[derive(Debug)]
struct Table {
    column_names: Value,
    columns: Value,
    rows: Vec<Value>,
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some("rows") => Some(Value::from(self.rows.clone())),
            Some("columns") => Some(self.columns.clone()),
            Some("column_names") => Some(self.column_names.clone()),
            Some(_) => None,
            None => self.rows.get(usize::try_from(key.clone()).ok()?).cloned(),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.rows.len())
    }
}

/// agate's `table.columns`: a list of columns, also read by name (`columns['id']`, `items()`).
#[derive(Debug)]
struct Columns(Vec<Value>);

impl Columns {
    fn named(&self, name: &str) -> Option<&Value> {
        (self.0.iter())
            .find(|c| c.get_attr("name").ok().as_ref().and_then(Value::as_str) == Some(name))
    }
}

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(name) => self.named(name).cloned(),
            None => self.0.get(usize::try_from(key.clone()).ok()?).cloned(),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        let name = |c: &Value| c.get_attr("name").unwrap_or_default();
        let list = |items: Vec<Value>| Ok(Value::from(items));
        match method {
            "keys" => list(self.0.iter().map(name).collect()),
            "values" => list(self.0.clone()),
            "items" => list(
                (self.0.iter())
                    .map(|c| Value::from(vec![name(c), c.clone()]))
                    .collect(),
            ),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `Column` from `adapter.get_columns_in_relation`: `name`, `quoted`, `data_type`, and
/// the type tests dbt's macros ask (`is_string()`, `is_number()`, ...), by dbt's type names.
#[derive(Debug)]
struct Column {
    name: String,
    quoted: String,
    data_type: String,
}

impl Column {
    fn is(&self, types: &[&str]) -> bool {
        let t = self.data_type.to_ascii_lowercase();
        let base = t.split('(').next().unwrap_or("").trim();
        types.contains(&base)
    }
}

const STRING_TYPES: &[&str] = &[
    "text",
    "character varying",
    "character",
    "varchar",
    "string",
    "bpchar",
    "char",
];
const FLOAT_TYPES: &[&str] = &[
    "real",
    "float4",
    "float",
    "double precision",
    "float8",
    "double",
];
const INTEGER_TYPES: &[&str] = &[
    "smallint",
    "integer",
    "bigint",
    "smallserial",
    "serial",
    "bigserial",
    "int2",
    "int4",
    "int8",
    "int",
    "tinyint",
    "hugeint",
    "ubigint",
    "uinteger",
    "usmallint",
    "utinyint",
];
const NUMERIC_TYPES: &[&str] = &["numeric", "decimal"];

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "name" | "column" => self.name.clone(),
            "quoted" => self.quoted.clone(),
            "data_type" | "dtype" => self.data_type.clone(),
            _ => return None,
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["name", "column", "quoted", "data_type", "dtype"])
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        if method == "string_size" {
            // dbt's: a `varchar(n)`'s n, else 256 for text without a size.
            let size = (self.data_type.split_once('('))
                .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse::<i64>().ok());
            return match self.is(STRING_TYPES) {
                true => Ok(Value::from(size.unwrap_or(256))),
                false => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "string_size() of `{}`, which is not a string column",
                        self.name
                    ),
                )),
            };
        }
        let answer = match method {
            "is_string" => self.is(STRING_TYPES),
            "is_float" => self.is(FLOAT_TYPES),
            "is_integer" => self.is(INTEGER_TYPES),
            "is_numeric" => self.is(NUMERIC_TYPES),
            "is_number" => self.is(FLOAT_TYPES) || self.is(INTEGER_TYPES) || self.is(NUMERIC_TYPES),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        Ok(Value::from(answer))
    }
}

/// What a column's values are, by its type's name (the warehouse's, or Arrow's for DuckDB);
/// None for a type read from the values themselves (dates, times, others).
fn kind_of(type_name: &str) -> Option<ValueKind> {
    let t = type_name.to_ascii_lowercase();
    let any = |names: &[&str]| names.iter().any(|n| t.starts_with(n));
    if any(&["bool"]) {
        Some(ValueKind::Bool)
    } else if any(&[
        "int", "uint", "float", "double", "decimal", "numeric", "real", "smallint", "bigint",
        "hugeint", "tinyint", "serial", "money", "oid",
    ]) {
        Some(ValueKind::Number)
    } else if any(&[
        "text",
        "varchar",
        "char",
        "bpchar",
        "utf8",
        "largeutf8",
        "string",
        "name",
        "uuid",
        "json",
    ]) {
        Some(ValueKind::String)
    } else {
        None
    }
}

/// A value read as text, as agate has it: a boolean or text column's as such; else the
/// number it spells when it is one.
fn typed(text: Option<String>, kind: Option<ValueKind>) -> Value {
    let Some(t) = text else {
        return Value::from(());
    };
    match kind {
        Some(ValueKind::Bool) => {
            return Value::from(matches!(t.as_str(), "t" | "true" | "TRUE" | "True"));
        }
        Some(ValueKind::String) => return Value::from(t),
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Value::from(f),
        _ => Value::from(t),
    }
}

/// A row of a query's result: by position (`row[0]`) or by column name (`row['id']`).
#[derive(Debug)]
struct Row {
    names: Arc<Vec<String>>,
    values: Vec<Value>,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = match key.as_str() {
            Some(name) => self.names.iter().position(|n| n == name)?,
            None => usize::try_from(key.as_i64()?).ok()?,
        };
        self.values.get(i).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values.clone())
    }
}

/// A column of a query's result: `name` and `values()`.
#[derive(Debug)]
struct TableColumn {
    name: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "name").then(|| Value::from(self.name.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `{% call statement('name', fetch_result=True) %}SQL{% endcall %}`: runs the SQL while the
/// node is built (nothing when `execute` is false) and keeps its result for `load_result`.
#[derive(Debug)]
struct Statement;

impl Object for Statement {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, kwargs): (Option<String>, Kwargs) = from_args(args)?;
        let caller: Value = kwargs.get("caller")?;
        let fetch: Option<bool> = kwargs.get("fetch_result")?;
        let scope = scope_of(state).ok_or_else(|| outside_a_node("statement"))?;
        let sql = caller.call(state, &[])?;
        if !scope.execute {
            return Ok(Value::from(""));
        }
        let Some(result) = query(&scope, &sql.to_string())? else {
            return Ok(Value::from(""));
        };
        let data: Vec<Value> = result
            .get_attr("rows")?
            .try_iter()?
            .map(|r| {
                Value::from(
                    r.try_iter()
                        .map(|i| i.collect::<Vec<_>>())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let stored = match fetch.unwrap_or(false) {
            true => minijinja::context! { data => data, table => result },
            false => minijinja::context! { data => Value::from(()), table => Value::from(()) },
        };
        let name = name.unwrap_or_else(|| "main".into());
        let mut results = scope.results.lock().unwrap_or_else(|e| e.into_inner());
        results.insert(name, stored);
        Ok(Value::from(""))
    }
}

/// `load_result('name')`: what `statement('name')` kept; none when it did not run.
fn load_result(state: &State, name: String) -> Result<Value, Error> {
    let scope = scope_of(state).ok_or_else(|| outside_a_node("load_result"))?;
    let results = scope.results.lock().unwrap_or_else(|e| e.into_inner());
    Ok(results.get(&name).cloned().unwrap_or(Value::from(())))
}

/// `adapter.get_columns_in_relation(relation)`: its columns (`name`, `data_type`, `quoted`)
/// while the node is built; none while it compiles.
fn columns_in(state: &State, args: &[Value]) -> Result<Value, Error> {
    let (relation,): (Value,) = from_args(args)?;
    let scope = scope_of(state).ok_or_else(|| outside_a_node("adapter.get_columns_in_relation"))?;
    let Some(warehouse) = &scope.warehouse else {
        scope.log().needs_warehouse = true;
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let rel = relation_of(&relation).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "adapter.get_columns_in_relation() takes a relation from ref() or source()",
        )
    })?;
    let columns = (warehouse.columns(&rel))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?
        .unwrap_or_default();
    let dialect = scope.names.dialect;
    let columns = columns.into_iter().map(|(name, data_type)| {
        Value::from_object(Column {
            quoted: dialect.quote(&name),
            name,
            data_type,
        })
    });
    Ok(Value::from(columns.collect::<Vec<_>>()))
}

/// `adapter.get_missing_columns(from, to)`: the columns of `from` that `to` lacks (by name,
/// in any case).
fn missing_columns(state: &State, args: &[Value]) -> Result<Value, Error> {
    let (from, to): (Value, Value) = from_args(args)?;
    let names = |v: Value| -> Result<Vec<Value>, Error> {
        let columns = columns_in(state, &[v])?;
        Ok(columns.try_iter()?.collect())
    };
    let (from, to) = (names(from)?, names(to)?);
    let name = |c: &Value| {
        c.get_attr("name")
            .ok()
            .map(|n| n.to_string().to_lowercase())
    };
    let have: Vec<Option<String>> = to.iter().map(name).collect();
    let missing = from.into_iter().filter(|c| !have.contains(&name(c)));
    Ok(Value::from(missing.collect::<Vec<_>>()))
}

/// The relation named `rel` when the warehouse has it, else none (and none while compiling,
/// which marks the node to render again with the warehouse).
fn existing(state: &State, rel: crate::sql::Relation, what: &str) -> Result<Value, Error> {
    let scope = scope_of(state).ok_or_else(|| outside_a_node(what))?;
    let Some(warehouse) = &scope.warehouse else {
        scope.log().needs_warehouse = true;
        return Ok(Value::from(()));
    };
    let found =
        (warehouse.columns(&rel)).map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
    Ok(match found {
        Some(_) => Value::from_object(NamedRelation {
            rel,
            dialect: scope.names.dialect,
        }),
        None => Value::from(()),
    })
}

/// `{% call set_sql_header(config) %}SQL{% endcall %}`: SQL that runs before the model is
/// built, in its transaction (as the first of its pre-hooks).
#[derive(Debug)]
struct SqlHeader;

impl Object for SqlHeader {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (_config, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        let caller: Value = kwargs.get("caller")?;
        let header = caller.call(state, &[])?.to_string();
        let scope = scope_of(state).ok_or_else(|| outside_a_node("set_sql_header"))?;
        let config = &mut scope.log().config;
        config.push(("sql_header".into(), serde_json::Value::String(header)));
        Ok(Value::from(""))
    }
}

/// `load_relation(relation)`: the relation when the warehouse has it, else none.
fn load_relation(state: &State, relation: Value) -> Result<Value, Error> {
    let rel = relation_of(&relation).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "load_relation() takes a relation",
        )
    })?;
    match existing(state, rel, "load_relation")?.is_none() {
        true => Ok(Value::from(())),
        false => Ok(relation),
    }
}

/// dbt's `api`: `api.Relation.create(database=, schema=, identifier=)` (a relation by name),
/// `api.Relation.add_ephemeral_prefix`, `api.Column.translate_type` (dbt's type labels).
fn api(dialect: &'static dyn crate::sql::Dialect) -> Value {
    let create = move |kwargs: Kwargs| -> Result<Value, Error> {
        let part = |k: &str| kwargs.get::<Option<String>>(k);
        let (database, schema, identifier) =
            (part("database")?, part("schema")?, part("identifier")?);
        let _ = kwargs.get::<Option<Value>>("type")?;
        let rel = crate::sql::Relation {
            database: database.filter(|d| !d.is_empty()),
            ..crate::sql::Relation::new(schema.unwrap_or_default(), identifier.unwrap_or_default())
        };
        kwargs.assert_all_used()?;
        Ok(Value::from_object(NamedRelation { rel, dialect }))
    };
    minijinja::context! {
        Relation => minijinja::context! {
            create => Value::from_function(create),
            add_ephemeral_prefix => Value::from_function(|name: String| format!("__dbt__cte__{name}")),
        },
        Column => minijinja::context! {
            translate_type => Value::from_function(|t: String| {
                match t.to_ascii_uppercase().as_str() {
                    "STRING" => "TEXT".to_string(),
                    "INTEGER" => "INT".to_string(),
                    "TIMESTAMP" | "FLOAT" | "BOOLEAN" | "NUMERIC" => t.to_ascii_uppercase(),
                    _ => t,
                }
            }),
        },
    }
}

fn outside_a_node(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what}() is only available while a model or test renders"),
    )
}

fn not_ready() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        "adapter.dispatch() cannot be called while macros are still being read",
    )
}

/// The context variable naming the package whose macro is running (for dispatch without a
/// namespace, which looks there first).
pub(super) const PACKAGE_VAR: &str = "__xform_package";

/// A list a macro can change in place (`{% do cols.append(c) %}`), as Python's: what
/// `{% set cols = [] %}` makes in a macro file (see [`mutable_literals`]).
#[derive(Debug, Default)]
struct MutList(Mutex<Vec<Value>>);

impl MutList {
    fn items(&self) -> MutexGuard<'_, Vec<Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let i = key.as_i64()?;
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items().clone())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = self.items();
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                items.push(v);
            }
            "extend" => {
                let (v,): (Value,) = from_args(args)?;
                items.extend(v.try_iter()?);
            }
            "insert" => {
                let (at, v): (usize, Value) = from_args(args)?;
                let at = at.min(items.len());
                items.insert(at, v);
            }
            "pop" => return Ok(items.pop().unwrap_or(Value::from(()))),
            // Compared with the lock released: the value may be this list itself.
            "index" | "count" => {
                let snapshot = items.clone();
                drop(items);
                if method == "index" {
                    return list_index(&snapshot, args);
                }
                let (v,): (Value,) = from_args(args)?;
                return Ok(Value::from(snapshot.iter().filter(|i| **i == v).count()));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("a list has no method `{method}`"),
                ));
            }
        }
        Ok(Value::from(()))
    }
}

/// Python's `list.index(x)`: where `x` first is, or an error as Python raises one.
fn list_index(items: &[Value], args: &[Value]) -> Result<Value, Error> {
    let (v,): (Value,) = from_args(args)?;
    match items.iter().position(|i| *i == v) {
        Some(at) => Ok(Value::from(at)),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{v} is not in list"),
        )),
    }
}

/// Python's methods on values: minijinja-contrib's, and `list.index` on any list.
fn python_method(
    state: &mut State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if method == "index" && value.kind() == minijinja::value::ValueKind::Seq {
        return list_index(&value.try_iter()?.collect::<Vec<_>>(), args);
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// A list put into a mapping a macro changes in place, as one it can change too
/// (`{% do d.update({k: []}) %}{% do d[k].append(x) %}`, as dbt_utils.union_relations does).
fn changeable(v: Value) -> Value {
    let ours = v.downcast_object_ref::<MutList>().is_some();
    match (v.kind(), ours) {
        (minijinja::value::ValueKind::Seq, false) => match v.try_iter() {
            Ok(items) => Value::from_object(MutList(Mutex::new(items.collect()))),
            Err(_) => v,
        },
        _ => v,
    }
}

/// A mapping a macro can change in place (`{% do d.update({...}) %}`).
#[derive(Debug, Default)]
struct MutMap(Mutex<BTreeMap<Value, Value>>);

impl MutMap {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<Value, Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for MutMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.entries().get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries().keys().cloned().collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut entries = self.entries();
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                for k in other.try_iter()? {
                    let v = other.get_item(&k)?;
                    entries.insert(k, changeable(v));
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                let v = entries
                    .entry(k)
                    .or_insert_with(|| changeable(default.unwrap_or_default()));
                Ok(v.clone())
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(entries
                    .get(&k)
                    .cloned()
                    .or(default)
                    .unwrap_or(Value::from(())))
            }
            "items" => Ok(Value::from(
                entries
                    .iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "keys" => Ok(Value::from(entries.keys().cloned().collect::<Vec<_>>())),
            "values" => Ok(Value::from(entries.values().cloned().collect::<Vec<_>>())),
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(entries.remove(&k).or(default).unwrap_or(Value::from(())))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a mapping has no method `{method}`"),
            )),
        }
    }
}

/// The functions an empty list or mapping literal in a `{% set %}` becomes.
const NEW_LIST: &str = "_l()";
const NEW_MAP: &str = "_d()";

/// `{% set cols = [] %}` (and `= {}`) in a macro file made to build a list (mapping) the
/// macro can change in place, as dbt's Jinja does. The tag keeps its length (spaces inside it
/// make room), so every diagnostic still points at the user's text; a tag with no room is
/// left as written.
pub(super) fn mutable_literals(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("[]") && !text.contains("{}") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{%") {
        let close = rest[open..].find("%}").map_or(rest.len(), |c| open + c + 2);
        out.push_str(&rest[..open]);
        out.push_str(&mutable_tag(&rest[open..close]));
        rest = &rest[close..];
    }
    out.push_str(rest);
    out.into()
}

/// One `{% set x = [] %}` tag rewritten to the same length, or as it was.
fn mutable_tag(tag: &str) -> std::borrow::Cow<'_, str> {
    let body = tag
        .trim_start_matches("{%")
        .trim_start_matches(['-', '+'])
        .trim_start();
    if !body.starts_with("set ") {
        return tag.into();
    }
    let Some((lhs, value)) = tag.split_once('=') else {
        return tag.into();
    };
    let value_trim = value
        .trim_end_matches("%}")
        .trim_end_matches(['-', '+'])
        .trim();
    let call = match value_trim {
        "[]" => NEW_LIST,
        "{}" => NEW_MAP,
        _ => return tag.into(),
    };
    // The tag at its tightest (`{%set x=_d()%}`, its whitespace control kept), padded back to
    // its length: what follows it stays where it was.
    let open = if tag[2..].starts_with(['-', '+']) {
        &tag[..3]
    } else {
        &tag[..2]
    };
    let name = lhs[open.len()..].trim().trim_start_matches("set").trim();
    let head = format!("{open}set {name}");
    // What follows the literal: the tag's end (`%}`, `-%}`).
    let end = value.trim_start()[value_trim.len()..].trim_start();
    let tight = head.len() + 1 + call.len() + end.len();
    match tag.len().checked_sub(tight) {
        Some(pad) => format!("{head}={call}{}{end}", " ".repeat(pad)).into(),
        None => tag.into(),
    }
}

/// dbt's globals: `return`, `adapter`, `execute`, the `dbt` namespace, `fromjson`/`tojson`,
/// `zip`, Python's methods on strings and mappings, and the functions that need the warehouse
/// (an error naming them).
pub(super) fn add_globals(
    env: &mut Environment<'_>,
    (kind, invocation): (Kind, &(jiff::Timestamp, String)),
    registry: &Arc<OnceLock<Registry>>,
) {
    env.add_global("invocation_id", invocation.1.clone());
    let started = invocation.0.to_zoned(jiff::tz::TimeZone::UTC);
    env.add_global("run_started_at", super::pytime::aware(started));
    env.add_function("return", return_value);
    env.add_function("_l", |items: Option<Vec<Value>>| {
        Value::from_object(MutList(Mutex::new(items.unwrap_or_default())))
    });
    env.add_function("_d", || Value::from_object(MutMap::default()));
    env.set_unknown_method_callback(python_method);
    env.add_global(
        "adapter",
        Value::from_object(Adapter {
            kind,
            registry: registry.clone(),
        }),
    );
    env.add_global(
        DBT_NAMESPACE,
        Value::from_object(Namespace {
            name: DBT_NAMESPACE.into(),
            registry: registry.clone(),
        }),
    );
    env.add_global("execute", true);
    env.add_function("fromjson", |text: String, default: Option<Value>| {
        serde_json::from_str::<serde_json::Value>(&text)
            .map(|j| Value::from(minijinja::value::Serde(j)))
            .or_else(|e| {
                default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))
                })
            })
    });
    env.add_function("tojson", |value: Value| {
        serde_json::to_string(&value)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    // Python's `set()`: distinct items, sorted so that two sets compare as sets.
    let set = |items: Option<Value>| -> Result<Value, Error> {
        let mut out: Vec<Value> = match items {
            Some(v) if !v.is_undefined() && !v.is_none() => v.try_iter()?.collect(),
            _ => Vec::new(),
        };
        out.sort();
        out.dedup();
        Ok(Value::from(out))
    };
    env.add_function("set", set);
    env.add_function("fromyaml", fromyaml);
    env.add_function("toyaml", toyaml);
    env.add_function("local_md5", |text: String| {
        use md5::Digest;
        let digest = md5::Md5::digest(text.as_bytes());
        crate::hex(&digest)
    });
    env.add_function("set_strict", set);
    env.add_function("zip", |a: Vec<Value>, b: Vec<Value>| {
        a.into_iter()
            .zip(b)
            .map(|(x, y)| Value::from(vec![x, y]))
            .collect::<Vec<_>>()
    });
    env.add_function("run_query", run_query);
    env.add_function("load_relation", load_relation);
    env.add_global("set_sql_header", Value::from_object(SqlHeader));
    env.add_global("api", api(kind.dialect()));
    env.add_global("modules", super::modules::value());
    env.add_global("statement", Value::from_object(Statement));
    env.add_function("load_result", load_result);
}

/// dbt's `fromyaml(text)`: the value YAML text spells (`default` when it is not YAML).
fn fromyaml(text: String, default: Option<Value>) -> Result<Value, Error> {
    let file: Arc<str> = Arc::from("fromyaml");
    let src = crate::project::yaml::Src::new(&file, &text);
    match src.parse() {
        Ok(Some(node)) => Ok(Value::from(minijinja::value::Serde(
            crate::project::yaml::to_json(&node),
        ))),
        Ok(None) => Ok(Value::from(())),
        Err(d) => default.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("fromyaml: {}", d.message),
            )
        }),
    }
}

/// dbt's `toyaml(value)`: the value as a YAML document (block style, no `---`).
fn toyaml(value: Value) -> Result<String, Error> {
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("toyaml: {e}")))?;
    let mut out = String::new();
    (saphyr::YamlEmitter::new(&mut out).dump(&yaml_of(&json)))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("toyaml: {e}")))?;
    let body = out
        .strip_prefix("---")
        .unwrap_or(&out)
        .trim_start_matches(['\n', ' ']);
    Ok(format!("{body}\n"))
}

fn yaml_of(v: &serde_json::Value) -> saphyr::Yaml<'static> {
    use saphyr::{Scalar, Yaml};
    use serde_json::Value as J;
    match v {
        J::Null => Yaml::Value(Scalar::Null),
        J::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Representation(n.to_string().into(), saphyr::ScalarStyle::Plain, None),
        },
        J::String(s) => Yaml::Value(Scalar::String(s.clone().into())),
        J::Array(items) => Yaml::Sequence(items.iter().map(yaml_of).collect()),
        J::Object(map) => {
            let mut m = saphyr::Mapping::new();
            for (k, v) in map {
                m.insert(Yaml::Value(Scalar::String(k.clone().into())), yaml_of(v));
            }
            Yaml::Mapping(m)
        }
    }
}
