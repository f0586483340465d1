//! Config errors that name the field as a dotted TOML path.
//!
//! toml's own messages point at a line and column; an operator reading a boot log on a
//! serial console wants `engine.port`, so the path is reconstructed from the error's
//! byte span and the table headers above it.

use std::path::PathBuf;

/// Why a config file was refused. Every variant names a field or the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a missing key or a wrongly typed value.
    #[error("config field `{field}`: {message}")]
    Parse { field: String, message: String },
    /// A value that parses but breaks a rule.
    #[error("config field `{field}`: {why}")]
    Invalid { field: String, why: String },
    /// The host's settings file (`host_settings.path`) is unreadable or not acceptable.
    #[error("host settings {path}: {why}")]
    HostSettings { path: PathBuf, why: String },
}

impl ConfigError {
    pub fn invalid(field: &str, why: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_string(),
            why: why.into(),
        }
    }

    /// The dotted path of the field this error is about (`<file>` for read errors).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "<file>",
            ConfigError::HostSettings { .. } => "host_settings",
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }

    pub(super) fn from_toml(text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().to_string();
        let (section, key) = match err.span() {
            Some(span) => locate(text, span.start),
            None => (String::new(), None),
        };
        // serde names the key itself for unknown/missing fields; the span then points at
        // the key (unknown) or at the enclosing table (missing).
        let named = backticked(&message).filter(|_| {
            message.starts_with("unknown field") || message.starts_with("missing field")
        });
        let leaf = match (named, key) {
            (Some(n), _) if message.starts_with("missing field") => Some(n),
            (Some(n), None) => Some(n),
            (_, Some(k)) => Some(k),
            (None, None) => None,
        };
        let field = match (section.is_empty(), leaf) {
            (true, Some(l)) => l,
            (false, Some(l)) => format!("{section}.{l}"),
            (false, None) => section,
            (true, None) => "<file>".to_string(),
        };
        // The location still helps with syntax errors; keep toml's line/column.
        let message = match err.span() {
            Some(span) => format!("{message} (at {})", line_col(text, span.start)),
            None => message,
        };
        ConfigError::Parse { field, message }
    }
}

/// The table path in effect at byte `pos`, and the key defined on that line, if any.
fn locate(text: &str, pos: usize) -> (String, Option<String>) {
    let mut section = String::new();
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let end = offset.saturating_add(line.len());
        let trimmed = line.trim();
        let header = header_name(trimmed);
        if pos < end || end == text.len() {
            if let Some(h) = header {
                // The span points at a table header: the error is about the table.
                return (h, None);
            }
            let key = trimmed
                .split_once('=')
                .map(|(k, _)| unquote(k.trim()))
                .filter(|k| !k.is_empty());
            return (section, key);
        }
        if let Some(h) = header {
            section = h;
        }
        offset = end;
    }
    (section, None)
}

fn header_name(line: &str) -> Option<String> {
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.split_once("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.split_once(']')))?
        .0;
    Some(
        inner
            .split('.')
            .map(|p| unquote(p.trim()))
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')?.checked_add(1)?;
    let rest = message.get(start..)?;
    let end = rest.find('`')?;
    rest.get(..end).map(str::to_string)
}

fn line_col(text: &str, pos: usize) -> String {
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let col = before
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        .saturating_add(1);
    format!("line {line}, column {col}")
}
