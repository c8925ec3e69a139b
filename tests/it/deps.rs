//! `xform deps` as `dbt deps`: local and git packages, dbt's package hub (a hub served on
//! loopback, with real tarballs), package-lock.yml written as dbt writes it and followed when
//! it is up to date, and a failed install that leaves the installed packages as they were.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use crate::harness::{write_files, xform, xform_env};

/// `xform deps` installs packages.yml as `dbt deps` does: a `local:` package linked, a `git:`
/// package cloned at its revision (and the packages it declares itself), pinned to its commit
/// in package-lock.yml.
#[test]
fn deps_installs_local_and_git_packages() {
    let top = tempfile::tempdir().expect("temp dir");
    let repo = top.path().join("dates_repo");
    write_files(
        top.path(),
        "-- file: shop/dbt_project.yml\nname: shop\nprofile: shop\n\
         -- file: shop/packages.yml\npackages:\n  - local: ../helpers\n\
         -- file: shop/profiles.yml\nshop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/dev.duckdb\n\
         -- file: shop/models/today.sql\nselect {{ helpers.one() }} + {{ dates.two() }} as three\n\
         -- file: helpers/dbt_project.yml\nname: helpers\n\
         -- file: helpers/macros/one.sql\n{% macro one() %}1{% endmacro %}\n\
         -- file: dates_repo/dbt_project.yml\nname: dates\n\
         -- file: dates_repo/macros/two.sql\n{% macro two() %}2{% endmacro %}\n",
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "v1"]);
    git(&["tag", "v1.0"]);
    let commit = git(&["rev-parse", "HEAD"]);
    std::fs::write(
        top.path().join("helpers/packages.yml"),
        format!(
            "packages:\n  - git: \"{}\"\n    revision: v1.0\n",
            repo.display()
        ),
    )
    .unwrap();
    let shop = top.path().join("shop");
    let out = xform(&shop, &["deps"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("installed helpers") && out.stdout.contains("installed dates"),
        "{}",
        out.stdout
    );
    assert!(shop.join("dbt_packages/dates/macros/two.sql").is_file());
    assert!(!shop.join("dbt_packages/dates/.git").exists());
    let lock = std::fs::read_to_string(shop.join("package-lock.yml")).unwrap();
    assert!(
        lock.contains(&format!("    revision: {commit}\n"))
            && lock.contains("  - local: ../helpers\n    name: helpers\n"),
        "{lock}"
    );
    let built = xform(&shop, &["build"]);
    assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);
    assert_eq!(
        crate::build::query(&shop, "select three from today"),
        [["3".to_string()]]
    );
    // A branch, not a tag: said at its line, and installed.
    std::fs::write(
        shop.join("packages.yml"),
        format!("packages:\n  - git: \"{}\"\n", repo.display()),
    )
    .unwrap();
    let unpinned = xform(&shop, &["deps"]);
    assert_eq!(unpinned.code, 0, "{}", unpinned.stderr);
    assert!(
        unpinned.stderr.contains("not pinned") && unpinned.stderr.contains("packages.yml:2"),
        "{}",
        unpinned.stderr
    );
    assert!(!shop.join("dbt_packages/helpers").exists());

    // What a git option would run is refused, and so is a subdirectory outside the clone;
    // the packages a killed `deps` had moved aside (its staging folder) come back first.
    let aside = shop.join("dbt_packages/.xform-deps-999999999/previous/kept");
    std::fs::create_dir_all(&aside).unwrap();
    std::fs::write(aside.join("dbt_project.yml"), "name: kept\n").unwrap();
    let marker = top.path().join("ran");
    for bad in [
        format!("revision: \"--upload-pack=touch {}\"", marker.display()),
        "subdirectory: ../..\n    name: escaped".to_string(),
    ] {
        std::fs::write(
            shop.join("packages.yml"),
            format!("packages:\n  - git: \"{}\"\n    {bad}\n", repo.display()),
        )
        .unwrap();
        let refused = xform(&shop, &["deps"]);
        assert_eq!(refused.code, 2, "{bad}: {}", refused.stdout);
        assert!(
            refused.stderr.contains("packages.yml:2"),
            "{}",
            refused.stderr
        );
    }
    assert!(!marker.exists(), "git ran an option from packages.yml");
    assert!(shop.join("dbt_packages/kept/dbt_project.yml").is_file());
    assert!(shop.join("dbt_packages/dates/macros/two.sql").is_file());
}

/// One version of a package on the test hub: its version, the dbt versions it supports, the
/// packages it needs (JSON), and its macro.
struct Release {
    package: &'static str,
    name: &'static str,
    version: &'static str,
    dbt: &'static str,
    needs: &'static str,
    macro_sql: &'static str,
}

const RELEASES: &[Release] = &[
    Release {
        package: "acme/dates",
        name: "dates",
        version: "1.0.0",
        dbt: r#"[">=1.0.0", "<2.0.0"]"#,
        needs: "[]",
        macro_sql: "{% macro two() %}10{% endmacro %}",
    },
    Release {
        package: "acme/dates",
        name: "dates",
        version: "1.2.0",
        dbt: r#"[">=1.0.0", "<2.0.0"]"#,
        needs: "[]",
        macro_sql: "{% macro two() %}2{% endmacro %}",
    },
    Release {
        package: "acme/dates",
        name: "dates",
        version: "1.3.0-rc1",
        dbt: r#"[">=1.0.0", "<2.0.0"]"#,
        needs: "[]",
        macro_sql: "{% macro two() %}20{% endmacro %}",
    },
    Release {
        package: "acme/dates",
        name: "dates",
        version: "2.0.0",
        dbt: r#"">=2.0.0""#,
        needs: "[]",
        macro_sql: "{% macro two() %}200{% endmacro %}",
    },
    Release {
        package: "acme/audit",
        name: "audit",
        version: "0.5.0",
        dbt: "[]",
        needs: r#"[{"package": "acme/dates", "version": [">=1.1.0", "<2.0.0"]}]"#,
        macro_sql: "{% macro three() %}{{ dates.two() }} + 1{% endmacro %}",
    },
];

/// A .tar.gz with one folder, `{top}/`, holding these files.
fn tarball(top: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{top}/{path}"), text.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// dbt's package hub on loopback: `api/v1/index.json`, one JSON per package, the tarballs.
/// Returns its URL; it serves until the test process ends.
fn serve_hub() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut site: HashMap<String, Vec<u8>> = HashMap::new();
    let mut packages: HashMap<&str, Vec<String>> = HashMap::new();
    for r in RELEASES {
        let top = format!("{}-{}", r.name, r.version);
        let tar_path = format!("tarballs/{top}.tar.gz");
        let project = format!(
            "name: '{}'\nversion: '{}'\nconfig-version: 2\n",
            r.name, r.version
        );
        let macros = format!("macros/{}.sql", r.name);
        site.insert(
            format!("/{tar_path}"),
            tarball(
                &top,
                &[("dbt_project.yml", &project), (&macros, r.macro_sql)],
            ),
        );
        packages.entry(r.package).or_default().push(format!(
            r#""{v}": {{"id": "{p}/{v}", "name": "{n}", "version": "{v}", "packages": {needs}, "require_dbt_version": {dbt}, "works_with": [], "downloads": {{"tarball": "{url}{tar_path}", "format": "tgz"}}}}"#,
            v = r.version,
            p = r.package,
            n = r.name,
            needs = r.needs,
            dbt = r.dbt,
        ));
    }
    let mut index = Vec::new();
    for (package, versions) in packages {
        let (org, name) = package.split_once('/').unwrap();
        let json = format!(
            r#"{{"name": "{name}", "namespace": "{org}", "versions": {{{}}}}}"#,
            versions.join(", ")
        );
        site.insert(format!("/api/v1/{package}.json"), json.into_bytes());
        index.push(format!("\"{package}\""));
    }
    site.insert(
        "/api/v1/index.json".into(),
        format!("[{}]", index.join(", ")).into_bytes(),
    );
    let site = Arc::new(site);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let site = site.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let mut stream = &stream;
                let _ = match site.get(path) {
                    Some(body) => write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .and_then(|()| stream.write_all(body)),
                    None => write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                };
            });
        }
    });
    url
}

/// Hub packages resolve as dbt resolves them: everyone's version constraints merged (the
/// project's and those of the packages it installs), the newest version that meets them and
/// supports dbt 1.11 chosen, prereleases left out; package-lock.yml is written as dbt writes
/// it (the same `sha1_hash`, so dbt would not rewrite it) and followed while packages.yml is
/// unchanged; a hub that cannot be reached leaves the installed packages as they were.
#[test]
fn deps_resolves_hub_packages_as_dbt_does() {
    let hub = serve_hub();
    let env = [("DBT_PACKAGE_HUB_URL", hub.as_str())];
    let top = tempfile::tempdir().expect("temp dir");
    let shop = top.path();
    write_files(
        shop,
        "-- file: dbt_project.yml\nname: shop\nprofile: shop\n\
         -- file: profiles.yml\nshop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/dev.duckdb\n\
         -- file: models/n.sql\nselect {{ audit.three() }} as n\n",
    );
    std::fs::write(
        shop.join("packages.yml"),
        "packages:\n  - package: acme/audit\n    version: 0.5.0\n  - package: acme/dates\n    version: [\">=1.0.0\", \"<3.0.0\"]\n",
    )
    .unwrap();
    let out = xform_env(shop, &["deps"], &env);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("installed dates (acme/dates 1.2.0)"),
        "{}",
        out.stdout
    );
    // The hash dbt-core 1.11 computes for this packages.yml (dbt.task.deps._create_sha1_hash).
    assert_eq!(
        std::fs::read_to_string(shop.join("package-lock.yml")).unwrap(),
        "packages:\n  - name: audit\n    package: acme/audit\n    version: 0.5.0\n  \
         - name: dates\n    package: acme/dates\n    version: 1.2.0\n\
         sha1_hash: a41472be307d7e046ed76da65ce4f1aa67a91f83\n"
    );
    let built = xform(shop, &["build"]);
    assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);
    assert_eq!(
        crate::build::query(shop, "select n from n"),
        [["3".to_string()]]
    );

    // The lock is followed while packages.yml is unchanged: an older pin stays installed.
    let lock = std::fs::read_to_string(shop.join("package-lock.yml")).unwrap();
    std::fs::write(
        shop.join("package-lock.yml"),
        lock.replace("version: 1.2.0", "version: 1.0.0"),
    )
    .unwrap();
    let locked = xform_env(shop, &["deps"], &env);
    assert_eq!(locked.code, 0, "{}", locked.stderr);
    assert!(
        locked
            .stdout
            .contains("installing what package-lock.yml pins")
            && locked
                .stdout
                .contains("acme/dates 1.0.0; 1.2.0 is available"),
        "{}",
        locked.stdout
    );
    assert!(Path::new(&shop.join("dbt_packages/dates/macros/dates.sql")).is_file());
    let macro_text = std::fs::read_to_string(shop.join("dbt_packages/dates/macros/dates.sql"));
    assert!(macro_text.unwrap().contains("10"));

    // No version meets the requests: the error names the package's line, and who asked.
    std::fs::write(
        shop.join("packages.yml"),
        "packages:\n  - package: acme/audit\n    version: 0.5.0\n  - package: acme/dates\n    version: \"<1.1.0\"\n",
    )
    .unwrap();
    let conflict = xform_env(shop, &["deps"], &env);
    assert_eq!(conflict.code, 2, "{}", conflict.stdout);
    assert!(
        conflict.stderr.contains("no version of acme/dates")
            && conflict.stderr.contains(">=1.1.0, <2.0.0 by audit")
            && conflict.stderr.contains("packages.yml:4"),
        "{}",
        conflict.stderr
    );

    // A hub that cannot be reached: an error, and the installed packages stay.
    let down = xform_env(
        shop,
        &["deps", "--upgrade"],
        &[("DBT_PACKAGE_HUB_URL", "http://127.0.0.1:9/")],
    );
    assert_eq!(down.code, 2, "{}", down.stdout);
    assert!(down.stderr.contains("127.0.0.1:9"), "{}", down.stderr);
    assert!(shop.join("dbt_packages/audit/macros/audit.sql").is_file());
    assert!(shop.join("dbt_packages/dates/macros/dates.sql").is_file());
    let leftovers = std::fs::read_dir(shop.join("dbt_packages"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 2, "only the two packages are in dbt_packages/");
}
