//! What subscribers lost: messages the log moved past before a reader read
//! them (a subscriber taken for stuck, see the "backpressure" vendor patch),
//! counted per client id for `hearth_broker_lost_messages_total`.
//!
//! rumqttd's router logs each loss (target `hearth_broker::lost_messages`)
//! and calls [`LostMessages::hook`] on its own thread; this side only counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rumqttd::LostMessagesHook;

/// Distinct client ids counted under their own name. A metric label per
/// client id would otherwise grow with every id ever seen (a client may
/// invent one per connection), so the memory and the scrape stay bounded:
/// past this many, losses go to the [`OTHER`] bucket. A house has tens of
/// clients; 1,000 leaves room for a big one and is still a small scrape.
pub const MAX_TRACKED_CLIENTS: usize = 1_000;

/// The label of losses by clients beyond [`MAX_TRACKED_CLIENTS`]. A client
/// really named `other` is counted in it too, so the label stays unique.
pub const OTHER: &str = "other";

/// Messages lost per client id since the broker started.
#[derive(Debug, Default)]
pub struct LostMessages {
    /// At most [`MAX_TRACKED_CLIENTS`] entries.
    by_client: Mutex<HashMap<String, u64>>,
    other: AtomicU64,
}

impl LostMessages {
    /// Counts `lost` messages for `client_id`.
    pub fn add(&self, client_id: &str, lost: u64) {
        if lost == 0 {
            return;
        }
        if client_id != OTHER {
            // A poisoned lock only means a panic mid-update of a counter.
            let mut by_client = self
                .by_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = by_client.get_mut(client_id) {
                *count += lost;
                return;
            }
            if by_client.len() < MAX_TRACKED_CLIENTS {
                by_client.insert(client_id.to_owned(), lost);
                return;
            }
        }
        self.other.fetch_add(lost, Ordering::Relaxed);
    }

    /// Messages lost by `client_id` (0 if none, or if it is in [`OTHER`]).
    pub fn of(&self, client_id: &str) -> u64 {
        self.by_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client_id)
            .copied()
            .unwrap_or(0)
    }

    /// Every client that lost messages, by name, then the [`OTHER`] bucket
    /// if it has any; sorted by client id.
    pub fn counts(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .by_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(client, count)| (client.clone(), *count))
            .collect();
        out.sort();
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            out.push((OTHER.to_owned(), other));
        }
        out
    }

    /// The hook rumqttd's router calls at each loss.
    pub fn hook(self: &Arc<Self>) -> LostMessagesHook {
        let lost = Arc::clone(self);
        LostMessagesHook(Arc::new(
            move |client_id: &str, _filter: &str, count: u64| lost.add(client_id, count),
        ))
    }

    /// `hearth_broker_lost_messages_total{client="..."}` lines, with their
    /// HELP and TYPE even when nothing was lost.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# HELP hearth_broker_lost_messages_total Messages a subscriber lost because the broker's log moved past what it had read (a subscriber taken for stuck), by client id; clients beyond the first {MAX_TRACKED_CLIENTS} are counted as \"{OTHER}\".\n# TYPE hearth_broker_lost_messages_total counter\n",
        );
        for (client, count) in self.counts() {
            out.push_str(&format!(
                "hearth_broker_lost_messages_total{{client=\"{}\"}} {count}\n",
                label_value(&client)
            ));
        }
        out
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_counted_per_client_with_a_bounded_label_set() {
        let lost = LostMessages::default();
        lost.add("quiet", 0);
        for i in 0..MAX_TRACKED_CLIENTS {
            lost.add(&format!("c{i}"), 2);
        }
        lost.add("c0", 3);
        lost.add("one-too-many", 7);
        lost.add(OTHER, 1);
        assert_eq!(lost.of("c0"), 5);
        assert_eq!(lost.of("quiet"), 0);
        assert_eq!(lost.of("one-too-many"), 0);
        let counts = lost.counts();
        assert_eq!(counts.len(), MAX_TRACKED_CLIENTS + 1, "named + other");
        assert_eq!(counts.last(), Some(&(OTHER.to_owned(), 8)));
    }

    #[test]
    fn client_ids_are_escaped_in_labels() {
        let lost = LostMessages::default();
        lost.add("a\"b\\c\nd", 4);
        let text = lost.render();
        assert!(
            text.contains("hearth_broker_lost_messages_total{client=\"a\\\"b\\\\c\\nd\"} 4\n"),
            "{text}"
        );
    }
}
