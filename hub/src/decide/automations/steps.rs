//! What a step sends: the publications of an output, brightness, publish
//! or play step, TOGGLE resolved from the house. Pure.

use chrono::{DateTime, Utc};
use hearth_protocol::{ChimePlay, Topic, Topics};

use super::definition::Step;
use crate::decide::logbook;
use crate::model::effects::Publication;
use crate::model::house::House;
use crate::model::logbook::LogEntry;

/// The logbook entries of the output and brightness commands `step` sends (TOGGLE
/// resolved as [`publications`] resolves it), by `source`
/// (`automation:<id>`).
pub fn logged(house: &House, step: &Step, at: DateTime<Utc>, source: &str) -> Vec<LogEntry> {
    match step {
        Step::SetOutput { output, command } => vec![logbook::command(
            output,
            house.output_state(output).apply(*command),
            at,
            source,
        )],
        Step::SetBrightness { output, level } => {
            vec![logbook::brightness(output, *level, at, source)]
        }
        _ => Vec::new(),
    }
}

/// What a step that publishes sends, TOGGLE resolved from the house.
pub fn publications(topics: &Topics, house: &House, step: &Step) -> Vec<Publication> {
    match step {
        Step::SetOutput { output, command } => vec![Publication::event(
            topics.build(&Topic::OutputSet(output.clone())),
            house.output_state(output).apply(*command).as_str(),
        )],
        Step::SetBrightness { output, level } => vec![Publication::event(
            topics.build(&Topic::BrightnessSet(output.clone())),
            level.to_string(),
        )],
        Step::Publish {
            topic,
            payload,
            retain,
        } => vec![Publication {
            retain: *retain,
            ..Publication::event(topic.clone(), payload.clone())
        }],
        Step::Play {
            sound,
            speakers,
            volume,
        } => {
            let play = ChimePlay {
                sound: sound.clone(),
                volume: *volume,
                chime: None,
                scheduled_for: None,
            };
            let payload = serde_json::to_vec(&play).unwrap_or_default();
            speakers
                .iter()
                .map(|speaker| {
                    Publication::event(
                        topics.build(&Topic::ChimePlay {
                            speaker: speaker.clone(),
                        }),
                        payload.clone(),
                    )
                })
                .collect()
        }
        Step::Delay(_) | Step::Wait { .. } | Step::Enable { .. } | Step::Scene(_) => Vec::new(),
    }
}
