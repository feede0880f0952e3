//! New YAML text for the values a patch adds, in the style of the document around them.

use serde_json::{Map, Value};
use serde_saphyr::granit_parser::ScalarStyle;

/// How the document lays out what it nests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Columns a nested mapping is indented by.
    pub step: usize,
    /// Whether a sequence under a key starts its `-` at the key's column.
    pub indentless: bool,
    /// `\n`, or `\r\n` for a file written with CRLF.
    pub newline: &'static str,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            step: 2,
            indentless: false,
            newline: "\n",
        }
    }
}

/// Where a sequence item's `-` goes and where the keys of a mapping item start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemColumns {
    pub dash: usize,
    pub key: usize,
}

impl Style {
    /// Lines for `key: value` at `column`, each ending in a newline.
    pub fn entry(&self, key: &str, value: &Value, column: usize) -> String {
        let mut out = String::new();
        self.write_entry(&mut out, key, value, column);
        out
    }

    /// Lines for one sequence item.
    pub fn item(&self, value: &Value, columns: ItemColumns) -> String {
        let mut out = String::new();
        self.write_item(&mut out, value, columns);
        out
    }

    /// Lines for the items of `items` as the value of a key at `key_column`.
    pub fn items_under(&self, items: &[Value], key_column: usize) -> String {
        let dash = if self.indentless {
            key_column
        } else {
            key_column + self.step
        };
        let columns = ItemColumns {
            dash,
            key: dash + 2,
        };
        items.iter().map(|item| self.item(item, columns)).collect()
    }

    /// Lines for the entries of `map` at `column`.
    pub fn entries(&self, map: &Map<String, Value>, column: usize) -> String {
        let mut out = String::new();
        for (key, value) in map {
            self.write_entry(&mut out, key, value, column);
        }
        out
    }

    fn write_entry(&self, out: &mut String, key: &str, value: &Value, column: usize) {
        out.push_str(&" ".repeat(column));
        self.write_entry_inline(out, key, value, column);
    }

    /// `key: value` from the current position, nested lines relative to `column`.
    fn write_entry_inline(&self, out: &mut String, key: &str, value: &Value, column: usize) {
        out.push_str(&scalar(&Value::String(key.to_owned()), None));
        out.push(':');
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push_str(self.newline);
                out.push_str(&self.entries(map, column + self.step));
            }
            Value::Array(items) if !items.is_empty() => {
                out.push_str(self.newline);
                out.push_str(&self.items_under(items, column));
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(value, None));
                out.push_str(self.newline);
            }
        }
    }

    fn write_item(&self, out: &mut String, value: &Value, columns: ItemColumns) {
        out.push_str(&" ".repeat(columns.dash));
        out.push('-');
        out.push_str(&" ".repeat(columns.key.saturating_sub(columns.dash + 1).max(1)));
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (i, (key, value)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&" ".repeat(columns.key));
                    }
                    self.write_entry_inline(out, key, value, columns.key);
                }
            }
            _ => {
                out.push_str(&scalar(value, None));
                out.push_str(self.newline);
            }
        }
    }
}

/// A scalar (or an empty collection) on one line: a string in the quoting `prefer`s when
/// it can carry it, else plain when no YAML reader could take it for anything but a
/// string, else double-quoted (JSON's escapes are YAML's).
pub fn scalar(value: &Value, prefer: Option<ScalarStyle>) -> String {
    let Value::String(text) = value else {
        return flow(value);
    };
    match prefer {
        Some(ScalarStyle::SingleQuoted) if !text.contains(['\'', '\n', '\r', '\t']) => {
            format!("'{text}'")
        }
        Some(ScalarStyle::DoubleQuoted) => flow(value),
        _ if plain_is_string(text) => text.clone(),
        _ => flow(value),
    }
}

/// JSON text, which YAML reads as the same value.
pub fn flow(value: &Value) -> String {
    value.to_string()
}

/// Conservative on purpose: YAML 1.1 readers (go-yaml v2) take `on`, `y`, `0x1`, `1_000`
/// for booleans and numbers, so plain is kept for names like `GOMAXPROCS` or `a.b/c`.
fn plain_is_string(text: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !WORDS.contains(&text.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        let cases = [
            (json!("GOMAXPROCS"), None, "GOMAXPROCS"),
            (
                json!("deployguard.io/injected"),
                None,
                "deployguard.io/injected",
            ),
            (json!("2"), None, "\"2\""),
            (json!("921MiB"), None, "\"921MiB\""),
            (json!("On"), None, "\"On\""),
            (json!("app: GOMAXPROCS=2"), None, "\"app: GOMAXPROCS=2\""),
            (json!("460MiB"), Some(ScalarStyle::SingleQuoted), "'460MiB'"),
            (json!("it's"), Some(ScalarStyle::SingleQuoted), "\"it's\""),
            (json!("x"), Some(ScalarStyle::DoubleQuoted), "\"x\""),
            (json!(3), None, "3"),
            (json!({}), None, "{}"),
        ];
        for (value, prefer, expected) in cases {
            assert_eq!(scalar(&value, prefer), expected, "{value} {prefer:?}");
        }
    }

    #[test]
    fn blocks_follow_the_style() {
        let env = json!([{"name": "GOMAXPROCS", "value": "2"}]);
        let indentless = Style {
            indentless: true,
            ..Style::default()
        };
        let env = env.as_array().unwrap();
        assert_eq!(
            indentless.items_under(env, 4),
            "    - name: GOMAXPROCS\n      value: \"2\"\n"
        );
        let crlf = Style {
            step: 4,
            newline: "\r\n",
            ..Style::default()
        };
        assert_eq!(
            crlf.entry("metadata", &json!({"annotations": {"a": "b"}}), 0),
            "metadata:\r\n    annotations:\r\n        a: b\r\n"
        );
        assert_eq!(
            crlf.items_under(env, 2),
            "      - name: GOMAXPROCS\r\n        value: \"2\"\r\n"
        );
        let columns = ItemColumns { dash: 2, key: 6 };
        assert_eq!(
            Style::default().item(&json!({"name": "A", "value": "b"}), columns),
            "  -   name: A\n      value: b\n"
        );
    }
}
