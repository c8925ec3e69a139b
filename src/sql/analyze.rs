//! Reading compiled SQL with sqlparser: is it one statement, is it a query, and which
//! relations does it read. Works on text only, in the target's dialect.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, Tokenizer};

use super::Dialect;

/// What sqlparser made of one compiled model.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Analysis {
    /// One query; the relations it reads (parts of each name, unquoted), CTEs left out.
    Query { relations: Vec<Vec<String>> },
    /// sqlparser could not parse it: its message, and 1-based line/column in the compiled SQL.
    Unparsed {
        message: String,
        line: usize,
        column: usize,
    },
    /// Not exactly one statement.
    Statements(usize),
    /// One statement that is not a query (`insert`, `create`, ...).
    NotAQuery(String),
    /// Too large for sqlparser to read safely: why.
    TooLarge(String),
}

/// Why sqlparser gave no statements.
pub(super) enum Unread {
    TooLarge(String),
    Failed(String),
}

/// How much SQL sqlparser is given. Its trees are as deep as a chain of `UNION`s or of
/// operators is long, every walk over them recurses, and each `SELECT` costs kilobytes: past
/// these a model is not checked (the warehouse still reads it).
const MAX_TOKENS: usize = 500_000;
const MAX_SET_OPERATIONS: usize = 10_000;

/// sqlparser's statements, or why there are none: SQL too large to read, or its error.
pub(super) fn parse(dialect: &dyn Dialect, sql: &str) -> Result<Vec<Statement>, Unread> {
    let dialect = dialect.parser();
    let tokens = Tokenizer::new(dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| Unread::Failed(e.to_string()))?;
    let set_operations = tokens
        .iter()
        .filter(|t| {
            matches!(&t.token, Token::Word(w) if matches!(w.keyword, Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS))
        })
        .count();
    if tokens.len() > MAX_TOKENS || set_operations > MAX_SET_OPERATIONS {
        return Err(Unread::TooLarge(format!(
            "{} tokens and {set_operations} UNION/EXCEPT/INTERSECT (the check reads at most 500,000 and 10,000)",
            tokens.len()
        )));
    }
    Parser::new(dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| Unread::Failed(e.to_string()))
}

pub(crate) fn analyze(dialect: &dyn Dialect, sql: &str) -> Analysis {
    let statements = match parse(dialect, sql) {
        Ok(s) => s,
        Err(Unread::TooLarge(why)) => return Analysis::TooLarge(why),
        Err(Unread::Failed(message)) => {
            let (line, column) = position(&message).unwrap_or((0, 0));
            let message = message
                .split(" at Line:")
                .next()
                .unwrap_or(&message)
                .replace("sql parser error: ", "");
            return Analysis::Unparsed {
                message,
                line,
                column,
            };
        }
    };
    match statements.as_slice() {
        [Statement::Query(q)] => Analysis::Query {
            relations: relations(q),
        },
        [other] => Analysis::NotAQuery(statement_kind(other)),
        many => Analysis::Statements(many.len()),
    }
}

/// The SQL as sqlparser prints it back: layout, comments and keyword case no longer count.
/// Text it cannot parse comes back with its whitespace collapsed.
pub(crate) fn canonical(dialect: &dyn Dialect, sql: &str) -> String {
    match parse(dialect, sql) {
        Ok(statements) => statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";\n"),
        Err(_) => sql.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// `... at Line: 3, Column: 14` in a sqlparser message.
fn position(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

#[derive(Default)]
struct Relations {
    ctes: HashSet<String>,
    tables: Vec<Vec<String>>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.to_lowercase()),
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            self.tables.push(parts(name));
        }
        ControlFlow::Continue(())
    }
}

/// A name's parts, unquoted.
pub(super) fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect()
}

fn relations(q: &Query) -> Vec<Vec<String>> {
    let mut v = Relations::default();
    let _ = q.visit(&mut v);
    let Relations { ctes, tables } = v;
    let mut out: Vec<Vec<String>> = Vec::new();
    for t in tables {
        let is_cte = t.len() == 1 && ctes.contains(&t[0].to_lowercase());
        if !is_cte && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Functions and values that differ between two runs over the same data: the time, random
/// numbers, fresh identifiers, sequences.
const VOLATILE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "today",
    "get_current_time",
    "get_current_timestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "clock_timestamp",
    "timeofday",
    "getdate",
    "sysdate",
    "unix_timestamp",
    "random",
    "rand",
    "randn",
    "setseed",
    "uuid",
    "gen_random_uuid",
    "uuid_generate_v4",
    "nextval",
    "txid_current",
];

/// What reuse reads of a build's SQL, in one pass of the tokenizer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tokens {
    /// Its tokens as written, without the comments and layout between them: a changed
    /// comment or indentation is no change. (As written: sqlparser reads some different
    /// spellings as one token, `0x10` and `x'10'`; and DuckDB keeps an alias's case.)
    pub(crate) key: String,
    /// The first word (outside literals and comments) that names something `VOLATILE`, lower
    /// case.
    pub(crate) volatile: Option<String>,
}

/// `sql`'s `Tokens`; `Err` when it cannot be read (then nothing is known of it).
pub(crate) fn tokens(dialect: &dyn Dialect, sql: &str) -> Result<Tokens, String> {
    let tokens = Tokenizer::new(dialect.parser(), sql)
        .tokenize_with_location()
        .map_err(|e| e.to_string())?;
    let mut key = String::with_capacity(sql.len());
    let mut volatile = None;
    let mut text = SourceText::new(sql);
    for t in tokens {
        let written = text.up_to(t.span.end);
        match t.token {
            Token::Whitespace(_) => continue,
            Token::Word(w) if w.quote_style.is_none() && volatile.is_none() => {
                let word = w.value.to_ascii_lowercase();
                volatile = VOLATILE.contains(&word.as_str()).then_some(word);
            }
            _ => {}
        }
        key.push_str(written);
        key.push(' ');
    }
    Ok(Tokens { key, volatile })
}

/// Walks SQL text by the tokenizer's locations (line, and column in characters), handing
/// out each token's text in turn.
struct SourceText<'s> {
    rest: &'s str,
    at: Location,
}

impl<'s> SourceText<'s> {
    fn new(sql: &'s str) -> Self {
        SourceText {
            rest: sql,
            at: Location { line: 1, column: 1 },
        }
    }

    /// The text from where the last token ended to `end` (where this one ends).
    fn up_to(&mut self, end: Location) -> &'s str {
        let mut len = 0;
        let mut chars = self.rest.chars();
        while (self.at.line, self.at.column) < (end.line, end.column) {
            let Some(c) = chars.next() else { break };
            len += c.len_utf8();
            self.at = match c {
                '\n' => Location {
                    line: self.at.line + 1,
                    column: 1,
                },
                _ => Location {
                    line: self.at.line,
                    column: self.at.column + 1,
                },
            };
        }
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Kind;

    fn key(sql: &str) -> String {
        tokens(Kind::DuckDb.dialect(), sql).unwrap().key
    }

    #[test]
    fn a_reuse_key_ignores_comments_and_layout_and_nothing_else() {
        let plain = key("select '김치' as 이름, 0x10 as n from t");
        let commented = "-- 주석\nselect\n    '김치' as 이름, /* 설명 */ 0x10 as n\nfrom t -- 끝\n";
        assert_eq!(key(commented), plain);
        // An alias's case is kept by DuckDB; sqlparser reads `x'10'` as `0x10`.
        assert_ne!(key("select '김치' as 이름, 0x10 as N from t"), plain);
        assert_ne!(key("select '김치' as 이름, x'10' as n from t"), plain);
        assert_ne!(key("select '김치 ' as 이름, 0x10 as n from t"), plain);
    }

    #[test]
    fn a_reuse_key_finds_volatile_calls_outside_literals() {
        let t = tokens(Kind::DuckDb.dialect(), "select 'now()' as a, NOW() as b").unwrap();
        assert_eq!(t.volatile.as_deref(), Some("now"));
        let t = tokens(Kind::DuckDb.dialect(), "select 'now()' as a -- random()").unwrap();
        assert_eq!(t.volatile, None);
    }
}
