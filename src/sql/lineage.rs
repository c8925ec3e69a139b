//! Column lineage of one query, from its text: for each output column, the columns of the
//! relations it reads that it derives from, through CTEs, subqueries, joins, set operations,
//! aggregates and window functions, with the expressions applied on the way. `select *` is
//! expanded from the columns the caller knows of each relation ([`Known`]); what cannot be
//! resolved is reported, never guessed.

use std::ops::ControlFlow;
use std::rc::Rc;

use sqlparser::ast::{
    Expr, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint, JoinOperator, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, TableAlias,
    TableFactor, TableWithJoins, Visit, Visitor, WildcardAdditionalOptions,
};

use super::Dialect;
use super::analyze::{Unread, parse, parts};

/// Where an output column's value comes from: a column of a relation the query reads
/// (`column` is `*` for the rows themselves, as `count(*)` reads them), and the expressions
/// applied to it on the way, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) relation: Vec<String>,
    pub(crate) column: String,
    pub(crate) steps: Vec<String>,
}

/// An output column and its origins; none, with nothing unresolved, means a constant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) origins: Vec<Origin>,
    /// Some column it reads could not be resolved.
    pub(crate) unresolved: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Lineage {
    pub(crate) columns: Vec<Column>,
    /// What could not be resolved, said for a person.
    pub(crate) unresolved: Vec<String>,
    /// Some `*` could not be expanded: the output may have more columns than `columns`.
    pub(crate) partial: bool,
}

/// What the caller knows of the relations a query reads.
pub(crate) trait Known {
    /// The columns of a relation (its unquoted name parts), in order; None when unknown.
    fn columns(&self, relation: &[String]) -> Option<Vec<String>>;
    /// A CTE that stands for a relation of its own (an inlined ephemeral model): read as a
    /// relation, not looked into.
    fn opaque_cte(&self, _name: &str) -> bool {
        false
    }
}

/// The lineage of `sql`, one query in `dialect`; Err with sqlparser's message otherwise.
pub(crate) fn lineage(
    dialect: &dyn Dialect,
    sql: &str,
    known: &dyn Known,
) -> Result<Lineage, String> {
    let statements = parse(dialect, sql).map_err(|e| match e {
        Unread::TooLarge(why) | Unread::Failed(why) => why,
    })?;
    let [sqlparser::ast::Statement::Query(q)] = statements.as_slice() else {
        return Err("not one query".into());
    };
    let mut ctx = Ctx {
        known,
        ctes: Vec::new(),
        unresolved: Vec::new(),
        partial: false,
    };
    let set = ctx.query(q, None);
    let columns = set
        .cols
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            origins: c.origins.clone(),
            unresolved: c.unresolved,
        })
        .collect();
    Ok(Lineage {
        columns,
        unresolved: ctx.unresolved,
        partial: ctx.partial,
    })
}

/// A column within the query, with its origins so far.
#[derive(Clone, Debug, Default)]
struct Col {
    name: String,
    origins: Vec<Origin>,
    unresolved: bool,
}

/// The output of a query or a CTE: its columns and the relations whose rows it is made of.
#[derive(Debug, Default)]
struct Set {
    cols: Vec<Col>,
    rows: Vec<Vec<String>>,
}

/// A relation in a `FROM` clause under its alias: a relation of the warehouse (columns maybe
/// unknown) or a CTE or subquery already resolved.
struct Source {
    alias: String,
    relation: Option<Vec<String>>,
    names: Option<Vec<String>>,
    set: Option<Rc<Set>>,
    /// The right side of a semi or anti join: not in `*`.
    hidden: bool,
}

impl Source {
    /// The origins of its column `name`, if it has one by that name, and whether they are
    /// incomplete.
    fn column(&self, name: &str) -> Option<(Vec<Origin>, bool)> {
        if let Some(set) = &self.set {
            let c = set.cols.iter().find(|c| same(&c.name, name))?;
            return Some((c.origins.clone(), c.unresolved));
        }
        let relation = self.relation.as_ref()?;
        let column = (self.names.iter().flatten()).find(|c| same(c, name));
        let origin = Origin {
            relation: relation.clone(),
            column: column.map_or(name, |c| c.as_str()).to_string(),
            steps: Vec::new(),
        };
        Some((vec![origin], false))
    }

    fn has_known(&self, name: &str) -> bool {
        match (&self.set, &self.names) {
            (Some(set), _) => set.cols.iter().any(|c| same(&c.name, name)),
            (None, Some(names)) => names.iter().any(|c| same(c, name)),
            (None, None) => false,
        }
    }

    fn rows(&self) -> Vec<Vec<String>> {
        match (&self.set, &self.relation) {
            (Some(set), _) => set.rows.clone(),
            (None, Some(r)) => vec![r.clone()],
            (None, None) => Vec::new(),
        }
    }

    /// Every column, for `*`; None when its columns are unknown.
    fn all(&self) -> Option<Vec<Col>> {
        if let Some(set) = &self.set {
            return Some(set.cols.clone());
        }
        let names = self.names.as_ref()?;
        Some(
            names
                .iter()
                .map(|n| Col {
                    name: n.clone(),
                    origins: self.column(n).map(|c| c.0).unwrap_or_default(),
                    unresolved: false,
                })
                .collect(),
        )
    }

    fn describe(&self) -> String {
        self.relation
            .as_ref()
            .map_or_else(|| self.alias.clone(), |r| r.join("."))
    }
}

/// The sources of one `SELECT`, with the scope around it (for correlated subqueries) and the
/// columns it has named so far (DuckDB reads an earlier alias of the same list).
struct Scope<'p> {
    sources: Vec<Source>,
    outer: Option<&'p Scope<'p>>,
    named: Vec<Col>,
    /// Columns `USING`/`NATURAL` joins merged: one column, from every side.
    using: Vec<String>,
}

struct Ctx<'k> {
    known: &'k dyn Known,
    /// CTEs visible here, innermost last.
    ctes: Vec<(String, Rc<Set>)>,
    unresolved: Vec<String>,
    partial: bool,
}

/// Names compared as an unquoting warehouse compares them: case-insensitively.
fn same(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.to_lowercase() == b.to_lowercase()
}

impl Ctx<'_> {
    fn report(&mut self, what: String) {
        if !self.unresolved.contains(&what) {
            self.unresolved.push(what);
        }
    }

    fn query(&mut self, q: &Query, outer: Option<&Scope>) -> Set {
        let depth = self.ctes.len();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.clone();
                if self.known.opaque_cte(&name) {
                    continue;
                }
                let set = self.query(&cte.query, outer);
                let set = aliased(set, &cte.alias);
                self.ctes.push((name, Rc::new(set)));
            }
        }
        let set = self.set_expr(&q.body, outer);
        self.ctes.truncate(depth);
        set
    }

    fn set_expr(&mut self, body: &SetExpr, outer: Option<&Scope>) -> Set {
        match body {
            SetExpr::Select(s) => self.select(s, outer),
            SetExpr::Query(q) => self.query(q, outer),
            SetExpr::SetOperation {
                left,
                right,
                op,
                set_quantifier,
            } => {
                let l = self.set_expr(left, outer);
                let r = self.set_expr(right, outer);
                set_operation(l, r, op, set_quantifier)
            }
            SetExpr::Values(v) => Set {
                cols: (1..=v.rows.first().map_or(0, |r| r.len()))
                    .map(|k| Col {
                        name: format!("column{k}"),
                        ..Col::default()
                    })
                    .collect(),
                rows: Vec::new(),
            },
            SetExpr::Table(t) => {
                let name = t.table_name.clone().unwrap_or_default();
                let source = self.relation(vec![name.clone()], &name);
                Set {
                    cols: source.all().unwrap_or_default(),
                    rows: source.rows(),
                }
            }
            other => {
                self.report(format!("a `{}` statement", first_words(&other.to_string())));
                Set::default()
            }
        }
    }

    fn select(&mut self, s: &Select, outer: Option<&Scope>) -> Set {
        let (mut sources, mut using) = (Vec::new(), Vec::new());
        for t in &s.from {
            self.table_with_joins(t, outer, (&mut sources, &mut using));
        }
        let mut scope = Scope {
            sources,
            outer,
            named: Vec::new(),
            using,
        };
        for item in &s.projection {
            let cols = self.item(item, &scope);
            scope.named.extend(cols);
        }
        let mut rows = Vec::new();
        for s in &scope.sources {
            for r in s.rows() {
                if !rows.contains(&r) {
                    rows.push(r);
                }
            }
        }
        let mut cols = scope.named;
        number_duplicates(&mut cols);
        Set { cols, rows }
    }

    /// The relations of a FROM item and its joins; the columns `USING (...)` or `NATURAL`
    /// joins merge go to `using`.
    fn table_with_joins(
        &mut self,
        t: &TableWithJoins,
        outer: Option<&Scope>,
        (out, using): (&mut Vec<Source>, &mut Vec<String>),
    ) {
        self.factor(&t.relation, outer, out);
        for j in &t.joins {
            let before = out.len();
            self.factor(&j.relation, outer, out);
            let (constraint, hidden) = join_constraint(&j.join_operator);
            for s in &mut out[before..] {
                s.hidden = hidden;
            }
            match constraint {
                Some(JoinConstraint::Using(names)) => {
                    using.extend(names.iter().filter_map(|n| parts(n).pop()));
                }
                Some(JoinConstraint::Natural) => {
                    let (left, right) = out.split_at(before);
                    for s in right {
                        let common = s.all().unwrap_or_default().into_iter().map(|c| c.name);
                        using.extend(common.filter(|n| left.iter().any(|l| l.has_known(n))));
                    }
                }
                _ => {}
            }
        }
    }

    fn factor(&mut self, f: &TableFactor, outer: Option<&Scope>, out: &mut Vec<Source>) {
        match f {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let p = parts(name);
                let alias_name = alias.as_ref().map_or_else(
                    || p.last().cloned().unwrap_or_default(),
                    |a| a.name.value.clone(),
                );
                if args.is_some() {
                    // A table function (files read by the warehouse): a relation named by
                    // its call, which the caller may know.
                    let mut call = f.clone();
                    if let TableFactor::Table { alias, .. } = &mut call {
                        *alias = None;
                    }
                    out.push(self.relation(vec![call.to_string()], &alias_name));
                    return;
                }
                let mut source = self.relation(p, &alias_name);
                if let Some(a) = alias.as_ref().filter(|a| !a.columns.is_empty()) {
                    let set = Set {
                        cols: source.all().unwrap_or_default(),
                        rows: source.rows(),
                    };
                    source.set = Some(Rc::new(aliased(set, a)));
                }
                out.push(source);
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let set = self.query(subquery, outer);
                let set = match alias {
                    Some(a) => aliased(set, a),
                    None => set,
                };
                out.push(Source {
                    alias: alias
                        .as_ref()
                        .map_or_else(String::new, |a| a.name.value.clone()),
                    relation: None,
                    names: None,
                    set: Some(Rc::new(set)),
                    hidden: false,
                });
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins, outer, (out, &mut Vec::new())),
            other => {
                self.report(format!(
                    "`{}` in a FROM clause",
                    first_words(&other.to_string())
                ));
                out.push(Source {
                    alias: String::new(),
                    relation: None,
                    names: None,
                    set: None,
                    hidden: false,
                });
            }
        }
    }

    /// A relation by name: a CTE in scope, else one of the warehouse.
    fn relation(&mut self, p: Vec<String>, alias: &str) -> Source {
        if let [one] = p.as_slice()
            && let Some((_, set)) = self.ctes.iter().rev().find(|(n, _)| same(n, one))
        {
            return Source {
                alias: alias.to_string(),
                relation: None,
                names: None,
                set: Some(set.clone()),
                hidden: false,
            };
        }
        let names = self.known.columns(&p);
        Source {
            alias: alias.to_string(),
            relation: Some(p),
            names,
            set: None,
            hidden: false,
        }
    }

    fn item(&mut self, item: &SelectItem, scope: &Scope) -> Vec<Col> {
        match item {
            SelectItem::UnnamedExpr(e) => vec![self.column(expr_name(e), e, scope)],
            SelectItem::ExprWithAlias { expr, alias } => {
                vec![self.column(alias.value.clone(), expr, scope)]
            }
            SelectItem::ExprWithAliases { expr, aliases } => {
                let col = self.column(String::new(), expr, scope);
                aliases
                    .iter()
                    .map(|a| Col {
                        name: a.value.clone(),
                        ..col.clone()
                    })
                    .collect()
            }
            SelectItem::Wildcard(opts) => {
                let mut cols: Vec<Col> = Vec::new();
                for s in scope.sources.iter().filter(|s| !s.hidden) {
                    for c in self.star(s) {
                        let merged = scope.using.iter().any(|u| same(u, &c.name));
                        match cols.iter_mut().find(|x| merged && same(&x.name, &c.name)) {
                            Some(first) => merge(&mut first.origins, c.origins),
                            None => cols.push(c),
                        }
                    }
                }
                self.star_options(cols, opts, scope)
            }
            SelectItem::QualifiedWildcard(kind, opts) => {
                let SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
                    self.report(format!("`{item}`"));
                    return Vec::new();
                };
                let p = parts(name);
                let alias = p.last().map_or("", String::as_str);
                let Some(s) = scope.sources.iter().find(|s| same(&s.alias, alias)) else {
                    self.report(format!(
                        "`{item}`: no relation `{alias}` in its FROM clause"
                    ));
                    return Vec::new();
                };
                let cols = self.star(s);
                self.star_options(cols, opts, scope)
            }
        }
    }

    /// An output column `name` computed by `e`.
    fn column(&mut self, name: String, e: &Expr, scope: &Scope) -> Col {
        let (origins, unresolved) = self.expr(e, scope);
        Col {
            name,
            origins,
            unresolved,
        }
    }

    fn star(&mut self, s: &Source) -> Vec<Col> {
        s.all().unwrap_or_else(|| {
            self.partial = true;
            self.report(format!(
                "`*` of {}: its columns are unknown (declare them in a property file, or run `xform docs generate` to read them from the warehouse)",
                s.describe()
            ));
            Vec::new()
        })
    }

    /// `* exclude (...)`, `* replace (... as c)`, `* rename (a as b)`.
    fn star_options(
        &mut self,
        mut cols: Vec<Col>,
        o: &WildcardAdditionalOptions,
        scope: &Scope,
    ) -> Vec<Col> {
        use sqlparser::ast::{ExcludeSelectItem, RenameSelectItem};
        if let Some(ex) = &o.opt_exclude {
            let names: Vec<String> = match ex {
                ExcludeSelectItem::Single(n) => vec![parts(n).pop().unwrap_or_default()],
                ExcludeSelectItem::Multiple(ns) => {
                    ns.iter().filter_map(|n| parts(n).pop()).collect()
                }
            };
            cols.retain(|c| !names.iter().any(|n| same(n, &c.name)));
        }
        if let Some(ex) = &o.opt_except {
            let names: Vec<&Ident> = std::iter::once(&ex.first_element)
                .chain(&ex.additional_elements)
                .collect();
            cols.retain(|c| !names.iter().any(|n| same(&n.value, &c.name)));
        }
        if let Some(r) = &o.opt_replace {
            for el in &r.items {
                let replaced = self.column(el.column_name.value.clone(), &el.expr, scope);
                if let Some(c) = cols.iter_mut().find(|c| same(&c.name, &replaced.name)) {
                    *c = Col {
                        name: c.name.clone(),
                        ..replaced
                    };
                }
            }
        }
        if let Some(r) = &o.opt_rename {
            let pairs = match r {
                RenameSelectItem::Single(p) => std::slice::from_ref(p),
                RenameSelectItem::Multiple(ps) => ps.as_slice(),
            };
            for p in pairs {
                if let Some(c) = cols.iter_mut().find(|c| same(&c.name, &p.ident.value)) {
                    c.name = p.alias.value.clone();
                }
            }
        }
        cols
    }

    /// The origins of an expression: the columns it reads, each with the expression added
    /// to its steps unless the expression is just that column; and whether some column it
    /// reads could not be resolved.
    fn expr(&mut self, e: &Expr, scope: &Scope) -> (Vec<Origin>, bool) {
        let mut refs = Refs::default();
        let _ = e.visit(&mut refs);
        let trivial = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        let mut out = Vec::new();
        let mut unresolved = false;
        for idents in &refs.columns {
            if refs
                .lambda_params
                .iter()
                .any(|p| idents.len() == 1 && same(p, &idents[0].value))
            {
                continue;
            }
            match resolve(idents, scope) {
                Some((origins, u)) => {
                    unresolved |= u;
                    merge(&mut out, origins);
                }
                None => {
                    unresolved = true;
                    let name = idents
                        .iter()
                        .map(|i| i.value.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    self.report(format!(
                        "column `{name}` in `{e}`: not a column of what its FROM clause reads"
                    ));
                }
            }
        }
        if refs.rows {
            for s in &scope.sources {
                for relation in s.rows() {
                    merge(
                        &mut out,
                        vec![Origin {
                            relation,
                            column: "*".into(),
                            steps: Vec::new(),
                        }],
                    );
                }
            }
        }
        for q in &refs.subqueries {
            let set = self.query(q, Some(scope));
            for c in set.cols {
                unresolved |= c.unresolved;
                merge(&mut out, c.origins);
            }
        }
        if !trivial {
            let text = e.to_string();
            for o in &mut out {
                o.steps.push(text.clone());
            }
        }
        (out, unresolved)
    }
}

/// Resolves a column reference (`c`, `t.c`, `schema.t.c`) in a scope and those around it.
fn resolve(idents: &[Ident], scope: &Scope) -> Option<(Vec<Origin>, bool)> {
    let name = &idents.last()?.value;
    if let [.., qualifier, _] = idents {
        let found = scope
            .sources
            .iter()
            .find(|s| same(&s.alias, &qualifier.value));
        if let Some(s) = found {
            return s.column(name);
        }
        // `struct_column.field`: the column's origins.
        if let Some(o) = resolve(&idents[..1], scope).filter(|_| idents.len() == 2) {
            return Some(o);
        }
        return scope.outer.and_then(|o| resolve(idents, o));
    }
    if scope.using.iter().any(|u| same(u, name)) {
        let mut out: (Vec<Origin>, bool) = (Vec::new(), false);
        for s in scope.sources.iter().filter(|s| s.has_known(name)) {
            if let Some((origins, u)) = s.column(name) {
                merge(&mut out.0, origins);
                out.1 |= u;
            }
        }
        if !out.0.is_empty() {
            return Some(out);
        }
    }
    let known: Vec<&Source> = scope.sources.iter().filter(|s| s.has_known(name)).collect();
    if let Some(s) = known.first() {
        return s.column(name);
    }
    if let Some(c) = scope.named.iter().rev().find(|c| same(&c.name, name)) {
        return Some((c.origins.clone(), c.unresolved));
    }
    // A relation whose columns are unknown, or known only in part (a property file lists
    // some): the one relation of the warehouse read here.
    let relations: Vec<&Source> = (scope.sources.iter())
        .filter(|s| s.set.is_none() && s.relation.is_some())
        .collect();
    if let [only] = relations.as_slice() {
        return only.column(name);
    }
    scope.outer.and_then(|o| resolve(idents, o))
}

/// `l UNION r` (`BY NAME`: matched by name, `r`'s other columns added), `INTERSECT` (both
/// sides' values), `EXCEPT` (only `l`'s: `r` removes rows).
fn set_operation(mut l: Set, r: Set, op: &SetOperator, q: &SetQuantifier) -> Set {
    if matches!(op, SetOperator::Except | SetOperator::Minus) {
        return l;
    }
    let by_name = matches!(
        q,
        SetQuantifier::ByName | SetQuantifier::AllByName | SetQuantifier::DistinctByName
    );
    for (k, b) in r.cols.into_iter().enumerate() {
        let a = match by_name {
            true => l.cols.iter_mut().find(|a| same(&a.name, &b.name)),
            false => l.cols.get_mut(k),
        };
        match a {
            Some(a) => {
                a.unresolved |= b.unresolved;
                merge(&mut a.origins, b.origins);
            }
            None if by_name => l.cols.push(b),
            None => {}
        }
    }
    for row in r.rows {
        if !l.rows.contains(&row) {
            l.rows.push(row);
        }
    }
    l
}

/// A join's constraint, and whether its right side stays out of `*` (semi and anti joins).
fn join_constraint(op: &JoinOperator) -> (Option<&JoinConstraint>, bool) {
    use JoinOperator as J;
    match op {
        J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c) => (Some(c), true),
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::StraightJoin(c) => (Some(c), false),
        _ => (None, false),
    }
}

/// Output names made unique as DuckDB makes them: a repeated `amount` becomes `amount_1`.
fn number_duplicates(cols: &mut [Col]) {
    for k in 1..cols.len() {
        if !cols[..k].iter().any(|c| same(&c.name, &cols[k].name)) {
            continue;
        }
        let base = cols[k].name.clone();
        let taken = |n: &str, cols: &[Col]| cols.iter().any(|c| same(&c.name, n));
        let mut i = 1;
        while taken(&format!("{base}_{i}"), cols) {
            i += 1;
        }
        cols[k].name = format!("{base}_{i}");
    }
}

/// Adds origins not there yet.
fn merge(into: &mut Vec<Origin>, more: Vec<Origin>) {
    for o in more {
        if !into
            .iter()
            .any(|i| i.relation == o.relation && i.column == o.column)
        {
            into.push(o);
        }
    }
}

/// A set under an alias's column names (`cte(a, b)`, `t(a, b)`).
fn aliased(mut set: Set, alias: &TableAlias) -> Set {
    for (c, a) in set.cols.iter_mut().zip(&alias.columns) {
        c.name = a.name.value.clone();
    }
    set
}

/// The name a warehouse gives an unaliased expression: a column keeps its own.
fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(is) => is.last().map_or_else(String::new, |i| i.value.clone()),
        Expr::Nested(inner) => expr_name(inner),
        other => other.to_string(),
    }
}

fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The column references of an expression outside its subqueries, its subqueries, and
/// whether it counts rows (`count(*)`).
#[derive(Default)]
struct Refs {
    columns: Vec<Vec<Ident>>,
    subqueries: Vec<Query>,
    lambda_params: Vec<String>,
    rows: bool,
    depth: usize,
}

impl Visitor for Refs {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Identifier(i) => self.columns.push(vec![i.clone()]),
            Expr::CompoundIdentifier(is) => self.columns.push(is.clone()),
            Expr::Subquery(q) | Expr::Exists { subquery: q, .. } => {
                self.subqueries.push((**q).clone())
            }
            Expr::InSubquery { subquery, .. } => self.subqueries.push((**subquery).clone()),
            Expr::Lambda(l) => self
                .lambda_params
                .extend(l.params.iter().map(|p| p.name.value.clone())),
            Expr::Function(f) => {
                if let FunctionArguments::List(list) = &f.args {
                    self.rows |= list.args.iter().any(|a| {
                        matches!(
                            a,
                            sqlparser::ast::FunctionArg::Unnamed(FunctionArgExpr::Wildcard)
                        )
                    });
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Kind;

    /// Relations `orders(id, customer_id, amount, status)` and `customers(id, name)`; others
    /// unknown.
    struct Tables;

    impl Known for Tables {
        fn columns(&self, relation: &[String]) -> Option<Vec<String>> {
            let cols: &[&str] = match relation.last()?.as_str() {
                "orders" => &["id", "customer_id", "amount", "status"],
                "customers" => &["id", "name"],
                "__xform_cte__eph" => &["id", "x"],
                _ => return None,
            };
            Some(cols.iter().map(|c| c.to_string()).collect())
        }

        fn opaque_cte(&self, name: &str) -> bool {
            name == "__xform_cte__eph"
        }
    }

    /// Each output column as `name <- relation.column [steps]`, origins sorted.
    fn edges(sql: &str) -> Vec<String> {
        let l = lineage(Kind::DuckDb.dialect(), sql, &Tables).expect("parses");
        let mut out = Vec::new();
        for c in &l.columns {
            if c.origins.is_empty() {
                out.push(format!(
                    "{} <- {}",
                    c.name,
                    if c.unresolved { "?" } else { "constant" }
                ));
            }
            for o in &c.origins {
                let steps = match o.steps.as_slice() {
                    [] => String::new(),
                    s => format!(" [{}]", s.join(" | ")),
                };
                out.push(format!(
                    "{} <- {}.{}{steps}",
                    c.name,
                    o.relation.join("."),
                    o.column
                ));
            }
        }
        out
    }

    #[test]
    fn copies_renames_and_expressions() {
        assert_eq!(
            edges(
                "select id, customer_id as cust, amount * 2 as doubled, 1 as one from main.orders"
            ),
            [
                "id <- main.orders.id",
                "cust <- main.orders.customer_id",
                "doubled <- main.orders.amount [amount * 2]",
                "one <- constant",
            ]
        );
    }

    #[test]
    fn through_ctes_joins_and_aggregates() {
        let sql = "with o as (select * from orders where status <> 'x'),
            c as (select id as customer_id, name from customers)
            select c.name, sum(o.amount) as total, count(*) as n
            from o join c on c.customer_id = o.customer_id group by 1";
        assert_eq!(
            edges(sql),
            [
                "name <- customers.name",
                "total <- orders.amount [sum(o.amount)]",
                "n <- orders.* [count(*)]",
                "n <- customers.* [count(*)]",
            ]
        );
    }

    #[test]
    fn unions_merge_each_position_and_windows_read_their_partition() {
        let sql = "select id, amount from orders union all select id, null from customers";
        assert_eq!(
            edges(sql),
            [
                "id <- orders.id",
                "id <- customers.id",
                "amount <- orders.amount"
            ]
        );
        let w =
            "select row_number() over (partition by customer_id order by amount) as rn from orders";
        let got = edges(w);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("rn <- orders.customer_id [row_number()"));
        assert!(got[1].starts_with("rn <- orders.amount [row_number()"));
    }

    #[test]
    fn stars_expand_with_exclude_replace_and_qualified() {
        assert_eq!(
            edges("select * exclude (status) replace (amount / 100 as amount) from orders"),
            [
                "id <- orders.id",
                "customer_id <- orders.customer_id",
                "amount <- orders.amount [amount / 100]",
            ]
        );
        assert_eq!(
            edges(
                "select c.*, o.id as order_id from orders o join customers c on c.id = o.customer_id"
            ),
            [
                "id <- customers.id",
                "name <- customers.name",
                "order_id <- orders.id"
            ]
        );
    }

    #[test]
    fn subqueries_and_derived_tables() {
        let sql = "select t.total, (select max(name) from customers) as top
            from (select sum(amount) as total from orders) as t(total)";
        assert_eq!(
            edges(sql),
            [
                "total <- orders.amount [sum(amount)]",
                "top <- customers.name [max(name) | (SELECT max(name) FROM customers)]",
            ]
        );
    }

    #[test]
    fn union_by_name_matches_names_and_except_reads_only_its_left_side() {
        let sql = "select id, name from customers union all by name select amount, id from orders";
        assert_eq!(
            edges(sql),
            [
                "id <- customers.id",
                "id <- orders.id",
                "name <- customers.name",
                "amount <- orders.amount"
            ]
        );
        assert_eq!(
            edges("select id from customers except select customer_id from orders"),
            ["id <- customers.id"]
        );
    }

    #[test]
    fn using_merges_the_join_column_and_repeated_names_are_numbered() {
        let sql = "select * from customers c full outer join orders o using (id)";
        assert_eq!(
            edges(sql),
            [
                "id <- customers.id",
                "id <- orders.id",
                "name <- customers.name",
                "customer_id <- orders.customer_id",
                "amount <- orders.amount",
                "status <- orders.status",
            ]
        );
        assert_eq!(
            edges("select c.id, o.id from customers c join orders o on o.customer_id = c.id"),
            ["id <- customers.id", "id_1 <- orders.id"]
        );
        assert_eq!(
            edges("select * from customers c semi join orders o on o.customer_id = c.id"),
            ["id <- customers.id", "name <- customers.name"]
        );
    }

    #[test]
    fn an_inlined_ephemeral_is_a_relation_of_its_own() {
        let sql =
            "with __xform_cte__eph as (select 1 as id, 2 as x) select x from __xform_cte__eph";
        assert_eq!(edges(sql), ["x <- __xform_cte__eph.x"]);
    }

    #[test]
    fn what_cannot_be_resolved_is_reported_not_guessed() {
        let l = lineage(Kind::DuckDb.dialect(), "select * from mystery", &Tables).expect("parses");
        assert!(l.partial && l.columns.is_empty());
        assert!(
            l.unresolved[0].contains("`*` of mystery"),
            "{:?}",
            l.unresolved
        );
        let sql = "select nope from orders o join customers c on c.id = o.customer_id";
        assert_eq!(edges(sql), ["nope <- ?"]);
        // One relation whose columns are unknown: its columns are read as named.
        assert_eq!(
            edges("select a + b as c from mystery"),
            ["c <- mystery.a [a + b]", "c <- mystery.b [a + b]",]
        );
    }
}
