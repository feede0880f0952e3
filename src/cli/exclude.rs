//! `--exclude GLOB`: paths left out of a scan. A pattern without `/` matches any one file
//! or directory name (`*.json`, `templates`); one with `/` matches the path from its start
//! (`charts/*/templates`, `**/testdata/**`). A matching directory excludes everything
//! under it, as `.gitignore` does.

use std::path::{Component, Path};

use glob::{MatchOptions, Pattern, PatternError};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("--exclude {pattern:?}: {error}")]
pub struct ExcludeError {
    pattern: String,
    error: PatternError,
}

/// The `--exclude` patterns of one run.
#[derive(Debug, Default)]
pub struct Excludes {
    names: Vec<Pattern>,
    paths: Vec<Pattern>,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    // `*` stays within one directory; only `**` crosses into others.
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Excludes, ExcludeError> {
        let mut excludes = Excludes::default();
        for pattern in patterns {
            let trimmed = pattern.trim_start_matches("./").trim_end_matches('/');
            let compiled = Pattern::new(trimmed).map_err(|error| ExcludeError {
                pattern: pattern.clone(),
                error,
            })?;
            if trimmed.contains('/') {
                excludes.paths.push(compiled);
            } else {
                excludes.names.push(compiled);
            }
        }
        Ok(excludes)
    }

    /// Whether `path`, or a directory it is in, is excluded.
    pub fn excludes(&self, path: &Path) -> bool {
        let mut prefix = String::new();
        for component in path.components() {
            let part = match component {
                Component::CurDir => continue,
                Component::RootDir => {
                    prefix.push('/');
                    continue;
                }
                other => other.as_os_str().to_string_lossy(),
            };
            if self.names.iter().any(|p| p.matches_with(&part, OPTIONS)) {
                return true;
            }
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            prefix.push_str(&part);
            if self.paths.iter().any(|p| p.matches_with(&prefix, OPTIONS)) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], path: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        Excludes::new(&patterns).unwrap().excludes(Path::new(path))
    }

    #[test]
    fn names_match_any_component_and_paths_match_from_the_start() {
        assert!(excluded(&["*.json"], "samples/bookinfo/ratings_data.json"));
        assert!(!excluded(&["*.json"], "samples/bookinfo/ratings.yaml"));
        assert!(excluded(&["templates"], "chart/templates/deploy.yaml"));
        assert!(excluded(
            &["charts/*/templates"],
            "./charts/web/templates/x.yaml"
        ));
        assert!(!excluded(
            &["charts/*/templates"],
            "charts/web/sub/templates/x.yaml"
        ));
        assert!(excluded(&["**/testdata/**"], "a/b/testdata/c/d.yaml"));
        assert!(excluded(&["/abs/dir"], "/abs/dir/x.yaml"));
        assert!(!excluded(&["dir"], "directory/x.yaml"));
        assert!(!excluded(&[], "x.yaml"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let error = Excludes::new(&["a/[b".to_owned()]).unwrap_err();
        assert!(error.to_string().contains("--exclude \"a/[b\""), "{error}");
    }
}
