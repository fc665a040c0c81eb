//! A rumqttc client for tests: connect, subscribe, publish, and wait for messages with a timeout.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
        eventloop.set_network_options(no);
        let first = tokio::time::timeout(Duration::from_secs(5), async {
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
        .unwrap_or_else(|_| Err("no CONNACK within 5 s".to_owned()));
        first?;
        let (tx, messages) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(Self {
            client,
            messages,
            task,
        })
    }

    pub async fn subscribe(&self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.expect("subscribe");
        // rumqttc hides the SUBACK from us here; a short pause lets it land.
        tokio::time::sleep(Duration::from_millis(100)).await;
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

    /// Drops the TCP connection without DISCONNECT, as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Whether the connection's event loop is still running.
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }
}
