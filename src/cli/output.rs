//! How a run looks: one line per node (status, rows, seconds), a progress bar when stderr is a
//! terminal, a summary with every failure spelled out; or one JSON object per event.

use crate::diagnostics::Files;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use unicode_width::UnicodeWidthStr;

use super::{LogFormat, plural, thousands};
use crate::adapter::{Relation, Rows};
use crate::compile::{Compiled, compiled_path};
use crate::execute::{Event, NodeResult, Outcome, Status};
use crate::materialize::Job;
use crate::testing::{TestResult, TestStatus};

pub(crate) struct Printer<'c> {
    format: LogFormat,
    c: &'c Compiled,
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    name_width: usize,
    color: bool,
    /// The project's files, for the line of a failure in JSON events.
    files: &'c Files,
}

fn progress_bar(total: usize) -> ProgressBar {
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total as u64).with_style(style)
}

/// The width of the longest name a result line shows (at most 60), so the columns after it
/// line up.
fn name_width(c: &Compiled, jobs: &[Job]) -> usize {
    jobs.iter()
        .flat_map(|j| {
            let own = j.builds().then(|| j.label(c).width());
            let tests = j
                .tests
                .iter()
                .chain(&j.unit_tests)
                .map(|&t| c.nodes()[t].name.width());
            own.into_iter().chain(tests)
        })
        .max()
        .unwrap_or(0)
        .min(60)
}

/// Builds and tests in a run: what the counter and progress bar count.
fn units(jobs: &[Job]) -> usize {
    jobs.iter()
        .map(|j| usize::from(j.builds()) + j.tests.len() + j.unit_tests.len())
        .sum()
}

impl<'c> Printer<'c> {
    pub(crate) fn new(
        format: LogFormat,
        (c, files): (&'c Compiled, &'c Files),
        jobs: &[Job],
    ) -> Printer<'c> {
        let text = format == LogFormat::Text;
        let total = units(jobs);
        let bar =
            (text && std::io::stderr().is_terminal() && total > 0).then(|| progress_bar(total));
        Printer {
            format,
            c,
            bar,
            total,
            done: 0,
            name_width: name_width(c, jobs),
            color: text && std::io::stdout().is_terminal(),
            files,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| outln!("{text}")),
            None => outln!("{text}"),
        }
    }

    pub(crate) fn header(&self, verb: &str, target: &str, threads: usize) {
        match self.format {
            LogFormat::Text => self.line(&format!(
                "xform {verb}: {} on {target}, {threads} thread{}",
                self.counted(),
                plural(threads)
            )),
            LogFormat::Json => outln!(
                "{}",
                json!({"event": "run_started", "command": verb, "nodes": self.total, "target": target, "threads": threads})
            ),
        }
    }

    fn counted(&self) -> String {
        format!("{} node{}", thousands(self.total), plural(self.total))
    }

    pub(crate) fn event(&mut self, e: Event<'_>) {
        match e {
            Event::LeftoversDropped(tables) => self.leftovers_dropped(tables),
            Event::Started(job) => self.started(job),
            Event::Finished(job, r) => self.finished(job, r),
        }
    }

    fn started(&self, job: &Job) {
        if let Some(bar) = &self.bar {
            bar.set_message(job.label(self.c));
        }
        if self.format == LogFormat::Json && job.builds() {
            outln!("{}", self.node_json("node_started", job, None));
        }
    }

    fn leftovers_dropped(&self, tables: &[Relation]) {
        let names: Vec<String> = tables.iter().map(ToString::to_string).collect();
        match self.format {
            LogFormat::Text => self.line(&format!(
                "dropped {} table{} left behind by an earlier run that was killed: {}",
                tables.len(),
                plural(tables.len()),
                names.join(", ")
            )),
            LogFormat::Json => outln!(
                "{}",
                json!({"event": "leftovers_dropped", "relations": names})
            ),
        }
    }

    fn finished(&mut self, job: &Job, r: &NodeResult) {
        // Unit tests ran before the build, data tests after it.
        let (units, data) = r.tests.split_at(job.unit_tests.len().min(r.tests.len()));
        for t in units {
            self.test_finished(t);
        }
        if job.builds() {
            self.step();
            match self.format {
                LogFormat::Text => self.line(&self.node_line(job, r)),
                LogFormat::Json => {
                    outln!("{}", self.node_json("node_finished", job, Some(r)))
                }
            }
        }
        for t in data {
            self.test_finished(t);
        }
    }

    fn step(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn test_finished(&mut self, t: &TestResult) {
        self.step();
        match self.format {
            LogFormat::Text => self.line(&self.test_line(t)),
            LogFormat::Json => outln!("{}", self.test_json(t)),
        }
    }

    fn counter(&self) -> String {
        let w = self.total.to_string().len();
        format!("{:>w$}/{}", self.done, self.total)
    }

    fn padded(&self, name: &str) -> String {
        format!(
            "{name}{}",
            " ".repeat(self.name_width.saturating_sub(name.width()))
        )
    }

    fn node_line(&self, job: &Job, r: &NodeResult) -> String {
        let word = match r.status {
            Status::Success => ("OK", "32"),
            Status::Reused => ("REUSED", "36"),
            Status::Error => ("ERROR", "31"),
            Status::Skipped => ("SKIP", "33"),
        };
        let rows = r.rows.map(|n| counted(n, "row")).unwrap_or_default();
        let measure = (r.status != Status::Skipped).then_some((rows, r.seconds));
        let mut line = self.result_line(word, job.action.label(), &job.label(self.c), measure);
        if let (Status::Reused, Some(why)) = (r.status, &r.message) {
            line.push_str(&format!("  ({})", why.trim_start_matches("reused: ")));
        }
        if let n @ 1.. = r.batches.len() {
            line.push_str(&format!("  ({n} batch{})", if n == 1 { "" } else { "es" }));
        }
        for b in r.batches.iter().filter(|b| b.error.is_some()) {
            line.push_str(&format!(
                "\n      batch [{}, {}) failed: {}",
                b.start,
                b.end,
                b.error.as_deref().unwrap_or("")
            ));
        }
        line
    }

    fn test_line(&self, t: &TestResult) -> String {
        let n = &self.c.nodes()[t.node];
        let failures = match (t.status, t.failures) {
            (TestStatus::Warn | TestStatus::Fail, Some(f)) => counted(f, "failure"),
            _ => String::new(),
        };
        let measure = (t.status != TestStatus::Skipped).then_some((failures, t.seconds));
        self.result_line(test_word(t.status), kind_label(n.kind), &n.name, measure)
    }

    /// `12/40 OK    table analytics.orders      1,204 rows    0.03 s`
    fn result_line(
        &self,
        (word, code): (&str, &str),
        kind: &str,
        name: &str,
        measure: Option<(String, f64)>,
    ) -> String {
        let status = paint(&format!("{word:<5}"), code, self.color);
        let tail = measure
            .map(|(what, secs)| format!("{what:>14} {secs:>7.2} s"))
            .unwrap_or_default();
        format!(
            "{} {status} {kind:<11} {}{tail}",
            self.counter(),
            self.padded(name)
        )
    }

    fn node_json(&self, event: &str, job: &Job, r: Option<&NodeResult>) -> serde_json::Value {
        let n = &self.c.nodes()[job.node];
        let mut v = json!({
            "event": event,
            "unique_id": n.unique_id,
            "name": n.name,
            "resource_type": n.kind,
            "materialized": job.action.label(),
            "relation": job.relation.as_ref().map(ToString::to_string),
            "path": n.path.as_ref(),
        });
        if let Some(r) = r {
            if r.status == Status::Error {
                self.annotate(&mut v, job.node, "error");
            }
            v["status"] = json!(r.status);
            v["rows"] = json!(r.rows);
            v["seconds"] = json!(r.seconds);
            v["message"] = json!(r.message);
            v["index"] = json!(self.done);
            v["total"] = json!(self.total);
        }
        v
    }

    /// `level`, `file` and `line` of a failure, for CI annotations (a test declared in YAML
    /// points at its declaration).
    fn annotate(&self, v: &mut serde_json::Value, node: usize, level: &str) {
        let n = &self.c.nodes()[node];
        let (file, line) = match &n.at {
            Some(at) => (at.file.to_string(), self.files.line_col(at).0),
            None => (n.path.to_string(), 1),
        };
        v["level"] = json!(level);
        v["file"] = json!(file);
        v["line"] = json!(line);
    }

    fn test_json(&self, t: &TestResult) -> serde_json::Value {
        let n = &self.c.nodes()[t.node];
        let mut v = json!({
            "event": "node_finished",
            "unique_id": n.unique_id,
            "name": n.name,
            "resource_type": n.kind,
            "path": n.path.as_ref(),
            "status": t.status,
            "failures": t.failures,
            "seconds": t.seconds,
            "message": t.message,
            "rows": t.rows.as_ref().map(Rows::objects),
            "compiled_path": self.c.compiled_path(t.node),
            "index": self.done,
            "total": self.total,
        });
        match t.status {
            TestStatus::Fail | TestStatus::Error => self.annotate(&mut v, t.node, "error"),
            TestStatus::Warn => self.annotate(&mut v, t.node, "warning"),
            _ => {}
        }
        v
    }

    pub(crate) fn finish_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub(crate) fn summary(&self, jobs: &[Job], outcome: &Outcome, seconds: f64) {
        self.finish_bar();
        let tally = Tally::of(jobs, outcome);
        if self.format == LogFormat::Json {
            outln!(
                "{}",
                json!({"event": "run_finished", "success": tally.ok, "error": tally.err + tally.test_err,
                       "skipped": tally.skip + tally.test_skip, "reused": tally.reused,
                       "pass": tally.pass, "warn": tally.warn, "fail": tally.fail,
                       "interrupted": outcome.interrupted, "seconds": seconds})
            );
            return;
        }
        let how = if outcome.interrupted {
            "Interrupted"
        } else {
            "Finished"
        };
        outln!("{how} in {seconds:.2} s: {}", tally.parts().join(", "));
        self.failure_reports(jobs, outcome);
    }

    /// Every failed build, and every test that failed, warned or errored, spelled out.
    fn failure_reports(&self, jobs: &[Job], outcome: &Outcome) {
        for r in &outcome.results {
            let job = &jobs[r.job];
            if r.status == Status::Error {
                self.node_error_report(job, r);
            }
            for t in r.tests.iter().filter(|t| {
                matches!(
                    t.status,
                    TestStatus::Warn | TestStatus::Fail | TestStatus::Error
                )
            }) {
                self.test_report(t);
            }
        }
    }

    /// A failed build spelled out: its message and where the SQL it ran is.
    fn node_error_report(&self, job: &Job, r: &NodeResult) {
        let n = &self.c.nodes()[job.node];
        outln!();
        outln!(
            "{} {} {} ({})",
            paint("ERROR", "31", self.color),
            job.action.label(),
            job.label(self.c),
            n.path
        );
        for line in r.message.as_deref().unwrap_or("").lines() {
            outln!("  {line}");
        }
        if !r.statements.is_empty() {
            outln!(
                "  SQL as executed: {}",
                crate::artifacts::run_path(self.c, job.node)
            );
        }
    }

    /// A failing (or warning) test spelled out: why, up to five of its rows, its SQL.
    fn test_report(&self, t: &TestResult) {
        let n = &self.c.nodes()[t.node];
        let (word, code) = test_word(t.status);
        outln!();
        let failures = match t.failures {
            Some(f) if t.status != TestStatus::Error => {
                format!(": {}", counted(f, "failing row"))
            }
            _ => String::new(),
        };
        outln!(
            "{} {} {} ({}){failures}",
            paint(word, code, self.color),
            kind_label(n.kind),
            n.name,
            n.path
        );
        for line in t.message.as_deref().unwrap_or("").lines() {
            outln!("  {line}");
        }
        if let Some(rows) = t.rows.as_ref().filter(|r| !r.rows.is_empty()) {
            failing_rows(rows, t.failures);
        }
        if self.c.sql[t.node].is_some() && n.unit.is_none() {
            outln!("  compiled SQL: {}", compiled_path(n));
        }
    }
}

/// The rows a test kept, as a table, and a note when it failed on more of them.
fn failing_rows(rows: &Rows, failures: Option<u64>) {
    let shown = rows.rows.len();
    let table = rows_table(rows);
    for line in table.lines().take(shown + 2) {
        outln!("  {line}");
    }
    if failures.is_some_and(|f| f as usize > shown) {
        outln!("  (first {shown} shown)");
    }
}

/// How many builds and tests of a run ended each way.
struct Tally {
    ok: usize,
    err: usize,
    skip: usize,
    reused: usize,
    pass: usize,
    warn: usize,
    fail: usize,
    test_err: usize,
    test_skip: usize,
    any_builds: bool,
    any_tests: bool,
}

impl Tally {
    fn of(jobs: &[Job], outcome: &Outcome) -> Tally {
        let builds = || outcome.results.iter().filter(|r| jobs[r.job].builds());
        let tests = || outcome.results.iter().flat_map(|r| &r.tests);
        let count = |s: Status| builds().filter(|r| r.status == s).count();
        let count_tests = |s: TestStatus| tests().filter(|t| t.status == s).count();
        Tally {
            ok: count(Status::Success),
            err: count(Status::Error),
            skip: count(Status::Skipped),
            reused: count(Status::Reused) + count_tests(TestStatus::Reused),
            pass: count_tests(TestStatus::Pass),
            warn: count_tests(TestStatus::Warn),
            fail: count_tests(TestStatus::Fail),
            test_err: count_tests(TestStatus::Error),
            test_skip: count_tests(TestStatus::Skipped),
            any_builds: builds().next().is_some(),
            any_tests: tests().next().is_some(),
        }
    }

    /// `12 OK`, `30 pass, 1 warn, 0 fail`, `1 error`, `2 skipped`: the summary line's parts.
    fn parts(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if self.any_builds {
            parts.push(format!("{} OK", thousands(self.ok)));
        }
        if self.reused > 0 {
            parts.push(format!("{} reused", thousands(self.reused)));
        }
        if self.any_tests {
            parts.push(format!(
                "{} pass, {} warn, {} fail",
                thousands(self.pass),
                thousands(self.warn),
                thousands(self.fail)
            ));
        }
        let errors = self.err + self.test_err;
        parts.push(format!("{} error{}", thousands(errors), plural(errors)));
        parts.push(format!("{} skipped", thousands(self.skip + self.test_skip)));
        parts
    }
}

/// "1 row", "1,204 rows".
fn counted(n: u64, what: &str) -> String {
    let n = n as usize;
    format!("{} {what}{}", thousands(n), plural(n))
}

fn test_word(s: TestStatus) -> (&'static str, &'static str) {
    match s {
        TestStatus::Pass => ("PASS", "32"),
        TestStatus::Reused => ("REUSED", "36"),
        TestStatus::Warn => ("WARN", "33"),
        TestStatus::Fail => ("FAIL", "31"),
        TestStatus::Error => ("ERROR", "31"),
        TestStatus::Skipped => ("SKIP", "33"),
    }
}

fn kind_label(kind: crate::project::NodeKind) -> &'static str {
    match kind {
        crate::project::NodeKind::UnitTest => "unit",
        _ => "test",
    }
}

fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Rows as an aligned text table (wide characters such as Korean count double).
pub(crate) fn rows_table(rows: &Rows) -> String {
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|r| r.iter().map(cell_text).collect())
        .collect();
    let widths = column_widths(&rows.columns, &cells);
    let mut out = table_row(&rows.columns, &widths);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for r in &cells {
        out.push_str(&table_row(r, &widths));
    }
    out.push_str(&format!(
        "({} row{})\n",
        rows.rows.len(),
        plural(rows.rows.len())
    ));
    out
}

/// A value as one line of a table cell: `NULL` for null, line breaks as `\n`, cut with
/// `...` past 60 columns.
fn cell_text(v: &Option<String>) -> String {
    const NULL: &str = "NULL";
    let s = v.as_deref().unwrap_or(NULL);
    let flat = s.replace('\n', "\\n");
    if flat.width() > 60 {
        let mut out = String::new();
        for ch in flat.chars() {
            if out.width() >= 57 {
                break;
            }
            out.push(ch);
        }
        out + "..."
    } else {
        flat
    }
}

/// Each column's width: that of its widest cell or its name.
fn column_widths(columns: &[String], cells: &[Vec<String>]) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .map(|(i, name)| column_width(name, cells.iter().map(|r| &r[i])))
        .collect()
}

fn column_width<'a>(name: &str, cells: impl Iterator<Item = &'a String>) -> usize {
    cells
        .map(|c| c.width())
        .chain([name.width()])
        .max()
        .unwrap_or(0)
}

fn table_row(values: &[String], widths: &[usize]) -> String {
    let parts: Vec<String> = values
        .iter()
        .zip(widths)
        .map(|(v, w)| format!("{v}{}", " ".repeat(w.saturating_sub(v.width()))))
        .collect();
    format!("| {} |\n", parts.join(" | "))
}

pub(crate) fn rows_json(rows: &Rows) -> serde_json::Value {
    json!({"event": "rows", "columns": rows.columns, "rows": rows.objects()})
}
