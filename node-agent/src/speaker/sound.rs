//! Sound names and player command lines: validation and substitution, pure apart from one existence check.
//!
//! A play request comes off the network, so its sound name is checked by
//! the contract's own rule (`hearth_protocol::sound`) before it is joined
//! to the sounds directory. The player runs without a shell, so the name
//! can only ever be one argument.

use std::path::{Path, PathBuf};

use hearth_protocol::sound::{SoundNameError, validate_sound_name};

/// Replaced by the sound file's path in the player argv.
pub const SOUND: &str = "{sound}";
/// Replaced by the volume (0-100) in the player argv.
pub const VOLUME: &str = "{volume}";

/// Why a sound cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoundError {
    #[error(transparent)]
    Name(#[from] SoundNameError),
    #[error("sound {name:?} is not a file in {dir}")]
    NotFound { name: String, dir: String },
}

/// Accepts a plain file name (see [`validate_sound_name`]).
pub fn validate_name(name: &str) -> Result<&str, SoundError> {
    Ok(validate_sound_name(name)?)
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
            Err(SoundError::Name(SoundNameError::BadName { .. }))
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
