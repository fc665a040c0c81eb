//! Property tests: every topic round-trips, and no input makes a parser panic.

use hearth_protocol::{
    Availability, ChimePlay, Climate, Command, Id, OnOff, OutputKind, OutputRef, PressAction,
    Quantity, Reading, Topic, Topics,
};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = Id> {
    "[a-z0-9_-]{1,64}".prop_map(|s| Id::new(&s).expect("strategy makes valid ids"))
}

fn kind() -> impl Strategy<Value = OutputKind> {
    prop::sample::select(OutputKind::ALL.to_vec())
}

fn output() -> impl Strategy<Value = OutputRef> {
    (id(), kind(), id()).prop_map(|(node, kind, name)| OutputRef { node, kind, name })
}

fn topic() -> impl Strategy<Value = Topic> {
    prop_oneof![
        id().prop_map(Topic::ButtonSet),
        id().prop_map(Topic::ButtonPress),
        id().prop_map(Topic::ButtonState),
        id().prop_map(Topic::ButtonEvent),
        Just(Topic::ClockHhmm),
        id().prop_map(Topic::NodeAvailability),
        id().prop_map(Topic::NodeClimate),
        (id(), prop::sample::select(Quantity::ALL.to_vec()))
            .prop_map(|(node, q)| Topic::NodeReading(node, q)),
        id().prop_map(Topic::NodeError),
        output().prop_map(Topic::OutputSet),
        output().prop_map(Topic::OutputState),
        id().prop_map(|speaker| Topic::ChimePlay { speaker }),
        id().prop_map(Topic::HubChimeSet),
        id().prop_map(Topic::HubChimePlay),
        id().prop_map(Topic::HubChimeEnabledSet),
        id().prop_map(Topic::HubChime),
        Just(Topic::HubAvailability),
        Just(Topic::HubError),
    ]
}

fn prefix() -> impl Strategy<Value = Topics> {
    "[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}".prop_map(|p| Topics::new(&p).expect("valid prefix"))
}

proptest! {
    #[test]
    fn parse_inverts_build(topics in prefix(), topic in topic()) {
        let text = topics.build(&topic);
        prop_assert_eq!(topics.parse(&text), Ok(topic));
    }

    #[test]
    fn arbitrary_topics_never_panic(raw in ".{0,200}") {
        let _ = Topics::default().parse(&raw);
    }

    #[test]
    fn near_miss_topics_never_panic(raw in "hearth(/[a-zA-Z0-9_+#-]{0,10}){0,7}") {
        if let Ok(topic) = Topics::default().parse(&raw) {
            // Anything accepted must be exactly what building it gives back.
            prop_assert_eq!(Topics::default().build(&topic), raw);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::parse(&bytes);
        let _ = OnOff::parse(&bytes);
        let _ = PressAction::parse(&bytes);
        let _ = Climate::parse(&bytes);
        let _ = Climate::parse_received(&bytes, chrono::Utc::now());
        let _ = ChimePlay::parse(&bytes);
        let _ = Availability::parse(&bytes);
        let _ = hearth_protocol::payload::parse_number(&bytes);
    }

    #[test]
    fn commands_parse_in_any_case_and_padding(
        word in prop::sample::select(vec!["on", "off", "toggle"]),
        upper in prop::collection::vec(any::<bool>(), 6),
        pad in "[ \t\r\n]{0,3}",
        json in any::<bool>(),
    ) {
        let cased: String = word.chars().zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c }).collect();
        let payload = if json { format!("{pad}{{\"state\":\"{cased}\"}}{pad}") } else { format!("{pad}{cased}{pad}") };
        let command = Command::parse(payload.as_bytes()).expect("valid command");
        prop_assert_eq!(command.as_str().to_ascii_lowercase(), word);
    }

    #[test]
    fn ids_validate_exactly_the_contract(raw in ".{0,70}") {
        let valid = !raw.is_empty() && raw.chars().count() <= 64
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        prop_assert_eq!(Id::new(&raw).is_ok(), valid);
    }
}

proptest! {
    /// The reading model accepts and refuses exactly what the climate
    /// message and the plain number always did.
    #[test]
    fn readings_accept_exactly_what_climate_and_numbers_accept(
        bytes in prop::collection::vec(any::<u8>(), 0..120),
        temperature in any::<f64>(),
        humidity in any::<f64>(),
        dated in any::<bool>(),
        junk in "[a-z]{0,6}",
    ) {
        let received = chrono::Utc::now();
        let at = if dated { r#","at":"2026-11-22T14:20:00Z""# } else { "" };
        let json = format!(r#"{{"temperature":{temperature:?},"humidity":{humidity:?}{at}}}"#);
        for payload in [bytes.as_slice(), json.as_bytes(), junk.as_bytes()] {
            let old = Climate::parse_received(payload, received);
            let new = Reading::from_climate(payload, received);
            prop_assert_eq!(old.is_ok(), new.is_ok(), "{:?}", String::from_utf8_lossy(payload));
            if let (Ok(old), Ok(new)) = (old, new) {
                prop_assert_eq!(new.len(), Quantity::ALL.len());
                prop_assert_eq!(new[0].value.to_bits(), old.temperature.to_bits());
                prop_assert_eq!(new[1].value.to_bits(), old.humidity.to_bits());
                prop_assert!(new.iter().all(|r| r.at == old.at));
            }
            for q in Quantity::ALL {
                let old = hearth_protocol::payload::parse_number(payload);
                let new = Reading::from_plain(q, payload, received);
                prop_assert_eq!(old.is_ok(), new.is_ok());
                if let (Ok(old), Ok(new)) = (old, new) {
                    prop_assert_eq!((new.quantity, new.value.to_bits(), new.at), (q, old.to_bits(), received));
                }
            }
        }
    }
}
