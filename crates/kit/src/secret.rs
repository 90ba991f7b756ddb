//! Secrets read from environment variables or files; never printed.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret comes from: exactly one of `env` or `file`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// Name of an environment variable that holds the value.
    pub env: Option<String>,
    /// Path of a file whose contents (trimmed) are the value; a relative path is relative to
    /// the config file's folder.
    pub file: Option<PathBuf>,
}

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads the value named by a `{ env = "..." }` or `{ file = "..." }` table; a relative
    /// file path is taken relative to `base` (the config file's folder).
    pub fn resolve(raw: &RawSecret, base: &Path) -> Result<Secret, String> {
        let file = raw.file.as_ref().map(|f| base.join(f));
        match (&raw.env, &file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                Ok(_) => Err(format!("environment variable {var} is empty")),
                Err(_) => Err(format!("environment variable {var} is not set")),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                Ok(_) => Err(format!("file {} is empty", path.display())),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
            _ => Err("give exactly one of `env` or `file`".to_string()),
        }
    }

    /// A value written in the config itself (still never printed).
    pub fn plain(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for handing to a signer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
