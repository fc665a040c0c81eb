//! Validated identifiers for buttons, nodes, outputs, chimes and speakers.
//!
//! Every `<id>`, `<node>` and `<name>` in the topic contract is `[a-z0-9_-]{1,64}`.
//! Parsing once into [`Id`] means no later code has to re-check a string that
//! came off the wire or out of a config file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest identifier the contract accepts.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier is {len} characters long; at most {MAX_ID_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "identifier {shown:?} contains {bad:?}; only lowercase letters, digits, '_' and '-' are allowed"
    )]
    BadChar { shown: String, bad: char },
}

/// A button, node, output, chime or speaker identifier: `[a-z0-9_-]{1,64}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

impl Id {
    /// Parses and validates an identifier.
    pub fn new(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        let len = raw.chars().count();
        if len > MAX_ID_LEN {
            return Err(IdError::TooLong { len });
        }
        if let Some(bad) = raw.chars().find(|c| !is_id_char(*c)) {
            return Err(IdError::BadChar {
                shown: raw.to_owned(),
                bad,
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: width and alignment (`{:<16}`) must apply.
        f.pad(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Id::new(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_up_in_tables() {
        let id = Id::new("tea").unwrap();
        assert_eq!(format!("[{id:<6}][{id:>5}]"), "[tea   ][  tea]");
    }

    #[test]
    fn accepts_the_contract_alphabet() {
        for ok in ["desk", "pi-1", "living_room", "a", &"x".repeat(64)] {
            assert_eq!(Id::new(ok).map(|id| id.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        assert_eq!(Id::new(""), Err(IdError::Empty));
        assert_eq!(Id::new(&"x".repeat(65)), Err(IdError::TooLong { len: 65 }));
        let err = Id::new("Desk").unwrap_err();
        assert_eq!(
            err.to_string(),
            "identifier \"Desk\" contains 'D'; only lowercase letters, digits, '_' and '-' are allowed"
        );
        for bad in ["a/b", "a+", "#", "a b", "ä", "a.b"] {
            assert!(
                matches!(Id::new(bad), Err(IdError::BadChar { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn deserializes_only_valid_ids() {
        let id: Id = serde_json::from_str("\"kitchen\"").unwrap();
        assert_eq!(id.as_str(), "kitchen");
        let err = serde_json::from_str::<Id>("\"Kitchen\"").unwrap_err();
        assert!(err.to_string().contains("'K'"), "{err}");
    }
}
