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

    /// The fixture with each target on the project's DuckDB file (`name: { type: duckdb,
    /// path: target/dev.duckdb, … }`) on the server instead, its threads and schema prefix
    /// kept (behind the test's own).
    fn retarget(&self, fixture: &str) -> String {
        let Warehouse::Postgres(pg) = self else {
            return fixture.to_string();
        };
        let setting = |rest: &str, key: &str| {
            let value = rest.split(&format!("{key}: ")).nth(1)?;
            Some(value.split([',', '}']).next()?.trim().to_string())
        };
        fixture
            .lines()
            .map(|l| {
                let Some((name, rest)) = l
                    .trim_start()
                    .split_once(": { type: duckdb, path: target/dev.duckdb")
                else {
                    return format!("{l}\n");
                };
                let threads = setting(rest, "threads")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(1);
                let prefix = setting(rest, "schema_prefix").unwrap_or_default();
                let target = pg.target(threads).replace(
                    &format!("schema_prefix: {}", pg.prefix),
                    &format!("schema_prefix: {}{prefix}", pg.prefix),
                );
                format!("  {name}: {target}\n")
            })
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

    /// (`schema.name`, `BASE TABLE`|`VIEW`) of every relation the project built, sorted; on
    /// the server without the test's prefix.
    pub fn relations(&self, dir: &Path) -> Vec<(String, String)> {
        let Warehouse::Postgres(pg) = self else {
            return crate::build::relations(dir);
        };
        let sql = format!(
            "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables \
             WHERE table_schema LIKE '{}%' ORDER BY 1",
            pg.prefix
        );
        let name = |r: &str| {
            r.strip_prefix(&pg.prefix)
                .unwrap_or(r)
                .replace("public.", "main.")
        };
        self.query(dir, &sql)
            .into_iter()
            .map(|r| (name(&r[0]), r[1].clone()))
            .collect()
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
