//! The problems collector of config validation: every problem with its key path, all of them
//! reported at once rather than stopping at the first; and [`Check`], what each domain's
//! validation of its own config section works with.

use crate::path::normalise;
use crate::units::{parse_duration, parse_size};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configuration problem at a key path, e.g. `hosts[1].routes[0].backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, Default, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records a problem at `path` (a dotted key path; empty for the whole file).
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// What one domain's config validation works with: the problems list it adds to (every
/// problem with its full key path), the warnings it may give (valid but suspicious settings,
/// reported by `check`, never fatal) and the folder relative paths in the file resolve against.
///
/// Each domain checks its own sections through an extension trait on `Check` (for example
/// `limits::config::CheckLimits`); the application hands the same `Check` to each in turn and
/// does the checks that span domains itself. Nothing here builds a runtime object or writes a
/// file: the only I/O is reading files the config names, to report those that cannot be read.
pub struct Check<'a> {
    /// Where problems go.
    pub problems: &'a mut Problems,
    /// Where warnings go.
    pub warnings: &'a mut Vec<Problem>,
    /// Folder of the config file.
    pub base: &'a Path,
}

impl Check<'_> {
    /// Deserialises one raw item (a section or entry kept as TOML); a failure is recorded at
    /// `path` and gives `None`.
    pub fn item<T: DeserializeOwned>(&mut self, path: &str, value: toml::Value) -> Option<T> {
        match T::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.add(path, toml_message(&e));
                None
            }
        }
    }

    /// Records a warning at `path`.
    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// `p` resolved against the config file's folder (absolute paths as they are).
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// `file` resolved; a file that cannot be opened for reading is recorded at `path`.
    pub fn readable_file(&mut self, path: &str, file: &Path) -> PathBuf {
        let full = self.resolve(file);
        if let Err(e) = std::fs::File::open(&full) {
            self.problems
                .add(path, format!("cannot read {}: {e}", full.display()));
        }
        full
    }

    /// A duration written like `30s`, above zero; `default` when absent or invalid (the
    /// problem recorded at `path`).
    pub fn duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        match text.map(parse_duration) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.problems.add(path, "must be greater than zero");
                default
            }
            Some(Err(e)) => {
                self.problems.add(path, e);
                default
            }
        }
    }

    /// A size written like `64MiB`, above zero.
    pub fn size(&mut self, path: &str, text: &str) -> Option<usize> {
        match parse_size(text).map(usize::try_from) {
            Ok(Ok(n)) if n > 0 => Some(n),
            Ok(_) => {
                self.problems.add(path, "must be greater than zero");
                None
            }
            Err(e) => {
                self.problems.add(path, e);
                None
            }
        }
    }

    /// A request path as written in the config (a route's `path`, a rule's `path_prefix`):
    /// it must already be normal, as [`normalise`] would make it.
    pub fn normal_path(&mut self, path: &str, text: &str) -> Option<String> {
        match normalise(text) {
            Ok(n) if n == text => Some(n),
            Ok(n) => {
                self.problems
                    .add(path, format!("\"{text}\" is not normalised; write \"{n}\""));
                None
            }
            Err(e) => {
                self.problems.add(path, format!("\"{text}\": {e}"));
                None
            }
        }
    }

    /// A list of HTTP methods (any case); each bad one is recorded at `path[i]`.
    pub fn methods(&mut self, path: &str, list: &[String]) -> Vec<http::Method> {
        let mut out = Vec::new();
        for (i, m) in list.iter().enumerate() {
            match http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(method) => out.push(method),
                Err(_) => self.problems.add(
                    format!("{path}[{i}]"),
                    format!("\"{m}\" is not an HTTP method"),
                ),
            }
        }
        out
    }

    /// A backend's key prefix: relative and already normal (no `.`, `..`, empty segments,
    /// `%` escapes or control characters), so a request can never leave it.
    pub fn key_prefix(&mut self, path: &str, prefix: Option<String>) -> String {
        let prefix = prefix.unwrap_or_default();
        if prefix.is_empty() {
            return prefix;
        }
        if prefix.starts_with('/') {
            self.problems
                .add(path, "must not start with '/' (keys are relative)");
        }
        match normalise(&format!("/{prefix}")) {
            Ok(n) if n == format!("/{prefix}") => {}
            _ => self.problems.add(
                path,
                "must be a plain key prefix: no '.', '..', empty segments, '%' escapes or control characters",
            ),
        }
        prefix
    }
}

/// A TOML error's message without the file excerpt (the key path says where).
pub fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}
