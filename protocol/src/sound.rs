//! Sound names a chime may ask a speaker to play: one check, used by the hub when a chime is saved and by the agent when a play arrives.
//!
//! A play request comes off the network, so the name is treated as
//! hostile: a plain file name in `[A-Za-z0-9._-]`, never a path, never
//! hidden, never containing `..`.

/// Longest sound name accepted.
pub const MAX_SOUND_NAME_LEN: usize = 128;

/// Why a sound name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoundNameError {
    #[error("sound name is empty")]
    Empty,
    #[error("sound name is {len} characters long; at most {MAX_SOUND_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error("sound name {name:?} is not allowed: {why}")]
    BadName { name: String, why: &'static str },
}

/// Accepts a plain file name: `[A-Za-z0-9._-]`, no leading '.', no "..".
pub fn validate_sound_name(name: &str) -> Result<&str, SoundNameError> {
    let bad = |why| {
        Err(SoundNameError::BadName {
            name: name.chars().take(MAX_SOUND_NAME_LEN).collect(),
            why,
        })
    };
    if name.is_empty() {
        return Err(SoundNameError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_SOUND_NAME_LEN {
        return Err(SoundNameError::TooLong { len });
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it is a path; give a file name from the sounds directory");
    }
    if name.contains("..") {
        return bad("it contains \"..\"");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_names_pass() {
        for ok in ["bell.wav", "Tea-Time_2.ogg", "a", "x.y.z"] {
            assert_eq!(validate_sound_name(ok), Ok(ok));
        }
    }

    #[test]
    fn paths_hidden_files_and_odd_characters_are_refused() {
        for bad in [
            "../etc/passwd",
            "..",
            "a..b",
            "/etc/passwd",
            "sub/bell.wav",
            "..\\x",
            ".hidden",
            "bell wav",
            "bell;rm",
            "$(reboot)",
            "bëll.wav",
        ] {
            assert!(
                matches!(
                    validate_sound_name(bad),
                    Err(SoundNameError::BadName { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(validate_sound_name(""), Err(SoundNameError::Empty));
        assert!(matches!(
            validate_sound_name(&"a".repeat(200)),
            Err(SoundNameError::TooLong { len: 200 })
        ));
    }
}
