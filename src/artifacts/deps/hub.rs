//! dbt's package hub (hub.getdbt.com, or `DBT_PACKAGE_HUB_URL`) as `dbt deps` reads it:
//! `api/v1/index.json` lists the packages, `api/v1/{org}/{name}.json` each version of one (its
//! project name, the packages it needs, the dbt versions it supports, its tarball). Tarballs,
//! the hub's and `tarball:` packages', are unpacked as dbt unpacks them.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value as Json};

const DEFAULT_HUB: &str = "https://hub.getdbt.com/";

/// Tries for a request that fails before an answer (dbt retries five times as well).
const TRIES: u32 = 5;

pub(crate) struct Hub {
    base: String,
    agent: ureq::Agent,
    index: Option<Vec<String>>,
    packages: HashMap<String, Json>,
}

impl Hub {
    /// The hub at `url` (dbt's `DBT_PACKAGE_HUB_URL`), or dbt's.
    pub(crate) fn new(url: Option<&str>) -> Hub {
        let mut base = url.unwrap_or(DEFAULT_HUB).to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        Hub {
            base,
            agent: agent(),
            index: None,
            packages: HashMap::new(),
        }
    }

    /// Every version of `package` (`org/name`): version → its metadata.
    pub(crate) fn versions(&mut self, package: &str) -> Result<&Map<String, Json>, String> {
        if self.index.is_none() {
            let url = format!("{}api/v1/index.json", self.base);
            let index = get_json(&self.agent, &url)?;
            let names = index
                .as_array()
                .ok_or_else(|| format!("{url}: not a list of packages"))?;
            self.index = Some(
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect(),
            );
        }
        if !self.index.iter().flatten().any(|n| n == package) {
            return Err(format!(
                "package `{package}` is not on the package hub ({})",
                self.base
            ));
        }
        if !self.packages.contains_key(package) {
            let url = format!("{}api/v1/{package}.json", self.base);
            let meta = get_json(&self.agent, &url)?;
            self.packages.insert(package.to_string(), meta);
        }
        let versions = self.packages.get(package).and_then(|m| m.get("versions"));
        versions
            .and_then(Json::as_object)
            .ok_or_else(|| format!("package `{package}`: the hub lists no versions"))
    }

    /// Where `package` says it has moved (the hub's `redirectnamespace`/`redirectname`).
    pub(crate) fn moved_to(&self, package: &str) -> Option<String> {
        let meta = self.packages.get(package)?;
        let field = |k: &str| meta.get(k).and_then(Json::as_str);
        let (ns, name) = (field("redirectnamespace"), field("redirectname"));
        if ns.is_none() && name.is_none() {
            return None;
        }
        Some(format!(
            "{}/{}",
            ns.or(field("namespace"))?,
            name.or(field("name"))?
        ))
    }

    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
}

/// An HTTP client that answers 4xx/5xx as errors and gives up on a silent server.
pub(crate) fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .user_agent(concat!("xform/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// GETs `url`, trying again when the connection fails (not when the server says no).
fn get(agent: &ureq::Agent, url: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
    let mut attempt = 1;
    loop {
        match agent.get(url).call() {
            Ok(r) => return Ok(r),
            Err(ureq::Error::StatusCode(code)) => return Err(format!("GET {url}: HTTP {code}")),
            Err(e) if attempt >= TRIES => {
                return Err(format!(
                    "GET {url}: {e} (DBT_PACKAGE_HUB_URL names another hub, such as a mirror)"
                ));
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
                attempt += 1;
            }
        }
    }
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<Json, String> {
    let mut response = get(agent, url)?;
    let text = (response.body_mut().with_config())
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// Downloads a .tar.gz and unpacks it into `into` (an empty folder); the folder holding the
/// package is returned: the one top-level folder of the archive, as dbt takes it, or `into`.
pub(crate) fn unpack_tarball(
    agent: &ureq::Agent,
    url: &str,
    into: &Path,
) -> Result<PathBuf, String> {
    let response = get(agent, url)?;
    let reader = response.into_body().into_reader();
    unpack(reader, into).map_err(|e| format!("{url}: cannot unpack: {e}"))?;
    let entries: Vec<PathBuf> = std::fs::read_dir(into)
        .map_err(|e| format!("{}: {e}", into.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [one] if one.is_dir() => Ok(one.clone()),
        _ => Ok(into.to_path_buf()),
    }
}

fn unpack(reader: impl Read, into: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    // Entries that would land outside `into` (absolute, `..`) are skipped by `unpack`.
    archive.unpack(into)
}
