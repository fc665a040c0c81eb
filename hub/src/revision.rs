//! Change counters that let live views (the dashboard's event stream) wait for a change.
//!
//! A `watch` channel coalesces: however many changes happen while a
//! watcher is busy, it wakes once, which is what a view that re-renders the
//! whole picture wants under a burst of presses.

use tokio::sync::watch;

/// A counter bumped on every change to what it guards.
#[derive(Debug)]
pub struct Revision(watch::Sender<u64>);

impl Default for Revision {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Revision {
    /// Records a change, waking every watcher.
    pub fn bump(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes after the next change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_changes_wake_a_busy_watcher_once() {
        let revision = Revision::default();
        let mut watcher = revision.watch();
        for _ in 0..1000 {
            revision.bump();
        }
        watcher.changed().await.unwrap();
        assert_eq!(*watcher.borrow_and_update(), 1000);
        assert!(!watcher.has_changed().unwrap());
    }
}
