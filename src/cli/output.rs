//! Printing: JSON, and colour only on a terminal (and never with NO_COLOR set).

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::policy::Mode;

pub fn print_json(value: &impl Serialize) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    if serde_json::to_writer_pretty(&mut stdout, value).is_ok() {
        let _ = writeln!(stdout);
    }
}

/// Writes `text` to standard output; a closed pipe ends the output quietly.
pub fn print_text(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `value` as indented JSON with a final newline.
pub fn json_text(value: &impl Serialize) -> String {
    // Serializing values built in memory (string keys only) cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

pub struct Paint {
    colour: bool,
}

impl Paint {
    pub fn for_stdout() -> Paint {
        Paint {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// No colour, whatever standard output is: for formats that machines read.
    pub fn plain() -> Paint {
        Paint { colour: false }
    }

    fn wrap(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `[enforce]` in red, `[warn]` in yellow, `[audit]` dimmed.
    pub fn mode(&self, mode: Mode) -> String {
        let code = match mode {
            Mode::Enforce => "31",
            Mode::Warn => "33",
            Mode::Audit | Mode::Off => "2",
        };
        self.wrap(code, &format!("[{mode}]"))
    }

    pub fn summary(&self, line: &str, failed: bool) -> String {
        self.wrap(if failed { "1;31" } else { "1;32" }, line)
    }
}
