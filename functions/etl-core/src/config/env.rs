//! Where configuration values come from: the process environment, over the env file that
//! `scripts/services up` writes (`.services/env`). Reading, not interpreting: what the
//! values mean is [`super::Config::from_source`]'s business.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// Where configuration values come from: process environment over env-file values.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    // Visible to the rest of `config` so its tests can build a source with file values.
    pub(super) file: HashMap<String, String>,
    pub(super) process: HashMap<String, String>,
}

impl EnvSource {
    /// The process environment only (what a Lambda function sees).
    pub fn process() -> Self {
        Self {
            file: HashMap::new(),
            process: std::env::vars().collect(),
        }
    }

    /// The process environment, over `.services/env` when one is found (local runs).
    pub fn load() -> Result<Self, ConfigError> {
        match find_env_file() {
            Some(path) => Self::process_and_file(&path),
            None => Ok(Self::process()),
        }
    }

    /// The process environment over the given env file, which must exist.
    pub fn process_and_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::EnvFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file: parse_env_file(&text),
            process: std::env::vars().collect(),
        })
    }

    /// Explicit values, for tests.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            file: HashMap::new(),
            process: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A copy with one value overridden, for tests.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.process.insert(key.to_string(), value.to_string());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.process
            .get(key)
            .or_else(|| self.file.get(key))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A non-blank value from the process environment only (not the env file).
    pub fn process_value(&self, key: &str) -> Option<&str> {
        self.process
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Every value, process over file: what a child process (e.g. `cargo lambda watch`) needs.
    pub fn merged(&self) -> HashMap<String, String> {
        let mut all = self.file.clone();
        all.extend(self.process.clone());
        all
    }

    /// The settings a deployed function gets as environment variables (databases, AWS,
    /// Elasticsearch, this project's own), process over file, sorted by name: what a child
    /// process standing in for a Lambda function needs, and nothing of this shell's.
    pub fn function_settings(&self) -> Vec<(String, String)> {
        const PREFIXES: &[&str] = &["DATABASE_", "AWS_", "ETL_", "ELASTICSEARCH_", "RUST_LOG"];
        let mut vars: Vec<(String, String)> = self
            .merged()
            .into_keys()
            .filter(|key| PREFIXES.iter().any(|p| key.starts_with(p)))
            .filter_map(|key| self.get(&key).map(str::to_string).map(|v| (key, v)))
            .collect();
        vars.sort();
        vars
    }

    /// Values that came only from the env file (the local stand-ins' settings).
    pub fn file_values(&self) -> &HashMap<String, String> {
        &self.file
    }
}

/// `KEY=VALUE` lines; `#` comments and blank lines ignored; no interpolation. A value may be
/// in single quotes, as the shell reads it: the file is also sourced by the scripts, and a URL's
/// `&` unquoted would end the shell's assignment there.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), unquoted(v.trim()).to_string()))
        .collect()
}

fn unquoted(value: &str) -> &str {
    value
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or(value)
}

/// The env file named by `ETL_ENV_FILE`, else `.services/env` in the current directory or
/// one of its parents.
pub fn find_env_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETL_ENV_FILE") {
        return Some(PathBuf::from(path));
    }
    let start = std::env::current_dir().ok()?;
    start
        .ancestors()
        .map(|dir| dir.join(".services").join("env"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_quoted_values_read_as_the_shell_reads_them() {
        let file = parse_env_file(
            "# c\nA='postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.crt'\nB=plain\nC='\nD=''\n",
        );
        assert_eq!(
            file["A"],
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.crt"
        );
        assert_eq!(file["B"], "plain");
        assert_eq!(file["C"], "'", "a lone quote is a value, not a quoting");
        assert_eq!(file["D"], "");
    }

    #[test]
    fn function_settings_keep_only_what_a_function_reads() {
        let env = EnvSource::from_pairs([
            ("DATABASE_URL", "postgres://etl@db/etl"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("AWS_REGION", "eu-west-1"),
            ("ETL_BUCKET", "lake"),
            ("ELASTICSEARCH_URL", " "),
            ("CARGO_HOME", "/cargo"),
        ]);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            env.function_settings(),
            pairs(&[
                ("AWS_REGION", "eu-west-1"),
                ("DATABASE_URL", "postgres://etl@db/etl"),
                ("ETL_BUCKET", "lake"),
            ])
        );
    }
}
