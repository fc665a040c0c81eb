//! The write pipeline: batches message effects into one transaction, then acknowledges the messages.
//!
//! A QoS 1 message is acknowledged to the broker only after its effect is
//! committed, so a crash before the commit leaves the message with the broker
//! for redelivery. Jobs arrive in message order and are acknowledged in the
//! same order, which rumqttd insists on. While the database is down the batch
//! is retried with backoff and the bounded queue in front of it fills up,
//! which stops the hub from reading more messages: the broker holds them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hearth_common::backoff::Backoff;
use rumqttc::{AsyncClient, Publish};
use tokio::sync::{mpsc, oneshot};

use crate::logbook_feed::LogbookFeed;
use crate::metrics::{ErrorReason, Metrics};
use crate::store::{Store, Write};

/// Message effects waiting for the database.
pub const WRITE_QUEUE_CAPACITY: usize = 1024;
/// Most jobs committed in one transaction.
pub const MAX_BATCH_JOBS: usize = 512;
/// How long a failing batch is still retried once the hub is stopping.
/// Retrying for ever kept a hub whose database had turned read-only from
/// ever exiting on SIGTERM; giving up loses nothing acknowledged, because
/// the messages behind the batch are not acknowledged and the broker
/// delivers them again to the next hub.
pub const SHUTDOWN_RETRY_LIMIT: Duration = Duration::from_secs(3);

/// The effect of one message (or one API call) and who to tell once it is durable.
#[derive(Debug, Default)]
pub struct WriteJob {
    pub writes: Vec<Write>,
    /// The message to acknowledge after the commit, and the broker
    /// connection (see [`Connection`]) it arrived on.
    pub ack: Option<(Publish, u64)>,
    /// Signalled after the commit.
    pub done: Option<oneshot::Sender<()>>,
    /// A change stored by another task (a chime) that must be durable
    /// before this message is acknowledged.
    pub after: Option<oneshot::Receiver<()>>,
}

/// Key under which later writes to the same row replace earlier ones.
#[derive(Debug, PartialEq, Eq, Hash)]
enum RowKey {
    Button(String),
    Output(String),
    Node(String),
}

fn row_key(write: &Write) -> Option<RowKey> {
    match write {
        Write::Button(b) => Some(RowKey::Button(b.id.to_string())),
        Write::ForgetButton(id) => Some(RowKey::Button(id.to_string())),
        Write::Output(o) => Some(RowKey::Output(o.output.to_string())),
        Write::ForgetOutput(o) => Some(RowKey::Output(o.to_string())),
        Write::Node(n) => Some(RowKey::Node(n.id.to_string())),
        // Touches many rows (outputs, history): never merged with others.
        Write::ForgetNode(_) => None,
        // Applied in order, one statement each (they are rare).
        Write::Reading { .. } | Write::MessageId { .. } | Write::Catalog(_) => None,
        // Every entry is its own row: a press twice in a batch is two presses.
        Write::Logbook(_) => None,
    }
}

/// Keeps the last write of each row (every write carries the whole row) and
/// every history insert, in order.
pub fn coalesce(writes: impl IntoIterator<Item = Write>) -> Vec<Write> {
    let mut out: Vec<Write> = Vec::new();
    let mut index: HashMap<RowKey, usize> = HashMap::new();
    for write in writes {
        match row_key(&write) {
            Some(key) => match index.get(&key) {
                Some(&i) => out[i] = write,
                None => {
                    index.insert(key, out.len());
                    out.push(write);
                }
            },
            None => out.push(write),
        }
    }
    out
}

/// Counts broker connections, so an ack is only ever sent on the
/// connection its message arrived on.
#[derive(Debug, Default, Clone)]
pub struct Connection(Arc<std::sync::atomic::AtomicU64>);

impl Connection {
    pub fn current(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// A new connection is up; returns its number.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Relaxed) + 1
    }
}

/// Runs until every sender is gone and the queue is drained.
pub async fn run_writer(
    store: Store,
    connection: Connection,
    client: AsyncClient,
    mut jobs: mpsc::Receiver<WriteJob>,
    metrics: Arc<Metrics>,
    logbook: LogbookFeed,
) {
    let mut backoff = Backoff::default();
    // When the hub began stopping (every sender gone) with a batch failing.
    let mut stopping_since: Option<Instant> = None;
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_JOBS {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics.write_queue_depth.store(jobs.len(), Relaxed);
        let raw: Vec<Write> = batch.iter_mut().flat_map(|j| j.writes.drain(..)).collect();
        let raw_len = raw.len();
        let writes = coalesce(raw);
        metrics
            .writes_coalesced
            .fetch_add((raw_len - writes.len()) as u64, Relaxed);
        let mut failed = false;
        loop {
            let started = Instant::now();
            let mut result = store.apply(&writes).await;
            if failed
                && result.is_ok()
                && let Err(error) = store.check_still_writable()
            {
                result = Err(error);
            }
            match result {
                Ok(logged) => {
                    // Committed: the open dashboards may show it now. A
                    // broadcast send never waits (see `logbook_feed`).
                    logbook.send(logged);
                    if !writes.is_empty() {
                        metrics.observe_write(started.elapsed());
                    }
                    metrics.database_ok.store(true, Relaxed);
                    metrics.writes_failing.store(false, Relaxed);
                    backoff.reset();
                    break;
                }
                Err(error) => {
                    failed = true;
                    metrics.error(ErrorReason::DatabaseWrite);
                    metrics.database_ok.store(false, Relaxed);
                    metrics.writes_failing.store(true, Relaxed);
                    let mut retry_in = backoff.next_delay(&mut rand::rng());
                    if jobs.is_closed() {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        let left = SHUTDOWN_RETRY_LIMIT.saturating_sub(since.elapsed());
                        if left.is_zero() {
                            // Nothing behind this batch is acknowledged either:
                            // acks must go out in order.
                            tracing::error!(
                                %error,
                                rows = writes.len(),
                                queued = jobs.len(),
                                "stopping with the database still failing; the unacknowledged \
                                 messages stay with the broker for the next start"
                            );
                            return;
                        }
                        retry_in = retry_in.min(left);
                    }
                    tracing::warn!(%error, rows = writes.len(), ?retry_in, "database write failed; retrying");
                    tokio::time::sleep(retry_in).await;
                }
            }
        }
        for job in batch {
            if let Some(after) = job.after {
                // Stored or refused (a refusal is reported and acknowledged
                // like any bad message); acks must go out in order.
                let _ = after.await;
            }
            if let Some((publish, arrived_on)) = job.ack {
                if arrived_on != connection.current() {
                    // Its packet id belonged to a connection that is gone;
                    // acking it on the new one would ack something else (or
                    // nothing, and rumqttd drops us). The broker sends it again.
                    tracing::debug!(topic = %publish.topic, "not acking a message from a previous connection");
                } else if let Err(error) = client.ack(&publish).await {
                    tracing::debug!(%error, "ack not sent (connection closing)");
                }
            }
            if let Some(done) = job.done {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::house::ButtonRecord;
    use chrono::Utc;
    use hearth_protocol::{Id, Quantity, Reading};

    #[test]
    fn later_row_writes_replace_earlier_ones_and_history_is_kept() {
        let now = Utc::now();
        let desk = Id::new("desk").unwrap();
        let mut first = ButtonRecord::new(desk.clone(), now);
        first.press_count = 1;
        let mut second = first.clone();
        second.press_count = 2;
        let hall = ButtonRecord::new(Id::new("hall").unwrap(), now);
        let reading = |t| Write::Reading {
            node: Id::new("pi").unwrap(),
            reading: Reading {
                quantity: Quantity::Temperature,
                value: t,
                at: now,
            },
        };
        let out = coalesce([
            Write::Button(first),
            reading(20.0),
            Write::Button(hall.clone()),
            Write::Button(second.clone()),
            reading(21.0),
        ]);
        assert_eq!(
            out,
            [
                Write::Button(second),
                reading(20.0),
                Write::Button(hall),
                reading(21.0)
            ]
        );
    }
}
