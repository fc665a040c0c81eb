//! What a node's readings do to the house: the decision for a climate message, for any quantity.

use chrono::{DateTime, Utc};
use hearth_protocol::Reading;

use crate::model::effects::Write;
use crate::model::house::NodeRecord;

/// What a node's climate message does to the house: its readings become
/// the node's latest, the node counts as seen at `received`, and the node
/// row and every reading are written (in that order).
pub fn take_in(
    record: &mut NodeRecord,
    readings: Vec<Reading>,
    received: DateTime<Utc>,
) -> Vec<Write> {
    for reading in &readings {
        record.readings.record(*reading);
    }
    record.last_seen = Some(received);
    let mut writes = Vec::with_capacity(readings.len() + 1);
    writes.push(Write::Node(record.clone()));
    writes.extend(readings.into_iter().map(|reading| Write::Reading {
        node: record.id.clone(),
        reading,
    }));
    writes
}

#[cfg(test)]
mod tests {
    use hearth_protocol::{Id, Quantity};

    use super::*;
    use crate::model::readings::tests::{at, climate};

    #[test]
    fn a_climate_message_updates_the_node_and_writes_each_reading() {
        let mut node = NodeRecord::new(Id::new("pi-1").unwrap());
        let first = climate(20.0, 41.0, 0);
        take_in(&mut node, first.readings(), at(1));
        let second = climate(21.0, 42.0, -60);
        let writes = take_in(&mut node, second.readings(), at(2));
        // The last message wins even when it says it is older.
        assert_eq!(node.readings.value(Quantity::Temperature), Some(21.0));
        assert_eq!(node.readings.value(Quantity::Humidity), Some(42.0));
        assert_eq!(node.last_seen, Some(at(2)));
        assert_eq!(writes.len(), 1 + Quantity::ALL.len(), "{writes:?}");
        assert_eq!(writes[0], Write::Node(node.clone()));
        assert!(
            writes[1..].iter().all(|w| matches!(
                w,
                Write::Reading { node: n, reading } if n.as_str() == "pi-1" && reading.at == at(-60)
            )),
            "{writes:?}"
        );
    }
}
