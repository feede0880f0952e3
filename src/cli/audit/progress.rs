//! A progress line on standard error while a large cluster is read, rewritten in place;
//! only on a terminal, so that logs and pipes get none.

use std::io::{IsTerminal, Write};

pub struct Progress {
    on: bool,
    lists: usize,
    objects: usize,
}

impl Progress {
    /// On when standard error is a terminal.
    pub fn stderr() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            lists: 0,
            objects: 0,
        }
    }

    pub fn off() -> Progress {
        Progress {
            on: false,
            lists: 0,
            objects: 0,
        }
    }

    /// One list done, `found` objects in it; `what` is the list just read.
    pub fn listed(&mut self, what: &str, found: usize) {
        self.lists += 1;
        self.objects += found;
        if self.on {
            let mut err = std::io::stderr().lock();
            // `\r` and erase-line: the next line overwrites this one.
            let _ = write!(
                err,
                "\r\x1b[Kaudit: {} read in {} lists (last: {what})",
                self.objects, self.lists
            );
            let _ = err.flush();
        }
    }

    /// Clears the line before the report is printed.
    pub fn finish(&self) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
