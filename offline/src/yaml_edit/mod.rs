//! Applies RFC 6902 operations to a YAML document's text instead of re-serialising its
//! value, so comments, key order, quoting and layout outside the edited lines survive.
//!
//! Each operation is located in the text by the parser's spans and written in the style of
//! its surroundings; the result is read back and must equal the patched value, or the edit
//! is refused (the caller then re-serialises). The lossless YAML editors on crates.io
//! (yaml-edit, yaml-rt, noyalib) are young 0.x releases that bring a second parser; the
//! spans of the one serde-saphyr already builds (granit-parser) are enough for the few
//! operations `patch` makes. The README's `mutate` entry states the contract.

use json_patch::PatchOperation;
use serde_json::Value;
use thiserror::Error;

use crate::manifest::Mutation;

mod edit;
mod render;
mod tree;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    #[error("the YAML cannot be read: {0}")]
    Parse(String),
    #[error("{0} cannot be edited in place")]
    Unsupported(&'static str),
    #[error("{0} is not in the document")]
    Missing(String),
    #[error("the edited text does not read back as the patched document")]
    Mismatch,
}

/// One operation, its path from the document's root.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    path: Vec<String>,
    kind: OpKind,
}

#[derive(Debug, Clone, PartialEq)]
enum OpKind {
    Add(Value),
    Replace(Value),
    Remove,
}

impl Op {
    /// `op` applied to the object at `prefix` (e.g. `["items", "3"]` for a List's item).
    pub fn from_patch(prefix: &[String], op: &PatchOperation) -> Result<Op, EditError> {
        let kind = match op {
            PatchOperation::Add(add) => OpKind::Add(add.value.clone()),
            PatchOperation::Replace(replace) => OpKind::Replace(replace.value.clone()),
            PatchOperation::Remove(_) => OpKind::Remove,
            _ => return Err(EditError::Unsupported("a move, copy or test operation")),
        };
        let tokens = op.path().tokens().map(|token| token.decoded().into_owned());
        Ok(Op {
            path: prefix.iter().cloned().chain(tokens).collect(),
            kind,
        })
    }
}

/// `text` (one YAML document) with `ops` applied in order, checked to read back as
/// `expected`, the document's value with the same operations applied.
pub fn edit_document(text: &str, ops: &[Op], expected: &Value) -> Result<String, EditError> {
    let edited = ops
        .iter()
        .try_fold(text.to_owned(), |text, op| edit::apply(&text, op))?;
    match serde_saphyr::from_str::<Option<Value>>(&edited) {
        Ok(Some(read)) if read == *expected => Ok(edited),
        _ => Err(EditError::Mismatch),
    }
}

/// `text` with the operations of `mutation` (which `mutate_document` applied to
/// `expected`): those of a `List`'s items reach them through `items`.
pub fn edit_mutated(
    text: &str,
    mutation: &Mutation,
    expected: &Value,
) -> Result<String, EditError> {
    let mut ops = Vec::new();
    for (item, patch) in &mutation.patches {
        let prefix = match item {
            Some(k) => vec!["items".to_owned(), k.to_string()],
            None => Vec::new(),
        };
        for op in patch {
            ops.push(Op::from_patch(&prefix, op)?);
        }
    }
    edit_document(text, &ops, expected)
}

#[cfg(test)]
mod tests;
