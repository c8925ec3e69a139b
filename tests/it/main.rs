//! xform's integration tests: one binary, modules per area. Projects are inline strings with
//! `-- file: path` headers (xform reads .sql/.yml under tests/, so fixtures are never .sql).

mod build;
mod dbt_projects;
mod deps;
mod docs;
mod errors;
mod fuzz;
mod harness;
mod incremental;
mod lineage;
mod on_postgres;
mod on_redshift;
mod on_spark;
mod regressions;
mod reliability;
mod render;
mod reuse;
mod select;
mod state;
mod testing;
mod tidy;
mod warehouses;
