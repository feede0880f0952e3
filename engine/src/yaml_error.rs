//! serde-saphyr's errors in our words: one position (the caller's, or `at line L, column C`),
//! no source snippet (its column counts from a cropped window, not the line), and no
//! parser-option hints or `Debug` dumps (`set DuplicateKeyPolicy`, `Nodes { nodes: 250001 }`).

use std::borrow::Cow;

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};

/// An alias bomb (a few lines of `&a`/`*a` that expand to millions of nodes) or an
/// oversized document hits one of the parser's budgets.
const TOO_LARGE: &str =
    "the document is too large once its aliases (*name) are expanded, as an alias bomb is";

struct OurWords;

impl MessageFormatter for OurWords {
    fn format_message<'a>(&self, error: &'a Error) -> Cow<'a, str> {
        match original(error) {
            Error::DuplicateMappingKey { key: Some(key), .. } => {
                Cow::Owned(format!("duplicate key `{key}` in a mapping"))
            }
            Error::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("duplicate key in a mapping")
            }
            Error::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            } => Cow::Borrowed("nested too deeply"),
            Error::Budget { .. }
            | Error::AliasReplayCounterOverflow { .. }
            | Error::AliasReplayLimitExceeded { .. }
            | Error::AliasExpansionLimitExceeded { .. }
            | Error::AliasReplayStackDepthExceeded { .. } => Cow::Borrowed(TOO_LARGE),
            other => UserMessageFormatter.format_message(other),
        }
    }
}

/// The error under the snippet and alias-location wrappers.
fn original(mut error: &Error) -> &Error {
    while let Error::AliasError { error: inner, .. } | Error::WithSnippet { error: inner, .. } =
        error
    {
        error = inner;
    }
    error
}

/// The message with its position as `at line L, column C`, lines counted after `line_offset`.
/// Only the position where the parser stopped: not also where an alias was defined.
pub fn with_position(error: &Error, line_offset: u64) -> String {
    let message = OurWords.format_message(error);
    match error.location().filter(|at| at.line() > 0) {
        Some(at) => format!(
            "{message} at line {}, column {}",
            at.line() + line_offset,
            at.column()
        ),
        None => message.into_owned(),
    }
}

/// The message alone, and the column, for a caller that names the file and line itself.
pub fn without_position(error: &Error) -> (String, Option<u64>) {
    let column = error.location().map(|at| at.column()).filter(|&c| c > 0);
    (OurWords.format_message(error).into_owned(), column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_error(text: &str) -> Error {
        serde_saphyr::from_str::<serde_json::Value>(text).unwrap_err()
    }

    #[test]
    fn says_each_problem_once_in_our_words() {
        let duplicate = yaml_error("a: 1\na: 2\n");
        assert_eq!(
            with_position(&duplicate, 0),
            "duplicate key `a` in a mapping at line 2, column 1"
        );
        assert_eq!(
            with_position(&duplicate, 10),
            "duplicate key `a` in a mapping at line 12, column 1"
        );
        assert_eq!(
            without_position(&duplicate),
            ("duplicate key `a` in a mapping".into(), Some(1))
        );

        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("b{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(",");
            bomb.push_str(&format!("b{i}: &b{i} [{refs}]\n"));
        }
        let (message, _) = without_position(&yaml_error(&bomb));
        assert_eq!(message, TOO_LARGE);

        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let message = with_position(&yaml_error(&deep), 0);
        assert_eq!(message.matches("column").count(), 1, "{message}");
        assert!(!message.contains("-->"), "{message}");
    }
}
