//! Where a node of a YAML (or JSON) document starts in its file: the document is parsed a
//! second time into a tree that keeps only each node's line, so findings can point at
//! the object and the container rather than at a document index.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::documents::Document;

/// The lines of one document's nodes.
#[derive(Debug)]
pub struct Lines {
    /// 1-based line of the file where the document's text starts.
    offset: usize,
    /// The first line with content, for documents the tree could not be built for.
    first_content: usize,
    root: Option<Node>,
}

impl Lines {
    pub fn of(document: &Document<'_>) -> Lines {
        // JSON with tab indentation is not YAML: such a document keeps only its first line.
        let root = serde_saphyr::from_str::<Node>(document.text).ok();
        Lines {
            offset: document.line,
            first_content: document.line + content_start(document.text),
            root,
        }
    }

    /// For an object that has no file (read from a cluster): every node is on line 1.
    pub fn unknown() -> Lines {
        Lines {
            offset: 1,
            first_content: 1,
            root: None,
        }
    }

    /// The file's 1-based line of the node at `path` (mapping keys and sequence indexes
    /// from the document's root), or of the nearest ancestor the tree has.
    pub fn line_of(&self, path: &[Step<'_>]) -> usize {
        let Some(mut node) = self.root.as_ref() else {
            return self.first_content;
        };
        for step in path {
            match node.child(*step) {
                Some(child) => node = child,
                None => break,
            }
        }
        // Parser lines are 1-based within the document's text.
        match node.line {
            0 => self.first_content,
            line => self.offset + line - 1,
        }
    }
}

/// One step down a document.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Lines the document's text starts with that hold no content: the rest of a `---` line,
/// blank lines and comments.
fn content_start(text: &str) -> usize {
    text.lines()
        .take_while(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        })
        .count()
}

#[derive(Debug)]
struct Node {
    /// 1-based within the parsed text; 0 when the parser gave no position.
    line: usize,
    children: Children,
}

#[derive(Debug)]
enum Children {
    Leaf,
    Map(Vec<(Option<String>, Node)>),
    Seq(Vec<Node>),
}

impl Node {
    fn child(&self, step: Step<'_>) -> Option<&Node> {
        match (&self.children, step) {
            (Children::Map(entries), Step::Key(key)) => entries
                .iter()
                .find(|(k, _)| k.as_deref() == Some(key))
                .map(|(_, node)| node),
            (Children::Seq(items), Step::Index(k)) => items.get(k),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = Spanned::<Children>::deserialize(deserializer)?;
        Ok(Node {
            line: usize::try_from(spanned.referenced.line()).unwrap_or(0),
            children: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Children {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Children, D::Error> {
        deserializer.deserialize_any(ChildrenVisitor)
    }
}

struct ChildrenVisitor;

/// Every scalar is a leaf; only mappings and sequences have children.
macro_rules! leaf {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Children, E> {
            Ok(Children::Leaf)
        }
    )*};
}

impl<'de> Visitor<'de> for ChildrenVisitor {
    type Value = Children;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<Children, E> {
        Ok(Children::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<Children, E> {
        Ok(Children::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Children, D::Error> {
        deserializer.deserialize_any(ChildrenVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Children, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Children::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Children, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            entries.push((key, map.next_value::<Node>()?));
        }
        Ok(Children::Map(entries))
    }
}

/// A mapping key: its text when it is a scalar, `None` for a complex key.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

macro_rules! scalar_key {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<Key, E> {
            Ok(Key(Some(value.to_string())))
        }
    )*};
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    scalar_key!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_string<E: de::Error>(self, value: String) -> Result<Key, E> {
        Ok(Key(Some(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key(Some("null".to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_documents;

    fn lines(text: &str) -> Vec<Lines> {
        parse_documents(text, false)
            .iter()
            .map(|d| Lines::of(d.as_ref().unwrap()))
            .collect()
    }

    #[test]
    fn nodes_are_found_by_path_in_the_files_lines() {
        let text = "# licence\n\n---\n# a Deployment\napiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n      -   name: b\n---\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{name: c}]}\n";
        let docs = lines(text);
        assert_eq!(docs[0].line_of(&[]), 5);
        let container = |k| {
            [
                Step::Key("spec"),
                Step::Key("template"),
                Step::Key("spec"),
                Step::Key("containers"),
                Step::Index(k),
            ]
        };
        assert_eq!(docs[0].line_of(&container(0)), 11);
        assert_eq!(docs[0].line_of(&container(1)), 13);
        assert_eq!(
            docs[0].line_of(&container(7)),
            11,
            "missing: the nearest ancestor (the sequence)"
        );
        assert_eq!(docs[1].line_of(&[Step::Key("items"), Step::Index(0)]), 17);
    }

    #[test]
    fn unparsable_text_falls_back_to_the_first_content_line() {
        // serde_json takes the last of duplicate keys; the YAML parser refuses them.
        let docs = parse_documents("---\n\n{\"kind\": \"Pod\",\n \"kind\": \"Pod\"}\n", false);
        let lines = Lines::of(docs[0].as_ref().unwrap());
        assert!(lines.root.is_none());
        assert_eq!(lines.line_of(&[Step::Key("kind")]), 3);
    }

    proptest::proptest! {
        #[test]
        fn lines_stay_within_their_document(text in "[-.#{}\\[\\]:a-z0-9 \\t\\n\"']{0,200}") {
            let total = text.lines().count().max(1);
            for document in parse_documents(&text, false).iter().flatten() {
                let lines = Lines::of(document);
                for path in [&[][..], &[Step::Key("a"), Step::Index(0)][..]] {
                    let line = lines.line_of(path);
                    proptest::prop_assert!(line >= document.line && line <= total + 1, "{line}");
                }
            }
        }
    }

    #[test]
    fn odd_keys_do_not_break_the_tree() {
        let docs = lines("1: a\ntrue: c\nk:\n  - 1\n");
        assert_eq!(docs[0].line_of(&[Step::Key("k"), Step::Index(0)]), 4);
        assert_eq!(docs[0].line_of(&[Step::Key("true")]), 2);
    }
}
