//! Fuzzes `Topics::parse`: any topic string either parses into a `Topic` that builds back to the same string, or is an error.
#![no_main]

use hearth_protocol::Topics;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // MQTT topics are UTF-8; brokers reject anything else before we see it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Optionally "prefix\0topic" to exercise custom prefixes too.
    let (prefix, topic) = text.split_once('\0').unwrap_or(("hearth", text));
    let Ok(topics) = Topics::new(prefix) else {
        return;
    };
    if let Ok(parsed) = topics.parse(topic) {
        // Whatever the hub accepts, it can name again exactly: no two
        // spellings of one topic (which would dodge dedup and ACL patterns).
        assert_eq!(topics.build(&parsed), topic, "{parsed:?}");
    }
});
