//! What goes in the logbook: the entries a decision's changes make, as pure functions.
//!
//! A message's entries are written in the same batch as its other rows
//! (`crate::model::effects::Write::Logbook`), so logging adds no queue and
//! no wait to the press path. Readings are not logged: they have their
//! own history (`readings`), and a sensor every minute would drown the
//! changes a person looks for.

use chrono::{DateTime, Utc};
use hearth_protocol::{Id, OnOff, OutputRef};

use crate::decide::automations::trace::{Outcome as RunOutcome, Trace};
use crate::model::effects::{HouseEvent, Outcome, Write};
use crate::model::logbook::{LogEntry, LogKind, Via};

pub fn button(id: &Id) -> String {
    format!("button:{id}")
}

pub fn output(output: &OutputRef) -> String {
    format!("output:{output}")
}

pub fn input(node: &Id, name: &Id) -> String {
    format!("input:{node}/{name}")
}

pub fn automation(id: &Id) -> String {
    format!("automation:{id}")
}

pub fn chime(id: &Id) -> String {
    format!("chime:{id}")
}

/// The source of a change that came `via`: a button's or shell's message
/// says `mqtt`, a node agent's report of its own state says `agent`.
fn source(via: Via, from_agent: bool) -> &'static str {
    match via {
        Via::Http => "http",
        Via::Mqtt if from_agent => "agent",
        Via::Mqtt => "mqtt",
    }
}

/// The entry one change to the house makes, if it makes one.
pub fn of_event(event: &HouseEvent, at: DateTime<Utc>, via: Via) -> Option<LogEntry> {
    Some(match event {
        HouseEvent::Press { button: id, action } => LogEntry::new(
            at,
            button(id),
            LogKind::Press,
            action.as_str(),
            source(via, false),
        ),
        HouseEvent::Button { button: id, to, .. } => LogEntry::new(
            at,
            button(id),
            LogKind::State,
            to.as_str(),
            source(via, false),
        ),
        HouseEvent::Output { output: o, to, .. } => LogEntry::new(
            at,
            output(o),
            LogKind::State,
            to.as_str(),
            source(via, true),
        ),
        HouseEvent::Input { node, name, to, .. } => LogEntry::new(
            at,
            input(node, name),
            LogKind::State,
            to.as_str(),
            source(via, true),
        ),
        HouseEvent::Availability { node, to, .. } => LogEntry::new(
            at,
            format!("node:{node}"),
            LogKind::Availability,
            to.as_str(),
            source(via, true),
        ),
        HouseEvent::Reading { .. } | HouseEvent::Message => return None,
    })
}

/// Adds the entries of `outcome`'s changes to its writes, before the
/// entries of what they set off (a rule's command), so that a reader sees
/// the cause first. Its events are only the live changes (a replayed or
/// repeated state has none), so the logbook holds news, as automations
/// see it.
pub fn record(outcome: &mut Outcome, at: DateTime<Utc>, via: Via) {
    let entries: Vec<Write> = outcome
        .events
        .iter()
        .filter_map(|event| of_event(event, at, via))
        .map(Write::Logbook)
        .collect();
    let first_logged = outcome
        .writes
        .iter()
        .position(|w| matches!(w, Write::Logbook(_)))
        .unwrap_or(outcome.writes.len());
    outcome.writes.splice(first_logged..first_logged, entries);
}

/// What an HTTP call's entries name as their source: `http:<user>` for a
/// logged-in user, `http` when logins are off.
pub fn http_source(user: Option<&str>) -> String {
    match user {
        Some(user) => format!("http:{user}"),
        None => "http".to_owned(),
    }
}

/// Names `user` on the entries among `writes` that an HTTP call made
/// (source `http`); entries it set off (`rule:<name>`) keep their source.
pub fn by_user(writes: &mut [Write], user: Option<&str>) {
    if user.is_none() {
        return;
    }
    for write in writes {
        if let Write::Logbook(entry) = write
            && entry.source == "http"
        {
            entry.source = http_source(user);
        }
    }
}

/// A command sent to an output, by `source` (`http`, `rule:<name>`).
pub fn command(to: &OutputRef, state: OnOff, at: DateTime<Utc>, source: &str) -> LogEntry {
    LogEntry::new(at, output(to), LogKind::Command, state.as_str(), source)
}

/// A brightness sent to a dimmable light (`brightness 102`), by `source`.
pub fn brightness(to: &OutputRef, level: u8, at: DateTime<Utc>, source: &str) -> LogEntry {
    LogEntry::new(
        at,
        output(to),
        LogKind::Command,
        format!("brightness {level}"),
        source,
    )
}

/// The entry of a run's trace: one per run that started, when it ends
/// (a run still going is logged once it is done; a trigger that started
/// no run, such as conditions that failed, is left to the trace).
pub fn run(trace: &Trace) -> Option<LogEntry> {
    match trace.outcome {
        RunOutcome::Running
        | RunOutcome::ConditionsFailed
        | RunOutcome::CoolingDown
        | RunOutcome::AlreadyRunning
        | RunOutcome::QueueFull
        | RunOutcome::TooManyRuns => None,
        RunOutcome::Done
        | RunOutcome::Restarted
        | RunOutcome::TimedOut
        | RunOutcome::Missed
        | RunOutcome::Abandoned => Some(LogEntry::new(
            trace.started_at,
            automation(&trace.automation),
            LogKind::Run,
            format!("{} ({})", trace.outcome.as_str(), trace.trigger),
            "automation",
        )),
    }
}

/// A chime's occurrence, `played` or `missed`, by `source` (`schedule`).
pub fn play(id: &Id, at: DateTime<Utc>, detail: &str, source: &str) -> LogEntry {
    LogEntry::new(at, chime(id), LogKind::Play, detail, source)
}

#[cfg(test)]
mod tests {
    use hearth_protocol::{Availability, OutputKind, PressAction};

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T14:20:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn changes_name_their_entity_and_source() {
        let lamp = OutputRef {
            node: id("pi-1"),
            kind: OutputKind::Light,
            name: id("lamp"),
        };
        let cases = [
            (
                HouseEvent::Press {
                    button: id("desk"),
                    action: PressAction::Double,
                },
                Via::Mqtt,
                ("button:desk", LogKind::Press, "double", "mqtt"),
            ),
            (
                HouseEvent::Button {
                    button: id("desk"),
                    from: Some(OnOff::Off),
                    to: OnOff::On,
                },
                Via::Http,
                ("button:desk", LogKind::State, "ON", "http"),
            ),
            (
                HouseEvent::Output {
                    output: lamp.clone(),
                    from: None,
                    to: OnOff::Off,
                },
                Via::Mqtt,
                ("output:pi-1/light/lamp", LogKind::State, "OFF", "agent"),
            ),
            (
                HouseEvent::Input {
                    node: id("pi-1"),
                    name: id("hall"),
                    from: None,
                    to: OnOff::On,
                },
                Via::Mqtt,
                ("input:pi-1/hall", LogKind::State, "ON", "agent"),
            ),
            (
                HouseEvent::Availability {
                    node: id("pi-1"),
                    from: None,
                    to: Availability::Offline,
                },
                Via::Mqtt,
                ("node:pi-1", LogKind::Availability, "offline", "agent"),
            ),
        ];
        for (event, via, (entity, kind, detail, source)) in cases {
            let entry = of_event(&event, at(), via).expect("an entry");
            assert_eq!(
                (entry.entity.as_str(), entry.kind, entry.detail.as_str()),
                (entity, kind, detail),
                "{event:?}"
            );
            assert_eq!(entry.source, source, "{event:?}");
        }
        assert_eq!(of_event(&HouseEvent::Message, at(), Via::Mqtt), None);
    }

    #[test]
    fn record_adds_an_entry_per_change_to_the_writes() {
        let mut outcome = Outcome {
            events: vec![
                HouseEvent::Press {
                    button: id("desk"),
                    action: PressAction::Single,
                },
                HouseEvent::Message,
            ],
            ..Outcome::default()
        };
        record(&mut outcome, at(), Via::Mqtt);
        assert_eq!(
            outcome.writes,
            vec![Write::Logbook(LogEntry::new(
                at(),
                "button:desk".to_owned(),
                LogKind::Press,
                "single",
                "mqtt"
            ))]
        );
    }

    #[test]
    fn an_http_calls_entries_name_its_user_and_what_it_set_off_keeps_its_source() {
        let entry = |source: &str| {
            Write::Logbook(LogEntry::new(
                at(),
                "button:desk".to_owned(),
                LogKind::State,
                "ON",
                source,
            ))
        };
        let mut writes = vec![entry("http"), entry("rule:desk-lamp")];
        by_user(&mut writes, None);
        assert_eq!(writes, [entry("http"), entry("rule:desk-lamp")]);
        by_user(&mut writes, Some("alice"));
        assert_eq!(writes, [entry("http:alice"), entry("rule:desk-lamp")]);
    }
}
