//! File names as code-scanning tools want them: relative to the working directory (where
//! CI checks the repository out), and as URIs for SARIF.

use std::path::{Component, Path, PathBuf};

/// Where relative paths start from.
pub struct Base {
    cwd: Option<PathBuf>,
}

impl Base {
    pub fn current() -> Base {
        Base {
            cwd: std::env::current_dir().ok(),
        }
    }

    /// `source` relative to the working directory when it lies under it, without `./`;
    /// other paths (and `-`, standard input) as given.
    pub fn relative(&self, source: &str) -> String {
        let path = Path::new(source);
        let inside = match &self.cwd {
            Some(cwd) if path.is_absolute() => path.strip_prefix(cwd).ok(),
            _ => Some(path),
        };
        let Some(inside) = inside else {
            return source.to_owned();
        };
        let parts: Vec<String> = inside
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.is_empty() {
            source.to_owned()
        } else {
            parts.join("/")
        }
    }

    /// A URI reference: relative and percent-encoded under the working directory, a
    /// `file://` URI for an absolute path elsewhere.
    pub fn uri(&self, source: &str) -> String {
        let relative = self.relative(source);
        if relative.starts_with('/') {
            format!("file://{}", encode(&relative))
        } else {
            encode(&relative)
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `/`.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_working_directory() {
        let base = Base {
            cwd: Some(PathBuf::from("/repo")),
        };
        assert_eq!(base.relative("/repo/k8s/app.yaml"), "k8s/app.yaml");
        assert_eq!(base.relative("./k8s/app.yaml"), "k8s/app.yaml");
        assert_eq!(base.relative("/elsewhere/app.yaml"), "/elsewhere/app.yaml");
        assert_eq!(base.relative("-"), "-");
        assert_eq!(base.uri("/repo/k8s/my app#1.yaml"), "k8s/my%20app%231.yaml");
        assert_eq!(
            base.uri("/elsewhere/ä.yaml"),
            "file:///elsewhere/%C3%A4.yaml"
        );
    }
}
