//! Where config problems are reported: [`ConfigError`] (file, line, key, message), the
//! located text of a config that maps dotted keys to lines, and near-match suggestions.
//!
//! A leaf module: `load` (parsing) reports through it, and so does `validate` (the semantic
//! checks `load` runs), so neither imports the other's internals.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::Item;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted key path (empty for the whole file).
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// Errors in file order (unlocated ones, e.g. from `--set`, first).
    pub(super) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors(errors)
    }
}

/// A located key of the document.
pub(super) struct Entry {
    pub(super) path: String,
    pub(super) span: Range<usize>,
    pub(super) key_span: Option<Range<usize>>,
    pub(super) is_table: bool,
}

/// The text of a config with line lookup and key locations.
pub(super) struct Located {
    file: PathBuf,
    text: String,
    pub(super) entries: Vec<Entry>,
    from_set: Vec<String>,
}

impl Located {
    pub(super) fn new(file: &Path, text: String, from_set: Vec<String>) -> Self {
        let entries = match toml_edit::Document::parse(text.clone()) {
            Ok(doc) => {
                let mut out = Vec::new();
                walk(doc.as_item(), String::new(), &mut out);
                out
            }
            Err(_) => Vec::new(),
        };
        Located { file: file.to_path_buf(), text, entries, from_set }
    }

    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        (line, col)
    }

    /// An error at key `path` (located in the text when it is there).
    pub(super) fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        if self.from_set.iter().any(|s| s == path) {
            return ConfigError {
                file: self.file.clone(),
                line: 0,
                column: 0,
                key: path.to_string(),
                message: format!("{message} (value from --set {path}=...)"),
            };
        }
        let mut p = path.to_string();
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                let (line, column) = self.line_col(e.key_span.clone().unwrap_or(e.span.clone()).start);
                return ConfigError { file: self.file.clone(), line, column, key: path.to_string(), message };
            }
            match p.rfind('.') {
                Some(i) => p.truncate(i),
                None => break,
            }
        }
        ConfigError { file: self.file.clone(), line: 0, column: 0, key: path.to_string(), message }
    }

    /// The innermost entry whose span contains `offset`.
    pub(super) fn entry_at(&self, offset: usize) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| {
                let start = e.key_span.as_ref().map(|k| k.start).unwrap_or(e.span.start);
                start <= offset && offset < e.span.end.max(start + 1)
            })
            .min_by_key(|e| e.span.end - e.key_span.as_ref().map(|k| k.start).unwrap_or(e.span.start))
    }
}

fn walk(item: &Item, prefix: String, out: &mut Vec<Entry>) {
    let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match item {
        Item::Table(t) => {
            for (k, v) in t.iter() {
                let path = join(k);
                let key_span = t.key(k).and_then(|key| key.span());
                if let Some(span) = v.span().or_else(|| key_span.clone()) {
                    out.push(Entry { path: path.clone(), span, key_span, is_table: v.is_table_like() });
                }
                walk(v, path, out);
            }
        }
        Item::Value(toml_edit::Value::InlineTable(t)) => {
            for (k, v) in t.iter() {
                let path = join(k);
                let key_span = t.key(k).and_then(|key| key.span());
                if let Some(span) = v.span() {
                    out.push(Entry { path: path.clone(), span, key_span, is_table: v.is_inline_table() });
                }
                walk(&Item::Value(v.clone()), path, out);
            }
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let path = format!("{prefix}[{i}]");
                if let Some(span) = t.span() {
                    out.push(Entry { path: path.clone(), span, key_span: None, is_table: true });
                }
                walk(&Item::Table(t.clone()), path, out);
            }
        }
        _ => {}
    }
}

/// The closest allowed name, if it is close enough to be a likely typo.
pub fn suggest(got: &str, allowed: &[String]) -> Option<String> {
    allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(got, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.clone())
}
