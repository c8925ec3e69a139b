//! A fuzzer over the project loader, templating and selector: the example project at the
//! repository root is the corpus, each case mutates a copy of it (bytes, Jinja/YAML/SQL
//! fragments, deep nesting, files added, removed and misnamed) and runs the real binary on it:
//! `compile`, `ls -s <random selector>`, and for some cases `build`. No case may panic, abort,
//! hang, exit with a code other than 0/2 (0/1/2 for a build), or write anything on exit 2.
//! Some mutations are garbage by construction (invalid UTF-8, broken Jinja, a duplicate alias,
//! ...): those cases must exit 2.
//!
//! `cargo test` runs 120 cases; the ignored `fuzz_pass` runs `XFORM_FUZZ_CASES` (2,000 by
//! default) within `XFORM_FUZZ_SECONDS`: `scripts/reliability` runs it in full, `.ci/run`
//! for at most 150 s. `XFORM_SEED` replays a run; a failing case's project is kept under the
//! target dir.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Ended, Rng, env_count, example_project, random_seed, run_bounded, seed};

/// The corpus: every file of the example project, by path (bytes, so names and contents can
/// be made invalid).
type Files = BTreeMap<Vec<u8>, Vec<u8>>;

fn corpus() -> Files {
    let dir = example_project();
    let mut files = Files::new();
    for entry in walkdir::WalkDir::new(dir.path()).min_depth(1) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir.path()).unwrap();
            files.insert(
                rel.as_os_str().as_encoded_bytes().to_vec(),
                std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    files
}

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{% if x %}",
    "{% endif %}",
    "{% for i in range(3) %}",
    "{% endfor %}",
    "{{ ref('stg_orders') }}",
    "{{ ref('nope') }}",
    "{{ source('raw', 'x') }}",
    "{{ var('start_date') }}",
    "{{ var('missing') }}",
    "{{ env_var('HOME') }}",
    "{{ this }}",
    "{{ config(materialized='table') }}",
    "{{ config(materialized='incremental', unique_key='') }}",
    "{% macro m() %}x{% endmacro %}",
    "{{ m() }}",
    "{% set x = [1, 2] %}",
    "{{ x | join(',') }}",
    "{{ 1 / 0 }}",
    "{{ none.attr }}",
    "{% raw %}",
    "{% endraw %}",
    "{% snapshot s2 %}",
    "{% endsnapshot %}",
    "{% test t(model) %}",
    "{% endtest %}",
    "\n",
    "\r\n",
    "\t",
    " ",
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "|",
    ">",
    "&a ",
    "*a",
    "!!binary ",
    "? ",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "1e999",
    "-1",
    "99999999999999999999",
    "models:\n",
    "  - name: x\n",
    "    columns:\n",
    "      - name: id\n",
    "        data_tests: [unique]\n",
    "+materialized: view\n",
    "+schema: ''\n",
    "+alias: x\n",
    "version: 2\n",
    "sources:\n",
    "unit_tests:\n",
    "seeds:\n",
    "vars: {a: [",
    "targets: {}\n",
    "select",
    " from ",
    " where ",
    " union all ",
    ";",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    "'",
    "$$",
    "고객",
    "주문 금액",
    "\u{feff}",
    "\u{0}",
    "\u{202e}",
    "é",
    "𝔘",
];

/// Mutations that make the project wrong by construction: `compile` must exit 2.
const GARBAGE: &[&str] = &[
    "invalid UTF-8 in a file",
    "unclosed Jinja block",
    "ref to a missing model",
    "broken YAML in project.yml",
    "project.yml not UTF-8",
    "two models named alike",
    "two models, one alias",
    "broken Jinja outside a snapshot block",
    "a file name that is not UTF-8",
    "YAML nested 3000 deep",
    "a filter chain 40,000 long",
    "a model reading itself",
    "an unknown materialization",
    "a runaway loop",
];

struct Case {
    files: Files,
    garbage: Option<&'static str>,
    selector: Vec<u8>,
    build: bool,
}

fn text_files(files: &Files) -> Vec<Vec<u8>> {
    files
        .keys()
        .filter(|p| p.ends_with(b".sql") || p.ends_with(b".yml"))
        .cloned()
        .collect()
}

fn models(files: &Files) -> Vec<Vec<u8>> {
    files
        .iter()
        .filter(|(p, text)| {
            p.starts_with(b"models/")
                && p.ends_with(b".sql")
                && !String::from_utf8_lossy(text).contains("ephemeral")
        })
        .map(|(p, _)| p.clone())
        .collect()
}

fn stem(path: &[u8]) -> String {
    let name = String::from_utf8_lossy(path);
    let file = name.rsplit('/').next().unwrap_or("");
    file.trim_end_matches(".sql").to_string()
}

fn deep_yaml(levels: usize) -> String {
    (0..levels)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect()
}

/// One random change somewhere in the project.
fn mutate(files: &mut Files, rng: &mut Rng) {
    let texts: Vec<Vec<u8>> = files.keys().cloned().collect();
    let path = rng.pick(&texts).clone();
    let Some(bytes) = files.get_mut(&path) else {
        return;
    };
    let at = rng.below(bytes.len() + 1);
    match rng.below(12) {
        0 => {
            if !bytes.is_empty() {
                let i = at.min(bytes.len() - 1);
                bytes[i] = *rng.pick(b"{}%#:-'\"\n \t[]|\x00\xff\xfe*&!?>");
            }
        }
        1..=3 => {
            let f = rng.pick(FRAGMENTS).as_bytes();
            bytes.splice(at..at, f.iter().copied());
        }
        4 => {
            let end = (at + rng.below(64)).min(bytes.len());
            bytes.drain(at..end);
        }
        5 => {
            let end = (at + rng.below(256)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        6 => bytes.truncate(at),
        7 => {
            let mut lines: Vec<Vec<u8>> =
                bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            *bytes = lines.join(&b'\n');
        }
        8 => {
            files.remove(&path);
        }
        9 => {
            let copy = bytes.clone();
            let mut to = path.clone();
            to.splice(
                to.len().saturating_sub(4)..to.len().saturating_sub(4),
                b"_copy".iter().copied(),
            );
            files.insert(to, copy);
        }
        10 => {
            let deep = match rng.below(5) {
                0 => deep_yaml(400),
                1 => "[".repeat(300),
                2 => format!("{{{{ 1 {} }}}}", "~ 1 ".repeat(999)),
                3 => format!("select {}1{}", "(".repeat(3000), ")".repeat(3000)),
                _ => "{% if true %}".repeat(200),
            };
            bytes.splice(at..at, deep.bytes());
        }
        _ => {
            // Lines of one file into another.
            let other = rng.pick(&texts).clone();
            if let Some(src) = files.get(&other).cloned() {
                let end = (at + rng.below(200)).min(src.len());
                let piece = src[at.min(src.len())..end].to_vec();
                if let Some(bytes) = files.get_mut(&path) {
                    let at = at.min(bytes.len());
                    bytes.splice(at..at, piece);
                }
            }
        }
    }
}

/// Makes the project wrong in the way `garbage` names.
fn spoil(files: &mut Files, garbage: &str, rng: &mut Rng) {
    let texts = text_files(files);
    let models = models(files);
    let append = |files: &mut Files, path: &[u8], text: &str| {
        files
            .entry(path.to_vec())
            .or_default()
            .extend_from_slice(text.as_bytes());
    };
    let prepend = |files: &mut Files, path: &[u8], text: &str| {
        files
            .entry(path.to_vec())
            .or_default()
            .splice(0..0, text.bytes());
    };
    match garbage {
        "invalid UTF-8 in a file" => {
            let path = rng.pick(&texts).clone();
            let bytes = files.get_mut(&path).unwrap();
            let at = rng.below(bytes.len() + 1);
            bytes.splice(at..at, *b"\xb1\xe8");
        }
        "unclosed Jinja block" => append(files, &rng.pick(&models).clone(), "\n{% if true %}\n"),
        "ref to a missing model" => append(
            files,
            &rng.pick(&models).clone(),
            "\n{{ ref('no_such_model_zz') }}\n",
        ),
        "broken YAML in project.yml" => append(files, b"project.yml", "\nbroken: [unclosed\n"),
        "project.yml not UTF-8" => {
            let bytes = files.entry(b"project.yml".to_vec()).or_default();
            let at = rng.below(bytes.len() + 1);
            bytes.splice(at..at, *b"\xbc\xad\xbf\xef");
        }
        "two models named alike" => {
            let path = rng.pick(&models).clone();
            let name = format!("models/zz_dup/{}.sql", stem(&path));
            let text = files[&path].clone();
            files.insert(name.into_bytes(), text);
        }
        "two models, one alias" => {
            let a = rng.pick(&models).clone();
            let b = models
                .iter()
                .find(|m| **m != a)
                .cloned()
                .unwrap_or_default();
            for m in [a, b] {
                prepend(
                    files,
                    &m,
                    "{{ config(alias='dup_alias_zz', schema='zz') }}\n",
                );
            }
        }
        "broken Jinja outside a snapshot block" => {
            prepend(files, b"snapshots/customers_snapshot.sql", "{% if %}\n")
        }
        "a file name that is not UTF-8" => {
            files.insert(
                b"models/\xff\xfe.sql".to_vec(),
                b"select 1 as id\n".to_vec(),
            );
        }
        "YAML nested 3000 deep" => append(
            files,
            b"project.yml",
            &format!(
                "\nzz:\n{}",
                deep_yaml(3000)
                    .lines()
                    .map(|l| format!("  {l}\n"))
                    .collect::<String>()
            ),
        ),
        "a filter chain 40,000 long" => append(
            files,
            &rng.pick(&models).clone(),
            &format!("\n{{{{ 'x' {}}}}}\n", "| lower ".repeat(40_000)),
        ),
        "a model reading itself" => {
            let m = rng.pick(&models).clone();
            let own = format!("\n{{{{ ref('{}') }}}}\n", stem(&m));
            append(files, &m, &own);
        }
        "an unknown materialization" => {
            // Last, so it wins over the model's own config() calls.
            append(
                files,
                &rng.pick(&models).clone(),
                "\n{{ config(materialized='tabel') }}\n",
            )
        }
        _ => append(
            files,
            &rng.pick(&models).clone(),
            "\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
        ),
    }
}

const SELECTOR_ATOMS: &[&str] = &[
    "stg_orders",
    "mau_summary",
    "monthly_kpi",
    "orders",
    "nope",
    "tag:nightly",
    "path:models/mart",
    "path:models",
    "config.materialized:table",
    "config.materialized:view",
    "resource_type:model",
    "resource_type:test",
    "source:raw_data",
    "test_type:unit",
    "test_type:data",
    "state:modified",
    "result:error",
    "@stg_orders",
    "+mau_summary",
    "stg_orders+",
    "2+monthly_kpi+1",
    "+",
    "@",
    "++",
    ":",
    "a:b:c",
    "fqn:shop.mart",
    "99999999999999999999+orders",
    "orders+99999999999999999999",
    "모델",
    "*",
    "mart.*",
    "tag:",
    "config.:x",
    "@+x",
    "",
];

fn selector(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(3);
    let mut s = Vec::new();
    for i in 0..n {
        if i > 0 {
            s.push(*rng.pick(b" ,"));
        }
        s.extend_from_slice(rng.pick(SELECTOR_ATOMS).as_bytes());
    }
    if rng.chance(5) {
        s.push(0xff);
    }
    s
}

fn case(corpus: &Files, seed: u64, index: usize) -> Case {
    let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x1000_0000_01b3));
    let mut files = corpus.clone();
    for _ in 0..1 + rng.below(3) {
        mutate(&mut files, &mut rng);
    }
    let garbage = rng.chance(30).then(|| {
        // A runaway loop costs seconds of fuel in a dev build: rarely.
        let g = *rng.pick(&GARBAGE[..GARBAGE.len() - 1]);
        if rng.chance(3) {
            GARBAGE[GARBAGE.len() - 1]
        } else {
            g
        }
    });
    if let Some(g) = garbage {
        spoil(&mut files, g, &mut rng);
    }
    Case {
        files,
        garbage,
        selector: selector(&mut rng),
        build: rng.chance(8),
    }
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    compiled: usize,
    refused: usize,
    garbage: usize,
    selectors: usize,
    builds: usize,
    failures: Vec<String>,
}

fn write(dir: &Path, files: &Files) {
    for (path, bytes) in files {
        let full = dir.join(std::ffi::OsStr::from_bytes(path));
        let _ = std::fs::create_dir_all(full.parent().unwrap());
        let _ = std::fs::write(full, bytes);
    }
}

/// What a run must not do, as a failure message.
fn judge(what: &str, ended: &Ended, codes: &[i32]) -> Option<String> {
    match ended {
        Ended::Hung => Some(format!("{what}: hung")),
        Ended::Signal(s, o) => Some(format!("{what}: signal {s}: {}", tail(&o.stderr))),
        Ended::Exit(o) if o.stderr.contains("panicked") || o.code == 101 => {
            Some(format!("{what}: panicked: {}", tail(&o.stderr)))
        }
        Ended::Exit(o) if !codes.contains(&o.code) => {
            Some(format!("{what}: exit {}: {}", o.code, tail(&o.stderr)))
        }
        Ended::Exit(o) if o.code == 2 && !o.stderr.contains("error") => Some(format!(
            "{what}: exit 2 without an error: {}",
            tail(&o.stderr)
        )),
        Ended::Exit(_) => None,
    }
}

/// The first lines of stderr (a panic's message comes before its backtrace).
fn tail(s: &str) -> String {
    s.lines().take(8).collect::<Vec<_>>().join("\n")
}

fn code(ended: &Ended) -> Option<i32> {
    match ended {
        Ended::Exit(o) => Some(o.code),
        _ => None,
    }
}

fn run_case(c: &Case, tally: &Mutex<Tally>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &c.files);
    let mut failures = Vec::new();
    let limit = Duration::from_secs(60);
    let compiled = run_bounded(dir.path(), &["compile".into()], limit);
    failures.extend(judge("compile", &compiled, &[0, 2]));
    let exit = code(&compiled);
    if exit == Some(2) && dir.path().join("target/manifest.json").exists() {
        failures.push("compile exited 2 but wrote target/manifest.json".into());
    }
    if let Some(g) = c.garbage
        && exit == Some(0)
    {
        failures.push(format!("garbage accepted ({g}): compile exited 0"));
    }
    let sel = OsString::from_vec(c.selector.clone());
    let listed = run_bounded(dir.path(), &["ls".into(), "-s".into(), sel], limit);
    failures.extend(judge(
        &format!("ls -s {:?}", String::from_utf8_lossy(&c.selector)),
        &listed,
        &[0, 2],
    ));
    let built = (c.build && exit == Some(0)).then(|| {
        let ended = run_bounded(dir.path(), &["build".into()], Duration::from_secs(180));
        failures.extend(judge("build", &ended, &[0, 1, 2]));
    });
    let mut t = tally.lock().unwrap();
    t.cases += 1;
    t.compiled += usize::from(exit == Some(0));
    t.refused += usize::from(exit == Some(2));
    t.garbage += usize::from(c.garbage.is_some());
    t.selectors += 1;
    t.builds += usize::from(built.is_some());
    if !failures.is_empty() {
        let keep =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-failure-{}", t.cases));
        let _ = std::fs::remove_dir_all(&keep);
        write(&keep, &c.files);
        failures.push(format!("project kept in {}", keep.display()));
    }
    failures
}

fn fuzz(cases: usize, budget: Duration, seed: u64) {
    eprintln!("fuzz: XFORM_SEED={seed}, up to {cases} cases or {budget:?}");
    let corpus = corpus();
    let tally = Mutex::new(Tally::default());
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= cases || started.elapsed() > budget {
                        return;
                    }
                    let c = case(&corpus, seed, i);
                    let failures = run_case(&c, &tally);
                    if !failures.is_empty() {
                        let mut t = tally.lock().unwrap();
                        t.failures.push(format!(
                            "case {i} (garbage: {:?}): {}",
                            c.garbage,
                            failures.join("; ")
                        ));
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    let count = |what: &str| t.failures.iter().filter(|f| f.contains(what)).count();
    eprintln!(
        "fuzz: {} projects in {:.0} s ({} compiled, {} refused with exit 2, {} garbage by construction, \
         {} selectors, {} builds): {} panics, {} aborts/signals, {} hangs, {} garbage accepted, \
         {} writes on exit 2, {} failures in all",
        t.cases,
        started.elapsed().as_secs_f64(),
        t.compiled,
        t.refused,
        t.garbage,
        t.selectors,
        t.builds,
        count("panicked"),
        count(": signal"),
        count(": hung"),
        count("garbage accepted"),
        count("but wrote"),
        t.failures.len()
    );
    assert!(t.failures.is_empty(), "{:#?}", t.failures);
}

#[test]
fn fuzzed_projects_never_panic_hang_or_pass_garbage() {
    fuzz(120, Duration::from_secs(120), seed());
}

#[test]
#[ignore = "the full pass: scripts/reliability (CI runs it bounded by XFORM_FUZZ_SECONDS)"]
fn fuzz_pass() {
    let seconds = env_count("XFORM_FUZZ_SECONDS", 3600) as u64;
    fuzz(
        env_count("XFORM_FUZZ_CASES", 2000),
        Duration::from_secs(seconds),
        random_seed(),
    );
}
