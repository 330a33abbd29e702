//! Loading a config: TOML parse, `--set` overrides, deserialisation that reports *every*
//! error at once with file, line, key, what was wrong and what is allowed, then the semantic
//! checks no type can express.
//!
//! serde stops at the first error, so the loader repeats deserialisation: after each error it
//! blanks the offending key in the text (keeping every line where it was, so later line
//! numbers stay true) and tries again, until the config deserialises or no progress is made.

use std::ops::Range;
use std::path::Path;

use toml_edit::{DocumentMut, Item};

use super::located::{suggest, ConfigError, ConfigErrors, Located};
use super::PipelineConfig;

/// Names listed in a serde message like "expected one of `a`, `b`".
fn expected_names(message: &str) -> Vec<String> {
    let Some(i) = message.find("expected") else { return Vec::new() };
    message[i..].split('`').skip(1).step_by(2).map(str::to_string).collect()
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
