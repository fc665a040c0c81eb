//! The input task: raw edges in (from the pins' interrupt thread or the simulator), debounced states and presses out.
//!
//! One task owns every input's [`Decoder`]; it wakes on an edge or at the
//! earliest decoder deadline, never on a polling loop. Edges carry the time
//! they were seen ([`RawEdge::at`]); the decoders work on durations since
//! this task started, so a late wake-up changes when a press is reported,
//! never which press it was.

use hearth_protocol::PressAction;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::decode::{Decoded, Decoder, Timings};

/// Edges buffered between the interrupt thread and this task. A bouncing
/// contact makes about ten per press; a full queue drops edges (counted by
/// the sender) rather than block the interrupt thread.
pub const EDGE_QUEUE: usize = 256;
/// Decoded events waiting for the agent loop.
pub const INPUT_EVENT_CAPACITY: usize = 64;

/// One level change as the pin saw it, polarity applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEdge {
    /// Index into `NodeConfig::inputs`.
    pub input: usize,
    pub at: Instant,
    /// Pressed, motion, open.
    pub active: bool,
}

/// What the agent publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    State { input: usize, active: bool },
    Press { input: usize, action: PressAction },
}

/// Runs until `stop` or until every edge sender is gone.
pub async fn run(
    inputs: Vec<(Timings, bool)>,
    mut edges: mpsc::Receiver<RawEdge>,
    events: mpsc::Sender<InputEvent>,
    stop: CancellationToken,
) {
    let epoch = Instant::now();
    let mut decoders: Vec<Decoder> = inputs
        .into_iter()
        .map(|(timings, initial)| Decoder::new(timings, initial))
        .collect();
    loop {
        let due = decoders.iter().filter_map(Decoder::next_deadline).min();
        let decoded: Vec<(usize, Decoded)> = tokio::select! {
            _ = stop.cancelled() => break,
            edge = edges.recv() => {
                let Some(edge) = edge else { break };
                let Some(decoder) = decoders.get_mut(edge.input) else { continue };
                let at = edge.at.saturating_duration_since(epoch);
                decoder.edge(at, edge.active).into_iter().map(|d| (edge.input, d)).collect()
            }
            _ = wake_at(due.map(|d| epoch + d)) => {
                let now = Instant::now().saturating_duration_since(epoch);
                decoders
                    .iter_mut()
                    .enumerate()
                    .flat_map(|(i, d)| d.tick(now).into_iter().map(move |e| (i, e)))
                    .collect()
            }
        };
        for (input, decoded) in decoded {
            let event = match decoded {
                Decoded::State(active) => InputEvent::State { input, active },
                Decoded::Press(action) => InputEvent::Press { input, action },
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

async fn wake_at(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
