//! Rendering Jinja SQL with the context dbt users know: `ref`, `source`, `config`, `this`,
//! `var`, `env_var`, `target`, `is_incremental()` and project macros callable by name.
//!
//! Macro files are parsed once into one minijinja environment. A macro is exposed as a global
//! function that evaluates its file and calls it, passing the caller's `ref`/`config`/`this`
//! along, so macros call each other across files. Rendering does no file IO, and reaches the
//! warehouse only through the `Querier` a build passes in (`run_query` and the like).
//! Errors become diagnostics pointing into the model or macro file, with the call chain.

mod dbt;
mod graph;
mod modules;
mod objects;
mod pytime;
pub(crate) mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Serde, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, context};

use objects::{ConfigFn, RefFn, RenderScope, SourceFn, scope_of};
pub(crate) use objects::{
    Names, PLACEHOLDER_OPEN, Querier, QueryRows, RelName, RenderLog, replace_placeholders,
};

use crate::diagnostics::{Diagnostic, Diagnostics, Loc, did_you_mean};
use crate::project::{Node, Project, jinja};
use crate::sql::Dialect;

/// How deep macros may call each other across files before xform calls it runaway recursion.
const MAX_MACRO_DEPTH: usize = 64;
/// How much work one render may do (minijinja's fuel: about one unit per instruction, and per
/// item or character that filters handle) before xform calls it a runaway loop: a loop of
/// 100,000 iterations writing a line of SQL each fits; a runaway one stops after about 4 s in
/// the dev build.
pub(crate) const MAX_STEPS: u64 = 20_000_000;
/// Names a macro cannot take: they are xform's own.
const RESERVED: &[&str] = &[
    "ref",
    "source",
    "config",
    "this",
    "var",
    "env_var",
    "target",
    "is_incremental",
    "model",
    "loop",
    "caller",
    "self",
    "super",
];

/// The compiled macro files and the functions every render sees.
pub(crate) struct Templates<'p> {
    env: Environment<'p>,
    /// Macro name → the file defining it (the project's, xform's built-in tests and dbt
    /// macros; not the packages').
    pub(crate) macros: BTreeMap<String, Arc<str>>,
    /// Each package's macros (name → file), `dbt` for xform's implementations of dbt's.
    packages: BTreeMap<String, BTreeMap<String, Arc<str>>>,
    /// Names of `{% test name(...) %}` generic tests.
    pub(crate) generic_tests: BTreeSet<String>,
}

impl Templates<'_> {
    /// Whether `name` is a macro of the project's own (not one xform provides).
    pub(crate) fn is_project_macro(&self, name: &str) -> bool {
        self.macros
            .get(name)
            .is_some_and(|file| !file.starts_with('<'))
    }

    /// Calls macro `name` with `args`, outside any node's render: its output.
    pub(crate) fn call(&self, name: &str, args: &[Value]) -> Result<String, Diagnostic> {
        let ctx = context! { __args => args.to_vec() };
        self.env
            .render_str(&format!("{{{{ {name}(*__args) }}}}"), ctx)
            .map_err(|e| jinja_diagnostic(&e, None, Some(self)))
    }

    /// dbt's own macros by their plain names too (`dateadd(...)`), where the project has
    /// none of that name.
    fn add_dbt_globals(&mut self) {
        let Some(dbt_macros) = self.packages.get(dbt::DBT_NAMESPACE) else {
            return;
        };
        for (name, file) in dbt_macros {
            if !self.macros.contains_key(name) {
                let value = macro_value(file, name, Some(dbt::DBT_NAMESPACE));
                self.env.add_global(name.clone(), value);
            }
        }
    }

    /// Which macro each name means in each package, for namespaces and dispatch.
    fn registry(&self, project: &Project) -> dbt::Registry {
        let own = self.macros.iter().filter(|(_, f)| !f.starts_with('<'));
        let own = own.map(|(name, file)| (name.clone(), macro_value(file, name, None)));
        let mut packages: BTreeMap<String, BTreeMap<String, Value>> = (self.packages.iter())
            .map(|(p, macros)| {
                let values = macros
                    .iter()
                    .map(|(name, file)| (name.clone(), macro_value(file, name, Some(p))));
                (p.clone(), values.collect())
            })
            .collect();
        dbt::Registry {
            root: project.name.clone(),
            project: own.collect(),
            builtin: packages.remove(dbt::DBT_NAMESPACE).unwrap_or_default(),
            packages,
            dispatch: project.dispatch.clone(),
        }
    }
}

impl Templates<'_> {
    /// Whether installed package `package` has the generic test `name`.
    pub(crate) fn package_test(&self, package: &str, name: &str) -> bool {
        (self.packages.get(package)).is_some_and(|m| m.contains_key(&format!("test_{name}")))
    }
}

/// Templates of model texts living for `'s` can be rendered with the result.
pub(crate) fn environment<'s>(project: &Project, diags: &mut Diagnostics) -> Templates<'s> {
    let mut env = sql_environment();
    if project.style == crate::project::Style::Dbt {
        // dbt's Jinja prints an undefined name as nothing (its packages count on it).
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
    }
    add_globals(&mut env, project);
    if let Some(graph) = graph::value(project) {
        env.add_global("graph", graph);
    }
    let registry = Arc::new(OnceLock::new());
    dbt::add_globals(
        &mut env,
        (project.target.kind, &project.invocation),
        &registry,
    );
    let mut t = Templates {
        env,
        macros: BTreeMap::new(),
        packages: BTreeMap::new(),
        generic_tests: BTreeSet::new(),
    };
    for (path, text) in &project.macro_files {
        add_macro_file(&mut t, (path, None), text, false, diags);
    }
    for package in &project.packages {
        for (path, text) in &package.macro_files {
            add_macro_file(&mut t, (path, Some(&package.name)), text, false, diags);
        }
    }
    // Each package's macros by its name, and the project's own too (`my_project.helper()`),
    // unless that name is already a global.
    let names = (project.packages.iter().map(|p| &p.name)).chain([&project.name]);
    for name in names {
        if t.env.globals().any(|(g, _)| g == name) {
            continue;
        }
        let namespace = dbt::Namespace {
            name: name.clone(),
            registry: registry.clone(),
        };
        t.env
            .add_global(name.clone(), Value::from_object(namespace));
    }
    let builtin: Arc<str> = Arc::from(BUILTIN_TESTS_PATH);
    add_macro_file(&mut t, (&builtin, None), BUILTIN_TESTS, true, diags);
    let dbt_macros: Arc<str> = Arc::from(dbt::DBT_MACROS_PATH);
    add_macro_file(
        &mut t,
        (&dbt_macros, Some(dbt::DBT_NAMESPACE)),
        dbt::DBT_MACROS,
        true,
        diags,
    );
    t.add_dbt_globals();
    let _ = registry.set(t.registry(project));
    t
}

/// The callable of macro `name` in `file` (of package `package`, when it is one's).
fn macro_value(file: &Arc<str>, name: &str, package: Option<&str>) -> Value {
    Value::from_object(MacroFn {
        file: file.to_string(),
        name: name.to_string(),
        inner: scan::inner_name(name),
        package: package.map(Arc::from),
        reads_extra: OnceLock::new(),
    })
}

/// An environment set up for SQL: strict about undefined values, no escaping, trailing
/// newlines kept, recursion and fuel bounded.
fn sql_environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // SQL is never escaped (minijinja would JSON-escape templates named *.yml, as a YAML
    // snapshot's is).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    env.set_recursion_limit(200);
    env.set_fuel(Some(MAX_STEPS));
    env.set_debug(true);
    env
}

/// The name diagnostics give the built-in generic tests' template.
pub(crate) const BUILTIN_TESTS_PATH: &str = "<xform built-in tests>";
const BUILTIN_TESTS: &str = include_str!("generic_tests.sql");

fn add_globals(env: &mut Environment<'_>, project: &Project) {
    add_var(env, project.vars.clone());
    add_env_var(env, project.env.clone());
    env.add_function("log", log);
    env.add_function(
        "print",
        |state: &State, msg: Value| -> Result<&'static str, Error> {
            if let Some(scope) = scope_of(state) {
                scope.log().messages.push(msg.to_string());
            }
            Ok("")
        },
    );
    add_compiler_error(env);
    env.add_global("target", Value::from(Serde(&project.target)));
    env.add_global("project_name", project.name.clone());
    env.add_global("flags", Value::from(Serde(&project.flags)));
    add_dialect(env, project.target.dialect());
    add_native_filters(env);
}

/// dbt's `as_text`, `as_number`, `as_bool` and `as_native`: text read as the value it spells.
fn add_native_filters(env: &mut Environment<'_>) {
    env.add_filter("as_text", |v: Value| v.to_string());
    env.add_filter("as_native", |v: Value| native(&v));
    env.add_filter("as_number", |v: Value| native(&v));
    env.add_filter("as_bool", |v: Value| match v.as_str().map(str::trim) {
        Some("true" | "True") => Value::from(true),
        Some("false" | "False") => Value::from(false),
        _ => v,
    });
}

/// A string that spells a number, a boolean, a list or a mapping as that value; other values
/// as they are.
fn native(v: &Value) -> Value {
    let Some(text) = v.as_str() else {
        return v.clone();
    };
    match text.trim() {
        "True" => Value::from(true),
        "False" => Value::from(false),
        "None" => Value::from(()),
        other => serde_json::from_str::<serde_json::Value>(other)
            .map_or_else(|_| v.clone(), |json| Value::from(Serde(json))),
    }
}

/// xform's own SQL in the Jinja it generates — a data test's `where`, a snapshot declared in
/// YAML — written in the target's dialect.
fn add_dialect(env: &mut Environment<'_>, dialect: &'static dyn Dialect) {
    env.add_function("__xform_filtered", move |from: Value, condition: String| {
        dialect.filtered(&from.to_string(), &condition)
    });
    env.add_function("__xform_select_all", move |from: Value| {
        dialect.select_all(&from.to_string())
    });
}

/// `var(name, default)`: a project var, `--vars` included.
fn add_var(env: &mut Environment<'_>, vars: serde_json::Map<String, serde_json::Value>) {
    env.add_function("var", move |name: String, default: Option<Value>| {
        vars.get(&name)
            .map(|v| Value::from(Serde(v)))
            .or(default)
            .ok_or_else(|| var_not_defined(&name))
    });
}

fn var_not_defined(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("var('{name}') is not defined"),
    )
}

fn add_env_var(env: &mut Environment<'_>, os_env: Arc<BTreeMap<String, String>>) {
    env.add_function("env_var", move |name: String, default: Option<String>| {
        os_env
            .get(&name)
            .cloned()
            .or(default)
            .ok_or_else(|| env_var_not_set(&name))
    });
}

fn env_var_not_set(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("env_var('{name}'): the environment variable is not set and no default is given"),
    )
}

/// dbt's `log(msg, info=False)`: an `info` message of a node's render is kept for the
/// command line to print; others (dbt's debug log) are dropped.
fn log(
    state: &State,
    msg: Value,
    info: Option<bool>,
    kwargs: minijinja::value::Kwargs,
) -> Result<&'static str, Error> {
    let info = info
        .or(kwargs.get::<Option<bool>>("info")?)
        .unwrap_or(false);
    if let (Some(scope), true) = (scope_of(state), info) {
        scope.log().messages.push(msg.to_string());
    }
    Ok("")
}

/// `raise_compiler_error(msg)` and dbt's `exceptions.raise_compiler_error(msg)`; and
/// `exceptions.warn(msg)`, printed as `log(msg, info=True)` is.
fn add_compiler_error(env: &mut Environment<'_>) {
    env.add_function("raise_compiler_error", raise_compiler_error);
    let warn = |state: &State, msg: Value| -> Result<&'static str, Error> {
        if let Some(scope) = scope_of(state) {
            scope.log().messages.push(format!("warning: {msg}"));
        }
        Ok("")
    };
    env.add_global(
        "exceptions",
        context! {
            raise_compiler_error => Value::from_function(raise_compiler_error),
            warn => Value::from_function(warn),
        },
    );
}

fn raise_compiler_error(msg: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// Adds a macro file's definitions (of a package's, when `package` says which);
/// `builtin` ones give way to a project's own of that name.
fn add_macro_file(
    t: &mut Templates<'_>,
    (path, package): (&Arc<str>, Option<&str>),
    text: &str,
    builtin: bool,
    diags: &mut Diagnostics,
) {
    if let Err(d) = jinja::check_length(path, text) {
        diags.push(d);
        return;
    }
    let renamed = scan::rename_definitions(text);
    let source = scan::rewrite_tests(&dbt::mutable_literals(&renamed)).into_owned();
    if let Err(e) = t.env.add_template_owned(path.to_string(), source) {
        diags.push(jinja_diagnostic(&e, None, None));
        return;
    }
    for def in scan::definitions(text) {
        match package {
            Some(p) => add_package_definition(t, (path, p), &def),
            None => add_definition(t, path, &def, builtin, diags),
        }
    }
}

/// The name a definition is called by: `test_<name>` for a `{% test %}`.
fn callable_name(def: &scan::Definition) -> String {
    match def.is_test {
        true => format!("test_{}", def.name),
        false => def.name.clone(),
    }
}

/// A package's macro: reached through its namespace (`dbt_utils.star`), by dispatch, and by
/// name from the package's own macros. A package's `{% test %}` is also a test of the project
/// by its bare name, unless the project has its own (dbt looks in every package).
fn add_package_definition(
    t: &mut Templates<'_>,
    (path, package): (&Arc<str>, &str),
    def: &scan::Definition,
) {
    let name = callable_name(def);
    let macros = t.packages.entry(package.to_string()).or_default();
    macros.entry(name.clone()).or_insert_with(|| path.clone());
    if def.is_test && !t.macros.contains_key(&name) {
        t.generic_tests.insert(def.name.clone());
        t.macros.insert(name.clone(), path.clone());
        let value = macro_value(path, &name, Some(package));
        t.env.add_global(name, value);
    }
}

/// Exposes one `{% macro %}` or `{% test %}` definition as a global function, unless its name
/// is built in or taken.
fn add_definition(
    t: &mut Templates<'_>,
    path: &Arc<str>,
    def: &scan::Definition,
    builtin: bool,
    diags: &mut Diagnostics,
) {
    let name = callable_name(def);
    let at = Loc::new(path, def.span.clone());
    if RESERVED.contains(&def.name.as_str()) {
        diags.push(
            Diagnostic::error(format!(
                "a macro cannot be named `{}`: it is built in",
                def.name
            ))
            .at(at),
        );
        return;
    }
    if let Some(first) = t.macros.get(&name) {
        if !builtin {
            diags.push(defined_twice(&name, at, first));
        }
        return;
    }
    if def.is_test {
        t.generic_tests.insert(def.name.clone());
    }
    t.macros.insert(name.clone(), path.clone());
    t.env
        .add_global(name.clone(), macro_value(path, &name, None));
}

fn defined_twice(name: &str, at: Loc, first: &Arc<str>) -> Diagnostic {
    Diagnostic::error(format!("macro `{name}` is defined twice"))
        .at(at)
        .related(Loc::new(first, 0..0), "also defined in this file")
        .help("macro names are global to the project: rename one")
}

/// The global callable behind a macro; it takes any arguments, keyword ones included.
#[derive(Debug)]
struct MacroFn {
    file: String,
    name: String,
    /// Its name inside its file (see [`scan::inner_name`]).
    inner: String,
    /// The package it belongs to, whose other macros it calls by name.
    package: Option<Arc<str>>,
    /// Whether its file reads Jinja's `kwargs` or `varargs` (found on the first call).
    reads_extra: OnceLock<bool>,
}

impl Object for MacroFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        call_macro(state, self, args)
    }
}

/// Evaluates the macro's file with the caller's scope and calls the macro: its output, or
/// the value it gave to `return()`.
fn call_macro(state: &State, m: &MacroFn, args: &[Value]) -> Result<Value, Error> {
    let (file, name) = (m.file.as_str(), m.name.as_str());
    // A value a `return()` outside any macro left behind is not this macro's.
    dbt::take_returned();
    let scope = scope_of(state);
    if let Some(scope) = &scope {
        enter_macro(scope, file, name)?;
    }
    let result = run_macro(state, m, args);
    if let Some(scope) = &scope {
        scope.log().macro_depth -= 1;
    }
    let returned = dbt::take_returned();
    match result {
        Ok(out) => Ok(returned.unwrap_or_else(|| Value::from_safe_string(out))),
        Err(_) if returned.is_some() => Ok(returned.unwrap_or(Value::from(()))),
        Err(e) if e.name() == Some(file) || std::error::Error::source(&e).is_some() => Err(
            Error::new(ErrorKind::InvalidOperation, format!("in macro `{name}`")).with_source(e),
        ),
        Err(e) => Err(e),
    }
}

/// A call's arguments split for a macro whose file reads Jinja's `varargs` and `kwargs`: its
/// own (`declared`), and the others as `{varargs, kwargs}` (empty when there are none).
fn split_arguments(args: &[Value], declared: &Value) -> Result<(Vec<Value>, Value), Error> {
    let names: Vec<String> = (declared.try_iter()?)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let (Rest(positional), kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
    let own_name = |k: &str| names.iter().any(|n| n == k) || k == "caller";
    let keep = positional.len().min(names.len());
    let varargs = positional[keep..].to_vec();
    let mut own: Vec<Value> = positional[..keep].to_vec();
    let (mut mine, mut rest) = (Vec::new(), BTreeMap::new());
    for key in kwargs.args() {
        let value: Value = kwargs.peek(key)?;
        match own_name(key) {
            true => mine.push((key.to_string(), value)),
            false => drop(rest.insert(key.to_string(), value)),
        }
    }
    if !mine.is_empty() {
        own.push(Value::from(Kwargs::from_iter(mine)));
    }
    let extra = context! { varargs => varargs, kwargs => rest };
    Ok((own, extra))
}

/// Records a call of macro `name` in the render's log; an error past [`MAX_MACRO_DEPTH`]
/// nested calls.
fn enter_macro(scope: &RenderScope, file: &str, name: &str) -> Result<(), Error> {
    let mut log = scope.log();
    log.macro_depth += 1;
    if file != BUILTIN_TESTS_PATH {
        log.macros.insert(name.to_string());
    }
    if log.macro_depth > MAX_MACRO_DEPTH {
        log.help = Some(
            "a macro keeps calling itself (directly or through others): add a stopping condition"
                .into(),
        );
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("macro `{name}` nested more than {MAX_MACRO_DEPTH} calls deep"),
        ));
    }
    Ok(())
}

/// Renders the macro's file with the caller's `ref`, `source`, `config`, `this`, `model` and
/// `is_incremental` (and, for a package's macro, the package's other macros by name), and
/// calls the macro in it.
fn run_macro(state: &State, m: &MacroFn, args: &[Value]) -> Result<String, Error> {
    let package_macros = m.package.as_ref().and_then(|p| state.lookup(p));
    let ctx = context! {
        ref => state.lookup("ref"),
        source => state.lookup("source"),
        config => state.lookup("config"),
        this => state.lookup("this"),
        model => state.lookup("model"),
        is_incremental => state.lookup("is_incremental"),
        execute => state.lookup("execute"),
        __xform_package => m.package.as_deref(),
        ..package_macros.unwrap_or_default()
    };
    state.env().get_template(&m.file).and_then(|tmpl| {
        let mut captured = tmpl.render_captured(ctx.clone())?;
        let reads_extra = *(m.reads_extra).get_or_init(|| {
            let source = tmpl.source();
            source.contains("kwargs") || source.contains("varargs")
        });
        let mut args = args.to_vec();
        if reads_extra {
            let declared = captured.with_state_mut(|s| s.lookup(&m.inner));
            let declared = declared.and_then(|mac| mac.get_attr("arguments").ok());
            if let Some(declared) = declared {
                let (own, extra) = split_arguments(&args, &declared)?;
                captured = tmpl.render_captured(context! { ..extra, ..ctx })?;
                args = own;
            }
        }
        let out = captured.with_state_mut(|s| s.call_macro(&m.inner, &args));
        // The macro ran in a render of its own, with fuel of its own: the caller pays for it,
        // so a loop of macro calls stops like any other loop.
        let used = captured.with_state_mut(|s| s.fuel_levels().map_or(0, |(used, _)| used));
        state.consume_fuel(used)?;
        out
    })
}

/// The output of one render: SQL with relation placeholders, and what the render recorded.
pub(crate) struct Rendered {
    pub(crate) sql: String,
    pub(crate) log: RenderLog,
}

/// Renders one node's template (`path` and `text`, usually the node's own) as node `idx`;
/// `incremental` is what `is_incremental()` returns (true for an incremental model's run on
/// top of its existing table). With `warehouse`, the node is being built and its macros may
/// query it; without, a render that asks the warehouse something is rendered again with
/// `execute` false, as dbt parses, and says so in its log (`needs_warehouse`).
pub(crate) fn render<'s>(
    t: &Templates<'s>,
    names: &Arc<Names>,
    (idx, node): (usize, &Node),
    (path, text): (&'s str, &'s str),
    (incremental, warehouse): (bool, Option<Arc<dyn Querier>>),
) -> Result<Rendered, Diagnostic> {
    jinja::check_length(path, text)?;
    let source = dbt::mutable_literals(text);
    let online = warehouse.is_some();
    let once = |warehouse, execute| {
        let scope = RenderScope::new((idx, &node.config), names, warehouse, execute);
        let scope = Arc::new(scope);
        let ctx = render_context(&scope, (idx, node), incremental);
        let result = t.env.render_named_str(path, &source, ctx);
        (result, std::mem::take(&mut *scope.log()))
    };
    let (mut result, mut log) = once(warehouse, true);
    if log.needs_warehouse && !online {
        (result, log) = once(None, false);
        log.needs_warehouse = true;
    }
    match result {
        Ok(sql) => Ok(Rendered { sql, log }),
        Err(e) => Err(jinja_diagnostic(&e, log.help, Some(t))),
    }
}

/// Renders a hook's statement (`pre_hook`, `post_hook`, `on_run_start`, ...): as node `idx`'s
/// template sees the world (`this` is its relation), or, without a node, with the project's
/// globals, its macros and `schemas` (every schema it builds into, as dbt's `on-run-end`
/// sees them). The error is minijinja's message.
pub(crate) fn render_hook(
    t: &Templates<'_>,
    names: &Arc<Names>,
    (node, schemas): (Option<(usize, &Node)>, &[String]),
    text: &str,
) -> Result<String, String> {
    let ctx = match node {
        Some((idx, n)) => {
            let scope = Arc::new(RenderScope::new((idx, &n.config), names, None, true));
            render_context(&scope, (idx, n), false)
        }
        None => context! { schemas => schemas.to_vec() },
    };
    t.env
        .render_str(text, ctx)
        .map_err(|e| describe(error_frames(&e).last().copied().unwrap_or(&e)))
}

/// What a node's template sees: `ref`, `source`, `config` and `this` bound to its render,
/// `model`, and `is_incremental()`.
fn render_context(
    scope: &Arc<RenderScope>,
    (idx, node): (usize, &Node),
    incremental: bool,
) -> Value {
    context! {
        ref => Value::from_object(RefFn(scope.clone())),
        source => Value::from_object(SourceFn(scope.clone())),
        config => Value::from_object(ConfigFn(scope.clone())),
        this => scope.relation(idx),
        model => context! { name => node.name.clone(), unique_id => node.unique_id.clone(), path => node.path.to_string() },
        is_incremental => Value::from_function(move || incremental),
        execute => scope.execute,
    }
}

/// A minijinja error as a diagnostic at the innermost failing line, with each enclosing
/// macro call as a related location.
fn jinja_diagnostic(e: &Error, help: Option<String>, t: Option<&Templates>) -> Diagnostic {
    let frames = error_frames(e);
    let innermost = frames
        .iter()
        .rev()
        .find(|f| f.name().is_some())
        .copied()
        .unwrap_or(e);
    let message = describe(innermost);
    let help = help.or_else(|| hint(innermost, t));
    let mut d = Diagnostic::error(message)
        .at_opt(frame_loc(innermost))
        .help_opt(help);
    for f in frames.iter().filter(|f| !std::ptr::eq(**f, innermost)) {
        if let Some(loc) = frame_loc(f) {
            let what = f.detail().unwrap_or("called from here").to_string();
            d = d.related(loc, what.replace("in macro", "calls macro"));
        }
    }
    d
}

/// `e` and the minijinja errors it wraps, outermost first.
fn error_frames(e: &Error) -> Vec<&Error> {
    let mut frames: Vec<&Error> = vec![e];
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        match next.downcast_ref::<Error>() {
            Some(inner) => frames.push(inner),
            None => break,
        }
        cur = next;
    }
    frames
}

fn describe(e: &Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::SyntaxError, Some(d)) => format!("Jinja syntax error: {d}"),
        (ErrorKind::UndefinedError, Some(d)) => format!("undefined value: {d}"),
        (ErrorKind::UndefinedError, None) => "undefined value".into(),
        (ErrorKind::UnknownFunction, Some(d)) => format!("unknown function or macro: {d}"),
        (ErrorKind::OutOfFuel, _) => format!(
            "the template was stopped after {MAX_STEPS} steps: a loop that does not end, or one far too long"
        ),
        (_, Some(d)) => d.to_string(),
        (kind, None) => kind.to_string(),
    }
}

fn hint(e: &Error, t: Option<&Templates>) -> Option<String> {
    match e.kind() {
        ErrorKind::OutOfFuel => {
            Some("check the bounds of the loops (and of macros calling themselves) here".into())
        }
        ErrorKind::UnknownFunction => {
            let name = e.detail()?.split_whitespace().next()?;
            let known = t?.macros.keys().map(String::as_str);
            did_you_mean(name, known).or_else(|| {
                Some("macros are defined with {% macro name(...) %} in macros/*.sql".into())
            })
        }
        _ if e
            .detail()
            .is_some_and(|d| d.starts_with("var(") && d.ends_with("is not defined")) =>
        {
            let name = e.detail()?.split('\'').nth(1)?;
            Some(format!(
                "define it under `vars:` in project.yml, pass --vars '{{{name}: ...}}', or give a default: var('{name}', ...)"
            ))
        }
        ErrorKind::UndefinedError => {
            Some("set it with {% set name = ... %}, or read a project var with var('name')".into())
        }
        _ => None,
    }
}

/// A location in a template: the byte range minijinja reports, or else its line.
fn frame_loc(e: &Error) -> Option<Loc> {
    let name: Arc<str> = Arc::from(e.name()?);
    let span = match (e.range(), e.template_source(), e.line()) {
        (Some(range), _, _) => range,
        (None, Some(src), Some(line)) => crate::diagnostics::line_span(src, line),
        _ => 0..0,
    };
    Some(Loc::new(&name, span))
}
