//! dbt's resolution of what a project asks for: every request for a package merged (a hub
//! package's version constraints from everyone who asks for it, a git package's revision), the
//! packages each package declares followed round by round.

use super::Pinned;
use super::work::{Wanted, Work};
use crate::diagnostics::{Diagnostic, Diagnostics, Files};
use crate::project::{PackageSource, PackageSpec};

/// dbt's resolution: the declared packages, then the packages they declare, round by round;
/// requests for one package are merged, and a package is looked at again only when its
/// requests changed. Then each package is pinned once more with every request known.
pub(super) fn resolve(
    specs: &[PackageSpec],
    work: &mut Work,
    (files, diags): (&mut Files, &mut Diagnostics),
) -> Result<Vec<Pinned>, Diagnostic> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut pending: Vec<Wanted> = specs
        .iter()
        .map(|s| Wanted::from_spec(s, "packages.yml"))
        .collect();
    while !pending.is_empty() {
        let mut next = Vec::new();
        for w in pending {
            let Some(merged) = merge(&mut wanted, w)? else {
                continue;
            };
            let pinned = work.pin(&merged, diags)?;
            next.extend(
                work.needs(&pinned, (files, diags))
                    .iter()
                    .map(|s| Wanted::from_spec(s, &pinned.name)),
            );
        }
        pending = next;
    }
    let pinned: Vec<Pinned> = (wanted.iter())
        .map(|w| work.pin(w, diags))
        .collect::<Result<_, _>>()?;
    for (i, p) in pinned.iter().enumerate() {
        if pinned[..i].iter().any(|q| q.name == p.name) {
            return Err(Diagnostic::error(format!(
                "two packages are named `{}`: {} and {}",
                p.name,
                pinned[..i]
                    .iter()
                    .find(|q| q.name == p.name)
                    .map_or(String::new(), |q| q.source_text()),
                p.source_text()
            )));
        }
    }
    Ok(pinned)
}

/// Adds a request to what is wanted: the merged request when it is new or changed what was
/// wanted, None when it changed nothing.
fn merge(wanted: &mut Vec<Wanted>, w: Wanted) -> Result<Option<Wanted>, Diagnostic> {
    let (key, loc) = (w.key(), w.loc.clone());
    let Some(have) = wanted.iter_mut().find(|h| h.key() == key) else {
        wanted.push(w.clone());
        return Ok(Some(w));
    };
    let changed = match (&mut have.source, w.source) {
        (
            PackageSource::Hub {
                versions,
                install_prerelease,
                ..
            },
            PackageSource::Hub {
                install_prerelease: p,
                ..
            },
        ) => {
            let fresh: Vec<_> = (w.asks.into_iter())
                .filter(|a| !have.asks.contains(a))
                .collect();
            let changed = !fresh.is_empty() || (p && !*install_prerelease);
            versions.extend(fresh.iter().flat_map(|(_, v)| v.iter().cloned()));
            have.asks.extend(fresh);
            *install_prerelease |= p;
            changed
        }
        (PackageSource::Git { revision, url, .. }, PackageSource::Git { revision: r, .. }) => {
            if r.is_some() && *revision != r {
                if revision.is_some() {
                    return Err(Diagnostic::error(format!(
                        "the git package {url} is asked for at two revisions: {} and {}",
                        revision.as_deref().unwrap_or_default(),
                        r.as_deref().unwrap_or_default()
                    ))
                    .at_opt(loc));
                }
                *revision = r;
                true
            } else {
                false
            }
        }
        (PackageSource::Local(_), PackageSource::Local(_))
        | (PackageSource::Tarball(_), PackageSource::Tarball(_)) => false,
        _ => {
            return Err(Diagnostic::error(format!(
                "`{key}` is asked for from two kinds of source"
            ))
            .at_opt(loc));
        }
    };
    Ok(changed.then(|| have.clone()))
}
