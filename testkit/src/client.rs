//! A rumqttc client for tests: connect, subscribe, publish, and wait for messages with a timeout.

use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::HANG_LIMIT;

/// SUBSCRIBE/SUBACK events the event loop hands back. Subscriptions are made
/// one at a time (see [`TestClient::subscribe`]), so at most a SUBSCRIBE and
/// its SUBACK wait here, plus any left by a subscribe that gave up.
const SUBACK_QUEUE: usize = 16;

/// What the event loop saw of a subscription, matched by packet id.
#[derive(Debug)]
enum SubEvent {
    Sent(u16),
    Acked(u16, Vec<SubscribeReasonCode>),
    /// The event loop failed with this error and stopped.
    Closed(String),
}

/// Outcome of a connection attempt, for auth tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    Accepted,
    Refused(String),
}

/// A connected test client whose event loop runs in a background task.
#[derive(Debug)]
pub struct TestClient {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Publish>,
    /// Locked for a whole subscribe, so the next SUBSCRIBE sent is ours.
    subscriptions: Mutex<mpsc::Receiver<SubEvent>>,
    task: JoinHandle<()>,
}

impl TestClient {
    pub fn options(port: u16, id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options
    }

    /// Connects and waits for the CONNACK; panics if refused.
    pub async fn connect(port: u16, id: &str) -> Self {
        Self::connect_with(Self::options(port, id)).await
    }

    pub async fn connect_with(options: MqttOptions) -> Self {
        match Self::try_connect(options).await {
            Ok(client) => client,
            Err(why) => panic!("test client refused: {why}"),
        }
    }

    pub async fn connect_with_will(port: u16, id: &str, will: LastWill) -> Self {
        let mut options = Self::options(port, id);
        options.set_last_will(will);
        Self::connect_with(options).await
    }

    /// Connects and reports whether the broker accepted the CONNECT.
    pub async fn try_connect(options: MqttOptions) -> Result<Self, String> {
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let mut no = eventloop.network_options();
        no.set_tcp_nodelay(true);
        // rumqttc's 5 s default (TCP connect to CONNACK) is a false failure on a
        // busy machine; our own deadline below bounds a hang.
        no.set_connection_timeout(HANG_LIMIT.as_secs());
        eventloop.set_network_options(no);
        let first = tokio::time::timeout(HANG_LIMIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        return if ack.code == rumqttc::ConnectReturnCode::Success {
                            Ok(())
                        } else {
                            Err(format!("{:?}", ack.code))
                        };
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no CONNACK within {HANG_LIMIT:?}")));
        first?;
        let (tx, messages) = mpsc::unbounded_channel();
        let (sub_tx, sub_rx) = mpsc::channel(SUBACK_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let event = match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => SubEvent::Sent(pkid),
                    Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                        SubEvent::Acked(ack.pkid, ack.return_codes)
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        // Said to a subscriber still waiting, so its failure names the cause.
                        let _ = sub_tx.try_send(SubEvent::Closed(e.to_string()));
                        return;
                    }
                };
                // Nobody waiting (the test dropped its client): keep serving messages.
                let _ = sub_tx.try_send(event);
            }
        });
        Ok(Self {
            client,
            messages,
            subscriptions: Mutex::new(sub_rx),
            task,
        })
    }

    /// Subscribes and returns once the broker's SUBACK granted it; panics
    /// saying what the broker answered otherwise.
    pub async fn subscribe(&self, filter: &str, qos: QoS) {
        let codes = self.try_subscribe(filter, qos).await;
        assert!(
            codes
                .iter()
                .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
            "the broker refused the subscription to {filter}: SUBACK {codes:?}"
        );
    }

    /// Subscribes and returns the SUBACK's reason codes, whatever they say.
    /// Panics if no SUBACK comes (the connection died, or a hang).
    pub async fn try_subscribe(&self, filter: &str, qos: QoS) -> Vec<SubscribeReasonCode> {
        let mut events = self.subscriptions.lock().await;
        self.client.subscribe(filter, qos).await.expect("subscribe");
        let wait = async {
            let mut sent = None;
            let mut why = None;
            while let Some(event) = events.recv().await {
                match (event, sent) {
                    // The first SUBSCRIBE after ours was queued is ours: the
                    // lock keeps others out. Acks of abandoned ones are skipped.
                    (SubEvent::Sent(pkid), None) => sent = Some(pkid),
                    (SubEvent::Acked(pkid, codes), Some(ours)) if pkid == ours => {
                        return Ok(codes);
                    }
                    (SubEvent::Closed(error), _) => why = Some(error),
                    _ => {}
                }
            }
            Err((sent, why))
        };
        match tokio::time::timeout(HANG_LIMIT, wait).await {
            Ok(Ok(codes)) => codes,
            Ok(Err((sent, why))) => panic!(
                "the connection closed before the SUBACK for {filter} (SUBSCRIBE sent: {sent:?}; the client's error: {why:?})"
            ),
            Err(_) => panic!("no SUBACK for {filter} within {HANG_LIMIT:?}"),
        }
    }

    /// Queues an UNSUBSCRIBE. Its UNSUBACK is not awaited: a later
    /// subscribe's SUBACK comes after it (one connection, in order).
    pub async fn unsubscribe(&self, filter: &str) {
        self.client.unsubscribe(filter).await.expect("unsubscribe");
    }

    pub async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos, retain, payload.into())
            .await
            .expect("publish");
    }

    /// The next message, or `None` after `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Publish> {
        tokio::time::timeout(timeout, self.messages.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for a message on `topic`, skipping others.
    pub async fn recv_on(&mut self, topic: &str, timeout: Duration) -> Publish {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Some(p) if p.topic == topic => return p,
                Some(_) => continue,
                None => panic!("no message on {topic} within {timeout:?}"),
            }
        }
    }

    /// Every message before the first one on `marker`, for "nothing else
    /// arrives" checks: publish the marker after the thing that must not
    /// arrive, on a path ordered with it (same publisher, same client), and
    /// whatever did arrive is in the result. Panics after [`HANG_LIMIT`]
    /// showing what came.
    pub async fn collect_until(&mut self, marker: &str) -> Vec<Publish> {
        let mut before = Vec::new();
        let wait = async {
            while let Some(p) = self.messages.recv().await {
                if p.topic == marker {
                    return true;
                }
                before.push(p);
            }
            false
        };
        match tokio::time::timeout(HANG_LIMIT, wait).await {
            Ok(true) => before,
            Ok(false) => panic!("connection closed before the marker on {marker}; got {before:?}"),
            Err(_) => panic!("no marker on {marker} within {HANG_LIMIT:?}; got {before:?}"),
        }
    }

    /// What the broker retains under `filter`, as (topic, payload) pairs,
    /// read by a fresh client. The broker hands a new subscription what it
    /// retains before it routes a message the same client publishes after
    /// the SUBACK, so a marker from that client ends the retained batch: no
    /// quiet window to guess.
    pub async fn retained(port: u16, filter: &str) -> Vec<(String, String)> {
        const MARKER: &str = "hearth-testkit/retained-marker";
        // Unique per call: two readers with one client id would take each
        // other's session over on a shared broker.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("retained-{}-{n}", std::process::id());
        let mut late = Self::connect(port, &id).await;
        late.subscribe(filter, QoS::AtLeastOnce).await;
        late.subscribe(MARKER, QoS::AtLeastOnce).await;
        late.publish(MARKER, QoS::AtLeastOnce, false, "end").await;
        let seen = late
            .collect_until(MARKER)
            .await
            .into_iter()
            .map(|p| {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                (p.topic, payload)
            })
            .collect();
        late.client.disconnect().await.ok();
        seen
    }

    /// Drops the TCP connection without DISCONNECT, as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Whether the connection's event loop is still running.
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }
}
