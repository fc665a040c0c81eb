//! The hub's hello: every retained message it owns, in one list.
//!
//! Sent when the hub takes the stage (it leads and is connected: a broker
//! that restarted empty gets its retained states back) and when Home
//! Assistant announces itself (its entities start right). Discovery configs
//! come first, so Home Assistant has an entity before its state arrives.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hearth_protocol::{Availability, Id, Topic};

use crate::chimes::Chime;
use crate::config::Settings;
use crate::decide::clock;
use crate::decide::discovery::{self, HubDiscovery};
use crate::decide::message::Decider;
use crate::model::effects::Publication;
use crate::model::house::House;

/// Discovery configs (when on), the hub's availability, the clock, every
/// button state and every chime's view, all retained.
pub fn hello(
    settings: &Settings,
    decider: &Decider<'_>,
    house: &House,
    chimes: &BTreeMap<Id, Chime>,
    now: DateTime<Utc>,
) -> Vec<Publication> {
    let topics = &settings.topics;
    let mut out = match HubDiscovery::new(settings) {
        Some(d) => discovery::retained(d.all_configs(house.buttons.keys(), chimes.values())),
        None => Vec::new(),
    };
    out.push(Publication::retained(
        topics.build(&Topic::HubAvailability),
        Availability::Online.as_str(),
    ));
    out.push(Publication::retained(
        topics.build(&Topic::ClockHhmm),
        clock::hhmm(settings.timezone, now),
    ));
    out.extend(decider.retained_states(house));
    out.extend(chimes.values().map(|c| {
        Publication::retained(
            topics.build(&Topic::HubChime(c.id.clone())),
            serde_json::to_vec(&c.view(now)).unwrap_or_default(),
        )
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::house::ButtonRecord;

    #[test]
    fn hello_carries_availability_clock_and_every_button_state() {
        let settings = crate::config::HubConfig::default().validate().unwrap();
        let decider = Decider::new(&settings.topics, &settings.rules);
        let at = DateTime::parse_from_rfc3339("2026-11-22T14:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut house = House::default();
        let desk = Id::new("desk").unwrap();
        house
            .buttons
            .insert(desk.clone(), ButtonRecord::new(desk, at));
        let out = hello(&settings, &decider, &house, &BTreeMap::new(), at);
        let topics: Vec<&str> = out.iter().map(|p| p.topic.as_str()).collect();
        for wanted in [
            "hearth/hub/availability",
            "hearth/clock/hhmm",
            "hearth/button/desk/state",
        ] {
            assert!(topics.contains(&wanted), "{wanted} missing from {topics:?}");
        }
        assert!(out.iter().all(|p| p.retain), "{out:?}");
    }
}
