//! `--output text`: one line per finding, `FILE:LINE Kind/namespace/name subject: message
//! (rule) [mode]` (the line where the object starts), skipped files, errors on standard
//! error, then the summary as the last line. A fix that several findings of a rule share
//! is printed once, under "how to fix", instead of on each of their lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Judged, Report, count};
use crate::cli::containers::noun;
use crate::cli::output::Paint;
use crate::policy::{ContainerRole, RuleId};

/// Messages read `what is wrong — how to fix`.
const FIX_SEPARATOR: &str = " — ";

fn split(message: &str) -> (&str, Option<&str>) {
    match message.split_once(FIX_SEPARATOR) {
        Some((problem, fix)) => (problem, Some(fix)),
        None => (message, None),
    }
}

/// How many findings of each rule share each fix.
fn shared_fixes(report: &Report) -> BTreeMap<(RuleId, &str), usize> {
    let mut fixes = BTreeMap::new();
    for finding in report.results.iter().flat_map(|r| &r.result.findings) {
        if let (_, Some(fix)) = split(&finding.message) {
            *fixes.entry((finding.rule, fix)).or_insert(0) += 1;
        }
    }
    fixes.retain(|_, n| *n > 1);
    fixes
}

pub fn render(report: &Report) -> String {
    let paint = Paint::for_stdout();
    let fixes = shared_fixes(report);
    let mut out = String::new();
    for judged in &report.results {
        write_result(&mut out, judged, &fixes, &paint);
    }
    for skipped in &report.skipped_files {
        let _ = writeln!(
            out,
            "{}: skipped: {}",
            at(&skipped.source, skipped.line),
            skipped.reason
        );
    }
    if !fixes.is_empty() {
        out.push_str("how to fix:\n");
        for ((rule, fix), n) in &fixes {
            let _ = writeln!(out, "  {rule} ({}): {fix}", count(*n, "finding"));
        }
    }
    out
}

/// The last line: what was judged and found.
pub fn summary(report: &Report) -> String {
    format!("{}\n", summary_line(report, &Paint::for_stdout()))
}

/// `FILE` or `FILE:LINE`.
fn at(source: &str, line: Option<usize>) -> String {
    line.map_or_else(|| source.to_owned(), |line| format!("{source}:{line}"))
}

/// Input errors, one line each: `deployguard: FILE:LINE: document N: message`.
pub fn print_errors(report: &Report) {
    for error in &report.errors {
        let mut place = at(&error.source, error.line);
        if let Some(index) = error.index {
            let _ = write!(place, ": document {index}");
        }
        if let Some(item) = error.item {
            let _ = write!(place, ", item {item}");
        }
        // A file that could not be read names itself in its message.
        if error.index.is_none() && error.line.is_none() && error.message.contains(&error.source) {
            eprintln!("deployguard: {}", error.message);
        } else {
            eprintln!("deployguard: {place}: {}", error.message);
        }
    }
}

/// Skipped files, for formats that have no place for them.
pub fn print_skipped(report: &Report) {
    for skipped in &report.skipped_files {
        eprintln!(
            "deployguard: {}: skipped: {}",
            at(&skipped.source, skipped.line),
            skipped.reason
        );
    }
}

fn write_result(
    out: &mut String,
    judged: &Judged,
    fixes: &BTreeMap<(RuleId, &str), usize>,
    paint: &Paint,
) {
    let result = &judged.result;
    let at = format!("{}:{} {}", judged.source, judged.line, judged.workload());
    for skip in &result.skips {
        let _ = writeln!(out, "{at} skipped: {skip}");
    }
    for note in &result.notes {
        let _ = writeln!(out, "{at} note: {note}");
    }
    for default in &result.limit_range_defaults {
        let role = judged
            .containers
            .iter()
            .find(|c| c.name == default.container)
            .map_or(ContainerRole::Main, |c| c.role);
        let _ = writeln!(
            out,
            "{at} {} \"{}\": {} {} from LimitRange {:?}",
            noun(role),
            default.container,
            default.field,
            default.value,
            default.limit_range
        );
    }
    for finding in &result.findings {
        let message = match split(&finding.message) {
            (problem, Some(fix)) if fixes.contains_key(&(finding.rule, fix)) => problem,
            _ => &finding.message,
        };
        let _ = writeln!(
            out,
            "{at} {}: {message} ({}) {}",
            judged.subject(finding),
            finding.rule,
            paint.mode(finding.mode),
        );
    }
}

/// `3 workloads in 2 documents of 1 file: 1 would be denied; 4 findings (2 enforce, 2 warn,
/// 0 audit)`, then input errors and skipped files when there are any.
pub(super) fn summary_line(report: &Report, paint: &Paint) -> String {
    let s = &report.summary;
    let denied = report.results.iter().filter(|r| r.denied()).count();
    let mut line = format!(
        "{} in {} of {}: {denied} would be denied; {} ({} enforce, {} warn, {} audit)",
        count(s.workloads, "workload"),
        count(s.documents, "document"),
        count(s.files, "file"),
        count(s.findings, "finding"),
        s.enforce,
        s.warn,
        s.audit
    );
    if s.errors > 0 {
        line.push_str(&format!("; {}", count(s.errors, "input error")));
    }
    if s.skipped_files > 0 {
        line.push_str(&format!(
            "; {} skipped (not manifests)",
            count(s.skipped_files, "file")
        ));
    }
    paint.summary(&line, s.enforce > 0 || s.errors > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_at_the_first_dash() {
        assert_eq!(
            split("no livenessProbe — add one — now"),
            ("no livenessProbe", Some("add one — now"))
        );
        assert_eq!(split("no dash here"), ("no dash here", None));
    }
}
