//! TOML text to typed values, collecting every problem the parser and serde can find in one
//! pass (see the module above for the order of the steps).

use super::{interpolate, ConfigError};
use std::path::Path;

/// What one TOML file gave: the typed value when its types are right, every problem found
/// so far, and the interpolated document (to ask which keys were set).
pub(super) struct Parsed<T> {
    pub value: Option<T>,
    pub errors: Vec<ConfigError>,
    pub raw: toml::Value,
}

/// TOML text → interpolated value → typed struct. Reports a syntax error with `file:line:col`
/// (only one: the parser stops there), every unset `${VAR}` with its key path, and type errors
/// one per top-level table or array-of-tables entry (`server`, `connections[2]`), so one bad
/// table does not hide the others.
pub(super) fn parse_toml<T: serde::de::DeserializeOwned>(origin: &Path, text: &str) -> Parsed<T> {
    let at_key = |key: &str, message: String| ConfigError {
        location: format!("{}: {key}", origin.display()),
        message,
    };
    let mut raw: toml::Value = match toml::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let location = match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{}:{line}:{col}", origin.display())
                }
                None => origin.display().to_string(),
            };
            return Parsed {
                value: None,
                errors: vec![ConfigError {
                    location,
                    message: format!(
                        "{} (TOML syntax error: the parser stops here, so fix it and check again to see any further errors)",
                        e.message().trim_end()
                    ),
                }],
                raw: toml::Value::Table(toml::Table::new()),
            };
        }
    };
    let mut errors: Vec<ConfigError> =
        interpolate::interpolate(&mut raw, &|name| std::env::var(name).ok())
            .into_iter()
            .map(|(key, message)| at_key(&key, message))
            .collect();
    match raw.clone().try_into::<T>() {
        Ok(value) => Parsed {
            value: Some(value),
            errors,
            raw,
        },
        Err(whole) => {
            errors.extend(type_errors::<T>(origin, text, &raw, whole));
            Parsed {
                value: None,
                errors,
                raw,
            }
        }
    }
}

/// Serde stops at the first type error, so each top-level table and each entry of an array of
/// tables is deserialised on its own (every field of the document types is optional at the top
/// level, so a part alone is a whole document). The interpolated value has no positions; the
/// error the original text gives first is matched to its part to add `line:col` there.
fn type_errors<T: serde::de::DeserializeOwned>(
    origin: &Path,
    text: &str,
    raw: &toml::Value,
    whole: toml::de::Error,
) -> Vec<ConfigError> {
    let mut found: Vec<(String, String)> = Vec::new();
    let alone = |key: &str, value: toml::Value| {
        let mut doc = toml::Table::new();
        doc.insert(key.to_owned(), value);
        toml::Value::Table(doc)
            .try_into::<T>()
            .err()
            .map(|e| e.message().trim_end().to_owned())
    };
    if let Some(table) = raw.as_table() {
        for (key, value) in table {
            match value {
                toml::Value::Array(entries)
                    if !entries.is_empty() && entries.iter().all(toml::Value::is_table) =>
                {
                    for (i, entry) in entries.iter().enumerate() {
                        if let Some(message) = alone(key, toml::Value::Array(vec![entry.clone()])) {
                            found.push((format!("{key}[{i}]"), message));
                        }
                    }
                }
                other => {
                    if let Some(message) = alone(key, other.clone()) {
                        found.push((key.clone(), message));
                    }
                }
            }
        }
    }
    if found.is_empty() {
        // The parts are fine alone but not together: only the whole document's error is known.
        found.push((String::new(), whole.message().trim_end().to_owned()));
    }
    let first_in_text = toml::from_str::<T>(text).err();
    let mut line_given = false;
    found
        .into_iter()
        .map(|(key, message)| {
            let position = first_in_text
                .as_ref()
                .filter(|e| !line_given && e.message().trim_end() == message)
                .and_then(|e| e.span())
                .map(|span| line_col(text, span.start));
            let location = match (position, key.is_empty()) {
                (Some((line, col)), true) => format!("{}:{line}:{col}", origin.display()),
                (Some((line, col)), false) => {
                    line_given = true;
                    format!("{}:{line}:{col}: {key}", origin.display())
                }
                (None, true) => origin.display().to_string(),
                (None, false) => format!("{}: {key}", origin.display()),
            };
            ConfigError { location, message }
        })
        .collect()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}
