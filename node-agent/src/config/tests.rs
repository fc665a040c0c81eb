//! Config tests: the example file, the demo Pi, and errors that name their key.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use hearth_common::settings::load_with_env;

use super::*;
use crate::node_id::{HostIdentity, IdSource};

fn host() -> HostIdentity {
    HostIdentity {
        node_name: None,
        hostname: Some("Test-Pi".into()),
    }
}

fn parse(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let raw: NodeFile = load_with_env(Some(f.path()), env)?;
    raw.validate(&host(), false)
}

fn error_text(text: &str) -> String {
    parse(text, &[]).unwrap_err().to_string()
}

const LIGHTS: &str = r#"
[[outputs]]
name = "red"
kind = "light"
pin = 17
[[outputs]]
name = "green"
kind = "light"
pin = 22
"#;

#[test]
fn the_example_file_is_valid_and_documents_the_demo() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("node.example.toml");
    let raw: NodeFile = load_with_env(Some(&path), Vec::new()).unwrap();
    let config = raw.validate(&host(), false).unwrap();
    // No fixed id: a copy on every Pi still gives each its own (and so its
    // own MQTT client id).
    assert_eq!(config.node.as_str(), "test-pi");
    assert_eq!(config.node_source, IdSource::Hostname);
    let names: Vec<&str> = config.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["red", "yellow", "green"]);
    assert_eq!(config.sequences[0].steps.len(), 4);
    assert!(config.sensor.is_some() && config.speaker.is_some());
}

#[test]
fn the_demo_pi_is_valid() {
    let config = NodeFile::default()
        .or_demo_hardware()
        .validate(&host(), true)
        .unwrap();
    assert_eq!(config.node.as_str(), "test-pi");
    assert_eq!(config.node_source, IdSource::Hostname);
    let pins: Vec<u8> = config.outputs.iter().map(|o| o.pin.pin).collect();
    assert_eq!(pins, [17, 27, 22, 18]);
    assert_eq!(config.pwm_pins().len(), 1, "the lamp on BCM 18 dims");
    let inputs: Vec<&str> = config.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["doorbell", "hall"]);
    let traffic = &config.sequences[0];
    assert_eq!(traffic.name.as_str(), "traffic");
    let ms: Vec<u128> = traffic
        .steps
        .iter()
        .map(|s| s.duration.as_millis())
        .collect();
    assert_eq!(ms, [2000, 1000, 2000, 2000]);
    let sensor = config.sensor.as_ref().unwrap();
    assert_eq!((sensor.pin, sensor.interval.as_secs()), (4, 30));
    assert_eq!(config.mqtt.url, "mqtt://127.0.0.1:1883");
    let summary = config.to_string();
    assert!(
        summary.contains("sequence traffic (7.0 s cycle: red 2000ms, yellow 1000ms"),
        "{summary}"
    );
}

#[test]
fn sensor_interval_below_two_seconds_is_refused() {
    let err = error_text("[sensor]\ninterval_secs = 1\n");
    assert!(
        err.starts_with("sensor.interval_secs: 1 s is too fast"),
        "{err}"
    );
    let err = parse("[sensor]\n", &[("HEARTH_SENSOR__INTERVAL_SECS", "0")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("sensor.interval_secs"), "{err}");
    // The smallest allowed interval is taken as given, not clamped.
    let sensor = parse("[sensor]\ninterval_secs = 2\n", &[])
        .unwrap()
        .sensor
        .unwrap();
    assert_eq!(sensor.interval, Duration::from_secs(2));
}

#[test]
fn sensor_interval_above_a_day_is_refused() {
    // Such an interval overflowed the clock in the reader task, which
    // panicked: readings stopped, and --check-config had said OK.
    for huge in ["86401", "9223372036854775807", "18446744073709551615"] {
        // TOML integers stop at i64::MAX; the environment goes to u64::MAX.
        if huge.parse::<i64>().is_ok() {
            let err = error_text(&format!("[sensor]\ninterval_secs = {huge}\n"));
            assert!(err.starts_with("sensor.interval_secs"), "{huge}: {err}");
        }
        let err = parse("[sensor]\n", &[("HEARTH_SENSOR__INTERVAL_SECS", huge)])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("sensor.interval_secs"), "{huge}: {err}");
    }
    let err = error_text("[sensor]\ninterval_secs = 9223372036854775807\n");
    assert!(err.contains("too slow: at most 86400 s"), "{err}");
    let day = parse("[sensor]\ninterval_secs = 86400\n", &[]).unwrap();
    assert_eq!(day.sensor.unwrap().interval.as_secs(), 86_400);
}

#[test]
fn environment_overrides_keep_ids_and_passwords_exactly_as_typed() {
    // Values that look like numbers must not lose their leading zeros:
    // the agent would announce itself as node "7" and fail to log in.
    let config = parse(
        "[sensor]\n",
        &[
            ("HEARTH_NODE__ID", "007"),
            ("HEARTH_MQTT__USERNAME", "0042"),
            ("HEARTH_MQTT__PASSWORD", "0123"),
            ("HEARTH_MQTT__KEEP_ALIVE_SECS", "15"),
            ("HEARTH_NODE__DISCOVERY", "false"),
            ("HEARTH_SENSOR__INTERVAL_SECS", "60"),
        ],
    )
    .unwrap();
    assert_eq!(config.node.as_str(), "007");
    assert_eq!(config.mqtt.username.as_deref(), Some("0042"));
    let login = config.mqtt.options("007", None).unwrap().credentials();
    assert_eq!(login.map(|l| l.password), Some("0123".to_owned()));
    assert_eq!(config.mqtt.keep_alive_secs, 15);
    assert!(config.discovery.is_none());
    assert_eq!(config.sensor.unwrap().interval.as_secs(), 60);
}

#[test]
fn list_values_cannot_come_from_the_environment_and_say_so() {
    // As node.example.toml says: lists are set in the file only.
    let speaker = "[speaker]\nname = \"kitchen\"\nplayer = [\"aplay\", \"{sound}\"]\n";
    let err = parse(speaker, &[("HEARTH_SPEAKER__PLAYER", "mpv {sound}")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("speaker.player"), "{err}");
    let buzzer = "[speaker]\nname = \"kitchen\"\n[speaker.buzzer]\npin = 18\n";
    let err = parse(buzzer, &[("HEARTH_SPEAKER__BUZZER__PATTERN_MS", "100,100")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("speaker.buzzer.pattern_ms"), "{err}");
}

#[test]
fn pins_names_and_steps_are_checked_with_the_key() {
    let twice = format!("{LIGHTS}[[outputs]]\nname = \"blue\"\nkind = \"switch\"\npin = 17\n");
    assert_eq!(
        error_text(&twice),
        "outputs[2].pin: BCM pin 17 is already used by outputs[0].pin"
    );
    let sensor_clash = format!("{LIGHTS}[sensor]\npin = 22\n");
    assert_eq!(
        error_text(&sensor_clash),
        "sensor.pin: BCM pin 22 is already used by outputs[1].pin"
    );
    let err = error_text("[[outputs]]\nname = \"Red\"\nkind = \"light\"\npin = 17\n");
    assert!(
        err.starts_with("outputs[0].name: identifier \"Red\""),
        "{err}"
    );
    let err = error_text("[[outputs]]\nname = \"red\"\nkind = \"light\"\npin = 40\n");
    assert!(err.starts_with("outputs[0].pin: BCM pin 40"), "{err}");
    let bad_step = format!(
        "{LIGHTS}[[sequences]]\nname = \"s\"\nsteps = [{{ on = [\"red\"], duration_ms = 100 }}, {{ on = [\"blue\"], duration_ms = 100 }}]\n"
    );
    assert_eq!(
        error_text(&bad_step),
        "sequences[0].steps[1].on: no output named \"blue\" (outputs: red, green)"
    );
    let fast = format!(
        "{LIGHTS}[[sequences]]\nname = \"s\"\nsteps = [{{ on = [\"red\"], duration_ms = 1 }}]\n"
    );
    assert!(error_text(&fast).starts_with("sequences[0].steps[0].duration_ms"));
}

#[test]
fn unknown_keys_and_bad_kinds_are_errors() {
    let err = error_text("[sensor]\nintervall_secs = 30\n");
    assert!(err.contains("intervall_secs"), "{err}");
    let err = error_text("[[outputs]]\nname = \"fan\"\nkind = \"fan\"\npin = 5\n");
    assert!(err.contains("fan"), "{err}");
    let err = error_text("[mqtt]\nurl = \"http://x\"\n");
    assert!(err.starts_with("mqtt.url"), "{err}");
    let err = error_text("[node]\ntopic_prefix = \"a/#\"\n");
    assert!(err.starts_with("node.topic_prefix"), "{err}");
}

#[test]
fn speaker_needs_exactly_one_way_to_make_sound() {
    let err = error_text("[speaker]\nname = \"kitchen\"\n");
    assert!(err.starts_with("speaker: set a player"), "{err}");
    let both = "[speaker]\nname = \"kitchen\"\nplayer = [\"aplay\", \"{sound}\"]\n[speaker.buzzer]\npin = 18\n";
    assert!(error_text(both).contains("not both"));
    let no_sound = "[speaker]\nname = \"kitchen\"\nplayer = [\"aplay\"]\n";
    assert!(error_text(no_sound).starts_with("speaker.player"));
    let buzzer = "[speaker]\nname = \"kitchen\"\n[speaker.buzzer]\npin = 18\nactive_low = true\n";
    let config = parse(buzzer, &[]).unwrap();
    let pins = config.output_pins();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].1, "kitchen-buzzer");
    assert!(pins[0].0.active_low);
}

#[test]
fn inputs_are_checked_with_the_key_and_default_to_a_switch_to_ground() {
    let button =
        |extra: &str| format!("[[inputs]]\nname = \"door\"\nkind = \"button\"\npin = 5\n{extra}");
    let config = parse(&button(""), &[]).unwrap();
    let door = &config.inputs[0];
    assert_eq!(
        door.kind,
        InputKind::Button {
            id: Id::new("door").unwrap()
        }
    );
    assert!(
        door.active_low && door.pull == Pull::Up,
        "pull-up, pressed = low: {door:?}"
    );
    assert_eq!(door.timings, Timings::default());
    let pir = parse(
        "[[inputs]]\nname = \"hall\"\nkind = \"motion\"\npin = 6\npull = \"off\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        pir.inputs[0].kind,
        InputKind::Binary {
            device_class: "motion"
        }
    );
    assert!(
        !pir.inputs[0].active_low,
        "a PIR drives its pin high on motion"
    );
    for (text, want) in [
        (
            format!("{LIGHTS}[[inputs]]\nname = \"door\"\nkind = \"button\"\npin = 17\n"),
            "inputs[0].pin: BCM pin 17 is already used by outputs[0].pin",
        ),
        (
            format!(
                "{}[[inputs]]\nname = \"bell\"\nkind = \"button\"\npin = 5\n",
                button("")
            ),
            "inputs[1].pin: BCM pin 5 is already used by inputs[0].pin",
        ),
        (
            format!(
                "{}[[inputs]]\nname = \"door\"\nkind = \"door\"\npin = 6\n",
                button("")
            ),
            "inputs[1].name: input door is declared twice",
        ),
        (
            button("debounce_ms = 0\n"),
            "inputs[0].debounce_ms: 0 ms is outside 1..=500 ms",
        ),
        (
            button("long_ms = 60000\n"),
            "inputs[0].long_ms: 60000 ms is outside 200..=10000 ms",
        ),
        (
            button("double_ms = 10\n"),
            "inputs[0].double_ms: 10 ms is outside 50..=2000 ms",
        ),
        (
            button("debounce_ms = 400\nlong_ms = 300\ndouble_ms = 500\n"),
            "inputs[0].long_ms: 300 ms must be longer than debounce_ms (400 ms)",
        ),
        (
            "[[inputs]]\nname = \"hall\"\nkind = \"motion\"\npin = 6\nlong_ms = 900\n".to_owned(),
            "inputs[0].long_ms: only a kind = \"button\" input has presses to time",
        ),
        (
            "[[inputs]]\nname = \"hall\"\nkind = \"motion\"\npin = 6\nbutton = \"x\"\n".to_owned(),
            "inputs[0].button: only a kind = \"button\" input presses a button",
        ),
        (
            button("button = \"Door\"\n"),
            "inputs[0].button: identifier \"Door\"",
        ),
    ] {
        let err = error_text(&text);
        assert!(err.starts_with(want), "{text}\n=> {err}");
    }
    let err = error_text("[[inputs]]\nname = \"x\"\nkind = \"lever\"\npin = 6\n");
    assert!(err.contains("lever"), "{err}");
}

#[test]
fn only_a_light_on_a_pwm_pin_dims_one_per_channel() {
    let lamp = |pin: u8, kind: &str| {
        format!(
            "[[outputs]]\nname = \"lamp{pin}\"\nkind = \"{kind}\"\npin = {pin}\ndimmable = true\n"
        )
    };
    let config = parse(&format!("{}{}", lamp(18, "light"), lamp(13, "light")), &[]).unwrap();
    assert_eq!(config.pwm_pins().len(), 2);
    for (text, want) in [
        (
            lamp(17, "light"),
            "outputs[0].dimmable: BCM pin 17 has no hardware PWM",
        ),
        (
            lamp(18, "switch"),
            "outputs[0].dimmable: only a light can be dimmed",
        ),
        (
            format!("{}{}", lamp(18, "light"), lamp(12, "light")),
            "outputs[1].dimmable: PWM channel 0 is already used by outputs[0] (BCM 18)",
        ),
    ] {
        let err = error_text(&text);
        assert!(err.starts_with(want), "{text}\n=> {err}");
    }
}
