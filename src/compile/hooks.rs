//! Hooks: each node's `pre_hook`/`post_hook` and the project's `on_run_start`/`on_run_end`,
//! rendered as the node's template would be (`this` is its relation) once every relation has
//! its name. A hook that does not render is an error at the line that sets it.

use std::sync::Arc;

use super::ephemeral::substitute;
use crate::diagnostics::{Diagnostic, Diagnostics, Loc};
use std::collections::BTreeSet;

use crate::project::{Node, Project};
use crate::template::{self, Names, RelName, Templates};

/// The rendered statements, per node (index) and per run.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub(crate) pre: Vec<Vec<String>>,
    pub(crate) post: Vec<Vec<String>>,
    pub(crate) on_run_start: Vec<String>,
    pub(crate) on_run_end: Vec<String>,
}

pub(super) fn render(
    project: &Project,
    t: &Templates<'_>,
    names: &Arc<Names>,
    diags: &mut Diagnostics,
) -> Hooks {
    let mut node_hooks = |key: &str| -> Vec<Vec<String>> {
        let of = |(i, n): (usize, &Node)| {
            let at = || n.config.at(key).cloned().or_else(|| n.at.clone());
            let mut texts = n.config.hooks(key);
            // `set_sql_header`'s SQL runs first, before the build.
            if key == "pre_hook"
                && let Some(header) = n.config.str("sql_header")
            {
                texts.insert(0, header.to_string());
            }
            texts
                .iter()
                .filter_map(|text| rendered(t, names, (Some((i, n)), &[]), (text, at()), diags))
                .collect()
        };
        project.nodes.iter().enumerate().map(of).collect()
    };
    let pre = node_hooks("pre_hook");
    let post = node_hooks("post_hook");
    let schemas = built_schemas(project, names);
    let mut run_hooks = |hooks: &[(String, Loc)]| -> Vec<String> {
        hooks
            .iter()
            .filter_map(|(text, at)| {
                let run = (None, &schemas[..]);
                rendered(t, names, run, (text, Some(at.clone())), diags)
            })
            .collect()
    };
    Hooks {
        pre,
        post,
        on_run_start: run_hooks(&project.on_run_start),
        on_run_end: run_hooks(&project.on_run_end),
    }
}

/// The schemas the project builds into (`schemas` in `on_run_start`/`on_run_end`, as in dbt).
fn built_schemas(project: &Project, names: &Names) -> Vec<String> {
    let builds = |(n, r): (&Node, &Option<RelName>)| {
        let r = r.as_ref().filter(|r| !r.ephemeral)?;
        n.kind.builds_relation().then(|| r.schema.clone())
    };
    let set: BTreeSet<String> = project
        .nodes
        .iter()
        .zip(&names.relations)
        .filter_map(builds)
        .collect();
    set.into_iter().collect()
}

/// One hook's SQL, relation names resolved; None (and an error) when it does not render.
fn rendered(
    t: &Templates<'_>,
    names: &Arc<Names>,
    node: (Option<(usize, &Node)>, &[String]),
    (text, at): (&str, Option<Loc>),
    diags: &mut Diagnostics,
) -> Option<String> {
    match template::render_hook(t, names, node, text) {
        Ok(sql) => Some(substitute(sql, names, None)).filter(|s| !s.trim().is_empty()),
        Err(e) => {
            diags.push(Diagnostic::error(format!("a hook does not render: {e}")).at_opt(at));
            None
        }
    }
}
