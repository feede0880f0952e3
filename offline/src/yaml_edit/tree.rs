//! The shape of one YAML document with the byte ranges its nodes occupy in the source,
//! built from the parser's spanned events (the parser serde-saphyr itself uses).

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use super::EditError;

/// A node and where it sits in the document's text.
#[derive(Debug)]
pub struct Node {
    /// First byte of the node's content (for a block sequence in a mapping without
    /// indentation, the first item's content, not its `-`).
    pub start: usize,
    /// One past the last byte of its content: the closing bracket of a flow collection,
    /// the last scalar inside a block one.
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Scalar(ScalarStyle),
    Sequence { flow: bool, items: Vec<Node> },
    Mapping { flow: bool, entries: Vec<Entry> },
}

#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub key_start: usize,
    pub value: Node,
}

/// Parses the first document of `text`. Anchors and aliases are refused: an edit at an
/// anchor would change every alias of it, and an alias has no text of its own to edit.
pub fn parse(text: &str) -> Result<Node, EditError> {
    let mut events = Parser::new_from_str(text).filter_map(|event| match event {
        Ok((Event::Comment(..), _)) => None,
        other => Some(other),
    });
    loop {
        match next(&mut events)? {
            (Event::StreamStart | Event::DocumentStart(..), _) => {}
            (event, span) => return node(event, span, &mut events),
        }
    }
}

type Events<'a> =
    dyn Iterator<Item = Result<(Event<'a>, Span), serde_saphyr::granit_parser::ScanError>> + 'a;

fn next<'a>(events: &mut Events<'a>) -> Result<(Event<'a>, Span), EditError> {
    match events.next() {
        Some(Ok(event)) => Ok(event),
        Some(Err(error)) => Err(EditError::Parse(error.info())),
        None => Err(EditError::Parse("unexpected end of events".to_owned())),
    }
}

fn offset(marker: &serde_saphyr::granit_parser::Marker) -> Result<usize, EditError> {
    marker
        .byte_offset()
        .ok_or_else(|| EditError::Parse("the parser gave no byte offset".to_owned()))
}

fn node<'a>(event: Event<'a>, span: Span, events: &mut Events<'a>) -> Result<Node, EditError> {
    let start = offset(&span.start)?;
    match event {
        Event::Scalar(_, style, anchor, _) => {
            refuse_anchor(anchor)?;
            Ok(Node {
                start,
                end: offset(&span.end)?,
                kind: Kind::Scalar(style),
            })
        }
        Event::SequenceStart(style, anchor, _) => {
            refuse_anchor(anchor)?;
            let mut items = Vec::new();
            loop {
                match next(events)? {
                    (Event::SequenceEnd, end) => {
                        return collection(
                            style,
                            start,
                            &end,
                            items.last().map(|n: &Node| n.end),
                            |flow| Kind::Sequence { flow, items },
                        );
                    }
                    (event, span) => items.push(node(event, span, events)?),
                }
            }
        }
        Event::MappingStart(style, anchor, _) => {
            refuse_anchor(anchor)?;
            let mut entries = Vec::new();
            loop {
                match next(events)? {
                    (Event::MappingEnd, end) => {
                        let last = entries.last().map(|e: &Entry| e.value.end);
                        return collection(style, start, &end, last, |flow| Kind::Mapping {
                            flow,
                            entries,
                        });
                    }
                    (Event::Scalar(key, _, anchor, _), span) => {
                        refuse_anchor(anchor)?;
                        let (event, value_span) = next(events)?;
                        entries.push(Entry {
                            key: key.into_owned(),
                            key_start: offset(&span.start)?,
                            value: node(event, value_span, events)?,
                        });
                    }
                    _ => return Err(EditError::Unsupported("a mapping key that is not a scalar")),
                }
            }
        }
        Event::Alias(_) | Event::UnresolvedAlias(_) => {
            Err(EditError::Unsupported("an alias (*name)"))
        }
        _ => Err(EditError::Parse("unexpected event".to_owned())),
    }
}

/// A block collection's end event sits at the next token, possibly after comments, so
/// its end is that of its last child instead.
fn collection(
    style: StructureStyle,
    start: usize,
    end_span: &Span,
    last_child_end: Option<usize>,
    kind: impl FnOnce(bool) -> Kind,
) -> Result<Node, EditError> {
    let flow = style == StructureStyle::Flow;
    let end = match (flow, last_child_end) {
        (true, _) => offset(&end_span.end)?,
        (false, Some(end)) => end,
        (false, None) => start,
    };
    Ok(Node {
        start,
        end,
        kind: kind(flow),
    })
}

fn refuse_anchor(anchor: usize) -> Result<(), EditError> {
    match anchor {
        0 => Ok(()),
        _ => Err(EditError::Unsupported("an anchor (&name)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(node: &Node) -> &[Entry] {
        match &node.kind {
            Kind::Mapping { entries, .. } => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn nodes_know_their_text() {
        let text = "a: 1 # c\n# between\nenv:\n- name: X\n  value: \"y\"\nn: [1, 2]\n";
        let root = parse(text).unwrap();
        let entries = mapping(&root);
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "env", "n"]);
        let env = &entries[1].value;
        assert_eq!(&text[env.start..env.end], "name: X\n  value: \"y\"");
        let flow = &entries[2].value;
        assert_eq!(&text[flow.start..flow.end], "[1, 2]");
        assert_eq!(root.end, flow.end);
    }

    #[test]
    fn anchors_and_aliases_are_refused() {
        assert!(matches!(
            parse("a: &x 1\nb: *x\n"),
            Err(EditError::Unsupported(_))
        ));
        assert!(matches!(parse("a: [\n"), Err(EditError::Parse(_))));
    }
}
