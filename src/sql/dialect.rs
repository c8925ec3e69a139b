//! The dialect of each warehouse kind, as sqlparser-rs models dialects: what differs is a
//! method of `Dialect`, with the portable form as its default, never an `if kind == …` at a
//! caller. Every piece of SQL text xform writes of its own outside an adapter is built here.

use serde_json::Value as Json;
use sqlparser::dialect::{
    DatabricksDialect, Dialect as Parser, DuckDbDialect, PostgreSqlDialect, RedshiftSqlDialect,
};

use super::Relation;

/// The kinds of warehouse a target may name (`type:` in a target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    DuckDb,
    Postgres,
    Redshift,
    Spark,
}

impl Kind {
    pub(crate) const NAMES: &'static [&'static str] = &["duckdb", "postgres", "redshift", "spark"];

    pub(crate) fn parse(name: &str) -> Option<Kind> {
        match name {
            "duckdb" => Some(Kind::DuckDb),
            "postgres" | "postgresql" => Some(Kind::Postgres),
            "redshift" => Some(Kind::Redshift),
            "spark" => Some(Kind::Spark),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::DuckDb => "duckdb",
            Kind::Postgres => "postgres",
            Kind::Redshift => "redshift",
            Kind::Spark => "spark",
        }
    }

    /// The adapter names dbt's `adapter.dispatch` tries, in order (`duckdb__x`, `default__x`).
    pub(crate) fn dispatch_prefixes(self) -> &'static [&'static str] {
        match self {
            Kind::DuckDb => &["duckdb", "default"],
            Kind::Postgres => &["postgres", "default"],
            Kind::Redshift => &["redshift", "postgres", "default"],
            Kind::Spark => &["spark", "default"],
        }
    }

    pub(crate) fn dialect(self) -> &'static dyn Dialect {
        match self {
            Kind::DuckDb => &DuckDb,
            Kind::Postgres => &Postgres,
            Kind::Redshift => &Redshift,
            Kind::Spark => &Spark,
        }
    }
}

/// What `xform compare` measures of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ColumnClass {
    Numeric,
    Text,
    Other,
    Nested,
}

impl ColumnClass {
    pub(crate) fn stats(self) -> &'static [&'static str] {
        match self {
            ColumnClass::Numeric => &["nulls", "distinct", "min", "max", "sum", "avg"],
            ColumnClass::Text => &[
                "nulls",
                "distinct",
                "min",
                "max",
                "min_length",
                "max_length",
            ],
            ColumnClass::Other => &["nulls", "distinct", "min", "max"],
            ColumnClass::Nested => &["nulls", "distinct"],
        }
    }
}

/// What a key diff returns: a count per kind of difference, or up to `limit` rows of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyDiff {
    Counts,
    Rows { limit: usize },
}

/// How a warehouse replaces rows of a table in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replaces {
    /// Row by row: `DELETE`, `UPDATE`, `MERGE` (merge, delete+insert, snapshots, microbatches).
    Rows,
    /// Whole partitions, by `INSERT OVERWRITE` of the partitions new rows touch (Spark's
    /// default catalog): `insert_overwrite`, and microbatches over partitioned tables.
    Partitions,
}

/// A unit test's fixture as rows of literals: each column's name and, when known, the type
/// its values are cast to (a column no row gives is NULL of its type).
pub(crate) struct Fixture<'a> {
    pub(crate) columns: Vec<(&'a str, Option<&'a str>)>,
    pub(crate) rows: &'a [Vec<Json>],
}

/// Numeric type names most warehouses share (`DECIMAL(12, 2)` matches `DECIMAL`).
const NUMERIC: &[&str] = &[
    "SMALLINT", "INTEGER", "INT", "BIGINT", "REAL", "FLOAT", "DOUBLE", "DECIMAL", "NUMERIC",
    "INT2", "INT4", "INT8", "FLOAT4", "FLOAT8",
];
const TEXT: &[&str] = &["VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"];
const NESTED: &[&str] = &["STRUCT", "MAP", "ARRAY"];

/// The SQL of one warehouse kind.
pub(crate) trait Dialect: Send + Sync {
    /// sqlparser's dialect for checking models.
    fn parser(&self) -> &'static dyn Parser;

    /// The schema a relation lands in when nothing configures one.
    fn default_schema(&self) -> &'static str;

    /// A quoted identifier; embedded quotes are doubled, so any name is safe.
    fn quote(&self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    /// The form under which two identifiers name the same relation.
    fn fold_identifier(&self, ident: &str) -> String {
        ident.to_string()
    }

    /// The name the warehouse stores for an identifier xform creates (and lists in its
    /// catalog).
    fn stored_name(&self, ident: &str) -> String {
        ident.to_string()
    }

    /// `"database"."schema"."name"`, the database only when there is one.
    fn relation(&self, r: &Relation) -> String {
        self.relation_name(r.database.as_deref(), &r.schema, &r.name)
    }

    /// A relation's quoted name from its parts.
    fn relation_name(&self, database: Option<&str>, schema: &str, name: &str) -> String {
        let db = database.map(|d| self.quote(d) + ".");
        format!(
            "{}{}.{}",
            db.unwrap_or_default(),
            self.quote(schema),
            self.quote(name)
        )
    }

    /// A FROM item reading files (`parquet`, `csv`, `json`) at `location`, or None when the
    /// warehouse cannot read files itself.
    fn read_files(
        &self,
        _format: &str,
        _location: &str,
        _hive_partitioned: bool,
    ) -> Option<String> {
        None
    }

    /// Whether a relative path in `read_files` must be made absolute first (the warehouse
    /// runs elsewhere than the project), or is the project's as it is.
    fn absolute_paths(&self) -> bool {
        false
    }

    /// The statement making another database file readable as `alias`, where the warehouse
    /// can attach one.
    fn attach(&self, _path: &str, _alias: &str) -> Option<String> {
        None
    }

    /// Type names (prefixes) of numbers, text and nested values.
    fn numeric_types(&self) -> &'static [&'static str] {
        NUMERIC
    }
    fn text_types(&self) -> &'static [&'static str] {
        TEXT
    }
    fn nested_types(&self) -> &'static [&'static str] {
        NESTED
    }

    /// What `xform compare` can measure of a column of this type.
    fn column_class(&self, data_type: &str) -> ColumnClass {
        let t = data_type.trim().to_ascii_uppercase();
        let is = |names: &[&str]| names.iter().any(|p| t.starts_with(p));
        if t.ends_with(']') || is(self.nested_types()) {
            ColumnClass::Nested
        } else if self.numeric_types().iter().any(|p| {
            t.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('('))
        }) {
            ColumnClass::Numeric
        } else if is(self.text_types()) {
            ColumnClass::Text
        } else {
            ColumnClass::Other
        }
    }

    /// Whether `a` equals `b` or both are NULL (`data_type` is theirs, when known), in a form
    /// the warehouse can join on fast.
    fn null_safe_equal(&self, a: &str, b: &str, _data_type: Option<&str>) -> String {
        format!("{a} IS NOT DISTINCT FROM {b}")
    }

    /// Whether `a` and `b` differ, a NULL differing from any value but NULL.
    fn distinct(&self, a: &str, b: &str) -> String {
        format!("{a} IS DISTINCT FROM {b}")
    }

    /// The type any value can be cast to as text, whole.
    fn text_type(&self) -> &'static str {
        "VARCHAR"
    }

    /// A hash (text) of `parts` (text expressions, never NULL) joined by `|`.
    fn hash_text(&self, parts: &[String]) -> String {
        format!("md5(concat_ws('|', {}))", parts.join(", "))
    }

    /// How the warehouse replaces rows in place: which incremental strategies it can run.
    fn replaces(&self) -> Replaces {
        Replaces::Rows
    }

    /// Whether `MERGE INTO t AS alias … WHEN MATCHED THEN DO NOTHING` is understood; else a
    /// merge is an `UPDATE … FROM` and an `INSERT … WHERE NOT EXISTS`.
    fn merges(&self) -> bool {
        true
    }

    /// Whether key matches are split by NULLs: new rows whose key has no NULL matched with
    /// plain `=` (which an index on the key serves), the others null-safely; else every row
    /// null-safely (`null_safe_equal`).
    fn splits_null_keys(&self) -> bool {
        false
    }

    /// Whether `DELETE FROM t AS alias` is understood; else the table is named by its own
    /// name in the condition.
    fn aliases_delete_target(&self) -> bool {
        true
    }

    /// The statements giving column `column` of `table` (quoted) the wider type `to`, its
    /// values kept.
    fn widen_column(&self, table: &str, column: &str, to: &str) -> Vec<String> {
        vec![format!(
            "ALTER TABLE {table} ALTER COLUMN {} TYPE {to}",
            self.quote(column)
        )]
    }

    /// Config keys of the physical layout of tables and views (sort and distribution keys,
    /// late binding) this warehouse applies.
    fn layout_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// `expr` (text) ordered byte by byte, whatever the database's collation.
    fn binary_order(&self, expr: &str) -> String {
        expr.to_string()
    }

    /// Every row of `from` as text — the key columns, then `columns` — ordered by the key's
    /// text byte by byte, NULLs first: two warehouses list the same rows in the same order.
    fn in_key_order(&self, from: &str, key: &[&str], columns: &[&str]) -> String {
        let text = |c: &&str| self.cast(&self.quote(c), self.text_type());
        let keys: Vec<String> = key.iter().map(text).collect();
        let order: Vec<String> = keys
            .iter()
            .map(|k| format!("{} NULLS FIRST", self.binary_order(k)))
            .collect();
        let values: Vec<String> = keys
            .iter()
            .cloned()
            .chain(columns.iter().map(text))
            .collect();
        format!(
            "SELECT {} FROM {from} ORDER BY {}",
            values.join(", "),
            order.join(", ")
        )
    }

    /// The longest name (of a schema, a relation) the warehouse keeps, in bytes, if it has a
    /// limit.
    fn max_identifier_bytes(&self) -> Option<usize> {
        None
    }

    /// Whether the warehouse has users and privileges (`grants` config applies).
    fn has_privileges(&self) -> bool {
        true
    }

    /// Whether descriptions are stored as comments (`persist_docs`).
    fn stores_comments(&self) -> bool {
        true
    }

    /// Whether a relation and what is recorded of its build can be published in one
    /// transaction (`--reuse` needs it).
    fn transactional(&self) -> bool {
        true
    }

    /// A query that succeeds on any working connection.
    fn probe(&self) -> String {
        "SELECT 1".into()
    }

    /// A FROM item with the columns of `from` and no rows (dbt's `--empty`), aliased as dbt
    /// aliases it.
    fn no_rows(&self, from: &str, name: &str) -> String {
        let alias = self.quote(&format!("_dbt_limit_subq_{name}"));
        format!("(select * from {from} where false limit 0) {alias}")
    }

    /// Every row of a FROM item.
    fn select_all(&self, from: &str) -> String {
        format!("select * from {from}")
    }

    /// `expr` converted to `data_type`.
    fn cast(&self, expr: &str, data_type: &str) -> String {
        format!("CAST({expr} AS {data_type})")
    }

    /// A JSON value as an SQL literal.
    fn literal(&self, v: &Json) -> String {
        let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match v {
            Json::Null => "NULL".into(),
            Json::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Json::Number(n) => n.to_string(),
            Json::String(s) => text(s),
            other => text(&other.to_string()),
        }
    }

    /// `sql`'s rows whose `column` lies in [start, end) (`YYYY-MM-DD HH:MM:SS` timestamps).
    fn time_range(&self, sql: &str, column: &str, start: &str, end: Option<&str>) -> String {
        let col = self.quote(column);
        let upper = end
            .map(|e| format!(" AND {col} < TIMESTAMP '{e}'"))
            .unwrap_or_default();
        format!(
            "SELECT * FROM (\n{}\n) AS __xform_batch\nWHERE {col} >= TIMESTAMP '{start}'{upper}",
            trim_statement(sql)
        )
    }

    /// One value: the latest `loaded_at` (an expression over `from`'s columns) of the rows
    /// `filter` keeps, in seconds since the Unix epoch (a double), NULL without rows.
    // Read only by the engines, which a build without any leaves out.
    #[cfg_attr(
        not(any(feature = "duckdb", feature = "postgres", feature = "spark")),
        allow(dead_code)
    )]
    fn latest_epoch(&self, from: &str, loaded_at: &str, filter: Option<&str>) -> String {
        let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
        let epoch = self.epoch_seconds(&format!("max({loaded_at})"));
        format!("SELECT {epoch} FROM {from}{filter}")
    }

    /// A timestamp as seconds since the Unix epoch, a double.
    fn epoch_seconds(&self, ts: &str) -> String {
        format!("CAST(extract(epoch FROM {ts}) AS double precision)")
    }

    /// A query listing `column_name, column_type` of a FROM item.
    fn describe(&self, from: &str) -> String;

    /// The docs catalog of these schemas (None where no one query lists it): one row per column with `table_schema, table_name,
    /// table_type, column_name, data_type, ordinal_position, row_count` (the relation's rows
    /// as the warehouse's statistics know them, or NULL).
    fn catalog(&self, schemas: &[String]) -> Option<String> {
        Some(catalog_query(("NULL", "", ""), &self.list(schemas)))
    }

    /// Text literals separated by commas.
    fn list(&self, values: &[String]) -> String {
        let lits: Vec<String> = values
            .iter()
            .map(|v| self.literal(&Json::from(v.as_str())))
            .collect();
        match lits.is_empty() {
            true => "NULL".into(),
            false => lits.join(", "),
        }
    }

    /// One row: `count(*)`, then per column the stats of its class, in [`ColumnClass::stats`]
    /// order.
    fn profile(&self, from: &str, columns: &[(&str, ColumnClass)]) -> String {
        let mut items = vec!["count(*)".to_string()];
        for (name, class) in columns {
            let c = self.quote(name);
            items.extend(class.stats().iter().map(|stat| match *stat {
                "nulls" => format!("count(*) - count({c})"),
                "distinct" => format!("count(DISTINCT {c})"),
                "min_length" => format!("min(length({c}))"),
                "max_length" => format!("max(length({c}))"),
                f => format!("{f}({c})"),
            }));
        }
        format!("SELECT {} FROM {from}", items.join(", "))
    }

    /// How many key values occur more than once in `from`.
    fn duplicate_keys(&self, from: &str, key: &[&str]) -> String {
        format!(
            "SELECT count(*) FROM (SELECT 1 FROM {from} GROUP BY {} HAVING count(*) > 1) AS d",
            self.quoted_list(key)
        )
    }

    /// Rows of `a` and `b` matched on `key` (NULL-safe) that differ: `__xform_diff` is
    /// `only_a`, `only_b` or `changed`, then the key columns, then `a.<col>`, `b.<col>` for
    /// each of `columns`; or, `KeyDiff::Counts`, how many of each kind.
    fn key_diff(
        &self,
        (a, b): (&str, &str),
        key: &[&str],
        columns: &[&str],
        want: KeyDiff,
    ) -> String {
        let diff = self.full_key_diff((a, b), key, columns);
        let KeyDiff::Rows { limit } = want else {
            return format!("SELECT __xform_diff, count(*) FROM ({diff}) AS d GROUP BY 1");
        };
        let order = self.quoted_list(key);
        let mut out = vec!["__xform_diff".to_string()];
        out.extend(key.iter().map(|k| self.quote(k)));
        for c in columns {
            out.extend(["a", "b"].map(|side| self.quote(&format!("{side}.{c}"))));
        }
        format!(
            "SELECT {0} FROM (SELECT *, row_number() OVER (PARTITION BY __xform_diff ORDER BY {order}) AS __xform_n FROM ({diff}) AS d) AS d WHERE __xform_n <= {limit} ORDER BY __xform_diff, {order}",
            out.join(", ")
        )
    }

    /// Every differing row of a key diff, unlimited (see `key_diff`).
    fn full_key_diff(&self, (a, b): (&str, &str), key: &[&str], columns: &[&str]) -> String {
        let q = |c: &str| self.quote(c);
        let on: Vec<String> = key
            .iter()
            .map(|k| self.null_safe_equal(&format!("a.{}", q(k)), &format!("b.{}", q(k)), None))
            .collect();
        let mut select = vec![
            "CASE WHEN b.__xform_b IS NULL THEN 'only_a' WHEN a.__xform_a IS NULL THEN 'only_b' ELSE 'changed' END AS __xform_diff".to_string(),
        ];
        select.extend(
            key.iter()
                .map(|k| format!("coalesce(a.{0}, b.{0}) AS {0}", q(k))),
        );
        let mut differ = vec![
            "a.__xform_a IS NULL".to_string(),
            "b.__xform_b IS NULL".to_string(),
        ];
        for c in columns {
            select.push(format!("a.{} AS {}", q(c), q(&format!("a.{c}"))));
            select.push(format!("b.{} AS {}", q(c), q(&format!("b.{c}"))));
            differ.push(self.distinct(&format!("a.{}", q(c)), &format!("b.{}", q(c))));
        }
        format!(
            "SELECT {}\nFROM (SELECT *, true AS __xform_a FROM {a}) AS a\nFULL OUTER JOIN (SELECT *, true AS __xform_b FROM {b}) AS b ON {}\nWHERE {}",
            select.join(", "),
            on.join(" AND "),
            differ.join(" OR ")
        )
    }

    /// A fixture as a query: one `SELECT` of literals per row, each cast to its column's type
    /// when known.
    fn fixture(&self, f: &Fixture) -> String {
        let select = |row: Option<&Vec<Json>>| {
            let items: Vec<String> = f
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, ty))| {
                    let lit = self.literal(row.and_then(|r| r.get(i)).unwrap_or(&Json::Null));
                    let value = ty.map_or_else(|| lit.clone(), |t| self.cast(&lit, t));
                    format!("{value} AS {}", self.quote(name))
                })
                .collect();
            format!("SELECT {}", items.join(", "))
        };
        if f.rows.is_empty() {
            return format!("{} WHERE false", select(None));
        }
        let rows: Vec<String> = f.rows.iter().map(|r| select(Some(r))).collect();
        rows.join("\nUNION ALL ")
    }

    /// `name AS (query)` for each CTE, then every row of `from`.
    fn with_ctes(&self, ctes: &[(String, String)], from: &str) -> String {
        let defs: Vec<String> = ctes
            .iter()
            .map(|(name, query)| format!("{} AS (\n{}\n)", self.quote(name), trim_statement(query)))
            .collect();
        format!("WITH {}\n{}", defs.join(",\n"), self.select_all(from))
    }

    /// Puts `name as (body)` CTEs (names already quoted) in front of `sql`, merging into its
    /// own leading `with` (after `recursive`).
    fn inject_ctes(&self, sql: &str, ctes: &[(String, &str)]) -> String {
        let defs: Vec<String> = ctes
            .iter()
            .map(|(name, body)| format!("{name} as (\n{body}\n)"))
            .collect();
        let defs = defs.join(",\n");
        let start = skip_space_and_comments(sql);
        match leading_with(&sql[start..]) {
            Some(len) => {
                let at = start + len;
                format!("{} {defs},{}", &sql[..at], &sql[at..])
            }
            None => format!("{}with {defs}\n{}", &sql[..start], &sql[start..]),
        }
    }

    /// A data test's model narrowed by its `where` config: a FROM item.
    fn filtered(&self, from: &str, condition: &str) -> String {
        format!("(select * from {from} where {condition}) dbt_subquery")
    }

    /// `a, b, c` quoted.
    fn quoted_list(&self, columns: &[&str]) -> String {
        let q: Vec<String> = columns.iter().map(|c| self.quote(c)).collect();
        q.join(", ")
    }
}

/// `sql` without trailing whitespace and semicolons.
pub(crate) fn trim_statement(sql: &str) -> &str {
    sql.trim_end().trim_end_matches(';').trim_end()
}

/// The length of a leading `with` (and `recursive`) keyword in `head`, if it has one.
fn leading_with(head: &str) -> Option<usize> {
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if !word.eq_ignore_ascii_case("with") {
        return None;
    }
    let after = &head[4..];
    let trimmed = after.trim_start();
    let recursive = trimmed
        .get(..9)
        .is_some_and(|w| w.eq_ignore_ascii_case("recursive"));
    Some(if recursive {
        4 + after.len() - trimmed.len() + 9
    } else {
        4
    })
}

fn skip_space_and_comments(sql: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &sql[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if trimmed.starts_with("/*") {
            i += trimmed.find("*/").map_or(trimmed.len(), |n| n + 2);
        } else {
            return i;
        }
    }
}

/// DuckDB: case-insensitive identifiers, files read in place, other files attached.
pub(crate) struct DuckDb;

impl Dialect for DuckDb {
    fn parser(&self) -> &'static dyn Parser {
        &DuckDbDialect {}
    }

    fn default_schema(&self) -> &'static str {
        "main"
    }

    fn has_privileges(&self) -> bool {
        false
    }

    /// DuckDB compares identifiers case-insensitively, quoted or not.
    fn fold_identifier(&self, ident: &str) -> String {
        ident.to_lowercase()
    }

    /// Relative paths resolve against the project directory (the warehouse is opened with it
    /// as its file search path).
    fn read_files(&self, format: &str, location: &str, hive_partitioned: bool) -> Option<String> {
        let reader = match format {
            "csv" => "read_csv",
            "json" => "read_json",
            _ => "read_parquet",
        };
        let path = self.literal(&Json::from(location));
        Some(match hive_partitioned {
            true => format!("{reader}({path}, hive_partitioning = true)"),
            false => format!("{reader}({path})"),
        })
    }

    fn attach(&self, path: &str, alias: &str) -> Option<String> {
        let path = self.literal(&Json::from(path));
        Some(format!(
            "ATTACH {path} AS {} (READ_ONLY)",
            self.quote(alias)
        ))
    }

    fn numeric_types(&self) -> &'static [&'static str] {
        &[
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
            "UHUGEINT",
            "FLOAT",
            "REAL",
            "DOUBLE",
            "DECIMAL",
            "NUMERIC",
            "INT",
            "INT4",
            "INT8",
            "INT2",
        ]
    }

    fn nested_types(&self) -> &'static [&'static str] {
        &["STRUCT", "MAP", "UNION", "LIST"]
    }

    fn describe(&self, from: &str) -> String {
        format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {from})")
    }

    fn epoch_seconds(&self, ts: &str) -> String {
        format!("CAST(epoch({ts}) AS DOUBLE)")
    }

    fn catalog(&self, schemas: &[String]) -> Option<String> {
        let rows = " LEFT JOIN duckdb_tables() d ON d.database_name = c.table_catalog \
             AND d.schema_name = c.table_schema AND d.table_name = c.table_name";
        let here = " AND c.table_catalog = current_database()";
        Some(catalog_query(
            ("d.estimated_size", rows, here),
            &self.list(schemas),
        ))
    }
}

/// PostgreSQL (and Redshift's wire): case-sensitive quoted identifiers.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    fn parser(&self) -> &'static dyn Parser {
        &PostgreSqlDialect {}
    }

    fn default_schema(&self) -> &'static str {
        "public"
    }

    fn numeric_types(&self) -> &'static [&'static str] {
        &[
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "REAL",
            "DOUBLE PRECISION",
            "NUMERIC",
            "DECIMAL",
            "INT",
            "INT2",
            "INT4",
            "INT8",
            "FLOAT4",
            "FLOAT8",
        ]
    }

    fn text_types(&self) -> &'static [&'static str] {
        &["CHARACTER", "VARCHAR", "TEXT", "CHAR", "BPCHAR"]
    }

    fn nested_types(&self) -> &'static [&'static str] {
        &["JSON", "JSONB", "SUPER"]
    }

    fn max_identifier_bytes(&self) -> Option<usize> {
        Some(63)
    }

    fn layout_keys(&self) -> &'static [&'static str] {
        &["indexes"]
    }

    /// A null-safe match cannot use an index on the key (measured: +1% of 10M rows merged by
    /// a scan of the whole table).
    fn splits_null_keys(&self) -> bool {
        true
    }

    /// Text sorts by the database's collation (often a locale's) unless told otherwise.
    fn binary_order(&self, expr: &str) -> String {
        format!("{expr} COLLATE \"C\"")
    }

    /// `IS NOT DISTINCT FROM` cannot be hashed or merged in a join: PostgreSQL plans a nested
    /// loop (2k new rows into 200k took 17 s against 91 ms, measured). Both sides coalesced to
    /// a value of their type, plus the equality of their NULL-ness, is exactly as null-safe
    /// and joins by hash.
    fn null_safe_equal(&self, a: &str, b: &str, data_type: Option<&str>) -> String {
        coalesced_equal(self, (a, b), data_type)
    }

    fn catalog(&self, schemas: &[String]) -> Option<String> {
        let rows = " LEFT JOIN pg_stat_user_tables s ON s.schemaname = c.table_schema \
             AND s.relname = c.table_name";
        Some(catalog_query(
            ("s.n_live_tup", rows, ""),
            &self.list(schemas),
        ))
    }

    /// Only a relation or a temporary table can be described from the catalog: `from` is its
    /// quoted name. Matched by name (no `regclass`, which Redshift lacks).
    fn describe(&self, from: &str) -> String {
        let parts = unquoted(from);
        let lit = |s: &str| self.literal(&Json::from(s));
        let (schema, name) = match &parts[..] {
            [.., schema, name] => (format!("n.nspname = {}", lit(schema)), name),
            [name] => ("pg_table_is_visible(c.oid)".to_string(), name),
            [] => ("false".to_string(), &String::new()),
        };
        format!(
            "SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = {} AND {schema} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            lit(name)
        )
    }
}

/// information_schema's columns of the relations in `schemas` (a list of literals), with
/// `row_count` from `rows` (an expression, and the join that gives it) and `here` narrowing
/// the rows further.
fn catalog_query((count, rows, here): (&str, &str, &str), schemas: &str) -> String {
    format!(
        "SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, \
         c.ordinal_position, {count} AS row_count \
         FROM information_schema.columns c JOIN information_schema.tables t \
         ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema \
         AND t.table_name = c.table_name{rows} \
         WHERE c.table_schema IN ({schemas}){here} ORDER BY 1, 2, 6"
    )
}

/// `a` and `b` both coalesced to a value of their type, plus the equality of their NULL-ness:
/// exactly null-safe, and a join on it can hash.
fn coalesced_equal(d: &dyn Dialect, (a, b): (&str, &str), data_type: Option<&str>) -> String {
    let ty = data_type.unwrap_or_default().to_ascii_lowercase();
    let zero = match d.column_class(&ty) {
        ColumnClass::Numeric => "0",
        ColumnClass::Text => "''",
        _ if ty == "boolean" => "false",
        _ if ty == "date" => "DATE '1970-01-01'",
        _ if ty.starts_with("timestamp") => "TIMESTAMP '1970-01-01'",
        // Of a type not known here, compared as text: as exact, and as hashable.
        _ => {
            let text = |x: &str| format!("coalesce(CAST({x} AS {}), '')", d.text_type());
            return format!(
                "{} = {} AND ({a} IS NULL) = ({b} IS NULL)",
                text(a),
                text(b)
            );
        }
    };
    format!("coalesce({a}, {zero}) = coalesce({b}, {zero}) AND ({a} IS NULL) = ({b} IS NULL)")
}

/// The parts of a name quoted with double quotes (`"a"."b""c"` → `a`, `b"c`).
fn unquoted(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                part.push('"');
            }
            ('"', _) => quoted = !quoted,
            ('.', false) => parts.push(std::mem::take(&mut part)),
            (c, _) => part.push(c),
        }
    }
    parts.push(part);
    parts
}

/// Amazon Redshift: PostgreSQL 8's SQL over its wire, with identifiers folded to lower case
/// (quoted or not), text sized in bytes (`VARCHAR` alone is 256 of them), and no `IS [NOT]
/// DISTINCT FROM`, `COLLATE`, `concat_ws`, target aliases in `DELETE` or `MERGE … DO NOTHING`.
pub(crate) struct Redshift;

impl Dialect for Redshift {
    fn parser(&self) -> &'static dyn Parser {
        &RedshiftSqlDialect {}
    }

    fn default_schema(&self) -> &'static str {
        "public"
    }

    /// Redshift folds every identifier to lower case: so does xform, so that the names it
    /// writes and the names the catalog lists are the same.
    fn quote(&self, ident: &str) -> String {
        Postgres.quote(&ident.to_lowercase())
    }

    fn fold_identifier(&self, ident: &str) -> String {
        ident.to_lowercase()
    }

    fn stored_name(&self, ident: &str) -> String {
        ident.to_lowercase()
    }

    fn numeric_types(&self) -> &'static [&'static str] {
        Postgres.numeric_types()
    }

    fn text_types(&self) -> &'static [&'static str] {
        Postgres.text_types()
    }

    fn nested_types(&self) -> &'static [&'static str] {
        &["SUPER"]
    }

    fn max_identifier_bytes(&self) -> Option<usize> {
        Some(127)
    }

    fn null_safe_equal(&self, a: &str, b: &str, data_type: Option<&str>) -> String {
        coalesced_equal(self, (a, b), data_type)
    }

    /// Exact where `IS DISTINCT FROM` is not implemented: an unknown comparison (a NULL side)
    /// counts as equal only when both sides are NULL.
    fn distinct(&self, a: &str, b: &str) -> String {
        format!("(coalesce({a} <> {b}, false) OR ({a} IS NULL) <> ({b} IS NULL))")
    }

    fn text_type(&self) -> &'static str {
        "VARCHAR(65535)"
    }

    fn hash_text(&self, parts: &[String]) -> String {
        let joined: Vec<String> = parts.iter().map(|p| format!("coalesce({p}, '')")).collect();
        format!("md5({})", joined.join(" || '|' || "))
    }

    fn merges(&self) -> bool {
        false
    }

    fn splits_null_keys(&self) -> bool {
        true
    }

    fn aliases_delete_target(&self) -> bool {
        false
    }

    fn layout_keys(&self) -> &'static [&'static str] {
        &["dist", "sort", "sort_type", "backup", "bind"]
    }

    /// `ALTER COLUMN … TYPE` cannot run in a transaction there: a new column takes the
    /// values and the old one's place (it moves to the end; inserts name their columns).
    fn widen_column(&self, table: &str, column: &str, to: &str) -> Vec<String> {
        let (old, new) = (
            self.quote(column),
            self.quote(&format!("{column}__xform_wide")),
        );
        vec![
            format!("ALTER TABLE {table} ADD COLUMN {new} {to}"),
            format!("UPDATE {table} SET {new} = {old}"),
            format!("ALTER TABLE {table} DROP COLUMN {old}"),
            format!("ALTER TABLE {table} RENAME COLUMN {new} TO {old}"),
        ]
    }

    fn describe(&self, from: &str) -> String {
        Postgres.describe(from)
    }
}

/// Apache Spark SQL (over Spark Connect): backticks, names folded to lower case as its catalog
/// stores them, text literals with backslash escapes, `<=>` for null-safe equality, files read
/// in place (`parquet.`path``), and no row-level changes on its default catalog (no `DELETE`,
/// `UPDATE` or `MERGE` without Delta or Iceberg): rows are replaced a partition at a time.
pub(crate) struct Spark;

impl Dialect for Spark {
    fn parser(&self) -> &'static dyn Parser {
        &DatabricksDialect {}
    }

    fn default_schema(&self) -> &'static str {
        "default"
    }

    fn quote(&self, ident: &str) -> String {
        format!("`{}`", ident.replace('`', "``"))
    }

    fn fold_identifier(&self, ident: &str) -> String {
        ident.to_lowercase()
    }

    fn stored_name(&self, ident: &str) -> String {
        ident.to_lowercase()
    }

    /// Spark discovers `dt=` partition folders itself, below the folder before the first
    /// `*` or `=` of a pattern; CSV files have a header and typed columns.
    fn read_files(&self, format: &str, location: &str, hive_partitioned: bool) -> Option<String> {
        let format = match format {
            "csv" | "json" | "orc" => format,
            _ => "parquet",
        };
        let mut options = Vec::new();
        if format == "csv" {
            options.extend([
                "'header' = 'true'".to_string(),
                "'inferSchema' = 'true'".into(),
            ]);
        }
        let parts: Vec<&str> = location.split('/').collect();
        let base = parts.iter().position(|p| p.contains(['*', '=', '?', '[']));
        if let Some(at) = base.filter(|&at| hive_partitioned && at > 0) {
            let base = parts[..at].join("/");
            options.push(format!("'basePath' = {}", self.literal(&Json::from(base))));
        }
        let with = match options.is_empty() {
            true => String::new(),
            false => format!(" WITH ({})", options.join(", ")),
        };
        Some(format!("{format}.{}{with}", self.quote(location)))
    }

    fn absolute_paths(&self) -> bool {
        true
    }

    fn numeric_types(&self) -> &'static [&'static str] {
        &[
            "TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "FLOAT", "REAL", "DOUBLE",
            "DECIMAL", "NUMERIC", "DEC", "BYTE", "SHORT", "LONG",
        ]
    }

    fn text_types(&self) -> &'static [&'static str] {
        &["STRING", "VARCHAR", "CHAR"]
    }

    fn has_privileges(&self) -> bool {
        false
    }

    fn replaces(&self) -> Replaces {
        Replaces::Partitions
    }

    /// A table is published as a view over its newest version: comments are not carried.
    fn stores_comments(&self) -> bool {
        false
    }

    fn transactional(&self) -> bool {
        false
    }

    fn merges(&self) -> bool {
        false
    }

    fn null_safe_equal(&self, a: &str, b: &str, _data_type: Option<&str>) -> String {
        format!("{a} <=> {b}")
    }

    fn distinct(&self, a: &str, b: &str) -> String {
        format!("NOT ({a} <=> {b})")
    }

    fn text_type(&self) -> &'static str {
        "STRING"
    }

    fn layout_keys(&self) -> &'static [&'static str] {
        &["partition_by", "file_format"]
    }

    /// Spark reads `\` in a literal as an escape: a quote and a backslash are escaped so.
    fn literal(&self, v: &Json) -> String {
        match v {
            Json::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Json::Null | Json::Bool(_) | Json::Number(_) => DuckDb.literal(v),
            other => self.literal(&Json::from(other.to_string())),
        }
    }

    fn describe(&self, from: &str) -> String {
        format!("DESCRIBE QUERY SELECT * FROM {from}")
    }

    fn epoch_seconds(&self, ts: &str) -> String {
        format!("CAST(unix_micros(CAST({ts} AS TIMESTAMP)) AS DOUBLE) / 1000000")
    }

    /// The spark_catalog has no `information_schema`: its columns are listed a relation at a
    /// time, not by one query.
    fn catalog(&self, _schemas: &[String]) -> Option<String> {
        None
    }
}

/// A made-up second dialect for unit tests: backticks, and only what every dialect must say.
#[cfg(test)]
pub(crate) struct Backticks;

#[cfg(test)]
impl Dialect for Backticks {
    fn parser(&self) -> &'static dyn Parser {
        &sqlparser::dialect::GenericDialect {}
    }
    fn default_schema(&self) -> &'static str {
        "default"
    }
    fn quote(&self, ident: &str) -> String {
        format!("`{}`", ident.replace('`', "``"))
    }
    fn describe(&self, from: &str) -> String {
        format!("DESCRIBE {from}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement xform writes, in dialect `d`, naming the columns `id` and `amount`.
    fn every_statement(d: &dyn Dialect) -> Vec<String> {
        let rel = d.relation(&Relation::new("analytics", "orders"));
        let rows = [vec![Json::from(1), Json::from("kim")]];
        let fixture = Fixture {
            columns: vec![("id", Some("INTEGER")), ("amount", None)],
            rows: &rows,
        };
        vec![
            rel.clone(),
            d.time_range(
                "select 1",
                "amount",
                "2026-01-01 00:00:00",
                Some("2026-01-02 00:00:00"),
            ),
            d.describe(&rel),
            d.profile(&rel, &[("amount", ColumnClass::Numeric)]),
            d.duplicate_keys(&rel, &["id"]),
            d.key_diff((&rel, &rel), &["id"], &["amount"], KeyDiff::Counts),
            d.key_diff(
                (&rel, &rel),
                &["id"],
                &["amount"],
                KeyDiff::Rows { limit: 5 },
            ),
            d.fixture(&fixture),
            d.with_ctes(&[("amount".into(), "select 1".into())], &d.quote("id")),
            d.inject_ctes("select 1", &[(d.quote("id"), "select 2")]),
            d.filtered(&rel, "1 = 1"),
            d.select_all(&rel),
            d.widen_column(&rel, "amount", "BIGINT").join(";\n"),
            d.in_key_order(&rel, &["id"], &["amount"]),
            d.no_rows(&rel, "orders"),
            d.latest_epoch(&rel, &d.quote("amount"), Some("1 = 1")),
            d.full_key_diff((&rel, &rel), &["id"], &["amount"]),
            d.quoted_list(&["id", "amount"]),
        ]
    }

    #[test]
    fn every_statement_switches_with_the_dialect() {
        for sql in every_statement(&Backticks) {
            assert!(sql.contains('`'), "no backtick in {sql}");
            assert!(!sql.contains('"'), "a double quote in {sql}");
            assert!(!sql.to_uppercase().contains("QUALIFY"), "QUALIFY in {sql}");
        }
        for sql in every_statement(&DuckDb) {
            assert!(!sql.contains('`'), "a backtick in {sql}");
        }
        assert_eq!(Backticks.read_files("parquet", "x", false), None);
        assert_eq!(Backticks.attach("x.duckdb", "x"), None);
        assert_eq!(
            DuckDb.read_files("csv", "raw/o'k.csv", true).as_deref(),
            Some("read_csv('raw/o''k.csv', hive_partitioning = true)")
        );
    }

    #[test]
    fn spark_writes_backticks_escaped_literals_and_its_own_null_safe_forms() {
        let every = every_statement(&Spark).join("\n");
        assert!(!every.contains('"'), "{every}");
        assert!(!every.contains("DISTINCT FROM"), "{every}");
        assert_eq!(Spark.quote("a`b"), "`a``b`");
        assert_eq!(
            Spark.literal(&Json::from("it's C:\\dir")),
            "'it\\'s C:\\\\dir'"
        );
        assert_eq!(
            Spark
                .read_files("csv", "/lake/events/dt=*/views.csv", true)
                .as_deref(),
            Some(
                "csv.`/lake/events/dt=*/views.csv` WITH ('header' = 'true', 'inferSchema' = 'true', 'basePath' = '/lake/events')"
            )
        );
        assert_eq!(
            Spark.read_files("parquet", "/lake/events", true).as_deref(),
            Some("parquet.`/lake/events`")
        );
        assert_eq!(Spark.column_class("decimal(12,2)"), ColumnClass::Numeric);
        assert_eq!(Spark.column_class("string"), ColumnClass::Text);
        assert_eq!(Spark.column_class("array<int>"), ColumnClass::Nested);
    }

    #[test]
    fn type_vocabulary() {
        assert_eq!(DuckDb.column_class("DECIMAL(12,2)"), ColumnClass::Numeric);
        assert_eq!(DuckDb.column_class("HUGEINT"), ColumnClass::Numeric);
        assert_eq!(DuckDb.column_class("INTERVAL"), ColumnClass::Other);
        assert_eq!(DuckDb.column_class("INTEGER[]"), ColumnClass::Nested);
        assert_eq!(DuckDb.column_class("VARCHAR"), ColumnClass::Text);
        assert_eq!(
            Postgres.column_class("character varying(20)"),
            ColumnClass::Text
        );
        assert_eq!(Postgres.column_class("numeric(12,2)"), ColumnClass::Numeric);
    }

    #[test]
    fn quoted_names_read_back_into_their_parts() {
        assert_eq!(unquoted("\"a\".\"b\"\"c.d\""), ["a", "b\"c.d"]);
        assert_eq!(unquoted("\"tmp\""), ["tmp"]);
    }

    #[test]
    fn redshift_folds_names_and_writes_null_safe_forms_it_has() {
        let r = Redshift;
        assert_eq!(r.quote("Orders"), "\"orders\"");
        let d = r.distinct("a", "b");
        assert!(!d.contains("DISTINCT"), "{d}");
        let every = every_statement(&r).join("\n");
        assert!(!every.contains("DISTINCT FROM"), "{every}");
        assert!(!every.contains("AS VARCHAR)"), "{every}");
        assert_eq!(r.column_class("SUPER"), ColumnClass::Nested);
    }

    #[test]
    fn merges_into_an_existing_with() {
        let out = DuckDb.inject_ctes(
            "-- hi\nWITH a as (select 1) select * from a",
            &[("\"e\"".into(), "select 2")],
        );
        assert_eq!(
            out,
            "-- hi\nWITH \"e\" as (\nselect 2\n), a as (select 1) select * from a"
        );
    }

    #[test]
    fn korean_text_after_with_is_not_sliced_mid_character() {
        let out = DuckDb.inject_ctes(
            "with a가나다 as (select 1) select * from a가나다",
            &[("\"e\"".into(), "select 2")],
        );
        assert_eq!(
            out,
            "with \"e\" as (\nselect 2\n), a가나다 as (select 1) select * from a가나다"
        );
    }

    #[test]
    fn prepends_a_with() {
        let out = DuckDb.inject_ctes("\nselect 1", &[("\"e\"".into(), "select 2")]);
        assert_eq!(out, "\nwith \"e\" as (\nselect 2\n)\nselect 1");
        let out = DuckDb.inject_ctes(
            "with recursive r as (select 1) select 1",
            &[("e".into(), "x")],
        );
        assert_eq!(out, "with recursive e as (\nx\n), r as (select 1) select 1");
    }
}
