//! The schema and name of what a model, seed or snapshot builds.
//!
//! An xform project puts the configured `schema` behind the target's `schema_prefix`. A dbt
//! project names relations as dbt does: `generate_schema_name(custom_schema, node)` (by default
//! the target's schema, or `<target schema>_<custom schema>`) and
//! `generate_alias_name(custom_alias, node)` (the alias, or the node's name), the project's
//! own macros of those names taking the place of the defaults.

use minijinja::Value;
use minijinja::value::Serde;
use rayon::prelude::*;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::project::{Node, NodeKind, Project, Style};
use crate::template::Templates;

/// Each node's (schema, name) as configured, before the warehouse's folding; None for nodes
/// that build nothing.
pub(super) fn configured_names(
    project: &Project,
    templates: Option<&Templates>,
    diags: &mut Diagnostics,
) -> Vec<Option<(String, String)>> {
    let named: Vec<Result<Option<(String, String)>, Diagnostic>> = project
        .nodes
        .par_iter()
        .map(|n| builds(n).then(|| name(project, templates, n)).transpose())
        .collect();
    named
        .into_iter()
        .map(|r| r.map_err(|d| diags.push(d)).ok().flatten())
        .collect()
}

fn builds(n: &Node) -> bool {
    n.kind.builds_relation()
}

fn name(
    project: &Project,
    templates: Option<&Templates>,
    n: &Node,
) -> Result<(String, String), Diagnostic> {
    let custom = n.config.str("schema");
    let alias = n.config.str("alias");
    let target_schema = &project.target.schema;
    if project.style == Style::Xform {
        let schema = custom.or_else(|| n.config.str("target_schema"));
        let schema = format!(
            "{}{}",
            project.target.schema_prefix,
            schema.unwrap_or(target_schema)
        );
        return Ok((schema, alias.unwrap_or(&n.name).to_string()));
    }
    let overridden = |macro_name| templates.filter(|t| t.is_project_macro(macro_name));
    // A snapshot's `target_schema` is the schema itself, as in dbt.
    let schema = match (
        n.config.str("target_schema"),
        overridden("generate_schema_name"),
    ) {
        (Some(s), _) if n.kind == NodeKind::Snapshot && custom.is_none() => s.to_string(),
        (_, Some(t)) => call(t, "generate_schema_name", custom, n)?,
        (_, None) => match custom {
            Some(c) => format!("{target_schema}_{}", c.trim()),
            None => target_schema.clone(),
        },
    };
    let alias = match overridden("generate_alias_name") {
        Some(t) => call(t, "generate_alias_name", alias, n)?,
        None => alias.unwrap_or(&n.name).trim().to_string(),
    };
    Ok((schema, alias))
}

/// Calls a naming macro with the custom value (or none) and the node as dbt passes it.
fn call(
    t: &Templates,
    macro_name: &str,
    custom: Option<&str>,
    n: &Node,
) -> Result<String, Diagnostic> {
    let node = minijinja::context! {
        name => n.name.clone(),
        resource_type => n.kind.name(),
        unique_id => n.unique_id.clone(),
        fqn => n.fqn.clone(),
        path => n.path.to_string(),
        original_file_path => n.path.to_string(),
        config => Serde(n.config.to_json()),
    };
    let custom = custom.map_or(Value::from(()), Value::from);
    t.call(macro_name, &[custom, node])
        .map(|s| s.trim().to_string())
        .map_err(|d| {
            let what = format!("naming the relation of {} `{}`", n.kind.name(), n.name);
            d.related(crate::diagnostics::Loc::new(&n.path, 0..0), what)
        })
}
