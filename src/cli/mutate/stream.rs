//! The YAML stream `mutate` prints: each YAML file as written, its changed documents
//! replaced; each JSON document re-serialised.

use std::ops::Range;

use anyhow::anyhow;
use serde_json::Value;

/// Prints files and documents as one YAML stream.
#[derive(Debug, Default)]
pub struct YamlStream {
    printed: bool,
}

impl YamlStream {
    /// A document as YAML, opened by its own `---`.
    pub fn value(&mut self, value: &Value) -> anyhow::Result<()> {
        print!("---\n{}", to_yaml(value)?);
        self.printed = true;
        Ok(())
    }

    /// `text` with each range replaced, everything between documents (separators,
    /// comments, `...`) kept.
    pub fn file(&mut self, text: &str, mut replaced: Vec<(Range<usize>, String)>) {
        print!("{}", self.opening(text));
        replaced.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        let mut out = text.to_owned();
        for (range, new) in replaced {
            out.replace_range(range, &new);
        }
        print!("{out}");
        if !out.is_empty() && !out.ends_with('\n') {
            println!();
        }
        self.printed |= !out.is_empty();
    }

    /// What the file needs before it to join the stream: a `---` when its first document
    /// starts without one; a `...` before directives, which only the stream's start or
    /// a document end may precede.
    fn opening(&self, text: &str) -> &'static str {
        let first = text
            .lines()
            .map(str::trim_start)
            .find(|line| !line.is_empty() && !line.starts_with('#'));
        match first {
            None => "",
            Some(line) if line.starts_with('%') && self.printed => "...\n",
            Some(line) if line.starts_with('%') || line.starts_with("---") => "",
            Some(_) => "---\n",
        }
    }
}

/// A document's re-serialised text, to stand where its text started in `file`: after
/// a `---` on its line, or at a line start (where the directives of a document were).
pub fn replacement(file: &str, offset: usize, value: &Value) -> anyhow::Result<String> {
    let yaml = to_yaml(value)?;
    Ok(if file[..offset].ends_with("---") {
        format!("\n{yaml}")
    } else {
        format!("---\n{yaml}")
    })
}

fn to_yaml(value: &Value) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).map_err(|e| anyhow!("cannot write YAML: {e}"))
}
