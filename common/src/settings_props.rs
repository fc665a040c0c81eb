//! Property tests: the settings loader never panics, whatever TOML or environment it is given.
//!
//! A config file is edited by hand and environment variables come from
//! Kubernetes manifests; a typo there must end in an error naming the key,
//! never in a panic. Real sections (`[mqtt]`, with `MqttSettings`) are used
//! so deserialisation paths are the ones the binaries run.

use std::io::Write;

use proptest::prelude::*;
use serde::Deserialize;

use crate::mqtt::MqttSettings;
use crate::settings::load_with_env;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
#[allow(dead_code)]
struct File {
    mqtt: MqttSettings,
}

/// Lines that look like a Hearth config, with typos, wrong types and junk.
fn toml_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("url"),
        Just("username"),
        Just("password"),
        Just("keep_alive_secs"),
        Just("ca_file"),
        Just("urll"),
        Just(""),
        Just("a.b"),
    ];
    let value = prop_oneof![
        Just("\"mqtt://127.0.0.1:1883\"".to_owned()),
        Just("\"mqtts://[::1]\"".to_owned()),
        Just("30".to_owned()),
        Just("-1".to_owned()),
        Just("70000".to_owned()),
        Just("1e999".to_owned()),
        Just("true".to_owned()),
        Just("[1, \"x\"]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<String>(),
    ];
    prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        Just("[mqtt]".to_owned()),
        Just("[[mqtt]]".to_owned()),
        Just("[mqtt.url]".to_owned()),
        Just("[broker]".to_owned()),
        any::<String>(),
    ]
}

fn env_pair() -> impl Strategy<Value = (String, String)> {
    let key = prop_oneof![
        Just("HEARTH_MQTT__URL".to_owned()),
        Just("HEARTH_MQTT__KEEP_ALIVE_SECS".to_owned()),
        Just("HEARTH_MQTT__CA_FILE".to_owned()),
        Just("HEARTH_MQTT__".to_owned()),
        Just("HEARTH___".to_owned()),
        Just("HEARTH_MQTT__URL__X".to_owned()),
        "HEARTH_[A-Z_]{0,12}".prop_map(|s| s),
        any::<String>(),
    ];
    (key, any::<String>())
}

fn load(text: &str, env: Vec<(String, String)>) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    if let Ok(file) = load_with_env::<File>(Some(f.path()), env) {
        // Whatever loads must be usable or refused with an error, not a panic.
        let _ = file.mqtt.address();
        let _ = file.mqtt.options("props", None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_toml_lines_load_or_fail_cleanly(lines in prop::collection::vec(toml_line(), 0..8)) {
        load(&lines.join("\n"), Vec::new());
    }

    #[test]
    fn any_environment_loads_or_fails_cleanly(env in prop::collection::vec(env_pair(), 0..6)) {
        load("[mqtt]\nurl = \"mqtt://127.0.0.1\"\n", env);
    }

    #[test]
    fn any_bytes_load_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        load(&String::from_utf8_lossy(&bytes), Vec::new());
    }
}
