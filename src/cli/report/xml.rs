//! Escaping text for XML 1.0. Written here rather than taken from an XML crate: JUnit
//! output only writes a fixed shape, and escaping is all it needs.

/// `text` as a quoted attribute value. Line breaks and tabs become references, which
/// parsers would otherwise turn into spaces.
pub fn attribute(text: &str) -> String {
    escape(text, true)
}

/// `text` as character data, line breaks kept.
pub fn text(text: &str) -> String {
    escape(text, false)
}

/// Characters XML 1.0 forbids even as references (most C0 controls, U+FFFE, U+FFFF)
/// become U+FFFD, as a parser would otherwise reject the whole file.
fn escape(text: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            // A parser turns a literal CR (and CR LF) into LF.
            '\r' => out.push_str("&#13;"),
            c if allowed(c) || matches!(c, '\n' | '\t') => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

fn allowed(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters() {
        assert_eq!(
            attribute("a<b>&\"c\" 'd'\n\u{1}\u{FFFE}é"),
            "a&lt;b&gt;&amp;&quot;c&quot; 'd'&#10;\u{FFFD}\u{FFFD}é"
        );
        assert_eq!(text("\"x\"\n\ty\r"), "\"x\"\n\ty&#13;");
    }
}
