//! Loading a config: TOML parse, `--set` overrides, deserialisation that reports *every*
//! error at once with file, line, key, what was wrong and what is allowed, then the semantic
//! checks no type can express.
//!
//! serde stops at the first error, so the loader repeats deserialisation: after each error it
//! blanks the offending key in the text (keeping every line where it was, so later line
//! numbers stay true) and tries again, until the config deserialises or no progress is made.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item};

use super::PipelineConfig;

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
    fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors(errors)
    }
}

/// A located key of the document.
struct Entry {
    path: String,
    span: Range<usize>,
    key_span: Option<Range<usize>>,
    is_table: bool,
}

/// The text of a config with line lookup and key locations.
pub(super) struct Located {
    file: PathBuf,
    text: String,
    entries: Vec<Entry>,
    from_set: Vec<String>,
}

impl Located {
    fn new(file: &Path, text: String, from_set: Vec<String>) -> Self {
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

    fn line_col(&self, offset: usize) -> (usize, usize) {
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
    fn entry_at(&self, offset: usize) -> Option<&Entry> {
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

/// Names listed in a serde message like "expected one of `a`, `b`".
fn expected_names(message: &str) -> Vec<String> {
    let Some(i) = message.find("expected") else { return Vec::new() };
    message[i..].split('`').skip(1).step_by(2).map(str::to_string).collect()
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

/// Rewrites serde's message into one that names what is allowed and suggests a near match.
fn explain(message: &str) -> (Option<String>, String) {
    let first_line = message.lines().next().unwrap_or(message).trim();
    for (prefix, what) in [("unknown field `", "unknown key"), ("unknown variant `", "unknown value")] {
        if let Some(rest) = first_line.strip_prefix(prefix) {
            let got = rest.split('`').next().unwrap_or("").to_string();
            let allowed = expected_names(first_line);
            let hint = suggest(&got, &allowed).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            let list = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
            let unknown_key = prefix.contains("field");
            return (unknown_key.then_some(got.clone()), format!("{what} `{got}`{hint} (allowed: {list})"));
        }
    }
    (None, first_line.to_string())
}

/// Loads and validates a config, applying `--set KEY=VALUE` overrides.
///
/// # Errors
/// Every problem found, each located in the file.
pub fn load(path: &Path, sets: &[String]) -> Result<PipelineConfig, ConfigErrors> {
    let file_err = |line: usize, column: usize, key: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        key: key.to_string(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors(vec![file_err(0, 0, "", format!("cannot read the config: {e}"))]))?;
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let located = Located::new(path, text.clone(), Vec::new());
        let (line, column) = e.span().map(|s| located.line_col(s.start)).unwrap_or((0, 0));
        ConfigErrors(vec![file_err(line, column, "", format!("invalid TOML: {}", e.message().trim()))])
    })?;

    let mut errors = Vec::new();
    let mut from_set = Vec::new();
    for s in sets {
        match apply_set(&mut doc, s) {
            Ok(key) => from_set.push(key),
            Err(m) => errors.push(file_err(0, 0, s.split('=').next().unwrap_or(""), m)),
        }
    }
    // Only overrides change the text; without them line numbers are the file's own.
    let text = if sets.is_empty() { text } else { doc.to_string() };
    let located = Located::new(path, text.clone(), from_set);

    let mut work = text.clone();
    let mut config = None;
    let mut seen = Vec::new();
    for _ in 0..64 {
        match toml::from_str::<PipelineConfig>(&work) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let (unknown, message) = explain(e.message());
                let span = e.span().unwrap_or(0..0);
                let mut entry = located.entry_at(span.start);
                // Tagged tables report unknown keys at the table: find the key inside it, or
                // the first such key after the reported position.
                if let Some(key) = &unknown {
                    let suffix = format!(".{key}");
                    let inside = entry.filter(|t| t.is_table).and_then(|t| {
                        let want = format!("{}.{key}", t.path);
                        located.entries.iter().find(|e| e.path == want)
                    });
                    let after = || {
                        located
                            .entries
                            .iter()
                            .filter(|e| e.path.ends_with(&suffix) || e.path == *key)
                            .filter(|e| e.key_span.as_ref().is_some_and(|k| k.start >= span.start))
                            .min_by_key(|e| e.key_span.as_ref().map(|k| k.start))
                    };
                    if inside.is_some() {
                        entry = inside;
                    } else if entry.is_none() {
                        entry = after();
                    }
                }
                // An unknown `kind` leaves its table unreadable: drop the whole table so the
                // remaining tables are still checked. Other bad values drop just their key.
                let unknown_kind =
                    message.starts_with("unknown value") && entry.is_some_and(|e| e.path.ends_with(".kind"));
                let dropped = match entry {
                    Some(en) if unknown_kind => {
                        let parent = en.path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                        located.entries.iter().find(|e| e.path == parent).or(Some(en))
                    }
                    other => other,
                };
                let (path_str, blank) = match (entry, dropped) {
                    (Some(en), Some(d)) => {
                        let start = d.key_span.clone().map(|k| k.start).unwrap_or(d.span.start);
                        let range = if d.is_table && is_header_line(&work, start) {
                            table_section(&work, start)
                        } else {
                            start..d.span.end
                        };
                        (en.path.clone(), Some(range))
                    }
                    _ => (String::new(), None),
                };
                let err = if path_str.is_empty() {
                    let (line, column) = if span.end > 0 { located.line_col(span.start) } else { (0, 0) };
                    file_err(line, column, "", message.clone())
                } else {
                    located.error(&path_str, message.clone())
                };
                if seen.contains(&(path_str.clone(), message.clone())) {
                    break;
                }
                seen.push((path_str, message));
                errors.push(err);
                match blank {
                    Some(r) => blank_out(&mut work, r),
                    None => break,
                }
            }
        }
    }
    match config {
        Some(c) if errors.is_empty() => {
            let problems = super::validate::check(&c, &located);
            if problems.is_empty() {
                Ok(c)
            } else {
                Err(ConfigErrors::sorted(problems))
            }
        }
        _ => Err(ConfigErrors::sorted(errors)),
    }
}

/// Whether the line holding `offset` is a `[table]` header.
fn is_header_line(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[line_start..].trim_start().starts_with('[')
}

/// The byte range of a `[table]` section: its header line and body up to the next header.
fn table_section(text: &str, offset: usize) -> Range<usize> {
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let mut end = text[start..].find('\n').map(|i| start + i + 1).unwrap_or(text.len());
    while end < text.len() {
        let line_end = text[end..].find('\n').map(|i| end + i + 1).unwrap_or(text.len());
        if text[end..line_end].trim_start().starts_with('[') {
            break;
        }
        end = line_end;
    }
    start..end
}

/// Replaces the characters of `range` (except newlines) with spaces, widened to the start of
/// its line when only indentation or a table header's `[` precede it.
fn blank_out(text: &mut String, range: Range<usize>) {
    let end = range.end.min(text.len());
    let line_start = text[..range.start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let start = if text[line_start..range.start].chars().all(|c| c.is_whitespace() || c == '[') {
        line_start
    } else {
        range.start
    };
    let range = start..end;
    let replaced: String =
        text[range.start..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
    text.replace_range(range.start..end, &replaced);
}

/// Applies one `KEY=VALUE` override; returns the key.
fn apply_set(doc: &mut DocumentMut, set: &str) -> Result<String, String> {
    let (key, value) = set.split_once('=').ok_or_else(|| format!("--set needs KEY=VALUE, got `{set}`"))?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("--set key `{key}` is not a dotted path like `sources.events.path`"));
    }
    let value: toml_edit::Value =
        value.trim().parse().unwrap_or_else(|_| toml_edit::Value::from(value.trim()));
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in &parts[..parts.len() - 1] {
        if table.get(part).is_none() {
            table.insert(part, Item::Table(toml_edit::Table::new()));
        }
        table = table
            .get_mut(part)
            .and_then(|i| i.as_table_like_mut())
            .ok_or_else(|| format!("--set {key}: `{part}` is a value, not a table"))?;
    }
    table.insert(parts[parts.len() - 1], Item::Value(value));
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_matches_only() {
        let allowed: Vec<String> = ["labels", "events", "model"].iter().map(|s| s.to_string()).collect();
        assert_eq!(suggest("lables", &allowed), Some("labels".into()));
        assert_eq!(suggest("zzz", &allowed), None);
    }

    #[test]
    fn explains_unknown_fields() {
        let (k, m) = explain("unknown field `lables`, expected one of `events`, `labels`");
        assert_eq!(k.as_deref(), Some("lables"));
        assert!(m.contains("did you mean `labels`?"), "{m}");
        assert!(m.contains("allowed: events, labels"), "{m}");
    }
}
