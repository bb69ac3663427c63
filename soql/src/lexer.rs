//! Tokenizer. Keywords are not distinguished here: SOQL keywords are contextual (an object
//! may be called `Order` or `Group`), so the parser decides what a word means.

use crate::ast::{Date, DateTime, Span, UtcOffset};
use crate::dates::days_in_month;
use crate::error::{quote, ParseError};

#[derive(Clone, Debug, PartialEq)]
pub enum TokKind {
    /// Identifier or keyword; the text is `src[span]`.
    Word,
    /// Unsigned or negative decimal number; the text is `src[span]`.
    Number,
    /// String literal; the payload is the canonical escaped body.
    Str(String),
    Date(Date),
    DateTime(DateTime),
    /// Apex bind expression after `:` (`:ids`, `:acc.Id`, `:ids.keySet()`,
    /// `:accounts[0].Id`, `:new Map<Id, Account>(rows).keySet()`): the expression text as
    /// written, without the colon. Read opaquely with balanced brackets; the parser accepts
    /// it only in Apex mode.
    Bind(String),
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokKind,
    pub span: Span,
}

pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::with_capacity(src.len() / 4 + 2);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let single = |kind: TokKind| Token {
            kind,
            span: Span::new(start, start + 1),
        };
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => toks.push(single(TokKind::LParen)),
            b')' => toks.push(single(TokKind::RParen)),
            b',' => toks.push(single(TokKind::Comma)),
            b'.' => toks.push(single(TokKind::Dot)),
            b':' => {
                // `:30` after a date literal is the `:n` argument; a name after the colon
                // starts a bind expression.
                let mut j = i + 1;
                while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                if bytes
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                {
                    let end = scan_bind(src, i, j)?;
                    toks.push(Token {
                        kind: TokKind::Bind(src[j..end].to_string()),
                        span: Span::new(i, end),
                    });
                    i = end;
                    continue;
                }
                toks.push(single(TokKind::Colon))
            }
            b'=' => toks.push(single(TokKind::Eq)),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                toks.push(Token {
                    kind: TokKind::Ne,
                    span: Span::new(i, i + 2),
                });
                i += 2;
                continue;
            }
            b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (kind, len) = match (b, next) {
                    (b'<', Some(b'>')) => (TokKind::Ne, 2),
                    (b'<', Some(b'=')) => (TokKind::Le, 2),
                    (b'>', Some(b'=')) => (TokKind::Ge, 2),
                    (b'<', _) => (TokKind::Lt, 1),
                    _ => (TokKind::Gt, 1),
                };
                toks.push(Token {
                    kind,
                    span: Span::new(i, i + len),
                });
                i += len;
                continue;
            }
            b'\'' => {
                let (body, end) = lex_string(src, i)?;
                toks.push(Token {
                    kind: TokKind::Str(body),
                    span: Span::new(i, end),
                });
                i = end;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => return Err(comment_error(i)),
            b'/' if matches!(bytes.get(i + 1), Some(b'/') | Some(b'*')) => {
                return Err(comment_error(i))
            }
            b'-' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = scan_number(bytes, i + 1);
                toks.push(Token {
                    kind: TokKind::Number,
                    span: Span::new(i, end),
                });
                i = end;
                continue;
            }
            b'0'..=b'9' => {
                let tok = lex_numeric(src, i)?;
                i = tok.span.end;
                toks.push(tok);
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let end = scan_word(bytes, i);
                toks.push(Token {
                    kind: TokKind::Word,
                    span: Span::new(i, end),
                });
                i = end;
                continue;
            }
            _ => return Err(unexpected_char(src, i)),
        }
        i += 1;
    }
    toks.push(Token {
        kind: TokKind::Eof,
        span: Span::new(src.len(), src.len()),
    });
    Ok(toks)
}

/// The end of a bind expression whose first name starts at `start` (`colon` is the `:`).
///
/// Apex expressions are not SOQL, so they are read opaquely: names joined by dots, each
/// optionally followed by call arguments `(...)` or an index `[...]`, and after `new` a type
/// with generic arguments `<...>`. Brackets are matched with one counter stack on the heap
/// and string literals are skipped, so no input can recurse or loop without consuming.
fn scan_bind(src: &str, colon: usize, start: usize) -> Result<usize, ParseError> {
    let bytes = src.as_bytes();
    let mut i = scan_word(bytes, start);
    let after_new = src[start..i].eq_ignore_ascii_case("new")
        && bytes.get(i).is_some_and(|c| c.is_ascii_whitespace());
    if after_new {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if !bytes
            .get(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return Err(ParseError::new(
                colon,
                i,
                "a type after new",
                quote(src.get(colon..i).unwrap_or(":")),
            ));
        }
        i = scan_word(bytes, i);
        // Dotted type names (`Schema.SObjectType`) and generic arguments.
        loop {
            if bytes.get(i) == Some(&b'.')
                && bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            {
                i = scan_word(bytes, i + 1);
            } else if bytes.get(i) == Some(&b'<') {
                i = balanced(src, colon, i)?;
            } else {
                break;
            }
        }
        if !matches!(bytes.get(i), Some(b'(') | Some(b'[') | Some(b'{')) {
            return Err(ParseError::new(
                colon,
                i.max(colon + 1),
                "constructor arguments '(...)' after the type",
                quote(src.get(colon..i).unwrap_or(":")),
            ));
        }
    }
    loop {
        match bytes.get(i) {
            Some(b'(') | Some(b'[') => i = balanced(src, colon, i)?,
            Some(b'{') if after_new => i = balanced(src, colon, i)?,
            Some(b'.')
                if bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                i = scan_word(bytes, i + 1);
            }
            _ => return Ok(i),
        }
    }
}

/// The offset after the bracket group opening at `open`, with nested groups and strings.
/// Generic arguments (`<...>`) count only angle brackets; other groups count `()[]{}` and
/// leave `<`/`>` alone, since inside arguments they are comparisons.
fn balanced(src: &str, colon: usize, open: usize) -> Result<usize, ParseError> {
    let bytes = src.as_bytes();
    let generic = bytes.get(open) == Some(&b'<');
    let mut stack: Vec<u8> = Vec::new();
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            c @ b'<' if generic => stack.push(c),
            c @ (b'(' | b'[' | b'{') if !generic => stack.push(c),
            b'>' if generic => {
                stack.pop();
                if stack.is_empty() {
                    return Ok(i + 1);
                }
            }
            b'(' | b'[' | b'{' | b')' | b']' | b'}' if generic => {
                return Err(ParseError::new(
                    i,
                    i + 1,
                    "'>' closing the generic type",
                    quote(&char::from(bytes[i]).to_string()),
                ))
            }
            c @ (b')' | b']' | b'}') => {
                let want = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(want) {
                    return Err(ParseError::new(
                        i,
                        i + 1,
                        "a balanced bind expression",
                        quote(&char::from(c).to_string()),
                    )
                    .with_note("the brackets of this Apex bind expression do not match"));
                }
                if stack.is_empty() {
                    return Ok(i + 1);
                }
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(
        ParseError::new(colon, src.len(), "a closing bracket", "end of query")
            .with_note("the Apex bind expression starting here is not closed"),
    )
}

fn comment_error(at: usize) -> ParseError {
    ParseError::new(at, at + 2, "a SOQL token", "a comment")
        .with_note("SOQL does not allow comments; remove them")
}

fn unexpected_char(src: &str, i: usize) -> ParseError {
    let ch = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
    let end = i + ch.len_utf8();
    let err = ParseError::new(i, end, "a SOQL token", quote(&ch.to_string()));
    match ch {
        '*' => err.with_note("SELECT * is SQL; list the fields or use FIELDS(ALL) with LIMIT 200"),
        ';' => err.with_note("SOQL statements have no terminating semicolon"),
        '"' => err.with_note("SOQL strings use single quotes"),
        '+' | '-' | '/' | '%' => err.with_note("SOQL has no arithmetic"),
        _ => err,
    }
}

fn scan_word(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    // Currency literals with a fraction (`USD12.50`) are one token: three letters, digits,
    // a dot and more digits. No field path can have a segment starting with a digit.
    if i < bytes.len()
        && bytes[i] == b'.'
        && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        && is_currency_head(&bytes[start..i])
    {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// `USD5000`: exactly three letters then at least one digit.
pub fn is_currency_head(word: &[u8]) -> bool {
    word.len() > 3
        && word[..3].iter().all(u8::is_ascii_alphabetic)
        && word[3..].iter().all(u8::is_ascii_digit)
}

fn scan_number(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

fn digits_at(bytes: &[u8], i: usize, n: usize) -> Option<u32> {
    let slice = bytes.get(i..i + n)?;
    if !slice.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        slice
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
    )
}

/// A number, a date (`2024-05-01`) or a datetime (`2024-05-01T10:00:00Z`).
fn lex_numeric(src: &str, start: usize) -> Result<Token, ParseError> {
    let bytes = src.as_bytes();
    let looks_like_date =
        digits_at(bytes, start, 4).is_some() && bytes.get(start + 4) == Some(&b'-');
    if !looks_like_date {
        let end = scan_number(bytes, start);
        return Ok(Token {
            kind: TokKind::Number,
            span: Span::new(start, end),
        });
    }
    let bad = |end: usize, what: &str| {
        let end = end.min(src.len()).max(start + 1);
        let text = src.get(start..end).unwrap_or("");
        ParseError::new(start, end, "a valid date or datetime", quote(text))
            .with_note(what.to_string())
    };
    let (Some(year), Some(month), Some(day)) = (
        digits_at(bytes, start, 4),
        digits_at(bytes, start + 5, 2),
        digits_at(bytes, start + 8, 2),
    ) else {
        return Err(bad(start + 10, "dates are written YYYY-MM-DD"));
    };
    if bytes.get(start + 7) != Some(&b'-') {
        return Err(bad(start + 10, "dates are written YYYY-MM-DD"));
    }
    let date_end = start + 10;
    if !(1..=12).contains(&month) {
        return Err(bad(date_end, &format!("month {month:02} does not exist")));
    }
    // year fits u16 (4 digits); month/day were range-checked.
    let date = Date {
        year: year as u16,
        month: month as u8,
        day: day as u8,
    };
    if day == 0 || day > u32::from(days_in_month(date.year, date.month)) {
        return Err(bad(
            date_end,
            &format!("day {day:02} does not exist in {year:04}-{month:02}"),
        ));
    }
    if bytes.get(date_end) != Some(&b'T') {
        if bytes
            .get(date_end)
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return Err(bad(
                date_end + 1,
                "a date is followed by T for a datetime, or by a space",
            ));
        }
        return Ok(Token {
            kind: TokKind::Date(date),
            span: Span::new(start, date_end),
        });
    }
    let t = date_end + 1;
    let (Some(hour), Some(minute), Some(second)) = (
        digits_at(bytes, t, 2),
        digits_at(bytes, t + 3, 2),
        digits_at(bytes, t + 6, 2),
    ) else {
        return Err(bad(
            t + 8,
            "datetimes are written YYYY-MM-DDThh:mm:ssZ or with +hh:mm",
        ));
    };
    if bytes.get(t + 2) != Some(&b':') || bytes.get(t + 5) != Some(&b':') {
        return Err(bad(
            t + 8,
            "datetimes are written YYYY-MM-DDThh:mm:ssZ or with +hh:mm",
        ));
    }
    if hour > 23 {
        return Err(bad(t + 8, &format!("hour {hour:02} does not exist")));
    }
    if minute > 59 {
        return Err(bad(t + 8, &format!("minute {minute:02} does not exist")));
    }
    if second > 59 {
        return Err(bad(t + 8, &format!("second {second:02} does not exist")));
    }
    let mut i = t + 8;
    let mut fraction = None;
    if bytes.get(i) == Some(&b'.') {
        let f_start = i + 1;
        let mut j = f_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j == f_start {
            return Err(bad(j, "fractional seconds need digits"));
        }
        fraction = src.get(f_start..j).map(str::to_string);
        i = j;
    }
    let offset = match bytes.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            UtcOffset::Z
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (Some(oh), Some(om)) = (digits_at(bytes, i + 1, 2), digits_at(bytes, i + 4, 2))
            else {
                return Err(bad(i + 6, "a UTC offset is written +hh:mm or -hh:mm"));
            };
            if bytes.get(i + 3) != Some(&b':') {
                return Err(bad(i + 6, "a UTC offset is written +hh:mm or -hh:mm"));
            }
            if oh > 23 || om > 59 {
                return Err(bad(
                    i + 6,
                    &format!("UTC offset {oh:02}:{om:02} does not exist"),
                ));
            }
            i += 6;
            UtcOffset::Offset(if sign == b'-' { -1 } else { 1 }, oh as u8, om as u8)
        }
        _ => {
            return Err(bad(
                i + 1,
                "a datetime needs a time zone: Z, +hh:mm or -hh:mm",
            ))
        }
    };
    if bytes.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(i + 1, "unexpected text after the datetime"));
    }
    Ok(Token {
        kind: TokKind::DateTime(DateTime {
            date,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            fraction,
            offset,
        }),
        span: Span::new(start, i),
    })
}

/// Reads a quoted string starting at `start` (the opening quote). Returns the canonical
/// body (escapes normalised to lower case) and the offset after the closing quote.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let mut body = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let at = start + 1 + off;
        match ch {
            '\'' => return Ok((body, at + 1)),
            '\\' => {
                let Some((_, esc)) = chars.next() else {
                    break;
                };
                let canonical = match esc {
                    'n' | 'N' => 'n',
                    'r' | 'R' => 'r',
                    't' | 'T' => 't',
                    'b' | 'B' => 'b',
                    'f' | 'F' => 'f',
                    '"' | '\'' | '\\' | '%' | '_' => esc,
                    'u' => {
                        // `\uXXXX`: exactly four hex digits (SOQL reference, "Quoted String
                        // Escape Sequences"). Kept escaped, digits lower-cased.
                        let mut hex = String::with_capacity(4);
                        for _ in 0..4 {
                            match chars.clone().next() {
                                Some((_, h)) if h.is_ascii_hexdigit() => {
                                    hex.push(h.to_ascii_lowercase());
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        if hex.len() != 4 {
                            // `\u` and the hex digits read are all ASCII.
                            let end = at + 2 + hex.len();
                            return Err(ParseError::new(
                                at,
                                end,
                                "four hex digits after \\u",
                                quote(src.get(at..end).unwrap_or("\\u")),
                            )
                            .with_note(
                                "a Unicode escape is written with four hex digits: \\u00e9",
                            ));
                        }
                        body.push_str("\\u");
                        body.push_str(&hex);
                        continue;
                    }
                    other => {
                        let end = at + 1 + other.len_utf8();
                        return Err(ParseError::new(
                            at,
                            end,
                            "an escape sequence (\\' \\\\ \\n \\r \\t \\b \\f \\\" \\% \\_ \\uXXXX)",
                            quote(&format!("\\{other}")),
                        ));
                    }
                };
                body.push('\\');
                body.push(canonical);
            }
            other => body.push(other),
        }
    }
    Err(
        ParseError::new(start, src.len(), "a closing quote", "end of query")
            .with_note("the string literal starting here is not terminated"),
    )
}

/// Escapes a plain string into the canonical body form used by `Literal::String`.
pub fn escape_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    for ch in raw.chars() {
        match ch {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
}

/// Decodes a canonical body to the characters it stands for. LIKE escapes (`\%`, `\_`)
/// decode to the plain character.
pub fn unescape_string(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                // A lone surrogate half has no char; U+FFFD keeps the text printable.
                out.push(decoded.unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}
