//! Warehouses: everything that differs between DuckDB, PostgreSQL and later engines.
//!
//! For now this is the offline half of an adapter: identifier quoting, default schema and the
//! SQL dialect used to check compiled models. Connections, relation swaps and transactions
//! arrive with the runner; nothing outside this module may branch on the warehouse kind.

use sqlparser::dialect::{Dialect, DuckDbDialect, PostgreSqlDialect};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    DuckDb,
    Postgres,
}

impl AdapterKind {
    pub const NAMES: &'static [&'static str] = &["duckdb", "postgres"];

    pub fn parse(name: &str) -> Option<AdapterKind> {
        match name {
            "duckdb" => Some(AdapterKind::DuckDb),
            "postgres" | "postgresql" => Some(AdapterKind::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::DuckDb => "duckdb",
            AdapterKind::Postgres => "postgres",
        }
    }

    /// The schema a relation lands in when nothing configures one.
    pub fn default_schema(self) -> &'static str {
        match self {
            AdapterKind::DuckDb => "main",
            AdapterKind::Postgres => "public",
        }
    }

    /// A quoted identifier; embedded quotes are doubled, so any name is safe.
    pub fn quote(self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    /// `"schema"."name"`.
    pub fn relation(self, schema: &str, name: &str) -> String {
        format!("{}.{}", self.quote(schema), self.quote(name))
    }

    pub fn sql_dialect(self) -> Box<dyn Dialect + Send + Sync> {
        match self {
            AdapterKind::DuckDb => Box::new(DuckDbDialect {}),
            AdapterKind::Postgres => Box::new(PostgreSqlDialect {}),
        }
    }
}
