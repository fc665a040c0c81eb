//! Sound names and player command lines: validation and substitution, pure apart from one existence check.
//!
//! A play request comes off the network, so its sound name is treated as
//! hostile: a plain file name in `[A-Za-z0-9._-]`, never a path, never
//! hidden, never `..`. The player runs without a shell, so the name can only
//! ever be one argument.

use std::path::{Path, PathBuf};

/// Longest sound name accepted.
pub const MAX_SOUND_NAME_LEN: usize = 128;
/// Replaced by the sound file's path in the player argv.
pub const SOUND: &str = "{sound}";
/// Replaced by the volume (0-100) in the player argv.
pub const VOLUME: &str = "{volume}";

/// Why a sound cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoundError {
    #[error("sound name is empty")]
    Empty,
    #[error("sound name is {len} characters long; at most {MAX_SOUND_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error("sound name {name:?} is not allowed: {why}")]
    BadName { name: String, why: &'static str },
    #[error("sound {name:?} is not a file in {dir}")]
    NotFound { name: String, dir: String },
}

/// Accepts a plain file name: `[A-Za-z0-9._-]`, no leading '.', no "..".
pub fn validate_name(name: &str) -> Result<&str, SoundError> {
    let bad = |why| {
        Err(SoundError::BadName {
            name: name.chars().take(MAX_SOUND_NAME_LEN).collect(),
            why,
        })
    };
    if name.is_empty() {
        return Err(SoundError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_SOUND_NAME_LEN {
        return Err(SoundError::TooLong { len });
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

/// The file for `name` inside `dir`, which must exist.
pub fn resolve(dir: &Path, name: &str) -> Result<PathBuf, SoundError> {
    let path = dir.join(validate_name(name)?);
    if path.is_file() {
        Ok(path)
    } else {
        Err(SoundError::NotFound {
            name: name.to_owned(),
            dir: dir.display().to_string(),
        })
    }
}

/// The player argv with `{sound}` and `{volume}` filled in, each argument
/// staying one argument whatever the path contains.
pub fn player_args(template: &[String], sound: &Path, volume: u8) -> Vec<String> {
    let sound = sound.to_string_lossy();
    let volume = volume.to_string();
    template
        .iter()
        .map(|arg| arg.replace(SOUND, &sound).replace(VOLUME, &volume))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_names_pass() {
        for ok in ["bell.wav", "Tea-Time_2.ogg", "a", "x.y.z"] {
            assert_eq!(validate_name(ok), Ok(ok));
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
                matches!(validate_name(bad), Err(SoundError::BadName { .. })),
                "{bad}"
            );
        }
        assert_eq!(validate_name(""), Err(SoundError::Empty));
        assert!(matches!(
            validate_name(&"a".repeat(200)),
            Err(SoundError::TooLong { len: 200 })
        ));
    }

    #[test]
    fn sounds_must_exist_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bell.wav"), b"RIFF").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        assert_eq!(
            resolve(dir.path(), "bell.wav"),
            Ok(dir.path().join("bell.wav"))
        );
        assert!(matches!(
            resolve(dir.path(), "gong.wav"),
            Err(SoundError::NotFound { .. })
        ));
        assert!(matches!(
            resolve(dir.path(), "folder"),
            Err(SoundError::NotFound { .. })
        ));
        assert!(matches!(
            resolve(dir.path(), "../bell.wav"),
            Err(SoundError::BadName { .. })
        ));
    }

    #[test]
    fn placeholders_fill_single_arguments() {
        let template: Vec<String> = ["mpv", "--volume={volume}", "{sound}"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            player_args(&template, Path::new("/snd/my bell.wav"), 40),
            ["mpv", "--volume=40", "/snd/my bell.wav"]
        );
    }
}
