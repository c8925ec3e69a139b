//! One harness, two targets: a suite written once runs on DuckDB and on the PostgreSQL server
//! of `XFORM_TEST_POSTGRES` (skipped without it; `postgres_is_configured_in_ci` guards CI).
//! A test takes a `&Warehouse`, writes its project through it (the `dev` target pointed at
//! that warehouse) and reads relations back through it; `both!` makes the two tests.

use std::path::Path;

use crate::harness::{BASE_PROJECT, write_files};
use crate::on_postgres::Pg;

pub enum Warehouse {
    DuckDb,
    /// The server, with schemas of the test's own (`xt_<pid>_<n>_…`), dropped at the end.
    Postgres(Pg),
}

/// `both!(case)`: `case(&Warehouse)` as two tests, `case::duckdb` and `case::postgres`.
macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn duckdb() {
                super::$case(&crate::warehouses::Warehouse::DuckDb)
            }
            #[test]
            fn postgres() {
                if let Some(w) = crate::warehouses::Warehouse::postgres() {
                    super::$case(&w)
                }
            }
        }
    )*};
}
pub(crate) use both;

impl Warehouse {
    /// The server, or None (the test is skipped) when none is configured.
    pub fn postgres() -> Option<Warehouse> {
        Pg::new().map(Warehouse::Postgres)
    }

    /// Writes a project as `harness::project` does, its `dev` target (a DuckDB file in the
    /// fixture) pointed at this warehouse. A new project starts from an empty warehouse, as
    /// a new DuckDB file does: on the server, the test's schemas are dropped.
    pub fn project(&self, fixture: &str) -> tempfile::TempDir {
        if let Warehouse::Postgres(pg) = self {
            pg.drop_schemas();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = match fixture.contains("-- file: project.yml") {
            true => fixture.to_string(),
            false => format!("-- file: project.yml\n{BASE_PROJECT}{fixture}"),
        };
        write_files(dir.path(), &self.retarget(&fixture));
        dir
    }

    fn retarget(&self, fixture: &str) -> String {
        let Warehouse::Postgres(pg) = self else {
            return fixture.to_string();
        };
        fixture
            .lines()
            .map(
                |l| match l.trim_start().strip_prefix("dev: { type: duckdb") {
                    Some(rest) => {
                        let threads = rest
                            .split("threads: ")
                            .nth(1)
                            .and_then(|t| t.trim_end_matches([' ', '}']).parse().ok())
                            .unwrap_or(1);
                        format!("  dev: {}\n", pg.target(threads))
                    }
                    None => format!("{l}\n"),
                },
            )
            .collect()
    }

    /// Schema `schema` as the warehouse names it: DuckDB's default `main` is PostgreSQL's
    /// `public`, and each of the test's schemas carries its prefix there.
    pub fn schema(&self, schema: &str) -> String {
        match self {
            Warehouse::DuckDb => schema.to_string(),
            Warehouse::Postgres(pg) if schema == "main" => pg.schema("public"),
            Warehouse::Postgres(pg) => pg.schema(schema),
        }
    }

    /// `schema.name` of a relation the project built.
    pub fn rel(&self, schema: &str, name: &str) -> String {
        format!("{}.{name}", self.schema(schema))
    }

    /// Every value of a query as text (NULL as "NULL").
    pub fn query(&self, dir: &Path, sql: &str) -> Vec<Vec<String>> {
        match self {
            Warehouse::DuckDb => crate::build::query(dir, sql),
            Warehouse::Postgres(pg) => pg.query(sql),
        }
    }

    /// A table's column names in order.
    pub fn columns(&self, dir: &Path, schema: &str, table: &str) -> Vec<String> {
        let sql = format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = '{}' \
             AND table_name = '{table}' ORDER BY ordinal_position",
            self.schema(schema)
        );
        self.query(dir, &sql)
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    }
}
