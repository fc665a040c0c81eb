//! The hub's hello: every retained message it owns, in one list.
//!
//! Sent when the hub takes the stage (it leads and is connected: a broker
//! that restarted empty gets its retained states back) and when Home
//! Assistant announces itself (its entities start right). Discovery configs
//! come first, so Home Assistant has an entity before its state arrives.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hearth_protocol::{Availability, Id, Topic, Topics};

use crate::decide::clock;
use crate::decide::discovery::{self, HubDiscovery};
use crate::decide::message::Decider;
use crate::model::chime::Chime;
use crate::model::effects::Publication;
use crate::model::house::House;

/// Discovery configs (when on), the hub's availability, the clock, every
/// button state and every chime's view, all retained.
pub fn hello(
    topics: &Topics,
    timezone: Tz,
    discovery: Option<&HubDiscovery>,
    decider: &Decider<'_>,
    house: &House,
    chimes: &BTreeMap<Id, Chime>,
    now: DateTime<Utc>,
) -> Vec<Publication> {
    let mut out = match discovery {
        Some(d) => discovery::retained(d.all_configs(house.buttons.keys(), chimes.values())),
        None => Vec::new(),
    };
    out.push(Publication::retained(
        topics.build(&Topic::HubAvailability),
        Availability::Online.as_str(),
    ));
    out.push(Publication::retained(
        topics.build(&Topic::ClockHhmm),
        clock::hhmm(timezone, now),
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
        let out = hello(
            &settings.topics,
            settings.timezone,
            settings.hub_discovery().as_ref(),
            &decider,
            &house,
            &BTreeMap::new(),
            at,
        );
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
