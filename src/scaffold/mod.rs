//! `xform init DIR`: a small working project (DuckDB target, one seed, two models, tests),
//! whose files are those under `src/scaffold/project/`.

use std::path::Path;

use crate::artifacts;

/// Each file of the new project: its path and text.
const FILES: &[(&str, &str)] = &[
    ("project.yml", include_str!("project/project.yml")),
    (
        "seeds/raw_orders.csv",
        include_str!("project/seeds/raw_orders.csv"),
    ),
    (
        "models/staging/stg_orders.sql",
        include_str!("project/models/staging/stg_orders.sql"),
    ),
    (
        "models/mart/daily_sales.sql",
        include_str!("project/models/mart/daily_sales.sql"),
    ),
    (
        "models/schema.yml",
        include_str!("project/models/schema.yml"),
    ),
    (
        "tests/assert_no_negative_revenue.sql",
        include_str!("project/tests/assert_no_negative_revenue.sql"),
    ),
    (".gitignore", "target/\n"),
];

/// Writes the scaffold into `dir`, which must be missing or empty.
pub(crate) fn init(dir: &Path) -> Result<(), String> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(format!(
            "{} exists and is not empty; choose a new folder",
            dir.display()
        ));
    }
    artifacts::write_new_project(dir, FILES)
}
