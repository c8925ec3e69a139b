//! The docs site as a reader meets it: `xform docs generate` on the example project and on a
//! generated project of 1,000 models, opened from `file://` in headless Chromium, driven through
//! chromedriver's W3C WebDriver endpoints (spoken here over ureq). `XFORM_TEST_CHROMEDRIVER` is
//! chromedriver's path and `XFORM_TEST_CHROMIUM` the browser's (default /usr/bin/chromium), as
//! `.ci/run` exports them. Without the driver the browser tests say so and pass, except
//! `browser_is_configured_in_ci`, which fails under `CI=true`. Every view visited is saved as a
//! screenshot under the repository's target/docs-screenshots/ for a person to look at.
//!
//! What needs no browser always runs: the generated project's column lineage, `xform docs
//! serve` over HTTP and `xform lineage` on the command line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Output, Rng, example_project, project, spawn, xform};

const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/docs-screenshots");

/// chromedriver's path, or None (the browser tests are skipped).
fn chromedriver() -> Option<String> {
    std::env::var("XFORM_TEST_CHROMEDRIVER")
        .ok()
        .filter(|p| !p.is_empty())
}

#[test]
fn browser_is_configured_in_ci() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            chromedriver().is_some(),
            "CI=true but XFORM_TEST_CHROMEDRIVER is not set: \
             the docs site's browser tests would be skipped"
        );
    }
}

// ------------------------------------------------------------------------------- the tests

/// The example project, built, then documented: every view a reader opens works and agrees
/// with the data xform wrote.
#[test]
fn example_project_docs_in_the_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = example_project();
    ok(&xform(dir.path(), &["build"]), "xform build");
    ok(
        &xform(dir.path(), &["docs", "generate"]),
        "xform docs generate",
    );
    let site = Site::read(dir.path());

    let ms = browser.open(&site, "/overview");
    println!("example project: first view (overview) ready {ms:.0} ms after navigation start");
    browser.screenshot("example-overview");
    browser.assert_no_console_errors("overview");

    browser.go("/graph");
    graph_draws(&browser, &site, &site.dag(), "the whole DAG");
    browser.screenshot("example-graph");

    let kpi = site.index("monthly_kpi");
    clicking_a_graph_node_opens_its_page(&browser, &site, kpi);
    compiled_sql_loads(&browser, &site, kpi);
    catalog_types_show(&browser, &site, kpi);
    browser.screenshot("example-node");

    column_view_reaches_a_seed(&browser, &site, kpi, "mau");
    browser.screenshot("example-column");

    search_finds(&browser, &site, "월간", site.index("mau_summary"));
    browser.screenshot("example-search");
}

/// A project of 1,000 models documented offline (`--empty-catalog`): the graph refuses to draw
/// everything at once, draws a mart's ancestors on request, and the other views still work.
#[test]
fn thousand_model_docs_in_the_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let generated = generate_project(1000);
    let dir = project(&generated.fixture);
    ok(
        &xform(dir.path(), &["docs", "generate", "--empty-catalog"]),
        "xform docs generate --empty-catalog",
    );
    let site = Site::read(dir.path());
    // A mart over one domain's last layer (with a unique Korean description).
    let (mart_name, mart_description) = &generated.marts[2];
    let mart = site.index(mart_name);

    let ms = browser.open(&site, "/overview");
    println!("1,000 models: first view (overview) ready {ms:.0} ms after navigation start");
    browser.screenshot("big-overview");
    browser.assert_no_console_errors("overview");

    let ms = browser.open(&site, "/graph");
    println!("1,000 models: first view (graph) ready {ms:.0} ms after navigation start");
    graph_declines_to_draw_everything(&browser, &site);
    browser.screenshot("big-graph-default");

    let selector = format!("+{mart_name}");
    browser.submit_selector(&selector);
    graph_draws(&browser, &site, &site.ancestors(mart), &selector);
    browser.screenshot("big-graph-selected");

    clicking_a_graph_node_opens_its_page(&browser, &site, mart);
    compiled_sql_loads(&browser, &site, mart);
    browser.screenshot("big-node");

    column_view_reaches_a_seed(&browser, &site, mart, "amount");
    browser.screenshot("big-column");

    search_finds(&browser, &site, mart_description, mart);
    browser.screenshot("big-search");

    let ms = browser.open(&site, &format!("/column/{mart}/amount"));
    println!("1,000 models: first view (column lineage) ready {ms:.0} ms after navigation start");
    browser.assert_no_console_errors("column view opened first");
}

/// Acceptance: in a generated project of 1,000 models, every output column of every model has
/// lineage (at least one column it comes from, or it is a constant), the columns are the ones the
/// SQL selects, and nothing is left unresolved.
#[test]
fn thousand_model_lineage_is_complete() {
    let generated = generate_project(1000);
    let dir = project(&generated.fixture);
    ok(
        &xform(dir.path(), &["docs", "generate", "--empty-catalog"]),
        "xform docs generate --empty-catalog",
    );
    let site = Site::read(dir.path());
    let mut problems = Vec::new();
    for (id, node) in site.manifest["nodes"].as_object().expect("manifest nodes") {
        if node["resource_type"] != "model" {
            continue;
        }
        let name = node["name"].as_str().unwrap_or(id);
        problems.extend(lineage_problems(name, node, &generated.columns[name]));
    }
    for (n, what) in site.data["unresolved"].as_object().into_iter().flatten() {
        let name = site.name(n.parse().expect("node number"));
        problems.push(format!(
            "{name}: unresolved {what}\n{}",
            sql_of(&site, name)
        ));
    }
    assert!(
        problems.is_empty(),
        "{} lineage problems in the generated project:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// `xform docs serve` serves the site, and nothing outside target/docs.
#[test]
fn docs_serve_serves_the_site_and_nothing_beside_it() {
    let dir = example_project();
    ok(
        &xform(dir.path(), &["docs", "generate", "--empty-catalog"]),
        "xform docs generate --empty-catalog",
    );
    // What a path escaping target/docs would reach (project.yml is two levels up).
    std::fs::write(dir.path().join("target/Cargo.toml"), "[package]\n").unwrap();
    let port = free_port();
    let _server = Killed(spawn(
        dir.path(),
        &["docs", "serve", "--port", &port.to_string()],
    ));
    let base = format!("http://127.0.0.1:{port}");
    let http = agent();
    wait_until(
        "xform docs serve to answer",
        Duration::from_secs(20),
        || http.get(&format!("{base}/")).call().is_ok(),
    );

    let (status, kind, body) = fetch(&http, &format!("{base}/"));
    assert_eq!(status, 200, "GET /");
    assert!(kind.starts_with("text/html"), "GET /: content type {kind}");
    assert!(
        body.contains("docs-data.js"),
        "GET / is not the site's page"
    );

    let (status, kind, body) = fetch(&http, &format!("{base}/docs-data.js"));
    assert_eq!(status, 200, "GET /docs-data.js");
    assert!(
        kind.contains("javascript"),
        "GET /docs-data.js: content type {kind}"
    );
    let file = std::fs::read_to_string(dir.path().join("target/docs/docs-data.js")).unwrap();
    assert!(
        body == file,
        "GET /docs-data.js is not target/docs/docs-data.js"
    );

    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/Cargo.toml",
        "/..%2fCargo.toml",
        "/../../project.yml",
        "/%2e%2e/%2e%2e/project.yml",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
    ] {
        assert_eq!(raw_get_status(port, path), 404, "GET {path}");
    }
}

/// `xform lineage` on the command line: the CSV mapping sheet up to the seeds, what a seed's
/// column feeds, and a clear error for a column that does not exist.
#[test]
fn lineage_from_the_command_line() {
    let dir = example_project();
    let up = xform(
        dir.path(),
        &["lineage", "monthly_kpi.mau", "--format", "csv"],
    );
    ok(&up, "xform lineage monthly_kpi.mau --format csv");
    let rows = csv_rows(&up.stdout);
    assert_eq!(
        rows[0],
        "source_relation,source_column,target_relation,target_column,kind,transformation"
            .split(',')
            .collect::<Vec<_>>(),
        "the CSV's header"
    );
    assert!(
        rows.iter()
            .any(|r| r[2] == "mart.monthly_kpi" && r[3] == "mau"),
        "no row ends at mart.monthly_kpi.mau:\n{}",
        up.stdout
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "raw_data.user_session_channel" && r[1] == "userid"),
        "monthly_kpi.mau's lineage does not reach the seed user_session_channel.userid:\n{}",
        up.stdout
    );

    let down = xform(
        dir.path(),
        &[
            "lineage",
            "orders.amount",
            "--downstream",
            "--format",
            "csv",
        ],
    );
    ok(
        &down,
        "xform lineage orders.amount --downstream --format csv",
    );
    let rows = csv_rows(&down.stdout);
    for (relation, column) in [
        ("mart.top_products", "revenue"),
        ("mart.monthly_kpi", "total_revenue"),
    ] {
        assert!(
            rows.iter().any(|r| r[2] == relation && r[3] == column),
            "orders.amount's downstream does not reach {relation}.{column}:\n{}",
            down.stdout
        );
    }

    let unknown = xform(dir.path(), &["lineage", "monthly_kpi.no_such_column"]);
    assert_eq!(unknown.code, 2, "an unknown column: {}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no_such_column"),
        "the error does not name the column:\n{}",
        unknown.stderr
    );
}

// ------------------------------------------------------------------- what a reader checks

/// The graph draws exactly `expected` (DAG nodes) and the parent → child edges among them, and
/// says how many in `#graph-stats`.
fn graph_draws(browser: &Browser, site: &Site, expected: &BTreeSet<usize>, what: &str) {
    let drawn = browser.js("var s = document.getElementById('graph-stats');
         return {
           nodes: Number(s.dataset.nodes), edges: Number(s.dataset.edges),
           drawn: Array.from(document.querySelectorAll('#graph-svg g.node'),
                             g => Number(g.dataset.node)),
           lines: Array.from(document.querySelectorAll('#graph-svg path.edge'),
                             p => [Number(p.dataset.from), Number(p.dataset.to)])
         };");
    let edges = site.edges_within(expected);
    assert_eq!(
        drawn["nodes"],
        expected.len(),
        "{what}: #graph-stats data-nodes"
    );
    assert_eq!(
        drawn["edges"],
        edges.len(),
        "{what}: #graph-stats data-edges"
    );
    let nodes: BTreeSet<usize> = numbers(&drawn["drawn"]).collect();
    assert_eq!(&nodes, expected, "{what}: the g.node elements drawn");
    let lines: BTreeSet<(usize, usize)> = drawn["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (as_index(&p[0]), as_index(&p[1])))
        .collect();
    assert_eq!(lines, edges, "{what}: the path.edge elements drawn");
    println!(
        "graph of {what}: {} nodes, {} edges drawn",
        nodes.len(),
        lines.len()
    );
    browser.assert_no_console_errors(&format!("graph of {what}"));
}

/// Over 300 DAG nodes, the default graph draws nothing and says why, with an example selector.
fn graph_declines_to_draw_everything(browser: &Browser, site: &Site) {
    let shown = browser.js("var m = document.getElementById('graph-message');
         return { message: m && !m.hidden ? m.textContent : null,
                  example: !!document.getElementById('graph-example'),
                  drawn: document.querySelectorAll('#graph-svg g.node').length };");
    let count = thousands(site.dag().len());
    let message = shown["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&count) && message.contains("too many"),
        "the default graph of {count} nodes should say there are too many to draw; \
         it says {message:?}"
    );
    assert_eq!(shown["example"], true, "no example selector is offered");
    assert_eq!(shown["drawn"], 0, "nodes were drawn anyway");
    browser.assert_no_console_errors("default graph");
}

/// Clicking a node in the drawn graph opens that node's page.
fn clicking_a_graph_node_opens_its_page(browser: &Browser, site: &Site, node: usize) {
    browser.click(&format!("#graph-svg g.node[data-node=\"{node}\"]"));
    browser.wait_route(&format!("/node/{node}"));
    node_page_is(browser, site, node);
    browser.assert_no_console_errors("node page");
}

/// The page shown is `node`'s: its number, kind and name in the heading.
fn node_page_is(browser: &Browser, site: &Site, node: usize) {
    let page = browser.js(
        "var p = document.querySelector('.node-page'), h = document.querySelector('h1 .node-name');
         return p && { node: p.dataset.node, kind: p.dataset.kind, name: h && h.textContent };",
    );
    assert_eq!(
        page["node"],
        node.to_string(),
        "the node page shown: {page}"
    );
    assert_eq!(page["kind"], site.kind(node), "the node page's kind");
    assert_eq!(page["name"], site.name(node), "the node page's heading");
}

/// The node page loads its compiled SQL, and it is the manifest's.
fn compiled_sql_loads(browser: &Browser, site: &Site, node: usize) {
    let state = browser.wait_for(
        "the compiled SQL to load",
        "var p = document.getElementById('sql-compiled');
         return p && p.dataset.state !== 'loading' && p.dataset.state;",
    );
    assert_eq!(state, "loaded", "pre#sql-compiled's state");
    let shown = browser.js("return document.getElementById('sql-compiled').textContent;");
    let id = site.data["nodes"][node]["id"].as_str().unwrap();
    assert_eq!(
        shown, site.manifest["nodes"][id]["compiled_code"],
        "the compiled SQL shown for {id}"
    );
    browser.assert_no_console_errors("node page's SQL");
}

/// A built table's columns show the warehouse's types.
fn catalog_types_show(browser: &Browser, site: &Site, node: usize) {
    let columns = site.data["nodes"][node]["columns"].as_array().unwrap();
    assert!(
        !columns.is_empty(),
        "{} has no columns in the docs",
        site.name(node)
    );
    for column in columns {
        let name = column["name"].as_str().unwrap();
        let typ = column["type"].as_str().unwrap_or_else(|| {
            panic!(
                "{}.{name} has no type: was the catalog read?",
                site.name(node)
            )
        });
        let shown = browser.js(&format!(
            "var c = document.querySelector('table.columns tr[data-column=\"{name}\"] td.type');
             return c && c.textContent;"
        ));
        assert_eq!(shown, typ, "{}.{name}'s type on its page", site.name(node));
    }
}

/// From the node page, a column's lineage link opens the column view, whose upstream list is
/// every column it comes from (reaching a seed), and its drawing has a box for each.
fn column_view_reaches_a_seed(browser: &Browser, site: &Site, node: usize, column: &str) {
    browser.click(&format!("a.col-lineage[data-column=\"{column}\"]"));
    browser.wait_route(&format!("/column/{node}/{column}"));
    let view = browser.js("var p = document.querySelector('.col-page');
         var rows = sel => Array.from(
           document.querySelectorAll(sel),
           r => [Number(r.dataset.node), r.dataset.column.toLowerCase()]);
         return p && { node: p.dataset.node, column: p.dataset.column,
                       up: rows('table.upstream tr.lineage-entry'),
                       down: rows('table.downstream tr.lineage-entry'),
                       boxes: document.querySelectorAll('#col-svg g.col-node').length };");
    assert_eq!(
        view["node"],
        node.to_string(),
        "the column view shown: {view}"
    );
    assert_eq!(view["column"], column, "the column view's column");
    let pairs = |v: &Value| -> BTreeSet<(usize, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| (as_index(&r[0]), r[1].as_str().unwrap().to_string()))
            .collect()
    };
    let expected = site.upstream(node, column);
    let up = pairs(&view["up"]);
    assert_eq!(up, expected, "{}.{column}'s upstream list", site.name(node));
    assert!(
        up.iter().any(|(n, _)| site.kind(*n) == "seed"),
        "{}.{column}'s upstream reaches no seed: {up:?}",
        site.name(node)
    );
    assert!(
        pairs(&view["down"]).is_empty(),
        "a mart column has no downstream"
    );
    assert_eq!(view["boxes"], expected.len() + 1, "g.col-node boxes drawn");
    println!(
        "{}.{column}: {} upstream columns listed and drawn",
        site.name(node),
        up.len()
    );
    browser.assert_no_console_errors("column view");
}

/// Typing words of a description in the search box lists the node; clicking it opens its page.
fn search_finds(browser: &Browser, site: &Site, words: &str, node: usize) {
    browser.type_text("#search", words);
    browser.wait_for(
        "search results",
        &format!(
            "return document.getElementById('search-results').dataset.query === {};",
            json!(words)
        ),
    );
    let found: BTreeSet<usize> = numbers(&browser.js(
        "return Array.from(document.querySelectorAll('#search-results a.search-result'),
                           a => Number(a.dataset.node));",
    ))
    .collect();
    assert!(
        found.contains(&node),
        "searching {words:?} does not list {}: {found:?}",
        site.name(node)
    );
    let expected = site.search(words);
    if expected.len() <= 50 {
        assert_eq!(found, expected, "the results of searching {words:?}");
    }
    browser.click(&format!(
        "#search-results a.search-result[data-node=\"{node}\"]"
    ));
    browser.wait_route(&format!("/node/{node}"));
    node_page_is(browser, site, node);
    browser.assert_no_console_errors("search");
}

// ---------------------------------------------------------------- what xform wrote, in Rust

/// What `xform docs generate` wrote: `target/docs/docs-data.js` (`window.XFORM_DOCS`), the
/// unresolved lineage (in `lineage.js` when the site loads that lazily) and
/// `target/manifest.json`, with the expectations a reader would derive from them.
struct Site {
    index: PathBuf,
    data: Value,
    manifest: Value,
    /// Node ids (`model.shop.orders`) to their numbers in `data.nodes`.
    numbers: HashMap<String, usize>,
}

const DAG_KINDS: [&str; 5] = ["model", "seed", "source", "snapshot", "exposure"];

impl Site {
    fn read(project: &Path) -> Site {
        let docs = project.join("target/docs");
        let mut data = read_script(&docs.join("docs-data.js"), "XFORM_DOCS");
        if docs.join("lineage.js").exists() {
            let lineage = read_script(&docs.join("lineage.js"), "XFORM_LINEAGE");
            data["unresolved"] = lineage["unresolved"].clone();
        }
        let manifest = std::fs::read_to_string(project.join("target/manifest.json")).unwrap();
        let nodes = data["nodes"].as_array().expect("XFORM_DOCS.nodes");
        let numbers = (nodes.iter().enumerate())
            .filter_map(|(n, node)| Some((node["id"].as_str()?.to_string(), n)))
            .collect();
        Site {
            index: docs.join("index.html"),
            data,
            manifest: serde_json::from_str(&manifest).expect("manifest.json"),
            numbers,
        }
    }

    fn nodes(&self) -> &[Value] {
        self.data["nodes"].as_array().expect("XFORM_DOCS.nodes")
    }

    fn name(&self, n: usize) -> &str {
        self.nodes()[n]["name"].as_str().unwrap_or_default()
    }

    fn kind(&self, n: usize) -> &str {
        self.nodes()[n]["kind"].as_str().unwrap_or_default()
    }

    /// The DAG node called `name`.
    fn index(&self, name: &str) -> usize {
        (0..self.nodes().len())
            .find(|&n| self.name(n) == name && self.is_dag(n))
            .unwrap_or_else(|| panic!("no node {name} in docs-data.js"))
    }

    fn is_dag(&self, n: usize) -> bool {
        DAG_KINDS.contains(&self.kind(n))
    }

    /// The nodes the lineage graph draws: models, seeds, sources, snapshots and exposures.
    fn dag(&self) -> BTreeSet<usize> {
        (0..self.nodes().len())
            .filter(|&n| self.is_dag(n))
            .collect()
    }

    /// Parent → child edges between DAG nodes, from either side's list.
    fn edges(&self) -> BTreeSet<(usize, usize)> {
        let mut edges = BTreeSet::new();
        for n in self.dag() {
            let node = &self.nodes()[n];
            edges.extend(numbers(&node["parents"]).map(|p| (p, n)));
            edges.extend(numbers(&node["children"]).map(|c| (n, c)));
        }
        edges.retain(|&(p, c)| p != c && self.is_dag(p) && self.is_dag(c));
        edges
    }

    fn edges_within(&self, nodes: &BTreeSet<usize>) -> BTreeSet<(usize, usize)> {
        let mut edges = self.edges();
        edges.retain(|(p, c)| nodes.contains(p) && nodes.contains(c));
        edges
    }

    /// `+name`: the node and every DAG node upstream of it.
    fn ancestors(&self, node: usize) -> BTreeSet<usize> {
        let edges = self.edges();
        let mut seen = BTreeSet::from([node]);
        let mut todo = vec![node];
        while let Some(n) = todo.pop() {
            for &(p, _) in edges.iter().filter(|e| e.1 == n) {
                if seen.insert(p) {
                    todo.push(p);
                }
            }
        }
        seen
    }

    /// Every (node, lower-cased column) `node.column` comes from, transitively.
    fn upstream(&self, node: usize, column: &str) -> BTreeSet<(usize, String)> {
        let focal = (node, column.to_lowercase());
        let mut seen = BTreeSet::new();
        let mut todo = vec![focal.clone()];
        while let Some((n, c)) = todo.pop() {
            for from in self.lineage_from(n, &c) {
                if from != focal && seen.insert(from.clone()) {
                    todo.push(from);
                }
            }
        }
        seen
    }

    /// The columns `node.column` is made from, one step up (the manifest's `column_lineage`).
    fn lineage_from(&self, node: usize, column: &str) -> Vec<(usize, String)> {
        let id = self.nodes()[node]["id"].as_str().unwrap_or_default();
        let Some(columns) = self.manifest["nodes"][id]["column_lineage"].as_object() else {
            return Vec::new();
        };
        columns
            .iter()
            .filter(|(name, _)| name.to_lowercase() == column)
            .flat_map(|(_, entry)| entry["from"].as_array().cloned().unwrap_or_default())
            .map(|f| {
                let from = f["node"].as_str().unwrap_or_default();
                let n = *self
                    .numbers
                    .get(from)
                    .unwrap_or_else(|| panic!("no node {from}"));
                (n, f["column"].as_str().unwrap_or_default().to_lowercase())
            })
            .collect()
    }

    /// The nodes whose name, description, column names or descriptions contain `words`.
    fn search(&self, words: &str) -> BTreeSet<usize> {
        let q = words.to_lowercase();
        let has = |v: &Value| v.as_str().unwrap_or_default().to_lowercase().contains(&q);
        (0..self.nodes().len())
            .filter(|&n| {
                let node = &self.nodes()[n];
                let columns = node["columns"].as_array().cloned().unwrap_or_default();
                has(&node["name"])
                    || has(&node["description"])
                    || columns
                        .iter()
                        .any(|c| has(&c["name"]) || has(&c["description"]))
            })
            .collect()
    }
}

/// `window.NAME = {...};` as written to `path`: the JSON.
fn read_script(path: &Path, name: &str) -> Value {
    let script =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = (script.trim_end())
        .strip_prefix(&format!("window.{name} = "))
        .and_then(|s| s.strip_suffix(';'))
        .unwrap_or_else(|| panic!("{} is not `window.{name} = {{...}};`", path.display()));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A model's column lineage in the manifest against the columns its SQL selects: each one
/// present, with a column it comes from or marked constant.
fn lineage_problems(name: &str, node: &Value, expected: &[String]) -> Vec<String> {
    let lineage = node["column_lineage"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let sql = node["compiled_code"].as_str().unwrap_or_default();
    let mut problems = Vec::new();
    let got: BTreeSet<&str> = lineage.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    if got != want {
        problems.push(format!(
            "{name}: lineage has columns {got:?}, the SQL selects {want:?}\n{sql}"
        ));
    }
    for (column, entry) in &lineage {
        let sourced = entry["from"].as_array().is_some_and(|f| !f.is_empty());
        if !sourced && entry["constant"] != true {
            problems.push(format!(
                "{name}.{column}: no `from` and not constant: {entry}\n{sql}"
            ));
        }
    }
    problems
}

fn sql_of<'a>(site: &'a Site, model: &str) -> &'a str {
    site.manifest["nodes"]
        .as_object()
        .and_then(|nodes| nodes.values().find(|n| n["name"] == model))
        .and_then(|n| n["compiled_code"].as_str())
        .unwrap_or_default()
}

// ----------------------------------------------------------------------------- the browser

/// Headless Chromium behind chromedriver (a child process, killed when this is dropped).
struct Browser {
    http: ureq::Agent,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    _driver: Killed,
}

const WAIT: Duration = Duration::from_secs(30);

impl Browser {
    /// A new browser session, or None (saying so) when `XFORM_TEST_CHROMEDRIVER` is unset.
    fn start() -> Option<Browser> {
        let Some(path) = chromedriver() else {
            eprintln!("skipped: XFORM_TEST_CHROMEDRIVER not set");
            return None;
        };
        let port = free_port();
        let driver = Killed(
            Command::new(&path)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {path}: {e}")),
        );
        let http = agent();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver to be ready", WAIT, || {
            webdriver(&http, "GET", &format!("{base}/status"), None)
                .is_ok_and(|v| v["value"]["ready"] == true)
        });
        let chromium =
            std::env::var("XFORM_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,900", "--allow-file-access-from-files",
                         "--lang=ko-KR"],
            },
        }}});
        let created = webdriver(
            &http,
            "POST",
            &format!("{base}/session"),
            Some(&capabilities),
        )
        .unwrap_or_else(|e| panic!("new WebDriver session: {e}"));
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new WebDriver session: {created}"));
        Some(Browser {
            session: format!("{base}/session/{id}"),
            http,
            _driver: driver,
        })
    }

    /// One WebDriver command; its `value`. A WebDriver error fails the test.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let reply = webdriver(&self.http, method, &url, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value = reply["value"].clone();
        if let Some(error) = value["error"].as_str() {
            let message: String = value["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(600)
                .collect();
            panic!("WebDriver {method} {path}: {error}: {message}");
        }
        value
    }

    /// Opens the site afresh at `route` (a page load, not a hash change); the milliseconds from
    /// navigation start to the page's `xform-ready` mark (its first view rendered).
    fn open(&self, site: &Site, route: &str) -> f64 {
        self.call("POST", "/url", Some(json!({"url": "about:blank"})));
        let url = format!("file://{}#!{route}", site.index.display());
        self.call("POST", "/url", Some(json!({"url": url})));
        self.wait_for(
            "the first view",
            "return document.body && document.body.dataset.ready === '1';",
        );
        self.wait_route(route);
        let ready = self.js("var m = performance.getEntriesByName('xform-ready');
             return m.length ? m[0].startTime : null;");
        ready.as_f64().expect("the page marks `xform-ready`")
    }

    /// Goes to `route` (`#!route`) in the open page and waits until it has rendered.
    fn go(&self, route: &str) {
        self.js(&format!("location.hash = {};", json!(format!("#!{route}"))));
        self.wait_route(route);
    }

    fn wait_route(&self, route: &str) {
        self.wait_for(
            &format!("route {route}"),
            &format!("return document.body.dataset.route === {};", json!(route)),
        );
    }

    /// Types a selector into the graph's box and presses Enter.
    fn submit_selector(&self, selector: &str) {
        let input = self.find("#selector");
        self.call("POST", &format!("/element/{input}/clear"), Some(json!({})));
        self.type_text("#selector", &format!("{selector}\u{E007}"));
        self.wait_route(&format!("/graph?select={selector}"));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something truthy; that value.
    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(script);
            if !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") {
                return v;
            }
            if Instant::now() > deadline {
                let route = self.js("return document.body && document.body.dataset.route;");
                panic!(
                    "timed out waiting for {what} (route {route}); {}",
                    self.console_errors().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The element matching `css` (its WebDriver id).
    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = found.as_object().and_then(|o| o.values().next());
        id.and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Clicks the element matching `css` as a user would (WebDriver moves the mouse there).
    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn type_text(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Saves the viewport as target/docs-screenshots/`name`.png.
    fn screenshot(&self, name: &str) {
        let png = base64_decode(self.call("GET", "/screenshot", None).as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(SCREENSHOTS).unwrap();
        let path = Path::new(SCREENSHOTS).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
    }

    /// The console's errors since the last call (reading the log empties it).
    fn console_errors(&self) -> Vec<String> {
        let log = self.call("POST", "/se/log", Some(json!({"type": "browser"})));
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn assert_no_console_errors(&self, view: &str) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "console errors in the {view}:\n{}",
            errors.join("\n")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = webdriver(&self.http, "DELETE", &self.session, None);
    }
}

/// A child process killed (and reaped) when this is dropped, even if the test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP client that hands back error statuses as responses rather than errors.
fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build();
    ureq::Agent::new_with_config(config)
}

/// A WebDriver request; its JSON reply.
fn webdriver(
    http: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let sent = match method {
        "GET" => http.get(url).call(),
        "DELETE" => http.delete(url).call(),
        _ => http
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.map_or_else(|| "{}".to_string(), Value::to_string)),
    };
    let mut reply = sent.map_err(|e| e.to_string())?;
    let text = reply
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// GET `url`: status, content type and body.
fn fetch(http: &ureq::Agent, url: &str) -> (u16, String, String) {
    let mut reply = http
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let kind = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = reply.body_mut().read_to_string().unwrap_or_default();
    (reply.status().as_u16(), kind, body)
}

/// The status of `GET path` sent byte for byte (an HTTP client may tidy `..` away first).
fn raw_get_status(port: u16, path: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to xform docs serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.split_whitespace().nth(1).unwrap_or_default();
    status
        .parse()
        .unwrap_or_else(|_| panic!("GET {path}: no HTTP status in {reply:?}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Decodes standard base64 (WebDriver's screenshots); the base64 crate is not a dependency.
fn base64_decode(text: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(digit)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let bits = chunk.iter().fold(0u32, |acc, &d| acc << 6 | u32::from(d));
        let bytes = (bits << (6 * (4 - chunk.len()))).to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ------------------------------------------------------------------------------- helpers

/// The command exited 0; else its output fails the test.
fn ok(out: &Output, what: &str) {
    assert_eq!(out.code, 0, "{what}:\n{}\n{}", out.stdout, out.stderr);
}

fn as_index(v: &Value) -> usize {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a node number: {v}")) as usize
}

fn numbers(v: &Value) -> impl Iterator<Item = usize> + '_ {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .map(|n| n as usize)
}

/// `1234` as the page writes it: `1,234`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("a CSV row").iter().map(String::from).collect())
        .collect()
}

// ------------------------------------------------------------------ the generated project

/// A project as `-- file:` sections, with what its SQL selects.
struct Generated {
    fixture: String,
    /// Each model's output columns, in order.
    columns: BTreeMap<String, Vec<String>>,
    /// The marts' names and (unique) Korean descriptions.
    marts: Vec<(String, String)>,
}

/// Four seeds with Korean text, four raw views over them, ten domains of layered models (each
/// reading one to three earlier ones through `select *` CTEs: filters, derived columns, joins,
/// window functions, `count(*)` aggregates, unions), and marts over the last layers. `models` in
/// all, with Korean descriptions and `not_null`/`unique` tests on some columns.
fn generate_project(models: usize) -> Generated {
    let mut g = Generator::default();
    g.file("project.yml", PROJECT_YML);
    for (name, csv, description) in SEEDS {
        g.file(&format!("seeds/{name}.csv"), csv);
        g.seed_docs.push_str(&format!(
            "  - name: {name}\n    description: {description}\n"
        ));
    }
    for (name, seed, select) in RAW_VIEWS {
        let sql = format!(
            "with src as (
    select * from {{{{ ref('{seed}') }}}}
)
select {select}
from src
"
        );
        g.model("raw", name, &sql, base(), &format!("{seed} 원천 정리 뷰"));
    }
    let marts = MARTS.len();
    let per_domain = (models - RAW_VIEWS.len() - marts) / DOMAINS.len();
    let extra = models - RAW_VIEWS.len() - marts - per_domain * DOMAINS.len();
    let mut rng = Rng::new(1000);
    let mut layers: Vec<Vec<Vec<String>>> = Vec::new(); // [domain][layer] -> models
    for (d, (domain, korean)) in DOMAINS.iter().enumerate() {
        let count = per_domain + usize::from(d < extra);
        layers.push(g.domain(&mut rng, domain, korean, count, &layers));
    }
    let mut mart_names = Vec::new();
    for (m, (name, description)) in MARTS.iter().enumerate() {
        let last = layers[m % DOMAINS.len()].last().unwrap();
        let parents: Vec<String> = last.iter().take(2 + m % 2).cloned().collect();
        let sql = mart_sql(&parents);
        g.model(
            "mart",
            name,
            &sql,
            MART_COLUMNS.iter().map(|c| c.to_string()).collect(),
            description,
        );
        mart_names.push((name.to_string(), description.to_string()));
    }
    g.finish(mart_names)
}

#[derive(Default)]
struct Generator {
    fixture: String,
    columns: BTreeMap<String, Vec<String>>,
    seed_docs: String,
    /// Each folder's schema.yml, so far.
    docs: BTreeMap<String, String>,
    /// Models written so far.
    count: usize,
}

impl Generator {
    fn file(&mut self, path: &str, body: &str) {
        let _ = write!(self.fixture, "-- file: {path}\n{body}");
        if !body.ends_with('\n') {
            self.fixture.push('\n');
        }
    }

    fn model(
        &mut self,
        folder: &str,
        name: &str,
        sql: &str,
        columns: Vec<String>,
        description: &str,
    ) {
        self.file(&format!("models/{folder}/{name}.sql"), sql);
        let docs = self.docs.entry(folder.to_string()).or_default();
        let _ = write!(
            docs,
            "  - name: {name}\n    description: \"{description}\"\n    columns:\n"
        );
        self.count += 1;
        let not_null = self.count.is_multiple_of(7);
        let aggregated = folder != "mart" && columns.iter().any(|c| c == "row_count");
        for column in &columns {
            let _ = writeln!(docs, "      - name: {column}");
            docs.push_str(column_docs(column, not_null, aggregated));
        }
        self.columns.insert(name.to_string(), columns);
    }

    /// One domain's layers, nine models wide; returns the models of each layer.
    fn domain(
        &mut self,
        rng: &mut Rng,
        domain: &str,
        korean: &str,
        count: usize,
        others: &[Vec<Vec<String>>],
    ) -> Vec<Vec<String>> {
        const WIDTH: usize = 9;
        let mut layers: Vec<Vec<String>> = Vec::new();
        for i in 0..count {
            let layer = i / WIDTH;
            if layer == layers.len() {
                layers.push(Vec::new());
            }
            let name = format!("{domain}_{:02}_{}", layer + 1, i % WIDTH);
            let shape = *rng.pick(&SHAPES);
            let parents = self.parents(rng, shape, &layers, others);
            let (sql, columns) = shape_sql(shape, &parents, &self.columns, domain);
            let description = format!(
                "{korean} 도메인 {}단계 모델 {}번 ({})",
                layer + 1,
                i,
                shape_korean(shape)
            );
            self.model(domain, &name, &sql, columns, &description);
            layers[layer].push(name);
        }
        layers
    }

    /// One to three distinct earlier models: mostly the previous layer, sometimes an older one,
    /// rarely another domain's; the raw views for the first layer.
    fn parents(
        &self,
        rng: &mut Rng,
        shape: Shape,
        layers: &[Vec<String>],
        others: &[Vec<Vec<String>>],
    ) -> Vec<String> {
        let want = match shape {
            Shape::Join | Shape::Union => 2 + rng.below(2),
            _ => 1,
        };
        let current = layers.len() - 1;
        let mut parents: Vec<String> = Vec::new();
        for _ in 0..want * 4 {
            if parents.len() == want {
                break;
            }
            let candidate = if current == 0 {
                RAW_VIEWS[rng.below(RAW_VIEWS.len())].0.to_string()
            } else if rng.chance(3) && !others.is_empty() {
                let domain = rng.pick(others);
                let layer = rng.below(current.min(domain.len()));
                rng.pick(&domain[layer]).clone()
            } else {
                let layer = if rng.chance(75) {
                    current - 1
                } else {
                    rng.below(current)
                };
                rng.pick(&layers[layer]).clone()
            };
            if !parents.contains(&candidate) {
                parents.push(candidate);
            }
        }
        parents
    }

    fn finish(mut self, marts: Vec<(String, String)>) -> Generated {
        let seed_docs = format!("version: 2\nseeds:\n{}", self.seed_docs);
        self.file("seeds/properties.yml", &seed_docs);
        for (folder, docs) in std::mem::take(&mut self.docs) {
            self.file(
                &format!("models/{folder}/schema.yml"),
                &format!("version: 2\nmodels:\n{docs}"),
            );
        }
        Generated {
            fixture: self.fixture,
            columns: self.columns,
            marts,
        }
    }
}

/// What a generated model's properties file says about a column: a Korean description, and
/// `not_null` on some ids and `unique` on the groups of aggregates.
fn column_docs(column: &str, not_null: bool, aggregated: bool) -> &'static str {
    match column {
        "id" if not_null => "        description: 행 식별자\n        data_tests: [not_null]\n",
        "grp" if aggregated => {
            "        description: 묶음 기준 (집계 후 하나씩)\n        data_tests: [unique, not_null]\n"
        }
        "amount" => "        description: 금액 합계\n",
        _ => "",
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Filter,
    Derive,
    Window,
    Aggregate,
    Join,
    Union,
}

const SHAPES: [Shape; 10] = [
    Shape::Filter,
    Shape::Derive,
    Shape::Derive,
    Shape::Window,
    Shape::Aggregate,
    Shape::Aggregate,
    Shape::Join,
    Shape::Join,
    Shape::Union,
    Shape::Union,
];

fn shape_korean(shape: Shape) -> &'static str {
    match shape {
        Shape::Filter => "걸러내기",
        Shape::Derive => "파생 열",
        Shape::Window => "순위 계산",
        Shape::Aggregate => "집계",
        Shape::Join => "조인",
        Shape::Union => "합치기",
    }
}

/// Every model has these columns, so any model can read any earlier one.
const BASE: [&str; 4] = ["id", "grp", "amount", "note"];

fn base() -> Vec<String> {
    BASE.iter().map(|c| c.to_string()).collect()
}

/// `with a as (select * from ref(first)), b as (...)`: each parent as a CTE.
fn parent_ctes(parents: &[String]) -> String {
    let ctes: Vec<String> = parents
        .iter()
        .zip(ALIASES)
        .map(|(p, a)| format!("{a} as (\n    select * from {{{{ ref('{p}') }}}}\n)"))
        .collect();
    format!("with {}", ctes.join(",\n"))
}

const ALIASES: [&str; 3] = ["a", "b", "c"];

/// The first parent left-joined to the others on `id`, adding up their amounts.
fn join_select(parents: usize) -> String {
    let others = &ALIASES[1..parents];
    let amounts: String = (others.iter())
        .map(|o| format!(" + coalesce({o}.amount, 0)"))
        .collect();
    let notes: Vec<String> = (ALIASES[..parents].iter().rev())
        .map(|a| format!("{a}.note"))
        .collect();
    let notes = notes.join(", ");
    let joins: String = (others.iter())
        .map(|o| format!("left join {o} on {o}.id = a.id\n"))
        .collect();
    format!(
        "select
    a.id,
    a.grp,
    a.amount{amounts} as amount,
    coalesce({notes}) as note
from a
{joins}"
    )
}

/// A model of `shape` over `parents`: its SQL and output columns.
fn shape_sql(
    shape: Shape,
    parents: &[String],
    known: &BTreeMap<String, Vec<String>>,
    domain: &str,
) -> (String, Vec<String>) {
    let with = parent_ctes(parents);
    let base_and = |extra: &[&str]| {
        (base().into_iter())
            .chain(extra.iter().map(|c| c.to_string()))
            .collect()
    };
    match shape {
        Shape::Filter => (
            format!("{with}\nselect *\nfrom a\nwhere amount is not null\n"),
            known[&parents[0]].clone(),
        ),
        Shape::Derive => (
            format!(
                "{with}
select
    id,
    grp,
    amount * 1.1 as amount,
    upper(note) as note,
    '{domain}' as domain_name,
    date '2024-01-01' as valid_from
from a
"
            ),
            base_and(&["domain_name", "valid_from"]),
        ),
        Shape::Window => (
            format!(
                "{with}
select
    id,
    grp,
    amount,
    note,
    row_number() over (partition by grp order by amount desc) as rank_in_grp,
    sum(amount) over (partition by grp) as grp_total
from a
"
            ),
            base_and(&["rank_in_grp", "grp_total"]),
        ),
        Shape::Aggregate => (
            format!(
                "{with}
select
    min(id) as id,
    grp,
    sum(amount) as amount,
    max(note) as note,
    count(*) as row_count
from a
group by grp
"
            ),
            base_and(&["row_count"]),
        ),
        Shape::Join => (format!("{with}\n{}", join_select(parents.len())), base()),
        Shape::Union => {
            let selects: Vec<String> = (ALIASES[..parents.len()].iter())
                .map(|a| format!("select id, grp, amount, note from {a}"))
                .collect();
            let unions = selects.join("\nunion all\n");
            (format!("{with}\n{unions}\n"), base())
        }
    }
}

const MART_COLUMNS: [&str; 5] = ["grp", "amount", "row_count", "note", "revenue_rank"];

/// A mart: its parents joined, summed by group, ranked.
fn mart_sql(parents: &[String]) -> String {
    format!(
        "{},
joined as (
{}),
summary as (
    select grp, sum(amount) as amount, count(*) as row_count, max(note) as note
    from joined
    group by grp
)
select
    grp,
    amount,
    row_count,
    note,
    rank() over (order by amount desc) as revenue_rank
from summary
",
        parent_ctes(parents),
        join_select(parents.len())
    )
}

const PROJECT_YML: &str = "name: big
default_target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb }
models:
  +materialized: view
  mart: { +materialized: table }
";

/// The seeds: name, CSV, Korean description.
const SEEDS: [(&str, &str, &str); 4] = [
    (
        "customers",
        "id,name,region,points
1,김민지,서울,120
2,이서준,부산,80
3,박지우,대구,300
4,최하윤,서울,45
",
        "고객 명단 (customers from the CRM)",
    ),
    (
        "products",
        "id,product_name,category,price
1,무선 이어폰,전자기기,89000
2,노트북 거치대,사무용품,32000
3,유기농 녹차,식품,12000
",
        "상품 목록 (products and their categories)",
    ),
    (
        "orders",
        "id,customer_id,product_id,amount,memo
1,1,1,89000,빠른 배송
2,2,2,64000,선물 포장
3,3,3,12000,
4,1,3,24000,문 앞에 놓아 주세요
",
        "주문 원장 (orders)",
    ),
    (
        "events",
        "id,customer_id,event_type,page
1,1,조회,/상품/1
2,1,구매,/주문/1
3,2,조회,/상품/2
",
        "앱 이벤트 (app events)",
    ),
];

/// The raw views: each seed in the shape every later model shares.
const RAW_VIEWS: [(&str, &str, &str); 4] = [
    (
        "raw_customers",
        "customers",
        "id, region as grp, points as amount, name as note",
    ),
    (
        "raw_products",
        "products",
        "id, category as grp, price as amount, product_name as note",
    ),
    (
        "raw_orders",
        "orders",
        "id, cast(customer_id as varchar) as grp, amount, memo as note",
    ),
    (
        "raw_events",
        "events",
        "id, event_type as grp, customer_id as amount, page as note",
    ),
];

const DOMAINS: [(&str, &str); 10] = [
    ("sales", "영업"),
    ("marketing", "마케팅"),
    ("finance", "재무"),
    ("ops", "운영"),
    ("product", "상품"),
    ("crm", "고객관리"),
    ("logistics", "물류"),
    ("support", "고객지원"),
    ("billing", "청구"),
    ("web", "웹"),
];

const MARTS: [(&str, &str); 6] = [
    ("mart_sales_summary", "영업 매출 요약 마트"),
    ("mart_campaign_results", "마케팅 캠페인 성과 마트"),
    ("mart_finance_ledger", "재무 원장 마감 마트"),
    ("mart_ops_daily", "운영 일일 지표 마트"),
    ("mart_product_ranking", "상품 판매 순위 마트"),
    ("mart_customer_tiers", "고객 등급 분류 마트"),
];
