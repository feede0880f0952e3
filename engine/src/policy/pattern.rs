//! Name patterns of the policy file: an exact name, or a prefix ending in `*` that matches
//! any rest (`:` included, so `system:node:*` matches every kubelet).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NamePattern {
    Exact(String),
    /// The text before the `*`.
    Prefix(String),
}

impl NamePattern {
    /// Reads `name` or `prefix*`; a `*` anywhere else is refused (no globbing: a pattern
    /// that looked wider than it matched would be a hole in the policy).
    pub fn parse(text: &str) -> Result<NamePattern, String> {
        match text.strip_suffix('*') {
            _ if text.is_empty() => Err("an empty pattern matches nothing".to_owned()),
            Some(prefix) if prefix.contains('*') => {
                Err(format!("{text:?}: `*` may only end a pattern (a prefix)"))
            }
            Some(prefix) => Ok(NamePattern::Prefix(prefix.to_owned())),
            None if text.contains('*') => {
                Err(format!("{text:?}: `*` may only end a pattern (a prefix)"))
            }
            None => Ok(NamePattern::Exact(text.to_owned())),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => name == exact,
            NamePattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Exact(exact) => f.write_str(exact),
            NamePattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Whether any pattern matches `name`; an unknown or empty name matches none (a request
/// without a user is trusted with nothing).
pub fn any_matches(patterns: &[NamePattern], name: Option<&str>) -> bool {
    name.filter(|name| !name.is_empty())
        .is_some_and(|name| patterns.iter().any(|pattern| pattern.matches(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix() {
        let node = NamePattern::parse("system:node:*").unwrap();
        assert!(node.matches("system:node:worker-1"));
        assert!(node.matches("system:node:"));
        assert!(!node.matches("system:nodes"));
        let exact = NamePattern::parse("system:kube-controller-manager").unwrap();
        assert!(exact.matches("system:kube-controller-manager"));
        assert!(!exact.matches("system:kube-controller-manager2"));
        assert!(NamePattern::parse("*").unwrap().matches("anyone"));
        assert_eq!(node.to_string(), "system:node:*");
    }

    #[test]
    fn stars_elsewhere_and_empty_patterns_are_refused() {
        for bad in ["", "a*b", "*a", "a**"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_names_match_nothing() {
        let all = [NamePattern::parse("*").unwrap()];
        assert!(!any_matches(&all, None));
        assert!(!any_matches(&all, Some("")));
        assert!(any_matches(&all, Some("alice")));
    }
}
