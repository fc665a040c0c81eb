//! A message as the hub takes it in: parsed once, at the edge, into a typed topic.

use hearth_protocol::{Topic, TopicError, Topics};

use super::effects::Delivery;

/// One incoming message, its topic parsed once for every decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Input<'m> {
    /// The topic as it came, for rules (which match on strings) and error reports.
    pub topic: &'m str,
    /// What the topic means, or why it is not part of the contract (then
    /// it is a rule's topic, or an error if it is under a hub filter).
    pub parsed: Result<Topic, TopicError>,
    pub payload: &'m [u8],
    pub delivery: Delivery,
}

impl<'m> Input<'m> {
    pub fn parse(topics: &Topics, topic: &'m str, payload: &'m [u8], delivery: Delivery) -> Self {
        Self {
            topic,
            parsed: topics.parse(topic),
            payload,
            delivery,
        }
    }

    /// A message that came while the hub was subscribed, or one the broker
    /// replayed because the hub subscribed: MQTT sets the retain flag on a
    /// delivery only then.
    pub fn replayed(&self) -> bool {
        self.delivery == Delivery::Replayed
    }
}
