//! How a run looks: one line per node (status, rows, seconds), a progress bar when stderr is a
//! terminal, a summary with every failure spelled out; or one JSON object per event.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use unicode_width::UnicodeWidthStr;

use super::{LogFormat, plural, thousands};
use crate::adapter::Rows;
use crate::compile::Compiled;
use crate::execute::{Event, NodeResult, Outcome, Status};
use crate::materialize::Job;

pub struct Printer<'c> {
    format: LogFormat,
    c: &'c Compiled,
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    name_width: usize,
    color: bool,
}

impl<'c> Printer<'c> {
    pub fn new(format: LogFormat, c: &'c Compiled, jobs: &[Job]) -> Printer<'c> {
        let text = format == LogFormat::Text;
        let bar = (text && std::io::stderr().is_terminal() && !jobs.is_empty()).then(|| {
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(jobs.len() as u64).with_style(style)
        });
        let name_width = jobs
            .iter()
            .map(|j| j.relation.to_string().width())
            .max()
            .unwrap_or(0)
            .min(60);
        Printer {
            format,
            c,
            bar,
            total: jobs.len(),
            done: 0,
            name_width,
            color: text && std::io::stdout().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    pub fn header(&self, verb: &str, target: &str, threads: usize) {
        match self.format {
            LogFormat::Text => self.line(&format!(
                "xform {verb}: {} node{} on {target}, {threads} thread{}",
                thousands(self.total),
                plural(self.total),
                plural(threads)
            )),
            LogFormat::Json => println!(
                "{}",
                json!({"event": "run_started", "command": verb, "nodes": self.total, "target": target, "threads": threads})
            ),
        }
    }

    pub fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Started(job) => {
                if let Some(bar) = &self.bar {
                    bar.set_message(job.relation.to_string());
                }
                if self.format == LogFormat::Json {
                    println!("{}", self.node_json("node_started", job, None));
                }
            }
            Event::Finished(job, r) => {
                self.done += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                match self.format {
                    LogFormat::Text => self.line(&self.node_line(job, r)),
                    LogFormat::Json => {
                        println!("{}", self.node_json("node_finished", job, Some(r)))
                    }
                }
            }
        }
    }

    fn node_line(&self, job: &Job, r: &NodeResult) -> String {
        let (word, code) = match r.status {
            Status::Success => ("OK", "32"),
            Status::Error => ("ERROR", "31"),
            Status::Skipped => ("SKIP", "33"),
        };
        let status = paint(&format!("{word:<5}"), code, self.color);
        let w = self.total.to_string().len();
        let rel = job.relation.to_string();
        let pad = " ".repeat(self.name_width.saturating_sub(rel.width()));
        let rows = r
            .rows
            .map(|n| format!("{} row{}", thousands(n as usize), plural(n as usize)))
            .unwrap_or_default();
        let tail = match r.status {
            Status::Skipped => String::new(),
            _ => format!("{rows:>14} {:>7.2} s", r.seconds),
        };
        format!(
            "{:>w$}/{} {status} {:<5} {rel}{pad}{tail}",
            self.done,
            self.total,
            job.action.label()
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
            "relation": job.relation.to_string(),
            "path": n.path.as_ref(),
        });
        if let Some(r) = r {
            v["status"] = json!(r.status);
            v["rows"] = json!(r.rows);
            v["seconds"] = json!(r.seconds);
            v["message"] = json!(r.message);
            v["index"] = json!(self.done);
            v["total"] = json!(self.total);
        }
        v
    }

    pub fn finish_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn summary(&self, jobs: &[Job], outcome: &Outcome, seconds: f64) {
        self.finish_bar();
        let count = |s: Status| outcome.results.iter().filter(|r| r.status == s).count();
        let (ok, err, skip) = (
            count(Status::Success),
            count(Status::Error),
            count(Status::Skipped),
        );
        if self.format == LogFormat::Json {
            println!(
                "{}",
                json!({"event": "run_finished", "success": ok, "error": err, "skipped": skip,
                       "interrupted": outcome.interrupted, "seconds": seconds})
            );
            return;
        }
        let how = if outcome.interrupted {
            "Interrupted"
        } else {
            "Finished"
        };
        println!(
            "{how} in {seconds:.2} s: {} OK, {} error{}, {} skipped",
            thousands(ok),
            thousands(err),
            plural(err),
            thousands(skip)
        );
        for r in outcome.results.iter().filter(|r| r.status == Status::Error) {
            let job = &jobs[r.job];
            let n = &self.c.nodes()[job.node];
            println!();
            println!(
                "{} {} {} ({})",
                paint("ERROR", "31", self.color),
                job.action.label(),
                job.relation,
                n.path
            );
            for line in r.message.as_deref().unwrap_or("").lines() {
                println!("  {line}");
            }
            if !r.statements.is_empty() {
                println!(
                    "  SQL as executed: {}",
                    crate::artifacts::run_path(self.c, job.node)
                );
            }
        }
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
pub fn rows_table(rows: &Rows) -> String {
    const NULL: &str = "NULL";
    let cell = |v: &Option<String>| -> String {
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
    };
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = rows
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .map(|r| r[i].width())
                .chain([name.width()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt_row = |values: &[String]| -> String {
        let parts: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v}{}", " ".repeat(w.saturating_sub(v.width()))))
            .collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let mut out = fmt_row(&rows.columns);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for r in &cells {
        out.push_str(&fmt_row(r));
    }
    out.push_str(&format!(
        "({} row{})\n",
        rows.rows.len(),
        plural(rows.rows.len())
    ));
    out
}

pub fn rows_json(rows: &Rows) -> serde_json::Value {
    let objects: Vec<serde_json::Value> = rows
        .rows
        .iter()
        .map(|r| {
            serde_json::Value::Object(
                rows.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|v| json!(v)))
                    .collect(),
            )
        })
        .collect();
    json!({"event": "rows", "columns": rows.columns, "rows": objects})
}
