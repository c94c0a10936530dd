//! Standard output that never panics: `ballast status | head -1` closes the pipe after one
//! line, and `print!` would then panic ("failed printing to stdout: Broken pipe"). Here a
//! failed write marks stdout closed and later output is dropped; the command itself goes on
//! to its end (a `run` finishes what it started) and its exit code is unchanged. Standard
//! error alike.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static ERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` and a newline to stderr, unless it was closed (`2>&1 | head -1`).
pub fn write_err(args: fmt::Arguments<'_>) {
    if ERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err.write_fmt(args).and_then(|()| err.write_all(b"\n")).is_err() {
        ERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes `args` (and a newline) to stdout, unless it was closed.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let r = out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) });
    if r.and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `print!` to [`write`].
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::stdout::write(format_args!($($t)*), false) };
}

/// `println!` to [`write`].
#[macro_export]
macro_rules! outln {
    () => { $crate::stdout::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::stdout::write(format_args!($($t)*), true) };
}

/// `eprintln!` to [`write_err`].
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::stdout::write_err(format_args!($($t)*)) };
}
