//! The `deployguard.io/injected` annotation: which Go runtime variables deployguard wrote,
//! with their values, per container. It is how deployguard knows which variables are its
//! own to recompute and which are the user's to leave alone.
//!
//! Format: entries joined by `"; "`, each `CONTAINER: VAR=VALUE[ VAR=VALUE]`, for example
//! `app: GOMAXPROCS=2 GOMEMLIMIT=921MiB; sidecar: GOMEMLIMIT=115MiB`. `VAR` is
//! `GOMAXPROCS` or `GOMEMLIMIT`; a value has no spaces or `;`; each container and each
//! variable of a container appears once. Parsing is strict: anything else is not a
//! record, and nothing is owned.

use super::go_vars::{GOMAXPROCS, GOMEMLIMIT};

/// One variable deployguard wrote into one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedVar<'a> {
    pub container: &'a str,
    pub name: &'static str,
    pub value: &'a str,
}

/// A parsed `deployguard.io/injected` annotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectedRecord<'a> {
    vars: Vec<RecordedVar<'a>>,
}

impl<'a> InjectedRecord<'a> {
    /// Parses the annotation; `None` when it is not exactly in the documented format.
    pub fn parse(text: &'a str) -> Option<InjectedRecord<'a>> {
        let mut vars: Vec<RecordedVar<'a>> = Vec::new();
        if text.is_empty() {
            return Some(InjectedRecord { vars });
        }
        let mut containers: Vec<&str> = Vec::new();
        for entry in text.split("; ") {
            let (container, list) = entry.split_once(": ")?;
            if !is_container_name(container) || containers.contains(&container) {
                return None;
            }
            containers.push(container);
            let first = vars.len();
            for assignment in list.split(' ') {
                let (name, value) = assignment.split_once('=')?;
                let name = [GOMAXPROCS, GOMEMLIMIT].into_iter().find(|n| *n == name)?;
                let value_ok = !value.is_empty() && !value.contains([';', '=']);
                if !value_ok || vars[first..].iter().any(|v| v.name == name) {
                    return None;
                }
                vars.push(RecordedVar {
                    container,
                    name,
                    value,
                });
            }
        }
        Some(InjectedRecord { vars })
    }

    /// The value recorded for `name` in `container`.
    pub fn value(&self, container: &str, name: &str) -> Option<&'a str> {
        self.vars
            .iter()
            .find(|v| v.container == container && v.name == name)
            .map(|v| v.value)
    }
}

/// Writes a record in the format [`InjectedRecord::parse`] reads; `vars` are grouped by
/// container in the order given.
pub fn format_record<'v>(vars: impl IntoIterator<Item = (&'v str, &'v str, &'v str)>) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for (container, name, value) in vars {
        if current == Some(container) {
            out.push(' ');
        } else {
            if current.is_some() {
                out.push_str("; ");
            }
            out.push_str(container);
            out.push_str(": ");
            current = Some(container);
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Container names are DNS labels (the API server rejects others); only those can be
/// recorded, so only those are injected.
pub fn is_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_format() {
        let record = InjectedRecord::parse(
            "app: GOMAXPROCS=2 GOMEMLIMIT=921MiB; side-car: GOMEMLIMIT=115MiB",
        )
        .unwrap();
        assert_eq!(record.value("app", GOMAXPROCS), Some("2"));
        assert_eq!(record.value("app", GOMEMLIMIT), Some("921MiB"));
        assert_eq!(record.value("side-car", GOMEMLIMIT), Some("115MiB"));
        assert_eq!(record.value("side-car", GOMAXPROCS), None);
        assert_eq!(InjectedRecord::parse(""), Some(InjectedRecord::default()));
    }

    #[test]
    fn anything_else_is_not_a_record() {
        for text in [
            "app",
            "app:",
            "app: ",
            "app:GOMAXPROCS=2",
            "app: GOMAXPROCS=2;sidecar: GOMEMLIMIT=1MiB",
            "app: GOMAXPROCS=2; app: GOMEMLIMIT=1MiB",
            "app: GOMAXPROCS=2 GOMAXPROCS=3",
            "app: GOGC=50",
            "app: GOMAXPROCS=",
            "app: GOMAXPROCS=2  GOMEMLIMIT=1MiB",
            "App: GOMAXPROCS=2",
            "app: GOMAXPROCS=2=3",
            " app: GOMAXPROCS=2",
            "app: GOMAXPROCS=2; ",
        ] {
            assert_eq!(InjectedRecord::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        let text = format_record([
            ("app", GOMAXPROCS, "2"),
            ("app", GOMEMLIMIT, "921MiB"),
            ("init", GOMEMLIMIT, "9MiB"),
        ]);
        assert_eq!(
            text,
            "app: GOMAXPROCS=2 GOMEMLIMIT=921MiB; init: GOMEMLIMIT=9MiB"
        );
        let record = InjectedRecord::parse(&text).unwrap();
        assert_eq!(record.value("init", GOMEMLIMIT), Some("9MiB"));
        assert_eq!(format_record([]), "");
    }
}
