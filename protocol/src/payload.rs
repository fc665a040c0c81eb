//! Payloads of the topic contract: commands, states, press actions, events, climate.
//!
//! Every parser accepts the plain text a person types into `mosquitto_pub`
//! (any case, surrounding whitespace) and the JSON form a program sends, and
//! rejects everything else with a `PayloadError` saying what was expected.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// Longest payload text quoted back in an error message.
const MAX_QUOTED: usize = 40;

/// Why a payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not UTF-8 text")]
    NotUtf8,
    #[error("expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: String },
    #[error("invalid JSON payload: {0}")]
    Json(String),
}

/// Longest JSON parser message kept: serde quotes unknown keys in full, and
/// a hostile 10 KB key must not become a 10 KB error on hearth/hub/error.
pub const MAX_JSON_ERROR: usize = 200;

/// serde_json's message for `error`, cut to [`MAX_JSON_ERROR`] bytes (at a
/// character boundary, then `…`). Every error that quotes a parser message
/// back to a sender goes through this, in this crate and beyond.
pub fn json_error_message(error: &serde_json::Error) -> String {
    let mut text = error.to_string();
    if text.len() > MAX_JSON_ERROR {
        let mut cut = MAX_JSON_ERROR;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl PayloadError {
    fn json(error: &serde_json::Error) -> Self {
        Self::Json(json_error_message(error))
    }

    fn unexpected(expected: &'static str, got: &str) -> Self {
        let mut quoted: String = got.chars().take(MAX_QUOTED).collect();
        if quoted.len() < got.len() {
            quoted.push('…');
        }
        Self::Unexpected {
            expected,
            got: quoted,
        }
    }
}

fn text(payload: &[u8]) -> Result<&str, PayloadError> {
    std::str::from_utf8(payload)
        .map(str::trim)
        .map_err(|_| PayloadError::NotUtf8)
}

fn looks_like_json_object(text: &str) -> bool {
    text.starts_with('{')
}

/// What a command asks an output or button to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Command {
    On,
    Off,
    Toggle,
}

const COMMAND_EXPECTED: &str = "ON, OFF, TOGGLE or {\"state\":\"ON\"}";

impl Command {
    /// Parses `ON`/`OFF`/`TOGGLE` in any case with optional whitespace, or
    /// `{"state":"ON"}`.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let text = text(payload)?;
        if looks_like_json_object(text) {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Json {
                state: String,
            }
            let json: Json = serde_json::from_str(text).map_err(|e| PayloadError::json(&e))?;
            return Self::from_word(json.state.trim())
                .ok_or_else(|| PayloadError::unexpected(COMMAND_EXPECTED, &json.state));
        }
        Self::from_word(text).ok_or_else(|| PayloadError::unexpected(COMMAND_EXPECTED, text))
    }

    fn from_word(word: &str) -> Option<Self> {
        [Self::On, Self::Off, Self::Toggle]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(word))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "ON",
            Self::Off => "OFF",
            Self::Toggle => "TOGGLE",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a button or output, as published on `.../state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OnOff {
    On,
    #[default]
    Off,
}

impl OnOff {
    /// The state after applying `command` to `self`.
    pub fn apply(self, command: Command) -> Self {
        match command {
            Command::On => Self::On,
            Command::Off => Self::Off,
            Command::Toggle => self.toggled(),
        }
    }

    pub fn toggled(self) -> Self {
        match self {
            Self::On => Self::Off,
            Self::Off => Self::On,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "ON",
            Self::Off => "OFF",
        }
    }

    pub fn is_on(self) -> bool {
        self == Self::On
    }

    /// Parses a published state (`ON`/`OFF`, any case, or `{"state":"ON"}`).
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        match Command::parse(payload)? {
            Command::On => Ok(Self::On),
            Command::Off => Ok(Self::Off),
            Command::Toggle => Err(PayloadError::unexpected("ON or OFF", "TOGGLE")),
        }
    }
}

impl From<bool> for OnOff {
    fn from(on: bool) -> Self {
        if on { Self::On } else { Self::Off }
    }
}

impl fmt::Display for OnOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of press a button reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PressAction {
    #[default]
    Single,
    Double,
    Long,
}

const PRESS_EXPECTED: &str = "an empty payload, single, double, long or {\"action\":\"single\"}";

impl PressAction {
    pub const ALL: [PressAction; 3] = [Self::Single, Self::Double, Self::Long];

    /// Parses a press: empty means `single`; words in any case; or
    /// `{"action":"double"}`. See [`Press::parse`] for the optional id.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        Press::parse(payload).map(|p| p.action)
    }

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(word))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Double => "double",
            Self::Long => "long",
        }
    }
}

impl fmt::Display for PressAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest message id a press may carry.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// A press as published on `hearth/button/<id>/press`.
///
/// A JSON press may carry an `id` unique to that press (`{"action":"single",
/// "id":"desk-4711"}`): the hub then recognises a redelivery of the same press
/// after a crash and counts it once. Presses without an id are at-least-once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    pub action: PressAction,
    pub id: Option<String>,
}

impl Press {
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let text = text(payload)?;
        if text.is_empty() {
            return Ok(Self {
                action: PressAction::Single,
                id: None,
            });
        }
        if !looks_like_json_object(text) {
            let action = PressAction::from_word(text)
                .ok_or_else(|| PayloadError::unexpected(PRESS_EXPECTED, text))?;
            return Ok(Self { action, id: None });
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Json {
            #[serde(default)]
            action: Option<String>,
            #[serde(default)]
            id: Option<String>,
        }
        let json: Json = serde_json::from_str(text).map_err(|e| PayloadError::json(&e))?;
        let action = match json.action {
            None => PressAction::Single,
            Some(a) => PressAction::from_word(a.trim())
                .ok_or_else(|| PayloadError::unexpected(PRESS_EXPECTED, &a))?,
        };
        if let Some(id) = &json.id
            && (id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN || id.chars().any(char::is_control))
        {
            return Err(PayloadError::unexpected(
                "an id of 1 to 128 printable characters",
                id,
            ));
        }
        Ok(Self {
            action,
            id: json.id,
        })
    }
}

/// Serializes timestamps as RFC 3339 with millisecond precision and `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    /// The same for an optional field (`#[serde(default)]` covers absence).
    pub mod optional {
        use chrono::{DateTime, Utc};
        use serde::Deserializer;

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// Published by the hub on `hearth/button/<id>/event` for each press.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonEvent {
    pub event_type: PressAction,
    #[serde(with = "rfc3339_millis")]
    pub at: DateTime<Utc>,
}

/// A climate reading published by a node agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Climate {
    pub temperature: f64,
    pub humidity: f64,
    #[serde(with = "rfc3339_millis")]
    pub at: DateTime<Utc>,
}

impl Climate {
    /// A reading as the contract writes it, `at` included.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let climate: Self = serde_json::from_slice(payload).map_err(|e| PayloadError::json(&e))?;
        climate.checked()
    }

    /// A reading from anyone: one without `at` (a DIY sensor, a shell) is
    /// taken as measured at `received`.
    pub fn parse_received(payload: &[u8], received: DateTime<Utc>) -> Result<Self, PayloadError> {
        #[derive(Deserialize)]
        struct Undated {
            temperature: f64,
            humidity: f64,
            #[serde(default, with = "rfc3339_millis::optional")]
            at: Option<DateTime<Utc>>,
        }
        let reading: Undated =
            serde_json::from_slice(payload).map_err(|e| PayloadError::json(&e))?;
        Self {
            temperature: reading.temperature,
            humidity: reading.humidity,
            at: reading.at.unwrap_or(received),
        }
        .checked()
    }

    fn checked(self) -> Result<Self, PayloadError> {
        if !self.temperature.is_finite() || !self.humidity.is_finite() {
            return Err(PayloadError::unexpected(
                "finite numbers",
                "non-finite reading",
            ));
        }
        Ok(self)
    }
}

/// Parses a plain number payload such as `21.5` (also accepts JSON numbers).
pub fn parse_number(payload: &[u8]) -> Result<f64, PayloadError> {
    let text = text(payload)?;
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| PayloadError::unexpected("a number", text))
}

/// Liveness of a node or the hub, retained on `.../availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Online,
    Offline,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let text = text(payload)?;
        [Self::Online, Self::Offline]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| PayloadError::unexpected("online or offline", text))
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Asks a speaker to play a sound, on `hearth/chime/<speaker>/play`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChimePlay {
    pub sound: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chime: Option<Id>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_rfc3339"
    )]
    pub scheduled_for: Option<DateTime<Utc>>,
}

mod optional_rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::rfc3339(*at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

impl ChimePlay {
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let play: Self = serde_json::from_slice(payload).map_err(|e| PayloadError::json(&e))?;
        if play.volume.is_some_and(|v| v > 100) {
            return Err(PayloadError::unexpected(
                "volume from 0 to 100",
                &play.volume.unwrap_or_default().to_string(),
            ));
        }
        Ok(play)
    }
}

/// Published by the hub on `hearth/hub/error` when it rejects a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub topic: String,
    pub error: String,
}

/// The clock payload: 24-hour `HHMM`, zero padded.
pub fn hhmm(hour: u32, minute: u32) -> String {
    format!("{hour:02}{minute:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_in_any_case_with_whitespace_or_json() {
        for (raw, want) in [
            (&b"ON"[..], Command::On),
            (b"on", Command::On),
            (b" Off\n", Command::Off),
            (b"toggle", Command::Toggle),
            (br#"{"state":"ON"}"#, Command::On),
            (br#" { "state" : "toggle" } "#, Command::Toggle),
        ] {
            assert_eq!(
                Command::parse(raw),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn bad_commands_say_what_was_expected() {
        let err = Command::parse(b"maybe").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"expected ON, OFF, TOGGLE or {"state":"ON"}, got "maybe""#
        );
        assert_eq!(Command::parse(&[0xff, 0xfe]), Err(PayloadError::NotUtf8));
        assert!(matches!(
            Command::parse(br#"{"state":1}"#),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            Command::parse(br#"{"stat":"ON"}"#),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            Command::parse(b""),
            Err(PayloadError::Unexpected { .. })
        ));
    }

    #[test]
    fn long_bad_payloads_are_quoted_short() {
        let long = "x".repeat(10_000);
        let err = Command::parse(long.as_bytes()).unwrap_err().to_string();
        assert!(err.len() < 120, "{err}");
    }

    #[test]
    fn json_errors_are_quoted_short() {
        let key = "x".repeat(10_000);
        let err = Command::parse(format!("{{\"{key}\":1}}").as_bytes()).unwrap_err();
        assert!(
            err.to_string().len() < 300,
            "{} bytes",
            err.to_string().len()
        );
    }

    #[test]
    fn json_error_messages_are_cut_at_a_character_boundary() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Json {}
        // "é" is two bytes: after serde's "unknown field `" prefix a cut at
        // byte 200 falls inside one for one of the two key lengths.
        for pad in [0, 1] {
            let key = format!("{}{}", "x".repeat(pad), "é".repeat(5_000));
            let error = serde_json::from_str::<Json>(&format!("{{\"{key}\":1}}")).unwrap_err();
            let full = error.to_string();
            let message = json_error_message(&error);
            let kept = message.strip_suffix('…').expect("marked as cut");
            assert!(kept.len() <= MAX_JSON_ERROR && kept.len() >= MAX_JSON_ERROR - 1);
            assert!(full.starts_with(kept), "{message}");
        }
        let short = serde_json::from_str::<Json>("{").unwrap_err();
        assert_eq!(
            json_error_message(&short),
            short.to_string(),
            "short ones are whole"
        );
    }

    #[test]
    fn state_follows_commands() {
        assert_eq!(OnOff::Off.apply(Command::Toggle), OnOff::On);
        assert_eq!(OnOff::On.apply(Command::Toggle), OnOff::Off);
        assert_eq!(OnOff::On.apply(Command::On), OnOff::On);
        assert_eq!(OnOff::On.apply(Command::Off), OnOff::Off);
        assert!(OnOff::parse(b"TOGGLE").is_err());
        assert_eq!(OnOff::parse(b"on"), Ok(OnOff::On));
    }

    #[test]
    fn press_actions() {
        assert_eq!(PressAction::parse(b""), Ok(PressAction::Single));
        assert_eq!(PressAction::parse(b"  \n"), Ok(PressAction::Single));
        assert_eq!(PressAction::parse(b"DOUBLE"), Ok(PressAction::Double));
        assert_eq!(
            PressAction::parse(br#"{"action":"long"}"#),
            Ok(PressAction::Long)
        );
        assert_eq!(PressAction::parse(b"{}"), Ok(PressAction::Single));
        assert!(PressAction::parse(b"triple").is_err());
        assert!(PressAction::parse(br#"{"action":"single","colour":1}"#).is_err());
    }

    #[test]
    fn presses_may_carry_an_id() {
        assert_eq!(
            Press::parse(br#"{"action":"double","id":"desk-1"}"#),
            Ok(Press {
                action: PressAction::Double,
                id: Some("desk-1".into())
            })
        );
        assert_eq!(Press::parse(b"long").map(|p| p.id), Ok(None));
        assert!(Press::parse(br#"{"id":""}"#).is_err());
        assert!(Press::parse(format!(r#"{{"id":"{}"}}"#, "x".repeat(129)).as_bytes()).is_err());
    }

    #[test]
    fn button_event_and_climate_json_shapes() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T14:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = ButtonEvent {
            event_type: PressAction::Double,
            at,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event_type":"double","at":"2026-11-22T14:20:00.000Z"}"#
        );
        let climate = Climate {
            temperature: 21.0,
            humidity: 40.0,
            at,
        };
        let json = serde_json::to_string(&climate).unwrap();
        assert_eq!(
            json,
            r#"{"temperature":21.0,"humidity":40.0,"at":"2026-11-22T14:20:00.000Z"}"#
        );
        assert_eq!(Climate::parse(json.as_bytes()), Ok(climate.clone()));
        assert!(Climate::parse(br#"{"temperature":"warm"}"#).is_err());

        // From anyone: a dated reading keeps its time, an undated one takes
        // the time it was received; the rest is checked as strictly.
        let received = at + chrono::Duration::seconds(5);
        assert_eq!(
            Climate::parse_received(json.as_bytes(), received),
            Ok(climate)
        );
        assert!(Climate::parse(br#"{"temperature":21.5,"humidity":40}"#).is_err());
        assert_eq!(
            Climate::parse_received(br#"{"temperature":21.5,"humidity":40}"#, received),
            Ok(Climate {
                temperature: 21.5,
                humidity: 40.0,
                at: received
            })
        );
        for bad in [
            &br#"{"temperature":21.5}"#[..],
            br#"{"temperature":21.5,"humidity":40,"at":"yesterday"}"#,
            br#"{"temperature":1e999,"humidity":40}"#,
            b"21.5",
        ] {
            assert!(
                Climate::parse_received(bad, received).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chime_play_round_trips_and_checks_volume() {
        let play = ChimePlay {
            sound: "bell.wav".into(),
            volume: Some(40),
            chime: Some(Id::new("tea").unwrap()),
            scheduled_for: Some(
                DateTime::parse_from_rfc3339("2026-11-22T16:20:00-08:00")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
        };
        let json = serde_json::to_vec(&play).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&json),
            r#"{"sound":"bell.wav","volume":40,"chime":"tea","scheduled_for":"2026-11-23T00:20:00.000Z"}"#
        );
        assert_eq!(ChimePlay::parse(&json), Ok(play));
        assert_eq!(
            ChimePlay::parse(br#"{"sound":"a"}"#).map(|p| p.volume),
            Ok(None)
        );
        assert!(ChimePlay::parse(br#"{"sound":"a","volume":101}"#).is_err());
        assert!(ChimePlay::parse(br#"{"sound":"a","colour":"red"}"#).is_err());
    }

    #[test]
    fn numbers_availability_and_clock() {
        assert_eq!(parse_number(b" 21.5 "), Ok(21.5));
        assert!(parse_number(b"NaN").is_err());
        assert!(parse_number(b"warm").is_err());
        assert_eq!(Availability::parse(b"online"), Ok(Availability::Online));
        assert!(Availability::parse(b"up").is_err());
        assert_eq!(hhmm(7, 5), "0705");
        assert_eq!(hhmm(14, 20), "1420");
    }
}
