//! The hub's role among replicas: leader, standby, or not known yet.

/// Who this hub is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs rules, the clock and chimes.
    Leader,
    /// Another hub leads: serve the API from the database, act on nothing.
    Standby,
    /// The database cannot say (it is unreachable): hold messages
    /// unacknowledged until it can, so none is lost or handled twice.
    Undecided,
}
