//! `--output github`: GitHub Actions workflow commands, which the runner turns into
//! annotations on the files of the pull request: `::error` for enforce findings,
//! `::warning` for warn, `::notice` for audit, at the container's line. Skipped files and
//! the summary are plain log lines, so they do not use up the few annotations GitHub
//! shows per step.

use std::fmt::Write as _;

use super::location::Base;
use super::text::summary_line;
use super::{Judged, Report};
use crate::cli::output::Paint;
use crate::policy::{Finding, Mode};

pub fn render(report: &Report) -> String {
    let base = Base::current();
    let mut out = String::new();
    for judged in &report.results {
        for finding in &judged.result.findings {
            let _ = writeln!(out, "{}", finding_command(judged, finding, &base));
        }
    }
    for error in &report.errors {
        let _ = writeln!(
            out,
            "{}",
            command(
                "error",
                &base.relative(&error.source),
                error.line,
                "deployguard: input error",
                &error.message
            )
        );
    }
    for skipped in &report.skipped_files {
        let _ = writeln!(
            out,
            "deployguard: {}: skipped: {}",
            skipped.source, skipped.reason
        );
    }
    let _ = writeln!(out, "{}", summary_line(report, &Paint::plain()));
    out
}

fn finding_command(judged: &Judged, finding: &Finding, base: &Base) -> String {
    let level = match finding.mode {
        Mode::Enforce => "error",
        Mode::Warn => "warning",
        Mode::Audit | Mode::Off => "notice",
    };
    command(
        level,
        &base.relative(&judged.source),
        Some(judged.line_of(finding)),
        &format!("{} ({})", finding.rule, judged.workload()),
        &format!("{}: {}", judged.subject(finding), finding.message),
    )
}

/// `::LEVEL file=…,line=…,title=…::MESSAGE`, escaped as the runner unescapes it.
fn command(level: &str, file: &str, line: Option<usize>, title: &str, message: &str) -> String {
    let mut properties = vec![format!("file={}", escape_property(file))];
    if let Some(line) = line {
        properties.push(format!("line={line}"));
    }
    properties.push(format!("title={}", escape_property(title)));
    format!(
        "::{level} {}::{}",
        properties.join(","),
        escape_data(message)
    )
}

/// The runner's escaping of a command's message: `%`, CR and LF.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Property values also escape the `:` and `,` that delimit them.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_escaped_as_the_runner_reads_them() {
        assert_eq!(
            command(
                "error",
                "a,b:c.yaml",
                Some(3),
                "t: 100%",
                "50%\r\nnext: x,y"
            ),
            "::error file=a%2Cb%3Ac.yaml,line=3,title=t%3A 100%25::50%25%0D%0Anext: x,y"
        );
        assert_eq!(
            command("notice", "f", None, "t", "m"),
            "::notice file=f,title=t::m"
        );
    }
}
