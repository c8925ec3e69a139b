//! package-lock.yml as dbt writes and reads it: the packages installed, each pinned (a hub
//! package's version, a git package's commit), and `sha1_hash`, the hash of the packages.yml
//! it was made from, computed exactly as dbt does, so dbt and xform agree on when the lock is
//! out of date and neither rewrites the other's file.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value as Json;
use sha1::{Digest, Sha1};

use super::Pinned;
use crate::project::{LOCK_FILE, PackageSource, PackageSpec};

/// dbt's hash of the declared packages: each entry as Python's `json.dumps(sort_keys=True)`
/// writes it, the lines sorted and joined by newlines, then SHA-1.
pub(crate) fn declared_hash(specs: &[PackageSpec]) -> String {
    let mut lines: Vec<String> = specs
        .iter()
        .map(|s| {
            let mut line = String::new();
            python_json(&s.hashed, &mut line);
            line
        })
        .collect();
    lines.sort();
    let digest = Sha1::digest(lines.join("\n").as_bytes());
    digest.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` between items, keys in order
/// (serde_json's maps are sorted), every character beyond ASCII escaped.
fn python_json(v: &Json, out: &mut String) {
    match v {
        Json::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                python_json(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(v, out);
            }
            out.push(']');
        }
        Json::String(s) => python_string(s, out),
        Json::Null => out.push_str("null"),
        other => out.push_str(&other.to_string()),
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Writes package-lock.yml in dbt's layout (keys sorted, list items indented).
pub(crate) fn write(root: &Path, pinned: &[Pinned], hash: &str) -> std::io::Result<()> {
    let mut text = String::from("packages:\n");
    for p in pinned {
        let mut fields: Vec<(&str, String)> = vec![("name", p.name.clone())];
        match &p.source {
            PackageSource::Local(path) => fields.push(("local", path.display().to_string())),
            PackageSource::Git {
                url,
                revision,
                subdirectory,
                ..
            } => {
                fields.push(("git", p.written_url.clone().unwrap_or(url.clone())));
                fields.push(("revision", revision.clone().unwrap_or_default()));
                if let Some(s) = subdirectory {
                    fields.push(("subdirectory", s.clone()));
                }
            }
            PackageSource::Hub {
                package, versions, ..
            } => {
                fields.push(("package", package.clone()));
                fields.push(("version", versions.join(",")));
            }
            PackageSource::Tarball(url) => {
                fields.push(("tarball", p.written_url.clone().unwrap_or(url.clone())))
            }
        }
        fields.sort();
        for (i, (key, value)) in fields.iter().enumerate() {
            let lead = if i == 0 { "  - " } else { "    " };
            let _ = writeln!(text, "{lead}{key}: {}", yaml_scalar(value));
        }
    }
    let _ = writeln!(text, "sha1_hash: {hash}");
    super::super::atomic_write(&root.join(LOCK_FILE), |w| w.write_all(text.as_bytes()))
}

/// A string as a YAML scalar: plain when YAML would read it back as the same string, quoted
/// (JSON's double quotes are YAML's) otherwise.
fn yaml_scalar(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@+~".contains(c);
    // YAML 1.1 (dbt's reader) takes `1.0` as a number, and `1:30` too.
    let sexagesimal = s.contains(':') && s.chars().all(|c| c.is_ascii_digit() || ":._".contains(c));
    let numeric = s.parse::<f64>().is_ok() || sexagesimal;
    let special = ["true", "false", "yes", "no", "on", "off", "null", "~", ""]
        .contains(&s.to_ascii_lowercase().as_str());
    let plain = s.chars().all(safe) && !numeric && !special && !s.starts_with(['-', ':', '@']);
    match plain {
        true => s.to_string(),
        false => Json::String(s.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{python_json, yaml_scalar};

    #[test]
    fn json_as_python_writes_it() {
        let v = serde_json::json!({"version": [">=1.0.0", "<2.0.0"], "package": "dbt-labs/dbt_utils", "n": 1.5, "k": null, "한": "가\"b"});
        let mut out = String::new();
        python_json(&v, &mut out);
        assert_eq!(
            out,
            r#"{"k": null, "n": 1.5, "package": "dbt-labs/dbt_utils", "version": [">=1.0.0", "<2.0.0"], "\ud55c": "\uac00\"b"}"#
        );
    }

    #[test]
    fn lock_values_read_back_as_strings() {
        assert_eq!(yaml_scalar("1.3.0"), "1.3.0");
        assert_eq!(yaml_scalar("dbt-labs/dbt_utils"), "dbt-labs/dbt_utils");
        assert_eq!(yaml_scalar("1.0"), "\"1.0\"");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("../helpers"), "../helpers");
        assert_eq!(
            yaml_scalar("https://github.com/dbt-labs/dbt-utils.git"),
            "https://github.com/dbt-labs/dbt-utils.git"
        );
    }
}
