//! Standard output and error that never panic. A reader that goes away (`xform ls | head -1`)
//! ends the output quietly, as ripgrep does; any other failure to write stdout (a full disk)
//! is kept and reported once, on stderr, when the command ends. Either way the command goes
//! on, so a build still finishes and writes its artifacts. Writing stderr cannot fail loudly:
//! there is nowhere left to say so.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

enum State {
    Open,
    /// The reader closed the pipe: nothing more is written, and that is no error.
    Closed,
    Failed(io::Error),
}

static STDOUT: Mutex<State> = Mutex::new(State::Open);

/// Writes to stdout unless it has closed or failed (`outln!`, `out!`).
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    let mut state = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    if !matches!(*state, State::Open) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        *state = match e.kind() {
            io::ErrorKind::BrokenPipe => State::Closed,
            _ => State::Failed(e),
        };
    }
}

/// Writes to stderr, ignoring failure (`errln!`, `err!`).
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Why stdout could not be written, unless its reader simply went away.
pub(crate) fn failure() -> Option<String> {
    match &*STDOUT.lock().unwrap_or_else(PoisonError::into_inner) {
        State::Failed(e) => Some(e.to_string()),
        _ => None,
    }
}
