//! The house shared between the task that changes it and the readers that show it.
//!
//! The core task is the writer on the hot path; the housekeeping task also
//! replaces the whole picture while the hub stands by (it then reads what
//! the leader stored), and the core takes the stored picture once more when
//! it starts to lead. HTTP handlers and live views only read: they take a
//! snapshot under the read lock, or read a part of it in place. The lock is
//! never held across an await, so a reader never stalls the core for longer
//! than one copy of the house takes.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::model::house::House;
use crate::revision::Revision;

/// A cheap handle on the one in-memory house; clones share it.
#[derive(Debug, Clone, Default)]
pub struct SharedHouse {
    house: Arc<RwLock<House>>,
    /// Bumped on every change, for live views.
    revision: Arc<Revision>,
}

impl SharedHouse {
    pub fn new(house: House) -> Self {
        Self {
            house: Arc::new(RwLock::new(house)),
            revision: Arc::default(),
        }
    }

    /// A consistent copy of the house for readers.
    pub fn snapshot(&self) -> House {
        self.read(House::clone)
    }

    /// Reads a part of the house without copying the rest.
    pub fn read<R>(&self, read: impl FnOnce(&House) -> R) -> R {
        read(&self.house.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the house and tells live views.
    pub fn change<R>(&self, change: impl FnOnce(&mut House) -> R) -> R {
        let result = change(&mut self.house.write().unwrap_or_else(|p| p.into_inner()));
        self.revision.bump();
        result
    }

    /// A receiver that wakes after the next change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.watch()
    }
}
