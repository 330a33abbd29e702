//! `SqlError`: what went wrong in a feature query, with the position in the SQL text when
//! the parser or planner knows it, so a config error can point at the offending token.

use std::fmt;

use datafusion::error::DataFusionError;

/// An error in a feature SQL text, or while evaluating it on a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// 1-based line in the SQL text (0 when unknown).
    pub line: u64,
    /// 1-based column in the SQL text (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl SqlError {
    /// An error without a position.
    pub fn new(message: impl Into<String>) -> Self {
        SqlError { line: 0, column: 0, message: message.into() }
    }

    /// An error at `line`:`column` of the SQL text.
    pub fn at(line: u64, column: u64, message: impl Into<String>) -> Self {
        SqlError { line, column, message: message.into() }
    }

    /// An error located at a sqlparser span (position dropped when the span is empty).
    pub fn at_span(span: datafusion::sql::sqlparser::tokenizer::Span, message: impl Into<String>) -> Self {
        SqlError { line: span.start.line, column: span.start.column, message: message.into() }
    }

    /// Converts a DataFusion error, taking the position from its diagnostic (planner errors,
    /// when spans are collected) or from the parser's "at Line: L, Column: C" suffix.
    pub fn from_datafusion(e: &DataFusionError) -> Self {
        let text = e.strip_backtrace();
        if let Some(span) = e.diagnostic().and_then(|d| d.span) {
            if span.start.line > 0 {
                return SqlError::at(span.start.line, span.start.column, clean(&text));
            }
        }
        SqlError::from_message(&text)
    }

    /// An error from a message that may end in sqlparser's "at Line: L, Column: C".
    pub fn from_message(text: &str) -> Self {
        match parser_position(text) {
            Some((line, column)) => SqlError::at(line, column, clean(text)),
            None => SqlError::new(clean(text)),
        }
    }
}

/// The message without DataFusion's wrapping of the parser's location.
fn clean(text: &str) -> String {
    let mut t = text;
    for prefix in ["SQL error: ParserError(\"", "SQL error: TokenizerError(\""] {
        if let Some(inner) = t.strip_prefix(prefix).and_then(|r| r.strip_suffix("\")")) {
            t = inner;
        }
    }
    match t.find(" at Line: ") {
        Some(i) => t[..i].to_string(),
        None => t.to_string(),
    }
}

/// `(line, column)` from sqlparser's "... at Line: 1, Column: 8" messages.
fn parser_position(text: &str) -> Option<(u64, u64)> {
    let rest = &text[text.find("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "SQL {}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "SQL: {}", self.message)
        }
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parser_positions() {
        assert_eq!(
            parser_position("sql parser error: Expected: end of statement, found: x at Line: 2, Column: 14"),
            Some((2, 14))
        );
        assert_eq!(parser_position("no position here"), None);
        assert_eq!(
            clean("Expected: an expression, found: EOF at Line: 1, Column: 9"),
            "Expected: an expression, found: EOF"
        );
        assert_eq!(
            clean("SQL error: ParserError(\"Expected: x, found: y at Line: 1, Column: 2\")"),
            "Expected: x, found: y"
        );
    }
}
