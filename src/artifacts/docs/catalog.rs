//! The warehouse's view of the project's relations: column names and types and row counts,
//! as `target/catalog.json` in dbt's shape.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value as Json, json};

use super::super::atomic_write;
use crate::compile::Compiled;
use crate::project::NodeKind;
use crate::sql::Relation;

/// One relation as the warehouse describes it.
#[derive(Debug, Default)]
pub(crate) struct CatalogRelation {
    /// `BASE TABLE`, `VIEW`, ...
    pub(crate) kind: String,
    /// (name, type) in the relation's order.
    pub(crate) columns: Vec<(String, String)>,
    pub(crate) rows: Option<u64>,
}

/// Relations by (schema, name), in lower case.
#[derive(Debug, Default)]
pub(crate) struct Catalog(HashMap<(String, String), CatalogRelation>);

impl Catalog {
    /// From the rows of `Dialect::catalog`: schema, name, kind, column, type, position,
    /// row count.
    pub(crate) fn from_rows(rows: Vec<Vec<Option<String>>>) -> Catalog {
        let mut out: HashMap<(String, String), CatalogRelation> = HashMap::new();
        for row in rows {
            let text = |k: usize| row.get(k).cloned().flatten().unwrap_or_default();
            let key = (text(0).to_lowercase(), text(1).to_lowercase());
            let r = out.entry(key).or_default();
            r.kind = text(2);
            r.columns.push((text(3), text(4)));
            r.rows = text(6).parse::<f64>().ok().map(|n| n.max(0.0) as u64);
        }
        Catalog(out)
    }

    pub(crate) fn get(&self, r: &Relation) -> Option<&CatalogRelation> {
        self.0
            .get(&(r.schema.to_lowercase(), r.name.to_lowercase()))
    }

    /// The column names of each node the warehouse has, by unique id.
    pub(crate) fn columns_by_id(&self, c: &Compiled) -> HashMap<String, Vec<String>> {
        (c.nodes().iter().enumerate())
            .filter_map(|(i, n)| {
                let r = self.get(c.relations[i].as_ref()?)?;
                let names = r.columns.iter().map(|c| c.0.clone()).collect();
                Some((n.unique_id.clone(), names))
            })
            .collect()
    }
}

/// `catalog.json`: `nodes` (models, seeds, snapshots) and `sources` the warehouse has.
pub(crate) fn write(
    path: &Path,
    c: &Compiled,
    catalog: &Catalog,
    generated_at: &str,
) -> std::io::Result<()> {
    let mut nodes = serde_json::Map::new();
    let mut sources = serde_json::Map::new();
    for (i, n) in c.nodes().iter().enumerate() {
        let Some((rel, r)) = c.relations[i]
            .as_ref()
            .and_then(|rel| Some((rel, catalog.get(rel)?)))
        else {
            continue;
        };
        let entry = entry_json(&n.unique_id, rel, r);
        match n.kind {
            NodeKind::Source => sources.insert(n.unique_id.clone(), entry),
            _ => nodes.insert(n.unique_id.clone(), entry),
        };
    }
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
            "xform_version": env!("CARGO_PKG_VERSION"),
            "generated_at": generated_at,
        },
        "nodes": nodes,
        "sources": sources,
        "errors": null,
    });
    atomic_write(path, |w| {
        serde_json::to_writer(&mut *w, &doc).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

fn entry_json(unique_id: &str, rel: &Relation, r: &CatalogRelation) -> Json {
    let columns: serde_json::Map<String, Json> = (r.columns.iter().enumerate())
        .map(|(k, (name, typ))| {
            let col = json!({"type": typ, "index": k + 1, "name": name, "comment": null});
            (name.clone(), col)
        })
        .collect();
    let mut stats = serde_json::Map::new();
    if let Some(rows) = r.rows {
        let row_count = json!({"id": "row_count", "label": "Row Count", "value": rows,
            "include": true, "description": "Rows as the warehouse's statistics count them"});
        stats.insert("row_count".into(), row_count);
    }
    let has = json!({"id": "has_stats", "label": "Has Stats?", "value": r.rows.is_some(),
        "include": false, "description": "Whether the warehouse has statistics of it"});
    stats.insert("has_stats".into(), has);
    json!({
        "metadata": {"type": r.kind, "schema": rel.schema, "name": rel.name,
            "database": rel.database, "comment": null, "owner": null},
        "columns": columns,
        "stats": stats,
        "unique_id": unique_id,
    })
}
