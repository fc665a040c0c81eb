//! What the HTTP side holds: read access to the house, chimes and health, and the handle on the core.
//!
//! HTTP never changes the house itself (that is [`CoreHandle`]'s job) and
//! needs neither the broker nor the link, so tests can build the router
//! around a state of their own.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::logins::Logins;
use crate::chimes::manage::Chimes;
use crate::chimes::scheduler::ChimeStats;
use crate::config::Settings;
use crate::handle::CoreHandle;
use crate::leader::Role;
use crate::logbook_feed::LogbookFeed;
use crate::metrics::Metrics;
use crate::model::house::House;
use crate::shared_catalog::SharedCatalog;
use crate::shared_house::SharedHouse;
use crate::store::Store;

/// The state every HTTP handler gets.
#[derive(Debug)]
pub struct HttpState {
    pub settings: Arc<Settings>,
    /// Leader or standby (always leader on SQLite).
    pub role: watch::Receiver<Role>,
    pub chimes: Chimes,
    pub chime_stats: Arc<ChimeStats>,
    pub house: SharedHouse,
    /// The automations and scenes as the core last showed them.
    pub catalog: SharedCatalog,
    pub metrics: Arc<Metrics>,
    /// Reads the history; a standby's changes go through the core.
    pub store: Store,
    pub core: CoreHandle,
    /// Who may use the HTTP side; `None`: anyone who can reach it.
    pub logins: Option<Logins>,
    /// The names the hub answers to (the browser boundary).
    pub names: super::guard::HostNames,
    /// Cancelled when the hub stops: long-lived HTTP streams end with it.
    pub stopping: CancellationToken,
    /// What the embedded broker refused (ACL, client ids); `None` without one.
    pub broker_refusals: Option<Arc<hearth_broker::Refusals>>,
    /// What subscribers of the embedded broker lost, per client id (a
    /// subscriber taken for stuck); `None` without one.
    pub broker_lost: Option<Arc<hearth_broker::LostMessages>>,
    /// Logbook entries as the writer commits them (`event: logbook`).
    pub logbook: LogbookFeed,
}

impl HttpState {
    /// A consistent copy of the house.
    pub fn house(&self) -> House {
        self.house.snapshot()
    }
}
