//! Fuzzes the broker's password file parser: any text is either a set of users with checked argon2 PHC hashes, or an error naming a line.
#![no_main]

use std::path::Path;

use hearth_broker::PasswordFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = PasswordFile::parse(Path::new("passwd"), text) {
        // What was accepted renders to a file that parses to the same users.
        let again = PasswordFile::parse(Path::new("passwd"), &file.render())
            .expect("a rendered password file parses");
        assert_eq!(again, file);
    }
});
