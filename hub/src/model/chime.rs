//! A chime: what it is, how its schedule is written, and when it plays next (pure).
//!
//! A chime plays a sound on a speaker at the times its schedule names, in its
//! own time zone. Schedules are cron expressions (five fields, or six with
//! seconds first) or the shorthand `"07:00"` (optionally `"07:00:30"`) with
//! optional weekdays. croner resolves local times against chrono-tz, so a
//! time skipped by a spring-forward change plays at the first instant after
//! the gap, and a time that happens twice in a fall-back change plays once.
//! Everything here is pure; `crate::chimes::scheduler` runs it.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use hearth_protocol::Id;
use serde::{Deserialize, Serialize};

/// How late a missed occurrence may still play, unless the chime says otherwise.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);
/// Longest catch-up window a chime may ask for.
pub const MAX_CATCH_UP: Duration = Duration::from_secs(24 * 3600);
/// Longest chime name.
const MAX_NAME_LEN: usize = 100;

/// Where a chime was declared: config chimes come and go with the file, and
/// the file re-applies one when its entry there changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Runtime,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Runtime => "runtime",
        }
    }
}

/// A chime as written by a person: in the config file, an HTTP body or an
/// MQTT payload. Every field is checked by [`ChimeSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChimeSpec {
    /// Only in the config file and in `POST /api/v1/chimes`; elsewhere the
    /// id comes from the path or topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub schedule: String,
    /// With a `"HH:MM"` schedule: days to play on (`mon`..`sun`, or
    /// `weekdays`/`weekends`). Empty: every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    pub speaker: String,
    pub sound: String,
    #[serde(default)]
    pub volume: Option<u8>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub catch_up_secs: Option<u64>,
}

/// Why a chime was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct ChimeError {
    pub field: &'static str,
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> ChimeError {
    ChimeError {
        field,
        why: why.into(),
    }
}

/// A parsed schedule: the text as given and the cron it means.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    weekdays: Vec<String>,
    cron: Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Schedule({:?}, {:?})",
            self.text,
            self.cron.pattern.to_string()
        )
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.weekdays == other.weekdays
    }
}

impl Schedule {
    /// Parses a cron expression or the `"HH:MM[:SS]"` shorthand with weekdays.
    pub fn parse(text: &str, weekdays: &[String]) -> Result<Self, ChimeError> {
        let trimmed = text.trim();
        let pattern = match shorthand(trimmed)? {
            Some((h, m, s)) => format!("{s} {m} {h} * * {}", weekday_field(weekdays)?),
            None => {
                if !weekdays.is_empty() {
                    return Err(bad(
                        "weekdays",
                        "only goes with an \"HH:MM\" schedule; put days in the cron expression",
                    ));
                }
                trimmed.to_owned()
            }
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(&pattern)
            .map_err(|e| {
                bad(
                    "schedule",
                    format!("{trimmed:?} is not a valid cron expression or HH:MM time: {e}"),
                )
            })?;
        Ok(Self {
            text: trimmed.to_owned(),
            weekdays: weekdays.to_vec(),
            cron,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn weekdays(&self) -> &[String] {
        &self.weekdays
    }

    /// The first occurrence strictly after `after`, as an instant.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Every occurrence in `(from, to]`, at most `limit` of them.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < limit {
            match self.next_after(cursor, tz) {
                Some(next) if next <= to => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// `"HH:MM"` or `"HH:MM:SS"` as (hour, minute, second); `None` for anything
/// that is not shaped like a time (then it may be a cron expression).
fn shorthand(text: &str) -> Result<Option<(u32, u32, u32)>, ChimeError> {
    if text.contains(' ') || !text.contains(':') {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split(':').collect();
    let numbers: Option<Vec<u32>> = parts
        .iter()
        .map(|p| {
            (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect();
    let invalid = || {
        bad(
            "schedule",
            format!("{text:?} is not a time: use HH:MM or HH:MM:SS (24-hour)"),
        )
    };
    match numbers.as_deref() {
        Some([h, m]) if *h < 24 && *m < 60 => Ok(Some((*h, *m, 0))),
        Some([h, m, s]) if *h < 24 && *m < 60 && *s < 60 => Ok(Some((*h, *m, *s))),
        _ => Err(invalid()),
    }
}

/// The day-of-week cron field for `weekdays`.
fn weekday_field(weekdays: &[String]) -> Result<String, ChimeError> {
    if weekdays.is_empty() {
        return Ok("*".to_owned());
    }
    let days: Vec<String> = parse_weekdays(weekdays)?
        .iter()
        .map(|d| d.to_string().to_ascii_uppercase())
        .collect();
    Ok(days.join(","))
}

/// Days as people write them (`mon`..`sun`, `monday`, `weekdays`,
/// `weekends`), each once, in the order given. Chimes and automations
/// share this one reading.
pub fn parse_weekdays(weekdays: &[String]) -> Result<Vec<Weekday>, ChimeError> {
    use Weekday::*;
    let mut days: Vec<Weekday> = Vec::new();
    for day in weekdays {
        let named: &[Weekday] = match day.trim().to_ascii_lowercase().as_str() {
            "weekdays" => &[Mon, Tue, Wed, Thu, Fri],
            "weekends" => &[Sat, Sun],
            "mon" | "monday" => &[Mon],
            "tue" | "tuesday" => &[Tue],
            "wed" | "wednesday" => &[Wed],
            "thu" | "thursday" => &[Thu],
            "fri" | "friday" => &[Fri],
            "sat" | "saturday" => &[Sat],
            "sun" | "sunday" => &[Sun],
            _ => {
                return Err(bad(
                    "weekdays",
                    format!("{day:?} is not a day: use mon..sun, weekdays or weekends"),
                ));
            }
        };
        for d in named {
            if !days.contains(d) {
                days.push(*d);
            }
        }
    }
    Ok(days)
}

/// Checks a sound name: a plain file name inside the speaker's sounds
/// directory, so a payload can never point a player at another path.
pub fn validate_sound(sound: &str) -> Result<(), ChimeError> {
    // The agent checks a play's sound by the same rule: a chime the hub
    // saves is one a speaker will play.
    hearth_protocol::sound::validate_sound_name(sound)
        .map(|_| ())
        .map_err(|e| bad("sound", e.to_string()))
}

/// A checked chime, ready to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Chime {
    pub id: Id,
    pub name: String,
    pub schedule: Schedule,
    pub timezone: Tz,
    pub speaker: Id,
    pub sound: String,
    pub volume: Option<u8>,
    pub enabled: bool,
    pub catch_up: Duration,
    pub source: Source,
}

impl ChimeSpec {
    /// Checks every field; `id` is used when the spec carries none.
    /// `default_tz` is the hub's time zone.
    pub fn validate(
        &self,
        id: Option<&Id>,
        default_tz: Tz,
        source: Source,
    ) -> Result<Chime, ChimeError> {
        let id = match (&self.id, id) {
            (Some(given), Some(path)) if given != path.as_str() => {
                return Err(bad(
                    "id",
                    format!("{given:?} differs from {:?} in the path", path.as_str()),
                ));
            }
            (Some(given), _) => Id::new(given).map_err(|e| bad("id", e.to_string()))?,
            (None, Some(path)) => path.clone(),
            (None, None) => return Err(bad("id", "missing")),
        };
        let name = self.name.clone().unwrap_or_else(|| id.to_string());
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(bad(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} printable characters"),
            ));
        }
        let schedule = Schedule::parse(&self.schedule, &self.weekdays)?;
        let timezone = match &self.timezone {
            Some(tz) => tz.parse::<Tz>().map_err(|_| {
                bad(
                    "timezone",
                    format!("{tz:?} is not an IANA time zone (e.g. \"Europe/Berlin\")"),
                )
            })?,
            None => default_tz,
        };
        let speaker = Id::new(&self.speaker).map_err(|e| bad("speaker", e.to_string()))?;
        validate_sound(&self.sound)?;
        if let Some(v) = self.volume.filter(|v| *v > 100) {
            return Err(bad("volume", format!("{v} is above 100")));
        }
        let catch_up = self
            .catch_up_secs
            .map_or(DEFAULT_CATCH_UP, Duration::from_secs);
        if catch_up > MAX_CATCH_UP {
            return Err(bad(
                "catch_up_secs",
                format!("at most {} seconds", MAX_CATCH_UP.as_secs()),
            ));
        }
        Ok(Chime {
            id,
            name,
            schedule,
            timezone,
            speaker,
            sound: self.sound.clone(),
            volume: self.volume,
            enabled: self.enabled.unwrap_or(true),
            catch_up,
            source,
        })
    }
}

/// A chime as the API and `hearth/hub/chimes/<id>` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChimeView {
    pub id: Id,
    pub name: String,
    pub schedule: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    pub timezone: String,
    pub speaker: Id,
    pub sound: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    pub enabled: bool,
    pub catch_up_secs: u64,
    pub source: Source,
    pub next_at: Option<String>,
}

impl Chime {
    /// The next time this chime plays after `now`; `None` when disabled or never.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        self.schedule.next_after(now, self.timezone)
    }

    pub fn view(&self, now: DateTime<Utc>) -> ChimeView {
        ChimeView {
            id: self.id.clone(),
            name: self.name.clone(),
            schedule: self.schedule.text().to_owned(),
            weekdays: self.schedule.weekdays().to_vec(),
            timezone: self.timezone.name().to_owned(),
            speaker: self.speaker.clone(),
            sound: self.sound.clone(),
            volume: self.volume,
            enabled: self.enabled,
            catch_up_secs: self.catch_up.as_secs(),
            source: self.source,
            next_at: self.next_after(now).map(|t| {
                t.with_timezone(&self.timezone)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            }),
        }
    }

    /// The spec that recreates this chime (what the store keeps).
    pub fn spec(&self) -> ChimeSpec {
        ChimeSpec {
            id: Some(self.id.to_string()),
            name: Some(self.name.clone()),
            schedule: self.schedule.text().to_owned(),
            weekdays: self.schedule.weekdays().to_vec(),
            timezone: Some(self.timezone.name().to_owned()),
            speaker: self.speaker.to_string(),
            sound: self.sound.clone(),
            volume: self.volume,
            enabled: Some(self.enabled),
            catch_up_secs: Some(self.catch_up.as_secs()),
        }
    }
}

/// What to do about one occurrence found late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// Within the catch-up window: play it now, once.
    PlayLate,
    /// Too old: record it as missed, do not play.
    Missed,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// "Tea time": 16:20 UTC on the kitchen speaker, a runtime chime.
    pub(crate) fn tea() -> Chime {
        ChimeSpec {
            name: Some("Tea time".into()),
            schedule: "16:20".into(),
            speaker: "kitchen".into(),
            sound: "tea.wav".into(),
            ..ChimeSpec::default()
        }
        .validate(
            Some(&Id::new("tea").unwrap()),
            chrono_tz::UTC,
            Source::Runtime,
        )
        .unwrap()
    }

    pub(crate) fn spec(schedule: &str) -> ChimeSpec {
        ChimeSpec {
            schedule: schedule.into(),
            speaker: "kitchen".into(),
            sound: "bell.wav".into(),
            ..ChimeSpec::default()
        }
    }

    fn plays(schedule: &str, weekdays: &[&str], tz: Tz, from: &str, to: &str) -> Vec<String> {
        let weekdays: Vec<String> = weekdays.iter().map(|s| s.to_string()).collect();
        let s = Schedule::parse(schedule, &weekdays).unwrap();
        s.between(utc(from), utc(to), tz, 100)
            .into_iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect()
    }

    #[test]
    fn new_york_spring_forward_plays_a_skipped_time_once_right_after_the_gap() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        let tz = chrono_tz::America::New_York;
        assert_eq!(
            plays(
                "02:30",
                &[],
                tz,
                "2026-03-07T00:00:00Z",
                "2026-03-10T00:00:00Z"
            ),
            [
                "2026-03-07T07:30:00Z", // 02:30 EST
                "2026-03-08T07:00:00Z", // the gap: first valid instant, 03:00 EDT
                "2026-03-09T06:30:00Z", // 02:30 EDT
            ]
        );
    }

    #[test]
    fn new_york_fall_back_plays_a_doubled_time_once() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        let tz = chrono_tz::America::New_York;
        assert_eq!(
            plays(
                "01:30",
                &[],
                tz,
                "2026-10-31T00:00:00Z",
                "2026-11-03T00:00:00Z"
            ),
            [
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z", // the first 01:30 (EDT) only
                "2026-11-02T06:30:00Z",
            ]
        );
    }

    #[test]
    fn berlin_weekday_mornings_across_both_changes() {
        let tz = chrono_tz::Europe::Berlin;
        // Spring: 2026-03-29 (Sunday) 02:00 CET -> 03:00 CEST.
        assert_eq!(
            plays(
                "02:15",
                &[],
                tz,
                "2026-03-28T00:00:00Z",
                "2026-03-31T00:00:00Z"
            ),
            [
                "2026-03-28T01:15:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:15:00Z"
            ]
        );
        // Autumn: 2026-10-25 03:00 CEST -> 02:00 CET; 02:15 twice, plays once.
        assert_eq!(
            plays(
                "02:15",
                &[],
                tz,
                "2026-10-24T00:00:00Z",
                "2026-10-27T00:00:00Z"
            ),
            [
                "2026-10-24T00:15:00Z",
                "2026-10-25T00:15:00Z",
                "2026-10-26T01:15:00Z"
            ]
        );
        // Weekdays at 07:00 over the spring weekend: Fri, then Mon, in the new offset.
        assert_eq!(
            plays(
                "07:00",
                &["weekdays"],
                tz,
                "2026-03-27T00:00:00Z",
                "2026-03-31T00:00:00Z"
            ),
            ["2026-03-27T06:00:00Z", "2026-03-30T05:00:00Z"]
        );
    }

    #[test]
    fn sydney_changes_in_april_and_october() {
        let tz = chrono_tz::Australia::Sydney;
        // 2026-04-05 03:00 AEDT -> 02:00 AEST: 02:30 happens twice.
        assert_eq!(
            plays(
                "02:30",
                &[],
                tz,
                "2026-04-04T00:00:00Z",
                "2026-04-06T00:00:00Z"
            ),
            ["2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"]
        );
        // 2026-10-04 02:00 AEST -> 03:00 AEDT: 02:30 does not exist.
        assert_eq!(
            plays(
                "02:30",
                &[],
                tz,
                "2026-10-02T12:00:00Z",
                "2026-10-05T12:00:00Z"
            ),
            [
                "2026-10-02T16:30:00Z",
                "2026-10-03T16:00:00Z",
                "2026-10-04T15:30:00Z"
            ]
        );
    }

    #[test]
    fn homeslice_tea_time_in_los_angeles() {
        let tz = chrono_tz::America::Los_Angeles;
        let chime = ChimeSpec {
            timezone: Some("America/Los_Angeles".into()),
            speaker: "living-room".into(),
            ..spec("16:20")
        }
        .validate(
            Some(&Id::new("tea").unwrap()),
            chrono_tz::UTC,
            Source::Config,
        )
        .unwrap();
        let now = tz
            .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(chime.next_after(now), Some(utc("2026-11-23T00:20:00Z")));
        assert_eq!(
            chime.view(now).next_at.as_deref(),
            Some("2026-11-22T16:20:00-08:00")
        );
    }

    #[test]
    fn cron_expressions_with_and_without_seconds() {
        let tz = chrono_tz::UTC;
        assert_eq!(
            plays(
                "*/20 * * * * *",
                &[],
                tz,
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:01:00Z"
            ),
            [
                "2026-01-01T00:00:20Z",
                "2026-01-01T00:00:40Z",
                "2026-01-01T00:01:00Z"
            ]
        );
        assert_eq!(
            plays(
                "0 7 * * 1-5",
                &[],
                tz,
                "2026-01-02T00:00:00Z",
                "2026-01-06T00:00:00Z"
            ),
            ["2026-01-02T07:00:00Z", "2026-01-05T07:00:00Z"]
        );
    }

    #[test]
    fn bad_chimes_name_the_field() {
        let id = Id::new("c").unwrap();
        let check = |s: ChimeSpec| {
            s.validate(Some(&id), chrono_tz::UTC, Source::Runtime)
                .unwrap_err()
        };
        assert_eq!(check(spec("25:00")).field, "schedule");
        assert_eq!(check(spec("every morning")).field, "schedule");
        assert_eq!(check(spec("* * *")).field, "schedule");
        assert_eq!(
            check(ChimeSpec {
                weekdays: vec!["caturday".into()],
                ..spec("07:00")
            })
            .field,
            "weekdays"
        );
        assert_eq!(
            check(ChimeSpec {
                weekdays: vec!["mon".into()],
                ..spec("0 7 * * *")
            })
            .field,
            "weekdays"
        );
        assert_eq!(
            check(ChimeSpec {
                timezone: Some("Mars/Base".into()),
                ..spec("07:00")
            })
            .field,
            "timezone"
        );
        assert_eq!(
            check(ChimeSpec {
                speaker: "Living Room".into(),
                ..spec("07:00")
            })
            .field,
            "speaker"
        );
        assert_eq!(
            check(ChimeSpec {
                sound: "../etc/passwd".into(),
                ..spec("07:00")
            })
            .field,
            "sound"
        );
        // Every name a speaker would refuse, the hub refuses when saving.
        for sound in [".hidden", "a..b", &"a".repeat(129)] {
            assert_eq!(
                check(ChimeSpec {
                    sound: sound.into(),
                    ..spec("07:00")
                })
                .field,
                "sound",
                "{sound}"
            );
        }
        assert_eq!(
            check(ChimeSpec {
                volume: Some(101),
                ..spec("07:00")
            })
            .field,
            "volume"
        );
        assert_eq!(
            check(ChimeSpec {
                catch_up_secs: Some(100_000),
                ..spec("07:00")
            })
            .field,
            "catch_up_secs"
        );
        assert_eq!(
            check(ChimeSpec {
                id: Some("other".into()),
                ..spec("07:00")
            })
            .field,
            "id"
        );
        let err = check(spec("25:00"));
        assert_eq!(
            err.to_string(),
            "schedule: \"25:00\" is not a time: use HH:MM or HH:MM:SS (24-hour)"
        );
    }

    #[test]
    fn unknown_json_fields_are_refused() {
        let err = serde_json::from_str::<ChimeSpec>(
            r#"{"schedule":"07:00","speaker":"k","sound":"a.wav","colour":"red"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn disabled_chimes_have_no_next_time() {
        let chime = ChimeSpec {
            enabled: Some(false),
            ..spec("07:00")
        }
        .validate(
            Some(&Id::new("c").unwrap()),
            chrono_tz::UTC,
            Source::Runtime,
        )
        .unwrap();
        assert_eq!(chime.next_after(Utc::now()), None);
    }
}
