//! Whether a file is a Kubernetes manifest at all. Repositories hold data files, Helm
//! values and chart templates next to their manifests; a scan reports those as skipped,
//! with the reason, instead of failing on them. A file that reads as manifests is judged
//! even if it contains `{{` (alerting rules do), so adding braces to a manifest cannot
//! hide it from the scan.

use serde_json::Value;

/// Why a file was not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotManifest {
    pub reason: String,
    /// 1-based line that shows it, when one does.
    pub line: Option<usize>,
}

/// A file none of whose documents is a Kubernetes object (a mapping with a `kind`), such
/// as JSON data or Helm values. Files without any content are not reported.
pub fn without_kind<'v>(
    mut values: impl Iterator<Item = Option<&'v Value>>,
) -> Option<NotManifest> {
    let mut any = false;
    let has_kind = values.any(|value| {
        any |= value.is_some();
        value
            .and_then(|v| v.get("kind"))
            .and_then(Value::as_str)
            .is_some_and(|kind| !kind.is_empty())
    });
    (any && !has_kind).then(|| NotManifest {
        reason: "not a Kubernetes manifest: no document has a `kind`".to_owned(),
        line: None,
    })
}

/// A Go template (a Helm chart's source), for a file that did not read as manifests: the
/// first line with a `{{ … }}` action outside a comment.
pub fn template(text: &str) -> Option<NotManifest> {
    let line = text.lines().position(has_action).map(|k| k + 1)?;
    Some(NotManifest {
        reason: format!(
            "a Go template (Helm chart source; `{{{{` on line {line}), not a manifest: render it \
             and check the output (`helm template … | deployguard check -`)"
        ),
        line: Some(line),
    })
}

/// `{{` followed by `}}` on the line, before any `#` that starts a YAML comment.
fn has_action(line: &str) -> bool {
    let code = match comment_start(line) {
        Some(at) => &line[..at],
        None => line,
    };
    code.find("{{")
        .is_some_and(|open| code[open + 2..].contains("}}"))
}

/// A `#` starts a comment at the start of a line or after white space.
fn comment_start(line: &str) -> Option<usize> {
    line.char_indices()
        .find(|&(at, c)| {
            c == '#'
                && line[..at]
                    .chars()
                    .next_back()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_actions_outside_comments() {
        let chart = "# {{ not this }}\napiVersion: v1\nmetadata:\n  name: {{ .Release.Name }}\n";
        let found = template(chart).unwrap();
        assert_eq!(found.line, Some(4));
        assert!(found.reason.contains("`{{` on line 4"), "{}", found.reason);
        assert_eq!(template("a: b # {{ x }}\n"), None);
        assert_eq!(template("a: \"{{ unclosed\"\n"), None);
        assert!(template("{{- if .Values.enabled }}\n").is_some());
        assert!(
            template("url: http://x/#{{ y }}\n").is_some(),
            "# inside a value"
        );
    }

    #[test]
    fn files_without_any_kind() {
        let data = json!({"ratings": {"Reviewer1": 5}});
        let pod = json!({"kind": "Pod"});
        assert!(without_kind([Some(&data)].into_iter()).is_some());
        assert!(without_kind([Some(&json!([1, 2]))].into_iter()).is_some());
        assert_eq!(without_kind([Some(&data), Some(&pod)].into_iter()), None);
        assert_eq!(
            without_kind([None, None].into_iter()),
            None,
            "empty documents only"
        );
        assert_eq!(without_kind(std::iter::empty()), None);
        let request_kind = json!({"kind": {"group": "", "kind": "Pod"}});
        assert!(without_kind([Some(&request_kind)].into_iter()).is_some());
    }
}
