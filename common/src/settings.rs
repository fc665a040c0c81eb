//! Layered settings: built-in defaults, then one TOML file, then `HEARTH_...` environment variables.
//!
//! Environment keys use `__` between levels: `HEARTH_BROKER__LISTEN=0.0.0.0:1883`
//! sets `[broker] listen`. Only variables with a `__` are read as settings, so
//! `HEARTH_CONFIG` and `HEARTH_LOG` never collide with a key. Every settings
//! struct denies unknown fields, so a typo is an error naming the key rather
//! than a silently ignored line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "HEARTH";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {path} cannot be read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Loads `T` from `file` (if any) layered under the process environment.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, SettingsError> {
    load_with_env(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (tests use this).
pub fn load_with_env<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, SettingsError> {
    let mut builder = Config::builder();
    let shown = match file {
        Some(path) => {
            // Read it ourselves: the config crate's "not found" does not say which path.
            let text =
                std::fs::read_to_string(path).map_err(|source| SettingsError::Unreadable {
                    path: path.to_owned(),
                    source,
                })?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
            path.display().to_string()
        }
        None => "(built-in defaults)".to_owned(),
    };
    let overrides: HashMap<String, String> = env
        .into_iter()
        .filter(|(key, _)| {
            key.strip_prefix(ENV_PREFIX)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    let from_env = !overrides.is_empty();
    // No `try_parsing`: it turns every value that looks like a number or a
    // bool into one, so a password `0123` became `123` and a node id `007`
    // became `7`. Left as strings, values are converted only where the
    // field asks for a number or a bool, so `HEARTH_SENSOR__INTERVAL_SECS=60`
    // and `HEARTH_BROKER__EMBEDDED=false` still work.
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .source(Some(overrides)),
    );
    let invalid = |e: config::ConfigError| SettingsError::Invalid {
        path: if from_env {
            format!("{shown} + HEARTH_* environment")
        } else {
            shown.clone()
        },
        message: e.to_string(),
    };
    builder
        .build()
        .map_err(invalid)?
        .try_deserialize()
        .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::io::Write;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Root {
        #[serde(default)]
        section: Section,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        port: u16,
        name: String,
        enabled: bool,
        ratio: f64,
    }

    impl Default for Section {
        fn default() -> Self {
            Self {
                port: 1883,
                name: "hearth".into(),
                enabled: true,
                ratio: 0.5,
            }
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let root: Root = load_with_env(None, no_env()).unwrap();
        assert_eq!(root.section, Section::default());

        let f = file("[section]\nport = 1999\n");
        let root: Root = load_with_env(Some(f.path()), no_env()).unwrap();
        assert_eq!(root.section.port, 1999);

        let env = vec![
            ("HEARTH_SECTION__PORT".to_owned(), "2000".to_owned()),
            ("HEARTH_CONFIG".to_owned(), "/ignored.toml".to_owned()),
            ("HEARTH_LOG".to_owned(), "debug".to_owned()),
            ("OTHER_SECTION__PORT".to_owned(), "1".to_owned()),
        ];
        let root: Root = load_with_env(Some(f.path()), env).unwrap();
        assert_eq!(root.section.port, 2000);
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn strings_from_the_environment_keep_their_exact_text() {
        // A password or id that looks like a number, a bool or a float
        // must reach the program as typed.
        for text in ["0123", "007", "1e3", "TRUE", "no", "1.50", "-0", "+7"] {
            let root: Root = load_with_env(None, env(&[("HEARTH_SECTION__NAME", text)])).unwrap();
            assert_eq!(root.section.name, text);
        }
    }

    #[test]
    fn numbers_and_bools_still_parse_from_the_environment() {
        let root: Root = load_with_env(
            None,
            env(&[
                ("HEARTH_SECTION__PORT", "0060"),
                ("HEARTH_SECTION__ENABLED", "false"),
                ("HEARTH_SECTION__RATIO", "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!((root.section.port, root.section.enabled), (60, false));
        assert!((root.section.ratio - 0.25).abs() < f64::EPSILON);
        let root: Root = load_with_env(None, env(&[("HEARTH_SECTION__ENABLED", "TRUE")])).unwrap();
        assert!(root.section.enabled);
        let err =
            load_with_env::<Root>(None, env(&[("HEARTH_SECTION__ENABLED", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("section.enabled"), "{err}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let f = file("[section]\nprot = 1999\n");
        let err = load_with_env::<Root>(Some(f.path()), no_env()).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");

        let f = file("[section]\nport = \"lots\"\n");
        let err = load_with_env::<Root>(Some(f.path()), no_env()).unwrap_err();
        assert!(err.to_string().contains("section.port"), "{err}");

        let env = vec![("HEARTH_SECTION__PORT".to_owned(), "70000".to_owned())];
        let err = load_with_env::<Root>(None, env).unwrap_err();
        assert!(err.to_string().contains("section.port"), "{err}");
        assert!(err.to_string().contains("environment"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err =
            load_with_env::<Root>(Some(Path::new("/nope/hearth.toml")), no_env()).unwrap_err();
        assert!(err.to_string().contains("/nope/hearth.toml"), "{err}");
    }

    #[test]
    fn broken_toml_is_an_error_not_a_panic() {
        let f = file("[section\nport = ");
        assert!(load_with_env::<Root>(Some(f.path()), no_env()).is_err());
    }
}
