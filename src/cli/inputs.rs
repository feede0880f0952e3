//! Reading manifest inputs: files, directories (recursively) and `-` for stdin.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::exclude::Excludes;
use crate::documents::{Document, DocumentError, parse_documents};

/// A file (or stdin) to read.
pub struct Input {
    /// As given on the command line, or found under a directory; `-` for stdin.
    pub name: String,
    path: Option<PathBuf>,
}

impl Input {
    /// Reads the input's text.
    pub fn read(&self) -> Result<String> {
        match &self.path {
            Some(path) => {
                fs::read_to_string(path).with_context(|| format!("cannot read {}", self.name))
            }
            None => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read standard input")?;
                Ok(text)
            }
        }
    }

    /// A `.json` file: a stream of JSON values rather than YAML documents.
    pub fn is_json(&self) -> bool {
        self.path
            .as_deref()
            .and_then(Path::extension)
            .is_some_and(|ext| ext == "json")
    }

    /// The documents of `text`, read from this input.
    pub fn documents<'t>(&self, text: &'t str) -> Vec<Result<Document<'t>, DocumentError>> {
        parse_documents(text, self.is_json())
    }
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"))
}

/// Expands the command-line paths: directories are walked in name order. Excluded paths
/// are left out whether named or found, and excluded directories are not entered.
pub fn expand(paths: &[String], excludes: &Excludes) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for name in paths {
        if name == "-" {
            inputs.push(Input {
                name: name.clone(),
                path: None,
            });
            continue;
        }
        let path = PathBuf::from(name);
        if excludes.excludes(&path) {
            continue;
        }
        let meta = fs::metadata(&path).with_context(|| format!("cannot read {name}"))?;
        if meta.is_dir() {
            walk(&path, excludes, &mut inputs, &mut HashSet::new())
                .with_context(|| format!("cannot list {name}"))?;
        } else {
            inputs.push(Input {
                name: name.clone(),
                path: Some(path),
            });
        }
    }
    Ok(inputs)
}

/// Walks `dir`, following symbolic links but entering each real directory once, so a
/// link back to a parent cannot loop.
fn walk(
    dir: &Path,
    excludes: &Excludes,
    inputs: &mut Vec<Input>,
    entered: &mut HashSet<PathBuf>,
) -> std::io::Result<()> {
    if !entered.insert(fs::canonicalize(dir)?) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries.into_iter().filter(|path| !excludes.excludes(path)) {
        if path.is_dir() {
            walk(&path, excludes, inputs, entered)?;
        } else if is_manifest(&path) {
            inputs.push(Input {
                name: path.display().to_string(),
                path: Some(path),
            });
        }
    }
    Ok(())
}
