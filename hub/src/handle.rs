//! The handle HTTP holds on the core task: the calls it may make and the confirmations it may wait for.
//!
//! HTTP never changes the house itself: a change is an [`ApiCall`] to the
//! core task, which orders it with the MQTT messages.

use hearth_protocol::{Command, Id, OnOff, OutputRef};
use tokio::sync::{broadcast, mpsc, oneshot};

/// API calls waiting for the core task.
pub const API_QUEUE_CAPACITY: usize = 64;
/// Output confirmations buffered for HTTP callers waiting on them.
pub const CONFIRMATION_CAPACITY: usize = 256;

/// A request from the HTTP API to the core task.
#[derive(Debug)]
pub enum ApiCall {
    /// Set a button; the reply carries the new state and a signal for when it is durable.
    SetButton {
        id: Id,
        command: Command,
        /// The HTTP login that asked, when logins are on (the logbook's
        /// `http:<user>`).
        by: Option<String>,
        reply: oneshot::Sender<(OnOff, oneshot::Receiver<()>)>,
    },
    /// Forget a button; the reply says whether it existed, after the commit.
    ForgetButton {
        id: Id,
        reply: oneshot::Sender<Option<oneshot::Receiver<()>>>,
    },
    /// Change the automations or scenes (the MQTT topics' requests). The
    /// reply is the refusal, or what the caller gets back (a view) and a
    /// signal for when the change is stored.
    Catalog {
        request: crate::model::catalog::CatalogRequest,
        reply: oneshot::Sender<CatalogReply>,
    },
    /// Every automation's and scene's view, as the core holds them.
    CatalogViews {
        reply: oneshot::Sender<(
            Vec<crate::decide::automations::AutomationView>,
            Vec<crate::decide::automations::SceneView>,
        )>,
    },
    /// The runs of an automation the core holds (the newest, running ones
    /// included); `None` if there is no such automation.
    Traces {
        id: Id,
        reply: oneshot::Sender<Option<Vec<crate::decide::automations::Trace>>>,
    },
    /// Send a command to a node output (TOGGLE resolved from the last known state).
    CommandOutput {
        output: OutputRef,
        command: Command,
        /// As `SetButton`'s.
        by: Option<String>,
        reply: oneshot::Sender<OnOff>,
    },
    /// Send a dimmable light a brightness; the reply says it is out.
    Brightness {
        output: OutputRef,
        level: hearth_protocol::Brightness,
        /// As `SetButton`'s.
        by: Option<String>,
        reply: oneshot::Sender<()>,
    },
}

/// The core's answer to a catalogue change.
pub type CatalogReply =
    Result<(Option<serde_json::Value>, oneshot::Receiver<()>), crate::model::catalog::CatalogError>;

/// The core's end of the HTTP handle: where calls arrive and confirmations go.
#[derive(Debug)]
pub struct CoreEnd {
    pub calls: mpsc::Receiver<ApiCall>,
    pub confirmations: broadcast::Sender<(OutputRef, OnOff)>,
}

/// HTTP's end: send calls, wait for outputs to confirm.
#[derive(Debug, Clone)]
pub struct CoreHandle {
    pub api: mpsc::Sender<ApiCall>,
    pub confirmations: broadcast::Sender<(OutputRef, OnOff)>,
}

/// A connected pair of ends, with bounded queues.
pub fn channel() -> (CoreHandle, CoreEnd) {
    let (api, calls) = mpsc::channel(API_QUEUE_CAPACITY);
    let (confirmations, _) = broadcast::channel(CONFIRMATION_CAPACITY);
    (
        CoreHandle {
            api,
            confirmations: confirmations.clone(),
        },
        CoreEnd {
            calls,
            confirmations,
        },
    )
}
