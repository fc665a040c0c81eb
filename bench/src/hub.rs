//! The slice of Hearth's topic contract the `buttons` scenario drives: press topics, command topics, press payloads and the matching hub rules.
//!
//! Kept free of I/O so that every string the bench sends to, or expects from,
//! the hub is unit-tested here. Button `b<k>` gets a rule commanding its own
//! light `<node>/light/l<k>`, so the topic of each command names the button
//! that caused it even though the payload is just `ON`.

use std::fmt::Write as _;

/// Longest id the hub accepts in a topic level.
const MAX_ID_LEN: usize = 64;

/// True for a Hearth id: 1 to 64 of `a-z`, `0-9`, `_` and `-`.
pub fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// True for a usable topic prefix: non-empty levels, no wildcards.
pub fn is_valid_prefix(raw: &str) -> bool {
    !raw.is_empty()
        && raw
            .split('/')
            .all(|level| !level.is_empty() && !level.contains(['+', '#']))
}

/// Id of the `k`th bench button.
pub fn button_id(k: u32) -> String {
    format!("b{k}")
}

/// The light output button `b<k>`'s rule commands.
pub fn light_output(node: &str, k: u32) -> String {
    format!("{node}/light/l{k}")
}

/// Where a press of button `b<k>` is published.
pub fn press_topic(prefix: &str, k: u32) -> String {
    format!("{prefix}/button/{}/press", button_id(k))
}

/// The filter matching every bench command: one level per light.
pub fn command_filter(prefix: &str, node: &str) -> String {
    format!("{prefix}/node/{node}/light/+/set")
}

/// Which button's rule sent a command on `topic`, or `None` for a topic that
/// is not a bench light (another rule commanding the same node).
pub fn command_button(topic: &str, prefix: &str, node: &str) -> Option<u32> {
    let light = topic
        .strip_prefix(prefix)?
        .strip_prefix("/node/")?
        .strip_prefix(node)?
        .strip_prefix("/light/l")?
        .strip_suffix("/set")?;
    // Reject "l007" and "l+1": only the exact spelling `light_output` produces.
    if light.is_empty() || (light.len() > 1 && light.starts_with('0')) {
        return None;
    }
    if !light.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    light.parse().ok()
}

/// The JSON press payload: a single press carrying an id unique to this run
/// and press. The hub drops a press whose id it has already committed, so a
/// broker redelivery cannot produce a second command and skew the matching.
pub fn press_payload(run_id: &str, seq: u64) -> String {
    format!(r#"{{"action":"single","id":"bench-{run_id}-{seq}"}}"#)
}

/// The hub rules for `buttons` bench buttons, as TOML to paste into (or pass
/// as) the hub's config file.
pub fn rules_toml(buttons: u32, node: &str, prefix: &str) -> String {
    let mut out = format!(
        "# Rules for `hearth-bench buttons --buttons {buttons} --node {node} --prefix {prefix}`:\n\
         # a single press of b<k> sends ON to {node}/light/l<k>, so the bench can tell\n\
         # which press each command answers. Written by hearth-bench --write-rules.\n"
    );
    for k in 0..buttons {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "\n[[rules]]\nname = \"bench {button}\"\nwhen = {{ button = \"{button}\", action = \"single\" }}\n\
             then = [{{ output = \"{output}\", command = \"ON\" }}]\n",
            button = button_id(k),
            output = light_output(node, k),
        );
    }
    if prefix != "hearth" {
        out.push_str(&format!(
            "\n# The hub must use the same prefix:\n# [hub]\n# topic_prefix = \"{prefix}\"\n"
        ));
    }
    out
}

/// Automations for `hearth-bench buttons --automations TOTAL`: button
/// `b<k>`'s single press sends ON to `{node}/light/l<k>` (what its rule
/// does), and the other `TOTAL - buttons` are a house's worth of others
/// that a bench press never fires but the hub checks for every one: time
/// triggers, motion with a wait and a delay, climate thresholds with
/// hysteresis, a Zigbee remote's JSON field, button states with conditions.
pub fn automations_toml(buttons: u32, total: u32, node: &str, prefix: &str) -> String {
    let mut out = format!(
        "# {total} automations for `hearth-bench buttons --buttons {buttons} --automations {total}`.\n\
         # Written by hearth-bench --write-rules.\n"
    );
    if prefix != "hearth" {
        out.push_str(&format!("\n[hub]\ntopic_prefix = \"{prefix}\"\n"));
    }
    for k in 0..buttons {
        let _ = write!(
            out,
            "\n[[automations]]\nid = \"bench-{button}\"\ntriggers = [{{ button = \"{button}\", action = \"single\" }}]\n\
             actions = [{{ output = \"{output}\", command = \"ON\" }}]\n",
            button = button_id(k),
            output = light_output(node, k),
        );
    }
    for i in 0..total.saturating_sub(buttons) {
        let room = format!("room{i}");
        let body = match i % 5 {
            0 => format!(
                "triggers = [{{ at = \"{:02}:{:02}\", weekdays = [\"weekdays\"] }}]\n\
                 actions = [{{ output = \"house/light/{room}\", brightness_pct = 40 }}, {{ delay_s = 2700 }}, {{ output = \"house/light/{room}\", command = \"OFF\" }}]\n",
                5 + i % 4,
                i % 60
            ),
            1 => format!(
                "mode = \"restart\"\ntriggers = [{{ input = \"house/motion-{room}\", to = \"ON\" }}]\n\
                 conditions = [{{ after = \"18:00\", before = \"07:00\" }}]\n\
                 actions = [{{ output = \"house/light/{room}\", command = \"ON\" }}, {{ wait = {{ input = \"house/motion-{room}\", to = \"OFF\" }} }}, {{ delay_s = 120 }}, {{ output = \"house/light/{room}\", command = \"OFF\" }}]\n"
            ),
            2 => format!(
                "triggers = [{{ climate = \"{room}\", reading = \"temperature\", above = 26.0, hysteresis = 0.5 }}]\n\
                 actions = [{{ output = \"house/switch/fan-{room}\", command = \"ON\" }}]\n"
            ),
            3 => format!(
                "triggers = [{{ topic = \"zigbee2mqtt/remote-{room}\", field = \"action\", equals = \"arrow_left_click\" }}]\n\
                 actions = [{{ output = \"house/light/{room}\", command = \"TOGGLE\" }}]\n"
            ),
            _ => format!(
                "cooldown_s = 600\ntriggers = [{{ input = \"house/door-{room}\", to = \"ON\" }}]\n\
                 conditions = [{{ button = \"away\", state = \"ON\" }}]\n\
                 actions = [{{ play = \"alarm.wav\", speakers = [\"kitchen\"] }}]\n"
            ),
        };
        let _ = write!(out, "\n[[automations]]\nid = \"{room}\"\n{body}");
    }
    out
}

/// How many of `presses` round-robin presses land on button `k` of `buttons`.
pub fn presses_for(k: u32, buttons: u32, presses: u64) -> u64 {
    let b = u64::from(buttons.max(1));
    presses / b + u64::from(u64::from(k) < presses % b)
}

/// Sequence number of the `nth` press (0-based) of button `k`, the inverse
/// of the round-robin `seq % buttons == k`.
pub fn press_seq(k: u32, nth: u64, buttons: u32) -> u64 {
    nth * u64::from(buttons.max(1)) + u64::from(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_prefixes_follow_the_hub() {
        assert!(is_valid_id("pi-1") && is_valid_id("a_b") && is_valid_id(&"x".repeat(64)));
        for bad in ["", "Pi", "a b", "a/b", "a+", &"x".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
        assert!(is_valid_prefix("hearth") && is_valid_prefix("home/hearth"));
        for bad in ["", "/hearth", "hearth/", "a//b", "a/+", "#"] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn topics_round_trip_to_the_button() {
        assert_eq!(press_topic("hearth", 3), "hearth/button/b3/press");
        assert_eq!(
            command_filter("hearth", "pi-1"),
            "hearth/node/pi-1/light/+/set"
        );
        let topic = format!("hearth/node/{}/set", light_output("pi-1", 42));
        assert_eq!(topic, "hearth/node/pi-1/light/l42/set");
        assert_eq!(command_button(&topic, "hearth", "pi-1"), Some(42));
        assert_eq!(
            command_button("home/h/node/n/light/l0/set", "home/h", "n"),
            Some(0)
        );
        for foreign in [
            "hearth/node/pi-1/light/lamp/set",
            "hearth/node/pi-1/light/l/set",
            "hearth/node/pi-1/light/l07/set",
            "hearth/node/pi-1/light/l-1/set",
            "hearth/node/pi-1/light/l1/state",
            "hearth/node/pi-2/light/l1/set",
            "hearth/node/pi-1/switch/l1/set",
            "other/node/pi-1/light/l1/set",
            "hearth/node/pi-1/light/l99999999999/set",
        ] {
            assert_eq!(command_button(foreign, "hearth", "pi-1"), None, "{foreign}");
        }
    }

    #[test]
    fn press_payload_is_json_with_a_unique_id() {
        let p = press_payload("ab12", 7);
        let v: serde_json::Value = serde_json::from_str(&p).expect("valid JSON");
        assert_eq!(v["action"], "single");
        assert_eq!(v["id"], "bench-ab12-7");
        assert_ne!(press_payload("ab12", 8), p);
    }

    #[test]
    fn rules_give_each_button_its_own_light() {
        let text = rules_toml(3, "pi-1", "hearth");
        let doc: toml::Table = text.parse().expect("valid TOML");
        let rules = doc["rules"].as_array().expect("rules array");
        assert_eq!(rules.len(), 3);
        for (k, rule) in rules.iter().enumerate() {
            assert_eq!(
                rule["when"]["button"].as_str(),
                Some(format!("b{k}").as_str())
            );
            assert_eq!(rule["when"]["action"].as_str(), Some("single"));
            let then = rule["then"].as_array().expect("then array");
            assert_eq!(then.len(), 1);
            assert_eq!(
                then[0]["output"].as_str(),
                Some(format!("pi-1/light/l{k}").as_str())
            );
            assert_eq!(then[0]["command"].as_str(), Some("ON"));
        }
        assert!(!text.contains("topic_prefix"));
        let other = rules_toml(1, "n", "home/h");
        assert!(other.contains("topic_prefix = \"home/h\""), "{other}");
        other.parse::<toml::Table>().expect("still valid TOML");
    }

    #[test]
    fn round_robin_counts_and_sequences_agree() {
        for (buttons, presses) in [(1, 10), (3, 10), (4, 3), (7, 700)] {
            let total: u64 = (0..buttons).map(|k| presses_for(k, buttons, presses)).sum();
            assert_eq!(total, presses, "{buttons} buttons, {presses} presses");
            for k in 0..buttons {
                for nth in 0..presses_for(k, buttons, presses) {
                    let seq = press_seq(k, nth, buttons);
                    assert!(seq < presses);
                    assert_eq!(seq % u64::from(buttons), u64::from(k));
                }
            }
        }
    }
}
