//! A data test whose macros ask the warehouse while it renders (dbt_utils' `equality` reads
//! the model's columns), rendered on the job's own session: that session sees the staged
//! relation the test audits, which no other session can. The render cannot hold the session,
//! so it runs with the answers known so far, its new questions are answered on the session
//! (the published name read as the staged one), and it runs again until it asks nothing new.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::Swap;
use crate::adapter::{Relation, Session};
use crate::compile::Compiled;
use crate::template::{Querier, QueryRows};

/// Renders that still ask something new after this many rounds are an error.
const ROUNDS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Question {
    Query(String),
    Columns(Relation),
}

#[derive(Clone, Debug)]
enum Answer {
    Rows(QueryRows),
    Columns(Option<Vec<(String, String)>>),
}

/// Answers from earlier rounds; what it could not answer is kept for the next.
#[derive(Default)]
struct Replay {
    answers: HashMap<Question, Result<Answer, String>>,
    asked: Mutex<Vec<Question>>,
}

impl Replay {
    fn answer(&self, q: Question) -> Option<Result<Answer, String>> {
        let found = self.answers.get(&q).cloned();
        if found.is_none() {
            self.asked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(q);
        }
        found
    }
}

impl Querier for Replay {
    fn query(&self, sql: &str) -> Result<QueryRows, String> {
        match self.answer(Question::Query(sql.to_string())) {
            Some(Ok(Answer::Rows(rows))) => Ok(rows),
            Some(Err(e)) => Err(e),
            _ => Ok((Vec::new(), Vec::new(), Vec::new())),
        }
    }

    fn columns(&self, relation: &Relation) -> Result<Option<Vec<(String, String)>>, String> {
        match self.answer(Question::Columns(relation.clone())) {
            Some(Ok(Answer::Columns(columns))) => Ok(columns),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }
}

/// Test `t`'s SQL rendered against the warehouse through `session`.
pub(super) fn render(
    c: &Compiled,
    t: usize,
    session: &mut dyn Session,
    swap: Option<&Swap>,
) -> Result<String, String> {
    let mut answers = HashMap::new();
    for _ in 0..ROUNDS {
        let replay = Arc::new(Replay {
            answers: answers.clone(),
            asked: Mutex::default(),
        });
        let rendered = (c.render_at_run(t, replay.clone()))
            .map_err(|d| format!("rendering it against the warehouse: {}", d.message));
        let asked =
            std::mem::take(&mut *replay.asked.lock().unwrap_or_else(PoisonError::into_inner));
        // A render that failed on an answer it did not have yet is tried again with it.
        if asked.is_empty() {
            return rendered.map(|(sql, _)| sql);
        }
        for q in asked {
            let a = ask(session, &q, swap);
            answers.insert(q, a);
        }
    }
    Err(format!(
        "its macros kept asking the warehouse new questions after {ROUNDS} renders"
    ))
}

/// One question asked on the session, the audited model's published name read as its staged
/// one.
fn ask(session: &mut dyn Session, q: &Question, swap: Option<&Swap>) -> Result<Answer, String> {
    match q {
        Question::Query(sql) => {
            let sql = swap.map_or(sql.clone(), |s| sql.replace(&s.published, &s.staged));
            let rows = session.query_typed(&sql).map_err(|e| e.to_string())?;
            Ok(Answer::Rows((rows.columns, rows.rows, rows.types)))
        }
        Question::Columns(rel) => {
            let staged = swap
                .filter(|s| s.published_as == *rel)
                .map(|s| &s.staged_as);
            let columns = session
                .columns(staged.unwrap_or(rel))
                .map_err(|e| e.to_string())?;
            Ok(Answer::Columns(columns))
        }
    }
}
