//! Relative date literals (`TODAY`, `LAST_N_DAYS:30`, ...) and calendar validation.
//!
//! Widths are approximations in days relative to "today": the guard only needs to know
//! whether a range is wider than a configured window, not the exact fiscal calendar.

use crate::ast::DateLiteral;

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// The current period (roughly centred on today).
    Current,
    /// The period before the current one.
    Previous,
    /// The period after the current one.
    Following,
    /// The last n units up to and including today.
    LastN,
    /// The next n units after today.
    NextN,
    /// One unit, n units ago.
    Ago,
    /// Fixed single days: offset from today.
    Day(i64),
}

struct Entry {
    name: &'static str,
    takes_n: bool,
    unit_days: i64,
    shape: Shape,
}

const fn e(name: &'static str, takes_n: bool, unit_days: i64, shape: Shape) -> Entry {
    Entry {
        name,
        takes_n,
        unit_days,
        shape,
    }
}

const WEEK: i64 = 7;
const MONTH: i64 = 31;
const QUARTER: i64 = 92;
const YEAR: i64 = 365;

/// Every documented SOQL date literal.
static ENTRIES: &[Entry] = &[
    e("YESTERDAY", false, 1, Shape::Day(-1)),
    e("TODAY", false, 1, Shape::Day(0)),
    e("TOMORROW", false, 1, Shape::Day(1)),
    e("LAST_WEEK", false, WEEK, Shape::Previous),
    e("THIS_WEEK", false, WEEK, Shape::Current),
    e("NEXT_WEEK", false, WEEK, Shape::Following),
    e("LAST_MONTH", false, MONTH, Shape::Previous),
    e("THIS_MONTH", false, MONTH, Shape::Current),
    e("NEXT_MONTH", false, MONTH, Shape::Following),
    e("LAST_90_DAYS", false, 90, Shape::LastN),
    e("NEXT_90_DAYS", false, 90, Shape::NextN),
    e("LAST_N_DAYS", true, 1, Shape::LastN),
    e("NEXT_N_DAYS", true, 1, Shape::NextN),
    e("N_DAYS_AGO", true, 1, Shape::Ago),
    e("LAST_N_WEEKS", true, WEEK, Shape::LastN),
    e("NEXT_N_WEEKS", true, WEEK, Shape::NextN),
    e("N_WEEKS_AGO", true, WEEK, Shape::Ago),
    e("LAST_N_MONTHS", true, MONTH, Shape::LastN),
    e("NEXT_N_MONTHS", true, MONTH, Shape::NextN),
    e("N_MONTHS_AGO", true, MONTH, Shape::Ago),
    e("THIS_QUARTER", false, QUARTER, Shape::Current),
    e("LAST_QUARTER", false, QUARTER, Shape::Previous),
    e("NEXT_QUARTER", false, QUARTER, Shape::Following),
    e("LAST_N_QUARTERS", true, QUARTER, Shape::LastN),
    e("NEXT_N_QUARTERS", true, QUARTER, Shape::NextN),
    e("N_QUARTERS_AGO", true, QUARTER, Shape::Ago),
    e("THIS_YEAR", false, YEAR, Shape::Current),
    e("LAST_YEAR", false, YEAR, Shape::Previous),
    e("NEXT_YEAR", false, YEAR, Shape::Following),
    e("LAST_N_YEARS", true, YEAR, Shape::LastN),
    e("NEXT_N_YEARS", true, YEAR, Shape::NextN),
    e("N_YEARS_AGO", true, YEAR, Shape::Ago),
    e("THIS_FISCAL_QUARTER", false, QUARTER, Shape::Current),
    e("LAST_FISCAL_QUARTER", false, QUARTER, Shape::Previous),
    e("NEXT_FISCAL_QUARTER", false, QUARTER, Shape::Following),
    e("LAST_N_FISCAL_QUARTERS", true, QUARTER, Shape::LastN),
    e("NEXT_N_FISCAL_QUARTERS", true, QUARTER, Shape::NextN),
    e("N_FISCAL_QUARTERS_AGO", true, QUARTER, Shape::Ago),
    e("THIS_FISCAL_YEAR", false, YEAR, Shape::Current),
    e("LAST_FISCAL_YEAR", false, YEAR, Shape::Previous),
    e("NEXT_FISCAL_YEAR", false, YEAR, Shape::Following),
    e("LAST_N_FISCAL_YEARS", true, YEAR, Shape::LastN),
    e("NEXT_N_FISCAL_YEARS", true, YEAR, Shape::NextN),
    e("N_FISCAL_YEARS_AGO", true, YEAR, Shape::Ago),
];

/// Canonical names of all date literals, for generators and docs.
pub fn date_literal_names() -> impl Iterator<Item = (&'static str, bool)> {
    ENTRIES.iter().map(|e| (e.name, e.takes_n))
}

/// Looks a name up (case-insensitive). Returns the canonical name and whether it takes `:n`.
pub fn lookup_date_literal(word: &str) -> Option<(&'static str, bool)> {
    ENTRIES
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(word))
        .map(|e| (e.name, e.takes_n))
}

/// The range a literal denotes, as (first day, number of days) relative to today (day 0).
pub fn date_literal_range(lit: &DateLiteral) -> (i64, i64) {
    let Some(entry) = ENTRIES.iter().find(|e| e.name == lit.name) else {
        return (0, 1);
    };
    let n = i64::from(lit.n.unwrap_or(1));
    let u = entry.unit_days;
    match entry.shape {
        Shape::Day(off) => (off, 1),
        Shape::Current => (-(u / 2), u),
        Shape::Previous => (-(u + u / 2), u),
        Shape::Following => (u - u / 2, u),
        // LAST_N_DAYS:n also includes today; counting it would make LAST_N_DAYS:365 one
        // day wider than a 365-day window, which no one means.
        Shape::LastN => (-(u * n) + 1, u * n),
        Shape::NextN => (1, u * n),
        Shape::Ago => (-(u * n), u),
    }
}

pub fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}
