//! The live logbook: the entries each committed batch wrote, for the open dashboards.
//!
//! The writer sends a batch's entries here only after its transaction
//! committed, so a live view never shows an entry the database lost. It is
//! a `broadcast` channel: sending never waits, whoever listens, so the
//! writer (and the acknowledgements behind it) never slows down for a slow
//! phone. A receiver that falls more than [`LIVE_LOGBOOK_CAPACITY`] batches
//! behind loses the oldest ones (`RecvError::Lagged`): the stream tells its
//! page so (`event: logbook-lagged`), and the page reads the newest page of
//! `GET /api/v1/logbook` again instead.
//!
//! Only the hub that writes (the leader) sends: a standby's live stream
//! carries no logbook entries.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::model::logbook::LogRow;

/// Committed batches a live view may fall behind before it skips some.
/// A batch holds every entry of one commit (one or thousands), and the
/// writer commits a few hundred batches a second at most, so this is about
/// a second of the busiest load; a view further behind re-reads a page.
pub const LIVE_LOGBOOK_CAPACITY: usize = 256;

/// The entries of one committed batch, oldest first.
pub type Committed = Arc<[LogRow]>;

/// Where committed logbook entries go live. Cloning shares the channel.
#[derive(Debug, Clone)]
pub struct LogbookFeed(broadcast::Sender<Committed>);

impl Default for LogbookFeed {
    fn default() -> Self {
        Self(broadcast::Sender::new(LIVE_LOGBOOK_CAPACITY))
    }
}

impl LogbookFeed {
    /// Hands a committed batch's entries to every live view; never waits.
    pub fn send(&self, rows: Vec<LogRow>) {
        // Nobody listening (no dashboard open) is the common case: the
        // entries are simply not kept.
        if rows.is_empty() || self.0.receiver_count() == 0 {
            return;
        }
        let count = rows.len();
        if self.0.send(rows.into()).is_err() {
            tracing::trace!(count, "live logbook: the last view closed meanwhile");
        }
    }

    /// A receiver of every batch committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.0.subscribe()
    }
}

/// A stored press on `button:desk` with id `id`, for this module's and
/// the live stream's tests.
#[cfg(test)]
pub(crate) fn test_row(id: i64) -> LogRow {
    use crate::model::logbook::{LogEntry, LogKind};
    LogRow {
        id,
        entry: LogEntry::new(
            chrono::Utc::now(),
            "button:desk".into(),
            LogKind::Press,
            "single",
            "mqtt",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> LogRow {
        test_row(id)
    }

    #[tokio::test]
    async fn a_view_gets_what_is_sent_after_it_subscribed_and_a_slow_one_learns_it_lagged() {
        let feed = LogbookFeed::default();
        feed.send(vec![row(1)]); // no view yet: dropped
        let mut view = feed.subscribe();
        feed.send(vec![row(2), row(3)]);
        let got = view.recv().await.expect("a batch");
        assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);

        for id in 0..(LIVE_LOGBOOK_CAPACITY as i64 + 5) {
            feed.send(vec![row(id)]);
        }
        match view.recv().await {
            Err(broadcast::error::RecvError::Lagged(skipped)) => assert_eq!(skipped, 5),
            other => panic!("expected a lag of 5 batches, got {other:?}"),
        }
    }
}
