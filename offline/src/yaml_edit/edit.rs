//! One operation → the text edits that carry it out.

use std::ops::Range;

use serde_json::{Map, Value};
use serde_saphyr::granit_parser::ScalarStyle;

use super::render::{self, ItemColumns, Style};
use super::tree::{self, Entry, Kind, Node};
use super::{EditError, Op, OpKind};

/// Replace `at` with `text`.
struct Edit {
    at: Range<usize>,
    text: String,
}

/// `text` with `op` applied.
pub fn apply(text: &str, op: &Op) -> Result<String, EditError> {
    let root = tree::parse(text)?;
    let doc = Doc {
        text,
        style: detect_style(text, &root),
    };
    let (last, parent_path) = op
        .path
        .split_last()
        .ok_or(EditError::Unsupported("an operation on the whole document"))?;
    let (parent, holder_key) = resolve(&root, parent_path)?;
    let holder = holder_key.map(|at| column(text, at));
    let missing = || EditError::Missing(format!("/{}", op.path.join("/")));
    let edits = match (&op.kind, &parent.kind) {
        (OpKind::Add(value), Kind::Mapping { flow, entries }) => {
            if entries.iter().any(|e| e.key == *last) {
                doc.replace(resolve(parent, std::slice::from_ref(last))?, value)?
            } else {
                doc.add_entry(parent, *flow, entries, holder, last, value)?
            }
        }
        (OpKind::Add(value), Kind::Sequence { flow, items }) => {
            if last != "-" && last.parse::<usize>().ok() != Some(items.len()) {
                return Err(EditError::Unsupported("an insertion inside a sequence"));
            }
            doc.append_item(parent, *flow, items, holder, value)?
        }
        (OpKind::Replace(value), _) => {
            doc.replace(resolve(parent, std::slice::from_ref(last))?, value)?
        }
        (
            OpKind::Remove,
            Kind::Mapping {
                flow: false,
                entries,
            },
        ) => {
            let entry = entries
                .iter()
                .find(|e| e.key == *last)
                .ok_or_else(missing)?;
            let lines = doc.remove_lines(entry.key_start, entry.value.end)?;
            doc.emptied(lines, entries.len(), holder_key, "{}")?
        }
        (OpKind::Remove, Kind::Sequence { flow: false, items }) => {
            let item = last.parse::<usize>().ok().and_then(|i| items.get(i));
            let item = item.ok_or_else(missing)?;
            let lines = doc.remove_lines(doc.dash(item)?, item.end)?;
            doc.emptied(lines, items.len(), holder_key, "[]")?
        }
        (OpKind::Remove, Kind::Mapping { .. } | Kind::Sequence { .. }) => {
            return Err(EditError::Unsupported("removing from a flow collection"));
        }
        (OpKind::Add(_) | OpKind::Remove, Kind::Scalar(_)) => return Err(missing()),
    };
    Ok(splice(text, edits))
}

/// The node at `path`, and where the block mapping key it is the value of starts.
fn resolve<'n>(root: &'n Node, path: &[String]) -> Result<(&'n Node, Option<usize>), EditError> {
    path.iter().try_fold((root, None), |(node, _), token| {
        let missing = || EditError::Missing(token.clone());
        match &node.kind {
            Kind::Mapping { flow, entries } => {
                let entry = entries
                    .iter()
                    .find(|e| e.key == *token)
                    .ok_or_else(missing)?;
                Ok((&entry.value, (!flow).then_some(entry.key_start)))
            }
            Kind::Sequence { items, .. } => {
                let item = token.parse::<usize>().ok().and_then(|i| items.get(i));
                Ok((item.ok_or_else(missing)?, None))
            }
            Kind::Scalar(_) => Err(missing()),
        }
    })
}

struct Doc<'t> {
    text: &'t str,
    style: Style,
}

impl Doc<'_> {
    /// A single-line scalar rewritten in its own quoting where it can be, or (`null` as a
    /// block mapping's value) turned into the block collection `value` is.
    fn replace(
        &self,
        (node, holder_key): (&Node, Option<usize>),
        value: &Value,
    ) -> Result<Vec<Edit>, EditError> {
        let holder = holder_key.map(|at| column(self.text, at));
        let Kind::Scalar(style) = node.kind else {
            return Err(EditError::Unsupported("replacing a collection"));
        };
        let one_line = node.start < node.end && !self.text[node.start..node.end].contains('\n');
        if !one_line || matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            return Err(EditError::Unsupported("a scalar over several lines"));
        }
        let lines = |key_column| match value {
            Value::Array(items) if !items.is_empty() => {
                Some(self.style.items_under(items, key_column))
            }
            Value::Object(map) if !map.is_empty() => {
                Some(self.style.entries(map, key_column + self.style.step))
            }
            _ => None,
        };
        match holder.map(lines) {
            Some(Some(lines)) => Ok(self.block_in_place_of(node, lines)),
            None if lines(0).is_some() => Err(EditError::Unsupported(
                "a collection in place of a scalar outside a block mapping",
            )),
            _ => Ok(vec![Edit {
                at: node.start..node.end,
                text: render::scalar(value, Some(style)),
            }]),
        }
    }

    /// A one-line node (`[]`, `{}`, `null`) after a key removed, and `lines` put after
    /// that key's line.
    fn block_in_place_of(&self, node: &Node, lines: String) -> Vec<Edit> {
        let before = self.text[..node.start].trim_end_matches([' ', '\t']).len();
        vec![
            Edit {
                at: before..node.end,
                text: String::new(),
            },
            self.insert_lines(node.end, lines),
        ]
    }

    fn add_entry(
        &self,
        map: &Node,
        flow: bool,
        entries: &[Entry],
        holder: Option<usize>,
        key: &str,
        value: &Value,
    ) -> Result<Vec<Edit>, EditError> {
        let pair = Map::from_iter([(key.to_owned(), value.clone())]);
        match entries.first() {
            Some(first) if !flow => {
                let lines = self
                    .style
                    .entry(key, value, column(self.text, first.key_start));
                Ok(vec![self.insert_lines(map.end, lines)])
            }
            _ => {
                let block = |column| self.style.entries(&pair, column + self.style.step);
                let addition = Value::Object(pair.clone());
                self.extend_flow(
                    map,
                    entries.last().map(|e| e.value.end),
                    holder,
                    &addition,
                    block,
                )
            }
        }
    }

    fn append_item(
        &self,
        seq: &Node,
        flow: bool,
        items: &[Node],
        holder: Option<usize>,
        value: &Value,
    ) -> Result<Vec<Edit>, EditError> {
        match items.first() {
            Some(first) if !flow => {
                let dash = column(self.text, self.dash(first)?);
                let key = match &first.kind {
                    Kind::Mapping { flow: false, .. } => column(self.text, first.start),
                    _ => dash + 2,
                };
                let lines = self.style.item(value, ItemColumns { dash, key });
                Ok(vec![self.insert_lines(seq.end, lines)])
            }
            _ => self.extend_flow(
                seq,
                items.last().map(|item| item.end),
                holder,
                &Value::Array(vec![value.clone()]),
                |column| self.style.items_under(std::slice::from_ref(value), column),
            ),
        }
    }

    /// A flow collection gets `addition`'s content after its last child (before a comma
    /// that may follow it), or inside its brackets when empty; an empty one that is a
    /// block mapping's value becomes the `block` lines instead.
    fn extend_flow(
        &self,
        node: &Node,
        last_child_end: Option<usize>,
        holder: Option<usize>,
        addition: &Value,
        block: impl FnOnce(usize) -> String,
    ) -> Result<Vec<Edit>, EditError> {
        let json = render::flow(addition);
        // The JSON text's own brackets are dropped: its content goes inside the node's.
        let inner = &json[1..json.len() - 1];
        let edit = match (last_child_end, holder) {
            (Some(end), _) => Edit {
                at: end..end,
                text: format!(", {inner}"),
            },
            (None, Some(key_column)) => return Ok(self.block_in_place_of(node, block(key_column))),
            (None, None) if node.end > node.start => Edit {
                at: node.end - 1..node.end - 1,
                text: inner.to_owned(),
            },
            (None, None) => {
                return Err(EditError::Parse(
                    "a flow collection without brackets".to_owned(),
                ));
            }
        };
        Ok(vec![edit])
    }

    /// Deletes the whole lines from the one holding `start` to the one holding `end`,
    /// provided `start` is the first thing on its line.
    fn remove_lines(&self, start: usize, end: usize) -> Result<Edit, EditError> {
        let line = line_start(self.text, start);
        if !self.text[line..start].trim_start_matches(' ').is_empty() {
            return Err(EditError::Unsupported(
                "removing an entry that shares its line",
            ));
        }
        Ok(Edit {
            at: line..line_end(self.text, end),
            text: String::new(),
        })
    }

    /// `removal`, and when it takes the last of `children` of a block mapping's value,
    /// `empty` written after that mapping's key, since a key with nothing after it is null.
    fn emptied(
        &self,
        removal: Edit,
        children: usize,
        holder_key: Option<usize>,
        empty: &str,
    ) -> Result<Vec<Edit>, EditError> {
        if children > 1 {
            return Ok(vec![removal]);
        }
        let key = holder_key.ok_or(EditError::Unsupported("emptying a top-level collection"))?;
        let line = &self.text[key..];
        let end = key + line.find(['\r', '\n']).unwrap_or(line.len());
        if self.text[key..end].contains('#') {
            return Err(EditError::Unsupported(
                "emptying a collection whose key has a comment",
            ));
        }
        let at = key + self.text[key..end].trim_end().len();
        Ok(vec![
            removal,
            Edit {
                at: at..at,
                text: format!(" {empty}"),
            },
        ])
    }

    /// The `-` of a block sequence item (the item's span starts at its content).
    fn dash(&self, item: &Node) -> Result<usize, EditError> {
        dash(self.text, item).ok_or(EditError::Unsupported(
            "a sequence item not on its `-` line",
        ))
    }

    /// Whole lines inserted after the line holding `after`.
    fn insert_lines(&self, after: usize, lines: String) -> Edit {
        let at = line_end(self.text, after);
        let open = at > 0 && !self.text[..at].ends_with('\n');
        let text = if open {
            format!("{}{lines}", self.style.newline)
        } else {
            lines
        };
        Edit { at: at..at, text }
    }
}

/// Edits applied from the back, so earlier ranges stay valid.
fn splice(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.at.start));
    let mut out = text.to_owned();
    for edit in edits {
        out.replace_range(edit.at, &edit.text);
    }
    out
}

fn dash(text: &str, item: &Node) -> Option<usize> {
    let before = text[..item.start].trim_end_matches(' ');
    before.strip_suffix('-').map(str::len)
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The start of the line after the one holding `at` (or `at` itself at a line start).
fn line_end(text: &str, at: usize) -> usize {
    if at == line_start(text, at) {
        return at;
    }
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

fn column(text: &str, at: usize) -> usize {
    at - line_start(text, at)
}

/// The nesting step and sequence indentation the document already uses (the first
/// nested block mapping and the first sequence under a key decide), CRLF if present.
fn detect_style(text: &str, root: &Node) -> Style {
    let mut step = None;
    let mut indentless = None;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &node.kind {
            Kind::Mapping {
                flow: false,
                entries,
            } => {
                for entry in entries {
                    let key = column(text, entry.key_start);
                    match &entry.value.kind {
                        Kind::Mapping {
                            flow: false,
                            entries: inner,
                        } => {
                            let inner = inner.first().map(|e| column(text, e.key_start));
                            step = step.or(inner.filter(|&c| c > key).map(|c| c - key));
                        }
                        Kind::Sequence { flow: false, items } => {
                            let dash = items.first().and_then(|item| dash(text, item));
                            let dash = dash.map(|at| column(text, at));
                            indentless = indentless.or(dash.map(|d| d == key));
                        }
                        _ => {}
                    }
                }
                stack.extend(entries.iter().rev().map(|e| &e.value));
            }
            Kind::Mapping { entries, .. } => stack.extend(entries.iter().rev().map(|e| &e.value)),
            Kind::Sequence { items, .. } => stack.extend(items.iter().rev()),
            Kind::Scalar(_) => {}
        }
    }
    let defaults = Style::default();
    Style {
        step: step.unwrap_or(defaults.step),
        indentless: indentless.unwrap_or(defaults.indentless),
        newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
    }
}
