//! Splits a manifest file into documents and parses each one on its own, so that one bad
//! document is reported by its index while the others are still judged.
//!
//! Documents are counted as YAML counts them (PyYAML's `safe_load_all`): an explicit
//! `---` always starts one, even if it is empty; text before the first `---` is one only
//! if it has content. Splitting on marker lines is exact: YAML forbids `---` and `...`
//! at the start of a line inside any document's content.

use serde_json::Value;
use thiserror::Error;

use deployguard_engine::yaml_error;

/// One document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document<'a> {
    /// 0-based position in the file; every document counts, empty ones too.
    pub index: usize,
    /// 1-based line of the file where `text` starts (the `---` line of a document that
    /// one opens), so positions inside `text` can be turned into the file's lines.
    pub line: usize,
    /// `None` for an empty document.
    pub value: Option<Value>,
    /// The document's own text, for printing it back unchanged.
    pub text: &'a str,
    /// Byte offset of `text` in the file, so what lies between documents (separators,
    /// comments of no document) can be printed back too.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("document {index}: {message}")]
pub struct DocumentError {
    pub index: usize,
    /// 1-based line of the file: where the parser stopped, or where the document starts
    /// when it gives no position.
    pub line: usize,
    pub message: String,
}

/// Parses every document of `text`. `json` selects a stream of JSON values (`.json`
/// files); YAML documents that start with `{` are tried as JSON first, since JSON with
/// tab indentation is not valid YAML.
pub fn parse_documents(text: &str, json: bool) -> Vec<Result<Document<'_>, DocumentError>> {
    if json {
        return parse_json_stream(text);
    }
    split_yaml(text)
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let line = chunk.first_line + 1;
            parse_yaml_document(chunk.text, chunk.first_line)
                .map(|value| Document {
                    index,
                    line,
                    value,
                    text: chunk.text,
                    offset: chunk.start,
                })
                .map_err(|(message, error_line)| DocumentError {
                    index,
                    line: error_line.unwrap_or(line),
                    message,
                })
        })
        .collect()
}

fn parse_json_stream(text: &str) -> Vec<Result<Document<'_>, DocumentError>> {
    let mut results = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0;
    // Lines before `start`, counted as the stream advances rather than from the top.
    let mut line = 1;
    while let Some(next) = stream.next() {
        let index = results.len();
        let end = stream.byte_offset();
        let raw = &text[start..end];
        let own = raw.trim();
        let leading = raw.len() - raw.trim_start().len();
        let own_line = line + newlines(&raw[..leading]);
        match next {
            Ok(value) => results.push(Ok(Document {
                index,
                line: own_line,
                value: Some(value),
                text: own,
                offset: start + leading,
            })),
            Err(error) => {
                // A JSON stream cannot be resynchronised after a syntax error.
                results.push(Err(DocumentError {
                    index,
                    // serde_json counts the lines of the whole stream, as the file does.
                    line: error.line().max(own_line),
                    message: format!("invalid JSON: {error}"),
                }));
                break;
            }
        }
        line += newlines(raw);
        start = end;
    }
    results
}

fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// The document's value, or the message and (when the parser knows it) the file's line
/// of what is wrong.
fn parse_yaml_document(
    text: &str,
    first_line: usize,
) -> Result<Option<Value>, (String, Option<usize>)> {
    if text.trim_start().starts_with('{') {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return Ok(Some(value));
        }
    }
    serde_saphyr::from_str::<Option<Value>>(text).map_err(|error| {
        let line = error
            .location()
            .and_then(|at| usize::try_from(at.line()).ok())
            .filter(|&line| line > 0)
            .map(|line| first_line + line);
        // The caller names the file's line; the message adds only the column.
        let message = match (line, yaml_error::without_position(&error)) {
            (Some(_), (message, Some(column))) => format!("{message} (column {column})"),
            (Some(_), (message, None)) => message,
            (None, _) => yaml_error::with_position(&error, first_line as u64),
        };
        (format!("invalid YAML: {message}"), line)
    })
}

struct Chunk<'a> {
    text: &'a str,
    start: usize,
    /// 0-based line of the file where `text` starts.
    first_line: usize,
}

/// The marker a line starts with, and the rest of the line after it.
fn marker(line: &str) -> Option<(&'static str, &str)> {
    ["---", "..."].into_iter().find_map(|mark| {
        let rest = line.strip_prefix(mark)?;
        (rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])).then_some((mark, rest))
    })
}

fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        !line.is_empty() && !line.starts_with('#') && !line.starts_with('%')
    })
}

/// `%YAML` / `%TAG` directives belong to the document the next `---` opens.
fn has_directive(text: &str) -> bool {
    text.lines().any(|line| line.starts_with('%'))
}

fn split_yaml(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    // The open document: its byte start, first line, and whether `---` opened it.
    let mut open: Option<(usize, usize, bool)> = Some((0, 0, false));
    let mut offset = 0;
    for (line_number, line) in text.split_inclusive('\n').enumerate() {
        if let Some((mark, rest)) = marker(line) {
            let mut next_start = (offset + (line.len() - rest.len()), line_number);
            if let Some((start, first_line, explicit)) = open.take() {
                let body = &text[start..offset];
                if explicit || has_content(body) {
                    chunks.push(Chunk {
                        text: body,
                        start,
                        first_line,
                    });
                } else if mark == "---" && has_directive(body) {
                    // Keep the directives and the `---` with the document they open.
                    next_start = (start, first_line);
                }
            }
            open = match mark {
                "---" => Some((next_start.0, next_start.1, true)),
                // After `...` only content or a directive opens a document.
                _ => Some((offset + line.len(), line_number + 1, false)),
            };
        }
        offset += line.len();
    }
    if let Some((start, first_line, explicit)) = open {
        let body = &text[start..];
        if explicit || has_content(body) {
            chunks.push(Chunk {
                text: body,
                start,
                first_line,
            });
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn values(text: &str) -> Vec<Option<Value>> {
        parse_documents(text, false)
            .into_iter()
            .map(|d| d.unwrap().value)
            .collect()
    }

    #[test]
    fn documents_count_like_yaml() {
        assert_eq!(values("a: 1\n---\n"), [Some(json!({"a": 1})), None]);
        assert_eq!(values("---\na: 1\n"), [Some(json!({"a": 1}))]);
        assert_eq!(values("# c\n---\na: 1"), [Some(json!({"a": 1}))]);
        assert_eq!(
            values("a: 1\n...\n---\nb: 2"),
            [Some(json!({"a": 1})), Some(json!({"b": 2}))]
        );
        assert_eq!(
            values("--- {a: 1}\n--- b\n"),
            [Some(json!({"a": 1})), Some(json!("b"))]
        );
        assert_eq!(values(""), []);
        assert_eq!(values("# only\n"), []);
        assert_eq!(
            values("a: 1\n---\n# c\n---\nb: 1\n"),
            [Some(json!({"a": 1})), None, Some(json!({"b": 1}))]
        );
        assert_eq!(
            values("a: |\n  ---x\nb: 2\n"),
            [Some(json!({"a": "---x\n", "b": 2}))]
        );
    }

    #[test]
    fn bad_document_is_reported_by_index_and_others_survive() {
        let docs = parse_documents("a: 1\n---\nb: [unclosed\n---\nc: 3\n", false);
        assert!(docs[0].is_ok() && docs[2].is_ok());
        let error = docs[1].as_ref().unwrap_err();
        assert_eq!(error.index, 1);
        assert_eq!(error.line, 3, "line numbers are the file's: {error}");
        // The line is the caller's to print; the message holds only the column.
        assert_eq!(
            error.message,
            "invalid YAML: unclosed bracket '[' (column 4)"
        );
    }

    #[test]
    fn documents_and_errors_know_their_lines() {
        let text = "# head\n---\na: 1\n---\n\n# c\nb: [unclosed\n---\nc: 3\n";
        let docs = parse_documents(text, false);
        assert_eq!(docs[0].as_ref().unwrap().line, 2, "the `---` line");
        let first = docs[0].as_ref().unwrap();
        assert_eq!(&text[first.offset..][..first.text.len()], first.text);
        let error = docs[1].as_ref().unwrap_err();
        assert_eq!(error.line, 7, "where the bracket opens: {error:?}");
        assert_eq!(docs[2].as_ref().unwrap().line, 8);
        let json = "\n{\"a\": 1}\n\n  {\"b\":\n 2}\n{\"c\": ";
        let docs = parse_documents(json, true);
        let lines: Vec<usize> = docs
            .iter()
            .map(|d| match d {
                Ok(d) => d.line,
                Err(e) => e.line,
            })
            .collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn yaml_numbers_and_tab_indented_json() {
        assert_eq!(
            values("cpu: 0.5\nmemory: 1073741824\n"),
            [Some(json!({"cpu": 0.5, "memory": 1073741824}))]
        );
        assert_eq!(
            values("{\n\t\"kind\": \"Pod\"\n}\n"),
            [Some(json!({"kind": "Pod"}))]
        );
    }

    #[test]
    fn json_streams() {
        let docs = parse_documents("{\"a\": 1}\n{\"b\": 2}", true);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].as_ref().unwrap().value, Some(json!({"b": 2})));
        let broken = parse_documents("{\"a\": 1} {\"b\": ", true);
        assert!(broken[0].is_ok());
        assert_eq!(broken[1].as_ref().unwrap_err().index, 1);
    }

    proptest! {
        #[test]
        fn loader_never_panics(text in "[-.#{}\\[\\]:a-z0-9 \\t\\n\"']{0,200}") {
            let _ = parse_documents(&text, false);
            let _ = parse_documents(&text, true);
        }
    }
}
