//! Salesforce schema (Account, Contact, Opportunity, User) and the seeded record store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use crate::data::{date, sf_datetime, slug, Gen, INDUSTRIES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    Str,
    DateTime,
    Date,
    Bool,
    Num,
    Ref,
}

pub(crate) struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub indexed: bool,
}

pub(crate) struct ObjectDef {
    pub name: &'static str,
    pub prefix: &'static str,
    pub fields: &'static [FieldDef],
    pub required: &'static [&'static str],
}

impl ObjectDef {
    pub(crate) fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const fn f(name: &'static str, ty: FieldType, indexed: bool) -> FieldDef {
    FieldDef { name, ty, indexed }
}

use FieldType::*;

static ACCOUNT: &[FieldDef] = &[
    f("Id", Id, true),
    f("Name", Str, true),
    f("Website", Str, false),
    f("Industry", Str, false),
    f("OwnerId", Ref, true),
    f("ParentId", Ref, true),
    f("NumberOfEmployees", Num, false),
    f("AnnualRevenue", Num, false),
    f("BillingCountry", Str, false),
    f("CreatedDate", DateTime, true),
    f("LastModifiedDate", DateTime, false),
    f("SystemModstamp", DateTime, true),
    f("IsDeleted", Bool, false),
];
static CONTACT: &[FieldDef] = &[
    f("Id", Id, true),
    f("FirstName", Str, false),
    f("LastName", Str, false),
    f("Name", Str, true),
    f("Email", Str, true),
    f("Phone", Str, false),
    f("Title", Str, false),
    f("AccountId", Ref, true),
    f("OwnerId", Ref, true),
    f("CreatedDate", DateTime, true),
    f("LastModifiedDate", DateTime, false),
    f("SystemModstamp", DateTime, true),
    f("IsDeleted", Bool, false),
];
static OPPORTUNITY: &[FieldDef] = &[
    f("Id", Id, true),
    f("Name", Str, true),
    f("StageName", Str, false),
    f("Amount", Num, false),
    f("CloseDate", Date, false),
    f("AccountId", Ref, true),
    f("OwnerId", Ref, true),
    f("IsClosed", Bool, false),
    f("IsWon", Bool, false),
    f("CreatedDate", DateTime, true),
    f("LastModifiedDate", DateTime, false),
    f("SystemModstamp", DateTime, true),
    f("IsDeleted", Bool, false),
];
static USER: &[FieldDef] = &[
    f("Id", Id, true),
    f("Username", Str, true),
    f("Name", Str, true),
    f("Email", Str, true),
    f("IsActive", Bool, false),
    f("CreatedDate", DateTime, true),
    f("LastModifiedDate", DateTime, false),
    f("SystemModstamp", DateTime, true),
    f("IsDeleted", Bool, false),
];

pub(crate) static OBJECTS: &[ObjectDef] = &[
    ObjectDef {
        name: "Account",
        prefix: "001",
        fields: ACCOUNT,
        required: &["Name"],
    },
    ObjectDef {
        name: "Contact",
        prefix: "003",
        fields: CONTACT,
        required: &["LastName"],
    },
    ObjectDef {
        name: "Opportunity",
        prefix: "006",
        fields: OPPORTUNITY,
        required: &["Name", "StageName", "CloseDate"],
    },
    ObjectDef {
        name: "User",
        prefix: "005",
        fields: USER,
        required: &["Username"],
    },
];

pub(crate) fn object(name: &str) -> Option<&'static ObjectDef> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An 18-character Salesforce Id: 3-char key prefix, pod `5g`, `0`, 9 base-62 digits, and the
/// case-safe 3-character checksum suffix.
pub(crate) fn sf_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut x = n;
    for d in digits.iter_mut().rev() {
        *d = B62[(x % 62) as usize];
        x /= 62;
    }
    let id15 = format!("{prefix}5g0{}", String::from_utf8_lossy(&digits));
    to_18(&id15)
}

/// Adds the checksum suffix to a 15-char Id.
pub(crate) fn to_18(id15: &str) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut suffix = String::new();
    for chunk in bytes.chunks(5) {
        let mut flags = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                flags |= 1 << i;
            }
        }
        suffix.push(ALPHA[flags] as char);
    }
    format!("{id15}{suffix}")
}

pub(crate) type Record = Map<String, Value>;

/// All records, by object name. Deleted records stay (IsDeleted = true) for `queryAll`.
pub(crate) struct Store {
    pub records: RwLock<HashMap<&'static str, Vec<Record>>>,
    next_id: AtomicU64,
}

const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];
const COUNTRIES: &[&str] = &[
    "United States",
    "United Kingdom",
    "Germany",
    "France",
    "Canada",
    "Japan",
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "VP Sales",
    "Director of IT",
    "Engineer",
    "Buyer",
    "Analyst",
];

fn stamp(r: &mut Record, g: &mut Gen) {
    let (created, modified) = g.created_modified();
    r.insert("CreatedDate".into(), json!(sf_datetime(created)));
    r.insert("LastModifiedDate".into(), json!(sf_datetime(modified)));
    // System updates can touch SystemModstamp after LastModifiedDate.
    let sys = if g.chance(0.1) {
        modified + g.range(0, 86_400)
    } else {
        modified
    };
    r.insert("SystemModstamp".into(), json!(sf_datetime(sys)));
    r.insert("IsDeleted".into(), json!(g.chance(0.02)));
}

impl Store {
    pub(crate) fn generate(seed: u64, count: usize) -> Self {
        let mut g = Gen::new(seed, 1);
        let users: Vec<Record> = (0..8u64)
            .map(|i| {
                let (first, last) = g.person();
                let mut r = Record::new();
                r.insert("Id".into(), json!(sf_id("005", 1000 + i)));
                let uname = format!("{}.{}@example.com", slug(&first), slug(&last));
                r.insert("Username".into(), json!(uname));
                r.insert("Name".into(), json!(format!("{first} {last}")));
                r.insert("Email".into(), json!(uname));
                r.insert("IsActive".into(), json!(i != 7));
                stamp(&mut r, &mut g);
                r.insert("IsDeleted".into(), json!(false));
                r
            })
            .collect();
        let user_ids: Vec<String> = users
            .iter()
            .map(|u| u["Id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let owner = |g: &mut Gen| user_ids[g.range(0, user_ids.len() as i64) as usize].clone();
        let mut accounts = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let name = g.company();
            let mut r = Record::new();
            r.insert("Id".into(), json!(sf_id("001", i + 1)));
            r.insert("Name".into(), json!(name));
            r.insert(
                "Website".into(),
                json!(format!("https://www.{}.example.com", slug(&name))),
            );
            r.insert("Industry".into(), json!(g.pick(INDUSTRIES)));
            r.insert("OwnerId".into(), json!(owner(&mut g)));
            let parent =
                (i > 10 && g.chance(0.15)).then(|| sf_id("001", g.range(1, i as i64) as u64));
            r.insert("ParentId".into(), json!(parent));
            r.insert("NumberOfEmployees".into(), json!(g.range(5, 50_000)));
            r.insert("AnnualRevenue".into(), json!(g.range(100, 500_000) * 1000));
            r.insert("BillingCountry".into(), json!(g.pick(COUNTRIES)));
            stamp(&mut r, &mut g);
            accounts.push(r);
        }
        let account_id = |g: &mut Gen| sf_id("001", g.range(1, count.max(1) as i64 + 1) as u64);
        let mut contacts = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let (first, last) = g.person();
            let mut r = Record::new();
            r.insert("Id".into(), json!(sf_id("003", i + 1)));
            r.insert("FirstName".into(), json!(first));
            r.insert("LastName".into(), json!(last));
            r.insert("Name".into(), json!(format!("{first} {last}")));
            r.insert(
                "Email".into(),
                json!(format!("{}.{}{}@example.com", slug(&first), slug(&last), i)),
            );
            r.insert("Phone".into(), json!(g.phone()));
            r.insert("Title".into(), json!(g.pick(TITLES)));
            r.insert("AccountId".into(), json!(account_id(&mut g)));
            r.insert("OwnerId".into(), json!(owner(&mut g)));
            stamp(&mut r, &mut g);
            contacts.push(r);
        }
        let mut opps = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let stage = g.pick(STAGES);
            let mut r = Record::new();
            r.insert("Id".into(), json!(sf_id("006", i + 1)));
            r.insert(
                "Name".into(),
                json!(format!(
                    "{} - {}",
                    g.company(),
                    g.pick(&["Renewal", "Expansion", "New Business", "Upsell"])
                )),
            );
            r.insert("StageName".into(), json!(stage));
            r.insert("Amount".into(), json!(g.range(1, 500) * 1000));
            stamp(&mut r, &mut g);
            let created = r["CreatedDate"]
                .as_str()
                .and_then(crate::data::parse_datetime)
                .unwrap_or(0);
            r.insert(
                "CloseDate".into(),
                json!(date(created + g.range(7, 180) * 86_400)),
            );
            r.insert("AccountId".into(), json!(account_id(&mut g)));
            r.insert("OwnerId".into(), json!(owner(&mut g)));
            r.insert("IsClosed".into(), json!(stage.starts_with("Closed")));
            r.insert("IsWon".into(), json!(stage == "Closed Won"));
            opps.push(r);
        }
        let mut records = HashMap::new();
        records.insert("User", users);
        records.insert("Account", accounts);
        records.insert("Contact", contacts);
        records.insert("Opportunity", opps);
        Self {
            records: RwLock::new(records),
            next_id: AtomicU64::new(10_000_000),
        }
    }

    pub(crate) fn new_id(&self, obj: &ObjectDef) -> String {
        sf_id(obj.prefix, self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Finds a record by 15- or 18-char Id (any object with the Id's prefix).
    pub(crate) fn get(&self, obj: &ObjectDef, id: &str) -> Option<Record> {
        let id18 = normalise_id(id)?;
        let recs = self.records.read();
        recs.get(obj.name)?
            .iter()
            .find(|r| r["Id"].as_str() == Some(id18.as_str()))
            .cloned()
    }
}

/// 15 → 18 chars; 18 kept; anything else `None`.
pub(crate) fn normalise_id(id: &str) -> Option<String> {
    if !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(to_18(id)),
        18 => Some(to_18(&id[..15])),
        _ => None,
    }
}
