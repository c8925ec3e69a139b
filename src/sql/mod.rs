//! Everything xform knows about SQL text, and nothing else of the crate: the dialect of each
//! warehouse kind (`Dialect`: quoting, relation names, the types it has, every statement xform
//! writes of its own) and sqlparser's reading of compiled models (`analyze`, `canonical`).
//! A leaf: it imports no other module of xform, so every layer may use it.

mod analyze;
mod dialect;
mod lineage;

pub(crate) use analyze::{Analysis, analyze, canonical, tokens};
#[cfg(test)]
pub(crate) use dialect::Backticks;
pub(crate) use dialect::{ColumnClass, Dialect, Fixture, KeyDiff, Kind, Replaces, trim_statement};
pub(crate) use lineage::{Known, Origin, lineage};

/// A relation by its unquoted parts; `database` is the catalog (an attached DuckDB file, a
/// Spark catalog), None for the warehouse's own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Relation {
    pub(crate) database: Option<String>,
    pub(crate) schema: String,
    pub(crate) name: String,
}

impl Relation {
    pub(crate) fn new(schema: impl Into<String>, name: impl Into<String>) -> Relation {
        Relation {
            database: None,
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{db}.")?;
        }
        write!(f, "{}.{}", self.schema, self.name)
    }
}
