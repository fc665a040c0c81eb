//! Fuzzes the config loader: arbitrary TOML (plus `HEARTH_*` overrides) into the broker's and MQTT client's settings, then validation.
#![no_main]

use std::io::Write;

use hearth_broker::BrokerConfig;
use hearth_common::mqtt::MqttSettings;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// What `hearth-broker` reads (its `BrokerFile`) plus the `[mqtt]` section
/// the hub and agents read.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
#[allow(dead_code)]
struct File {
    broker: BrokerConfig,
    mqtt: MqttSettings,
}

fuzz_target!(|data: &[u8]| {
    // "toml\0KEY=VALUE\nKEY=VALUE": the part after NUL becomes environment
    // overrides under HEARTH_BROKER__ / HEARTH_MQTT__.
    let (toml, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .enumerate()
        .map(|(i, (k, v))| {
            let section = if i % 2 == 0 { "BROKER" } else { "MQTT" };
            (format!("HEARTH_{section}__{k}"), v.to_owned())
        })
        .collect();
    let path = std::env::temp_dir().join(format!("hearth-fuzz-config-{}.toml", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(toml).expect("write temp file");
    drop(file);
    let Ok(loaded) = hearth_common::settings::load_with_env::<File>(Some(&path), env) else {
        return;
    };
    let _ = loaded.broker.validate();
    let _ = loaded.broker.anonymous_allowed();
    let _ = loaded.broker.listeners();
    // options() over TLS would load the system's root store every run;
    // the URL parsing is what is fuzzed here.
    if let Ok(address) = loaded.mqtt.address()
        && !address.tls
    {
        let _ = loaded.mqtt.options("fuzz", None);
    }
});
