//! Checking a parsed SOQL query against the schema, and evaluating it over records.

use std::cmp::Ordering;

use serde_json::Value;

use crate::data::parse_datetime;
use crate::sf_data::{normalise_id, FieldType, ObjectDef, Record};
use crate::soql::{Expr, Lit, Op, OrderKey, Query, Sel, SoqlError};

fn invalid_field(obj: &ObjectDef, field: &str) -> SoqlError {
    SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "No such column '{field}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            obj.name
        ),
    }
}

/// Checks fields exist and literals fit their field types; canonicalises field names.
pub(crate) fn check(q: &mut Query, obj: &ObjectDef) -> Result<(), SoqlError> {
    for s in &mut q.fields {
        if let Sel::Field(f) = s {
            let def = obj.field(f).ok_or_else(|| invalid_field(obj, f))?;
            *f = def.name.to_owned();
        }
    }
    if q.fields.iter().any(|s| matches!(s, Sel::Count)) && q.fields.len() > 1 {
        return Err(SoqlError {
            code: "MALFORMED_QUERY",
            message: "COUNT() must be the only element in the SELECT list.".into(),
        });
    }
    for o in &mut q.order {
        o.field = obj
            .field(&o.field)
            .ok_or_else(|| invalid_field(obj, &o.field))?
            .name
            .to_owned();
    }
    if let Some(e) = &mut q.filter {
        check_expr(e, obj)?;
    }
    Ok(())
}

fn check_expr(e: &mut Expr, obj: &ObjectDef) -> Result<(), SoqlError> {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter_mut().try_for_each(|x| check_expr(x, obj)),
        Expr::Not(x) => check_expr(x, obj),
        Expr::Cmp(f, op, lit) => {
            let def = obj.field(f).ok_or_else(|| invalid_field(obj, f))?;
            *f = def.name.to_owned();
            if *op == Op::Like && !matches!(def.ty, FieldType::Str | FieldType::Id | FieldType::Ref)
            {
                return Err(SoqlError {
                    code: "INVALID_FIELD",
                    message: format!(
                        "invalid operator on {} field: {}",
                        type_name(def.ty),
                        def.name
                    ),
                });
            }
            check_lit(def.name, def.ty, lit)
        }
        Expr::In(f, lits, _) => {
            let def = obj.field(f).ok_or_else(|| invalid_field(obj, f))?;
            *f = def.name.to_owned();
            lits.iter().try_for_each(|l| check_lit(def.name, def.ty, l))
        }
    }
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Id | FieldType::Ref => "id",
        FieldType::Str => "string",
        FieldType::DateTime => "datetime",
        FieldType::Date => "date",
        FieldType::Bool => "boolean",
        FieldType::Num => "double",
    }
}

fn check_lit(field: &str, ty: FieldType, lit: &Lit) -> Result<(), SoqlError> {
    let ok = matches!(
        (ty, lit),
        (_, Lit::Null)
            | (FieldType::Str | FieldType::Id | FieldType::Ref, Lit::Str(_))
            | (FieldType::Num, Lit::Num(_))
            | (FieldType::Bool, Lit::Bool(_))
            | (FieldType::DateTime, Lit::DateTime(_) | Lit::Range(..))
            | (FieldType::Date, Lit::Date(_) | Lit::Range(..))
    );
    if ok {
        return Ok(());
    }
    let message = format!(
        "value of filter criterion for field '{field}' must be of type {} and should not be enclosed in quotes",
        type_name(ty)
    );
    Err(SoqlError {
        code: "INVALID_FIELD",
        message,
    })
}

/// The field's value in the record as a comparable literal.
fn value_of(rec: &Record, field: &str, ty: FieldType) -> Lit {
    match rec.get(field) {
        None | Some(Value::Null) => Lit::Null,
        Some(Value::Bool(b)) => Lit::Bool(*b),
        Some(Value::Number(n)) => Lit::Num(n.as_f64().unwrap_or(0.0)),
        Some(Value::String(s)) => match ty {
            FieldType::DateTime => parse_datetime(s).map(Lit::DateTime).unwrap_or(Lit::Null),
            FieldType::Date => parse_datetime(s).map(Lit::Date).unwrap_or(Lit::Null),
            _ => Lit::Str(s.clone()),
        },
        Some(_) => Lit::Null,
    }
}

fn cmp_lit(a: &Lit, b: &Lit, ty: FieldType) -> Option<Ordering> {
    match (a, b) {
        (Lit::Str(x), Lit::Str(y)) => {
            if matches!(ty, FieldType::Id | FieldType::Ref) {
                let (x, y) = (
                    normalise_id(x).unwrap_or(x.clone()),
                    normalise_id(y).unwrap_or(y.clone()),
                );
                return Some(x.cmp(&y));
            }
            Some(x.to_lowercase().cmp(&y.to_lowercase()))
        }
        (Lit::Num(x), Lit::Num(y)) => x.partial_cmp(y),
        (Lit::Bool(x), Lit::Bool(y)) => Some(x.cmp(y)),
        (Lit::DateTime(x) | Lit::Date(x), Lit::DateTime(y) | Lit::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn like(value: &str, pattern: &str) -> bool {
    fn go(v: &[char], p: &[char]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some('%') => (0..=v.len()).any(|i| go(&v[i..], &p[1..])),
            Some('_') => !v.is_empty() && go(&v[1..], &p[1..]),
            Some(c) => v.first() == Some(c) && go(&v[1..], &p[1..]),
        }
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&v, &p)
}

fn cmp_matches(actual: &Lit, op: Op, lit: &Lit, ty: FieldType) -> bool {
    if let Lit::Range(start, end) = lit {
        let (Lit::DateTime(x) | Lit::Date(x)) = actual else {
            return false;
        };
        return match op {
            Op::Eq => x >= start && x < end,
            Op::Ne => x < start || x >= end,
            Op::Lt => x < start,
            Op::Le => x < end,
            Op::Gt => x >= end,
            Op::Ge => x >= start,
            Op::Like => false,
        };
    }
    match (actual, lit) {
        (Lit::Null, Lit::Null) => return op == Op::Eq,
        (_, Lit::Null) => return op == Op::Ne,
        (Lit::Null, _) => return op == Op::Ne,
        _ => {}
    }
    if op == Op::Like {
        return matches!((actual, lit), (Lit::Str(a), Lit::Str(p)) if like(a, p));
    }
    let Some(o) = cmp_lit(actual, lit, ty) else {
        return false;
    };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Like => false,
    }
}

/// Whether a (checked) filter matches a record.
pub(crate) fn matches(e: &Expr, rec: &Record, obj: &ObjectDef) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|x| matches(x, rec, obj)),
        Expr::Or(v) => v.iter().any(|x| matches(x, rec, obj)),
        Expr::Not(x) => !matches(x, rec, obj),
        Expr::Cmp(f, op, lit) => {
            let ty = obj.field(f).map(|d| d.ty).unwrap_or(FieldType::Str);
            cmp_matches(&value_of(rec, f, ty), *op, lit, ty)
        }
        Expr::In(f, lits, negated) => {
            let ty = obj.field(f).map(|d| d.ty).unwrap_or(FieldType::Str);
            let v = value_of(rec, f, ty);
            let hit = lits.iter().any(|l| cmp_matches(&v, Op::Eq, l, ty));
            hit != *negated
        }
    }
}

/// Sorts records by the ORDER BY keys (nulls first unless NULLS LAST).
pub(crate) fn sort(records: &mut [Record], order: &[OrderKey], obj: &ObjectDef) {
    records.sort_by(|a, b| {
        for k in order {
            let ty = obj.field(&k.field).map(|d| d.ty).unwrap_or(FieldType::Str);
            let (x, y) = (value_of(a, &k.field, ty), value_of(b, &k.field, ty));
            let o = match (&x, &y) {
                (Lit::Null, Lit::Null) => Ordering::Equal,
                (Lit::Null, _) => {
                    if k.nulls_last {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (_, Lit::Null) => {
                    if k.nulls_last {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                _ => {
                    let o = cmp_lit(&x, &y, ty).unwrap_or(Ordering::Equal);
                    if k.asc {
                        o
                    } else {
                        o.reverse()
                    }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}
