//! Deterministic record generation helpers (same seed → same records).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

/// Records are dated in the year before this instant (2026-01-01T00:00:00Z).
pub(crate) const DATA_ANCHOR: i64 = 1_767_225_600;
const YEAR: i64 = 365 * 86_400;

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Katherine",
    "Edsger",
    "Hedy",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Leslie",
    "Shafi",
    "Niklaus",
    "Jean",
    "Yukihiro",
    "Mary",
    "Tony",
    "Ivan",
    "Carol",
    "Whitfield",
];
pub(crate) const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Wilson",
    "van Rossum",
    "Borg",
    "Stroustrup",
    "Lamport",
    "Goldwasser",
    "Wirth",
    "Sammet",
    "Matsumoto",
    "Keller",
    "Hoare",
    "Sutherland",
    "Shaw",
    "Diffie",
];
const COMPANY_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Massive",
    "Oscorp",
    "Aperture",
    "Black Mesa",
    "Gringotts",
    "Monarch",
    "Dunder",
];
const COMPANY_B: &[&str] = &[
    "Corp",
    "Industries",
    "Labs",
    "Systems",
    "Holdings",
    "Logistics",
    "Analytics",
    "Foods",
    "Robotics",
    "Media",
    "Energy",
    "Health",
];
pub(crate) const INDUSTRIES: &[&str] = &[
    "Technology",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Energy",
    "Media",
    "Transportation",
    "Hospitality",
];
pub(crate) const JOB_TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Software Engineer",
    "Staff Engineer",
    "Product Manager",
    "Data Scientist",
    "Site Reliability Engineer",
    "Designer",
    "Account Executive",
    "Recruiter",
    "Engineering Manager",
    "Security Engineer",
    "Solutions Architect",
];
pub(crate) const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Product",
    "Sales",
    "Marketing",
    "People",
    "Finance",
];
pub(crate) const OFFICES: &[&str] = &[
    "San Francisco",
    "New York",
    "London",
    "Berlin",
    "Remote",
    "Toronto",
];

pub(crate) struct Gen {
    rng: StdRng,
}

impl Gen {
    /// A generator for one object kind; `salt` keeps kinds independent.
    pub(crate) fn new(seed: u64, salt: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.gen_range(0..items.len())]
    }

    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        self.rng.gen_range(lo..hi)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    pub(crate) fn company(&mut self) -> String {
        format!("{} {}", self.pick(COMPANY_A), self.pick(COMPANY_B))
    }

    pub(crate) fn person(&mut self) -> (String, String) {
        (
            self.pick(FIRST_NAMES).to_owned(),
            self.pick(LAST_NAMES).to_owned(),
        )
    }

    /// A deterministic UUID.
    pub(crate) fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.gen();
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }

    /// (created, modified) epoch seconds within the year before [`DATA_ANCHOR`].
    pub(crate) fn created_modified(&mut self) -> (i64, i64) {
        let created = DATA_ANCHOR - YEAR + self.range(0, YEAR - 86_400);
        let modified = created + self.range(0, DATA_ANCHOR - created);
        (created, modified)
    }

    pub(crate) fn phone(&mut self) -> String {
        format!("+1 415 555 {:04}", self.range(0, 10_000))
    }
}

pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn dt(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2025-03-01T12:00:00Z` (Greenhouse, HubSpot, Ashby style; HubSpot/Ashby add millis).
pub(crate) fn iso(secs: i64) -> String {
    let d = dt(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// `2025-03-01T12:00:00.000Z`
pub(crate) fn iso_millis(secs: i64) -> String {
    let d = dt(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Salesforce datetime: `2025-03-01T12:00:00.000+0000`.
pub(crate) fn sf_datetime(secs: i64) -> String {
    let d = dt(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000+0000",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// `2025-03-01`
pub(crate) fn date(secs: i64) -> String {
    let d = dt(secs);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD[THH:MM:SS[.fff][Z|±HH:MM|±HHMM]]` to epoch seconds.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let mut secs = date.midnight().assume_utc().unix_timestamp();
    if b.len() == 10 {
        return Some(secs);
    }
    if b[10] != b'T' || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + se;
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &r[n..];
    }
    let offset = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = digits[0..2].parse().ok()?;
            let om: i64 = digits[2..4].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(secs - offset)
}
