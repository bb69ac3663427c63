//! Property: for generated ASTs, `parse(print(ast)) == ast` (spans excluded from equality).

// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_soql::ast::*;
use gatehouse_soql::dates::date_literal_names;
use gatehouse_soql::lexer::escape_string;
use gatehouse_soql::{parse, print};
use proptest::prelude::*;

fn ident(prefix: &'static str) -> impl Strategy<Value = Ident> {
    // A fixed prefix keeps generated names clear of keywords and date literals.
    "[a-z][a-z0-9]{0,5}(__c)?".prop_map(move |s| Ident::new(format!("{prefix}{s}")))
}

fn path() -> impl Strategy<Value = FieldPath> {
    (prop::collection::vec(ident("Rel"), 0..3), ident("Fld")).prop_map(|(mut rels, f)| {
        rels.push(f);
        FieldPath {
            segments: rels,
            span: Span::default(),
        }
    })
}

fn date() -> impl Strategy<Value = Date> {
    (1900u16..2100, 1u8..=12, 1u8..=28).prop_map(|(year, month, day)| Date { year, month, day })
}

fn string_body() -> impl Strategy<Value = String> {
    (any::<String>(), prop::bool::ANY).prop_map(|(s, like_escape)| {
        let s: String = s
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .take(12)
            .collect();
        let mut body = escape_string(&s);
        if like_escape {
            body.push_str("\\%\\_\\u00e9");
        }
        body
    })
}

fn literal() -> impl Strategy<Value = Literal> {
    let number = ("-?[0-9]{1,6}", prop::option::of("[0-9]{1,3}")).prop_map(|(i, f)| match f {
        Some(f) => Literal::Number(format!("{i}.{f}")),
        None => Literal::Number(i),
    });
    let names: Vec<(&'static str, bool)> = date_literal_names().collect();
    let date_lit = (prop::sample::select(names), 0u32..1000).prop_map(|((name, takes_n), n)| {
        Literal::DateLiteral(DateLiteral {
            name,
            n: takes_n.then_some(n),
        })
    });
    let offset = prop_oneof![
        Just(UtcOffset::Z),
        (prop::sample::select(vec![-1i8, 1]), 0u8..=14, 0u8..=59)
            .prop_map(|(s, h, m)| UtcOffset::Offset(s, h, m)),
    ];
    let datetime = (
        date(),
        0u8..24,
        0u8..60,
        0u8..60,
        prop::option::of("[0-9]{1,3}"),
        offset,
    )
        .prop_map(|(date, hour, minute, second, fraction, offset)| {
            Literal::DateTime(DateTime {
                date,
                hour,
                minute,
                second,
                fraction,
                offset,
            })
        });
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        number,
        string_body().prop_map(Literal::String),
        date().prop_map(Literal::Date),
        datetime,
        date_lit,
        ("[A-Z]{3}", "[0-9]{1,5}(\\.[0-9]{1,2})?")
            .prop_map(|(code, amount)| Literal::Currency { code, amount }),
    ]
}

fn lit_span(l: Literal) -> (Literal, Span) {
    (l, Span::default())
}

fn comparison() -> impl Strategy<Value = Condition> {
    let lhs = prop_oneof![
        4 => path().prop_map(Expr::Field),
        1 => path().prop_map(|p| Expr::Call(Call { func: Func::CalendarYear, args: vec![Expr::Field(p)], span: Span::default() })),
    ];
    let simple_op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    let rhs_and_op = prop_oneof![
        (simple_op, literal()).prop_map(|(op, l)| (op, Rhs::Value(l, Span::default()))),
        string_body().prop_map(|s| (
            CompareOp::Like,
            Rhs::Value(Literal::String(s), Span::default())
        )),
        (
            prop::sample::select(vec![CompareOp::In, CompareOp::NotIn]),
            prop::collection::vec(literal(), 1..4)
        )
            .prop_map(|(op, v)| (
                op,
                Rhs::List(v.into_iter().map(lit_span).collect(), Span::default())
            )),
        (
            prop::sample::select(vec![CompareOp::Includes, CompareOp::Excludes]),
            prop::collection::vec(string_body(), 1..3)
        )
            .prop_map(|(op, v)| (
                op,
                Rhs::List(
                    v.into_iter()
                        .map(|s| lit_span(Literal::String(s)))
                        .collect(),
                    Span::default()
                )
            )),
    ];
    (lhs, rhs_and_op).prop_map(|(lhs, (op, rhs))| {
        Condition::Compare(Comparison {
            lhs,
            op,
            rhs,
            span: Span::default(),
        })
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    comparison().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| Condition::And(v, Span::default())),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| Condition::Or(v, Span::default())),
            inner.prop_map(|c| Condition::Not(Box::new(c), Span::default())),
        ]
    })
}

fn count() -> impl Strategy<Value = Option<Count>> {
    prop::option::of((0u64..100_000).prop_map(|v| Count::Value(v, Span::default())))
}

fn base_query(select: Vec<SelectItem>, object: Ident) -> Query {
    Query {
        select,
        from: From {
            object,
            parent: None,
            alias: None,
            related: Vec::new(),
        },
        using_scope: None,
        where_clause: None,
        with: None,
        group_by: None,
        having: None,
        order_by: Vec::new(),
        limit: None,
        offset: None,
        all_rows: false,
        for_clause: None,
        update: None,
        span: Span::default(),
        all_rows_span: Span::default(),
        for_span: Span::default(),
        limit_insert_at: Span::default(),
    }
}

/// Distinct plain fields (Salesforce rejects duplicates).
fn dedup(paths: Vec<FieldPath>) -> Vec<FieldPath> {
    let mut seen = Vec::new();
    paths
        .into_iter()
        .filter(|p| {
            let k = p.dotted().to_ascii_lowercase();
            let fresh = !seen.contains(&k);
            seen.push(k);
            fresh
        })
        .collect()
}

fn order_items() -> impl Strategy<Value = Vec<OrderItem>> {
    prop::collection::vec(
        (
            path(),
            prop::option::of(prop::sample::select(vec![Direction::Asc, Direction::Desc])),
            prop::option::of(prop::sample::select(vec![Nulls::First, Nulls::Last])),
        )
            .prop_map(|(p, direction, nulls)| OrderItem {
                expr: Expr::Field(p),
                direction,
                nulls,
            }),
        0..3,
    )
}

fn child_query() -> impl Strategy<Value = Query> {
    (
        prop::collection::vec(path(), 1..3),
        ident("Kids"),
        prop::option::of(ident("Par")),
        prop::option::of(condition()),
        order_items(),
        count(),
    )
        .prop_map(|(fields, object, parent, where_clause, order_by, limit)| {
            let select = dedup(fields)
                .into_iter()
                .map(|p| SelectItem::Expr {
                    expr: Expr::Field(p),
                    alias: None,
                })
                .collect();
            let mut q = base_query(select, object);
            q.from.parent = parent;
            q.where_clause = where_clause;
            q.order_by = order_by;
            q.limit = limit;
            q
        })
}

fn semi_join() -> impl Strategy<Value = Condition> {
    (
        path(),
        ident("Fk"),
        ident("Obj"),
        prop::option::of(comparison()),
        any::<bool>(),
    )
        .prop_map(|(lhs, field, object, where_clause, anti)| {
            let select = vec![SelectItem::Expr {
                expr: Expr::Field(FieldPath {
                    segments: vec![field],
                    span: Span::default(),
                }),
                alias: None,
            }];
            let mut sub = base_query(select, object);
            sub.where_clause = where_clause;
            Condition::Compare(Comparison {
                lhs: Expr::Field(lhs),
                op: if anti {
                    CompareOp::NotIn
                } else {
                    CompareOp::In
                },
                rhs: Rhs::SubQuery(Box::new(sub)),
                span: Span::default(),
            })
        })
}

fn select_extra() -> impl Strategy<Value = SelectItem> {
    prop_oneof![
        (path(), ident("alias")).prop_map(|(p, a)| SelectItem::Expr {
            expr: Expr::Call(Call {
                func: Func::ToLabel,
                args: vec![Expr::Field(p)],
                span: Span::default()
            }),
            alias: Some(a),
        }),
        prop::sample::select(vec![
            FieldsKind::All,
            FieldsKind::Standard,
            FieldsKind::Custom
        ])
        .prop_map(|kind| SelectItem::Fields {
            kind,
            span: Span::default()
        }),
        child_query().prop_map(|q| SelectItem::SubQuery(Box::new(q))),
        (
            ident("Poly"),
            prop::collection::vec((ident("Obj"), prop::collection::vec(path(), 1..3)), 1..3),
            prop::collection::vec(path(), 0..2)
        )
            .prop_map(
                |(relationship, whens, else_fields)| SelectItem::TypeOf(TypeOf {
                    relationship,
                    whens: whens
                        .into_iter()
                        .map(|(object, fields)| TypeOfWhen { object, fields })
                        .collect(),
                    else_fields,
                    span: Span::default(),
                })
            ),
    ]
}

fn with_clause() -> impl Strategy<Value = WithClause> {
    let filter = (
        ident("Grp"),
        prop::sample::select(vec![
            DataCategoryOp::At,
            DataCategoryOp::Above,
            DataCategoryOp::Below,
            DataCategoryOp::AboveOrBelow,
        ]),
        prop::collection::vec(ident("cat"), 1..3),
    )
        .prop_map(|(group, op, categories)| DataCategoryFilter {
            group,
            op,
            categories,
        });
    prop_oneof![
        Just(WithClause::SecurityEnforced),
        Just(WithClause::UserMode),
        Just(WithClause::SystemMode),
        prop::collection::vec(filter, 1..3).prop_map(WithClause::DataCategory),
        "[0-9A-Za-z]{15}".prop_map(WithClause::UserId),
        prop::collection::vec(
            (
                ident("param"),
                prop_oneof![
                    any::<bool>().prop_map(Literal::Bool),
                    (0u32..1000).prop_map(|n| Literal::Number(n.to_string()))
                ]
            ),
            1..3
        )
        .prop_map(|v| WithClause::RecordVisibilityContext(
            v.into_iter()
                .map(|(name, value)| VisibilityParam { name, value })
                .collect()
        )),
    ]
}

fn plain_query() -> impl Strategy<Value = Query> {
    (
        (
            prop::collection::vec(path(), 1..4),
            prop::collection::vec(select_extra(), 0..3),
            ident("Obj"),
            prop::option::of(ident("als")),
            prop::collection::vec((ident("Rel"), prop::option::of(ident("ra"))), 0..3),
        ),
        (
            prop::option::of(prop::sample::select(vec![
                "Mine",
                "Everything",
                "Team",
                "Delegated",
                "my_territory",
                "scopingRule",
                "mine_and_my_groups",
            ])),
            prop::option::of(condition()),
            prop::option::of(semi_join()),
        ),
        (
            prop::option::of(with_clause()),
            order_items(),
            count(),
            count(),
        ),
        (
            prop::option::of(prop::sample::select(vec![
                ForClause::View,
                ForClause::Reference,
                ForClause::Update,
            ])),
            prop::option::of(prop::sample::select(vec![
                UpdateClause::Tracking,
                UpdateClause::Viewstat,
            ])),
        ),
    )
        .prop_map(
            |(
                (fields, extra, object, alias, related),
                (scope, cond, semi),
                (with, order_by, limit, offset),
                (for_clause, update),
            )| {
                let mut select: Vec<SelectItem> = dedup(fields)
                    .into_iter()
                    .map(|p| SelectItem::Expr {
                        expr: Expr::Field(p),
                        alias: None,
                    })
                    .collect();
                select.extend(extra);
                // Related FROM paths start with the alias, or the object name without one.
                let head = alias.clone().unwrap_or_else(|| object.clone());
                let related = related
                    .into_iter()
                    .map(|(rel, alias)| RelatedFrom {
                        path: FieldPath {
                            segments: vec![head.clone(), rel],
                            span: Span::default(),
                        },
                        alias,
                    })
                    .collect();
                let mut q = base_query(select, object);
                q.from.alias = alias;
                q.from.related = related;
                q.using_scope = scope.map(Ident::new);
                q.where_clause = match (cond, semi) {
                    (Some(c), Some(s)) => Some(Condition::And(vec![c, s], Span::default())),
                    (c, s) => c.or(s),
                };
                q.with = with;
                q.order_by = order_by;
                q.limit = limit;
                q.offset = offset;
                q.for_clause = for_clause;
                q.update = update;
                q
            },
        )
}

fn aggregate_query() -> impl Strategy<Value = Query> {
    let agg = prop::sample::select(vec![
        Func::Count,
        Func::Sum,
        Func::Avg,
        Func::Min,
        Func::Max,
        Func::CountDistinct,
    ]);
    (
        prop::collection::vec((path(), prop::option::of(ident("gal"))), 1..3),
        prop::collection::vec((agg, path(), prop::option::of(ident("ag"))), 1..3),
        ident("Obj"),
        prop::sample::select(vec![0u8, 1, 2]),
        prop::option::of(comparison()),
        count(),
    )
        .prop_map(|(groups, aggs, object, kind, having, limit)| {
            let (paths, aliases): (Vec<FieldPath>, Vec<Option<Ident>>) = groups.into_iter().unzip();
            let groups = dedup(paths);
            // Plain fields may carry an alias in an aggregate query.
            let mut select: Vec<SelectItem> = groups
                .iter()
                .zip(aliases)
                .map(|(p, alias)| SelectItem::Expr {
                    expr: Expr::Field(p.clone()),
                    alias,
                })
                .collect();
            for (func, p, alias) in aggs {
                select.push(SelectItem::Expr {
                    expr: Expr::Call(Call {
                        func,
                        args: vec![Expr::Field(p)],
                        span: Span::default(),
                    }),
                    alias,
                });
            }
            let exprs: Vec<Expr> = groups.into_iter().map(Expr::Field).collect();
            let mut q = base_query(select, object);
            q.group_by = Some(match kind {
                0 => GroupBy::Plain(exprs),
                1 => GroupBy::Rollup(exprs),
                _ => GroupBy::Cube(exprs),
            });
            q.having = having;
            q.limit = limit;
            q
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn print_then_parse_is_identity(q in prop_oneof![3 => plain_query(), 1 => aggregate_query()]) {
        let text = print(&q);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(&parsed, &q, "printed: {}", text);
    }
}
