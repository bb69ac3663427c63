//! The one error type of the crate: where the query went wrong and what was expected.

use serde::Serialize;
use std::fmt;

/// A syntax error. `offset`/`end` are byte offsets into the query text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ParseError {
    pub offset: usize,
    pub end: usize,
    /// What the parser would have accepted here, in words ("a field name", "FROM").
    pub expected: String,
    /// What it found: a quoted token or "end of query".
    pub found: String,
    /// Why, when the grammar alone does not say it (e.g. "SOQL has no comments").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ParseError {
    pub fn new(
        offset: usize,
        end: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        ParseError {
            offset,
            end: end.max(offset),
            expected: expected.into(),
            found: found.into(),
            note: None,
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at byte {}: expected {}, found {}",
            self.offset, self.expected, self.found
        )?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// Quotes a piece of source for an error message, shortening long text.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let short: String = text.chars().take(MAX).collect();
        format!("'{short}...'")
    } else {
        format!("'{text}'")
    }
}
