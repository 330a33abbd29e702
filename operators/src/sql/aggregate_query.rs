//! `AggregateQuery`: the parsed form of a windowed aggregate declared as SQL.
//!
//! The syntax follows Flink SQL's group-window functions (also what Arroyo and RisingWave
//! users write, modulo argument order):
//!
//! ```sql
//! SELECT card_id, avg(amount) AS avg_amount_1h, count(*) AS n_tx_1h
//! FROM events
//! GROUP BY card_id, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')
//! ```
//!
//! - `GROUP BY` names exactly one key column and one window: `TUMBLE(time, size)` or
//!   `HOP(time, slide, size)` (Flink's order: slide, then size), where `time` is the pipeline's
//!   event-time column and `size` a whole multiple of `slide`.
//! - Intervals: `INTERVAL '90 seconds'`, `INTERVAL '1 hour 30 minutes'` or `INTERVAL '5' MINUTE`;
//!   units millisecond, second, minute, hour, day (singular, plural or `ms`/`s`/`m`/`h`/`d`).
//! - Aggregates over one column: `count(*)`, `count(col)` (non-null values), `sum`, `avg`,
//!   `min`, `max`, `stddev` (sample standard deviation). Each output is named with `AS`, or
//!   gets `<function>_<column>` (`count` for `count(*)`). Selecting the key column itself is
//!   allowed and adds nothing.
//! - No `WHERE`, `HAVING`, joins or ordering: filter events in `features.sql`, which runs first
//!   and whose outputs these queries read.
//!
//! Unquoted identifiers are folded to lower case, as in `features.sql`.

use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query,
    SelectItem, SetExpr, Spanned, Statement, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::{Deserialize, Serialize};

use super::error::SqlError;

/// Most panes one window may span (`size / slide`): bounds the work per event.
pub const MAX_PANES: i64 = 10_000;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    /// Rows (`count(*)`) or non-null values (`count(col)`); 0 over an empty window.
    Count,
    /// Sum of the values; null over an empty window.
    Sum,
    /// Mean of the values; null over an empty window.
    Avg,
    /// Smallest value; null over an empty window.
    Min,
    /// Largest value; null over an empty window.
    Max,
    /// Sample standard deviation; null with fewer than two values.
    Stddev,
}

impl AggregateFunction {
    /// Every function, with the names it is written as (the first is canonical).
    pub const ALL: &'static [(AggregateFunction, &'static [&'static str])] = &[
        (AggregateFunction::Count, &["count"]),
        (AggregateFunction::Sum, &["sum"]),
        (AggregateFunction::Avg, &["avg", "mean"]),
        (AggregateFunction::Min, &["min"]),
        (AggregateFunction::Max, &["max"]),
        (AggregateFunction::Stddev, &["stddev", "stddev_samp"]),
    ];

    /// The canonical name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(f, _)| *f == self).map(|(_, n)| n[0]).unwrap_or("count")
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, names)| names.contains(&name)).map(|(f, _)| *f)
    }
}

/// One aggregate output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateOutput {
    /// Output (feature) name.
    pub name: String,
    /// The function.
    pub function: AggregateFunction,
    /// The input column; `None` for `count(*)`.
    pub column: Option<String>,
}

/// Tumbling or hopping window on event time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Pane width: how far a hopping window moves (equal to `size` for tumbling windows).
    pub slide_ms: i64,
    /// Window length, a whole multiple of `slide_ms`.
    pub size_ms: i64,
}

impl WindowSpec {
    /// Panes per window.
    pub fn panes(&self) -> i64 {
        self.size_ms / self.slide_ms
    }
}

/// A parsed windowed aggregate. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateQuery {
    /// The group-by key column.
    pub key: String,
    /// The window.
    pub window: WindowSpec,
    /// Outputs, in SELECT order.
    pub outputs: Vec<AggregateOutput>,
}

impl AggregateQuery {
    /// Parses `sql`; `time` is the pipeline's event-time column, the only one a window may be
    /// on.
    ///
    /// # Errors
    /// A [`SqlError`] at the offending token for anything outside the syntax above.
    pub fn parse(sql: &str, time: &str) -> Result<Self, SqlError> {
        let statements =
            Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| SqlError::from_message(&e.to_string()))?;
        let [Statement::Query(query)] = statements.as_slice() else {
            return Err(SqlError::new(
                "expected one `SELECT ... FROM events GROUP BY key, TUMBLE(..)|HOP(..)` statement",
            ));
        };
        let Query { with, body, order_by, limit_clause, .. } = query.as_ref();
        if with.is_some() || order_by.is_some() || limit_clause.is_some() {
            return Err(SqlError::at_span(
                query.span(),
                "WITH, ORDER BY and LIMIT are not allowed in a windowed aggregate",
            ));
        }
        let SetExpr::Select(select) = body.as_ref() else {
            return Err(SqlError::at_span(body.span(), "expected a SELECT"));
        };
        match select.from.as_slice() {
            [t] if t.joins.is_empty() => match &t.relation {
                TableFactor::Table { name, .. } if name.to_string().eq_ignore_ascii_case("events") => {}
                other => {
                    return Err(SqlError::at_span(other.span(), "a windowed aggregate reads FROM events"))
                }
            },
            _ => {
                return Err(SqlError::at_span(
                    select.span(),
                    "a windowed aggregate reads FROM events (one table, no joins)",
                ))
            }
        }
        if let Some(w) = &select.selection {
            return Err(SqlError::at_span(
                w.span(),
                "WHERE is not allowed in a windowed aggregate: filter events in features.sql, which runs first",
            ));
        }
        if let Some(h) = &select.having {
            return Err(SqlError::at_span(h.span(), "HAVING is not allowed in a windowed aggregate"));
        }
        if select.distinct.is_some() {
            return Err(SqlError::at_span(select.span(), "DISTINCT is not allowed in a windowed aggregate"));
        }
        let GroupByExpr::Expressions(groups, _) = &select.group_by else {
            return Err(SqlError::at_span(select.span(), "expected GROUP BY <key>, TUMBLE(..) or HOP(..)"));
        };
        let mut key = None;
        let mut window = None;
        for g in groups {
            match g {
                Expr::Identifier(id) if key.is_none() => key = Some(ident(id)),
                Expr::Function(f) if window.is_none() => window = Some(parse_window(f, time)?),
                other => {
                    return Err(SqlError::at_span(
                        other.span(),
                        format!("unexpected GROUP BY item `{other}`: group by one key column and one TUMBLE(..) or HOP(..) window"),
                    ))
                }
            }
        }
        let (Some(key), Some(window)) = (key, window) else {
            return Err(SqlError::at_span(
                select.span(),
                "GROUP BY needs one key column and one window, e.g. GROUP BY card_id, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')",
            ));
        };
        let mut outputs: Vec<AggregateOutput> = Vec::new();
        for item in &select.projection {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(ident(alias))),
                other => {
                    return Err(SqlError::at_span(
                        other.span(),
                        "select the key and aggregate functions only",
                    ))
                }
            };
            if let Expr::Identifier(id) = expr {
                if ident(id) == key && alias.is_none() {
                    continue;
                }
                return Err(SqlError::at_span(
                    expr.span(),
                    format!("`{id}` is neither the key nor an aggregate"),
                ));
            }
            let output = parse_aggregate(expr, alias)?;
            if output.name == key || output.name == time || outputs.iter().any(|o| o.name == output.name) {
                return Err(SqlError::at_span(
                    expr.span(),
                    format!("output name `{}` is already used; name it with AS", output.name),
                ));
            }
            outputs.push(output);
        }
        if outputs.is_empty() {
            return Err(SqlError::at_span(
                select.span(),
                "select at least one aggregate, e.g. avg(amount) AS avg_amount",
            ));
        }
        Ok(AggregateQuery { key, window, outputs })
    }

    /// The distinct input columns the outputs read, in first-use order.
    pub fn input_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for c in self.outputs.iter().filter_map(|o| o.column.as_ref()) {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
        cols
    }
}

fn ident(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

fn parse_window(f: &datafusion::sql::sqlparser::ast::Function, time: &str) -> Result<WindowSpec, SqlError> {
    let name = f.name.to_string().to_lowercase();
    let args = match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                other => {
                    Err(SqlError::at_span(other.span(), "window arguments are the time column and intervals"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let span = f.span();
    let expect = |n: usize| -> Result<(), SqlError> {
        if args.len() != n {
            return Err(SqlError::at_span(
                span,
                match n {
                    2 => format!("TUMBLE takes (time, size), got {} argument(s)", args.len()),
                    _ => format!("HOP takes (time, slide, size), got {} argument(s)", args.len()),
                },
            ));
        }
        Ok(())
    };
    match name.as_str() {
        "tumble" => expect(2)?,
        "hop" => expect(3)?,
        other => {
            return Err(SqlError::at_span(
                span,
                format!("unknown window `{other}`: use TUMBLE(time, size) or HOP(time, slide, size)"),
            ))
        }
    }
    match args[0] {
        Expr::Identifier(id) if ident(id) == time => {}
        other => {
            return Err(SqlError::at_span(
                other.span(),
                format!("windows are on the event time: the first argument must be `{time}`, got `{other}`"),
            ))
        }
    }
    let spec = if name == "tumble" {
        let size = interval_ms(args[1])?;
        WindowSpec { slide_ms: size, size_ms: size }
    } else {
        WindowSpec { slide_ms: interval_ms(args[1])?, size_ms: interval_ms(args[2])? }
    };
    if spec.size_ms % spec.slide_ms != 0 {
        return Err(SqlError::at_span(
            span,
            format!(
                "the window size ({} ms) must be a whole multiple of the slide ({} ms)",
                spec.size_ms, spec.slide_ms
            ),
        ));
    }
    if spec.panes() > MAX_PANES {
        return Err(SqlError::at_span(
            span,
            format!("a window may span at most {MAX_PANES} slides; got {} (use a wider slide)", spec.panes()),
        ));
    }
    Ok(spec)
}

/// Milliseconds of an `INTERVAL` literal (see the module docs).
fn interval_ms(e: &Expr) -> Result<i64, SqlError> {
    let bad = |msg: String| SqlError::at_span(e.span(), msg);
    let Expr::Interval(i) = e else {
        return Err(bad(format!("expected an INTERVAL, e.g. INTERVAL '1 hour', got `{e}`")));
    };
    let text = match i.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.to_string(),
            other => return Err(bad(format!("unreadable interval value {other}"))),
        },
        other => return Err(bad(format!("unreadable interval value {other}"))),
    };
    let text = match &i.leading_field {
        Some(field) => format!(
            "{text} {}",
            field_unit(field).ok_or_else(|| bad(format!("unsupported interval unit {field}")))?
        ),
        None => text,
    };
    let ms = parse_duration(&text).map_err(|e| bad(e.0))?;
    if ms <= 0 {
        return Err(bad(format!("interval `{text}` must be longer than 0")));
    }
    Ok(ms)
}

fn field_unit(f: &DateTimeField) -> Option<&'static str> {
    Some(match f {
        DateTimeField::Millisecond | DateTimeField::Milliseconds => "ms",
        DateTimeField::Second | DateTimeField::Seconds => "s",
        DateTimeField::Minute | DateTimeField::Minutes => "m",
        DateTimeField::Hour | DateTimeField::Hours => "h",
        DateTimeField::Day | DateTimeField::Days => "d",
        _ => return None,
    })
}

/// An interval text that is not `<number> <unit>` pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct IntervalError(String);

/// `"1 hour 30 minutes"` → milliseconds.
fn parse_duration(text: &str) -> Result<i64, IntervalError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(IntervalError(format!(
            "cannot read interval `{text}`: write `<number> <unit>`, e.g. '1 hour' or '90 seconds'"
        )));
    }
    let mut total: i64 = 0;
    for pair in words.chunks(2) {
        let n: i64 = pair[0].parse().map_err(|_| {
            IntervalError(format!("`{}` in interval `{text}` is not a whole number", pair[0]))
        })?;
        let unit: i64 = match pair[1].to_lowercase().as_str() {
            "ms" | "millisecond" | "milliseconds" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            other => {
                return Err(IntervalError(format!(
                "unknown unit `{other}` in interval `{text}` (use millisecond, second, minute, hour or day)"
            )))
            }
        };
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| IntervalError(format!("interval `{text}` is too long")))?;
    }
    Ok(total)
}

fn parse_aggregate(expr: &Expr, alias: Option<String>) -> Result<AggregateOutput, SqlError> {
    let Expr::Function(f) = expr else {
        return Err(SqlError::at_span(
            expr.span(),
            format!("`{expr}` is not an aggregate; use count, sum, avg, min, max or stddev over one column"),
        ));
    };
    let fname = f.name.to_string().to_lowercase();
    let function = AggregateFunction::from_name(&fname).ok_or_else(|| {
        let names: Vec<&str> = AggregateFunction::ALL.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        SqlError::at_span(f.span(), format!("unknown aggregate `{fname}`; supported: {}", names.join(", ")))
    })?;
    if f.over.is_some() || f.filter.is_some() {
        return Err(SqlError::at_span(f.span(), "OVER and FILTER are not supported in a windowed aggregate"));
    }
    let args: Vec<&FunctionArg> = match &f.args {
        FunctionArguments::List(l) => {
            if l.duplicate_treatment.is_some() {
                return Err(SqlError::at_span(f.span(), "DISTINCT aggregates are not supported"));
            }
            l.args.iter().collect()
        }
        _ => Vec::new(),
    };
    let column = match args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if function == AggregateFunction::Count => None,
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(id)))] => Some(ident(id)),
        _ => {
            return Err(SqlError::at_span(
                f.span(),
                format!(
                    "{fname} takes one column{}",
                    if function == AggregateFunction::Count { " or *" } else { "" }
                ),
            ))
        }
    };
    let name = alias.unwrap_or_else(|| match &column {
        Some(c) => format!("{}_{c}", function.name()),
        None => "count".into(),
    });
    Ok(AggregateOutput { name, function, column })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hop_and_tumble() {
        let q = AggregateQuery::parse(
            "SELECT card_id, avg(amount) AS avg_amount_1h, count(*) AS n_tx_1h, MAX(Amount) FROM events GROUP BY card_id, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')",
            "ts",
        )
        .unwrap();
        assert_eq!(q.key, "card_id");
        assert_eq!(q.window, WindowSpec { slide_ms: 60_000, size_ms: 3_600_000 });
        assert_eq!(q.outputs.len(), 3);
        assert_eq!(q.outputs[2].name, "max_amount");
        assert_eq!(q.outputs[1].column, None);
        assert_eq!(q.input_columns(), ["amount"]);
        let q = AggregateQuery::parse(
            "SELECT sum(x) AS s FROM events GROUP BY TUMBLE(ts, INTERVAL '5' MINUTE), k",
            "ts",
        )
        .unwrap();
        assert_eq!(q.window, WindowSpec { slide_ms: 300_000, size_ms: 300_000 });
        assert_eq!(q.key, "k");
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = AggregateQuery::parse(
            "SELECT median(x) FROM events GROUP BY k, TUMBLE(ts, INTERVAL '1 hour')",
            "ts",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (1, 8), "{e}");
        assert!(e.message.contains("median"), "{e}");
        let e = AggregateQuery::parse(
            "SELECT avg(x)\nFROM events\nGROUP BY k, HOP(ts, INTERVAL '7 minutes', INTERVAL '1 hour')",
            "ts",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("multiple"), "{e}");
        let e = AggregateQuery::parse(
            "SELECT avg(x) FROM events GROUP BY k, TUMBLE(other, INTERVAL '1 hour')",
            "ts",
        )
        .unwrap_err();
        assert!(e.message.contains("event time"), "{e}");
        let e = AggregateQuery::parse(
            "SELECT avg(x) FROM events WHERE x > 1 GROUP BY k, TUMBLE(ts, INTERVAL '1 hour')",
            "ts",
        )
        .unwrap_err();
        assert!(e.message.contains("features.sql"), "{e}");
        let e = AggregateQuery::parse(
            "SELECT avg(x) FROM events GROUP BY k, TUMBLE(ts, INTERVAL '1 fortnight')",
            "ts",
        )
        .unwrap_err();
        assert!(e.message.contains("fortnight"), "{e}");
        let e = AggregateQuery::parse("SELECT avg(x) FROM events GROUP BY k", "ts").unwrap_err();
        assert!(e.message.contains("window"), "{e}");
        let e = AggregateQuery::parse("SELEC avg(x)", "ts").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1 hour 30 minutes"), Ok(5_400_000));
        assert_eq!(parse_duration("250 ms"), Ok(250));
        assert!(parse_duration("hour").is_err());
    }
}
