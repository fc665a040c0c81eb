//! Reaching the broker under test: URL parsing, the loopback guard, and building/connecting rumqttc clients.
//!
//! Every scenario builds its clients here so they all get the same socket
//! settings (TCP_NODELAY, keep-alive, packet limits) and unique client ids.

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::time::Instant;

/// Port assumed when the URL names none (the IANA MQTT port).
pub const DEFAULT_PORT: u16 = 1883;
/// Keep-alive sent in CONNECT. Must be at least 1 s: rumqttd refuses 0 and
/// rumqttc panics on sub-second values. Long enough that pings never
/// compete with benchmark traffic.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Seconds rumqttc waits for TCP connect + CONNACK.
const CONNECT_TIMEOUT_SECS: u64 = 5;
/// Capacity of rumqttc's request channel between `AsyncClient` and its event
/// loop. Small on purpose: at full speed this queue sits in front of the
/// socket, and every slot adds queueing delay to the measured latency.
pub const REQUEST_CHANNEL_CAPACITY: usize = 64;
/// Outgoing QoS 1 publishes awaiting PUBACK per client (rumqttc's default).
/// rumqttc stops reading requests when this many are unacknowledged, so it
/// is the publisher's flow-control window against the broker.
pub const PUBLISH_INFLIGHT: u16 = 100;
/// Longest a client spends on a polite DISCONNECT at the end of a run.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);
/// Filters per SUBSCRIBE packet, so thousands of topics never exceed the
/// packet size limit.
const SUBSCRIBE_BATCH: usize = 64;
/// Bytes of MQTT framing allowed on top of topic and payload when sizing
/// rumqttc's packet limit.
const PACKET_OVERHEAD: usize = 64;

/// A password: never shown by `Debug`, `Display`, `--help` or the report.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Where the broker under test listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `tcp://host[:port]`; IPv6 literals go
    /// in brackets (`mqtt://[::1]:1883`). Credentials in the URL are refused
    /// so that a password can never end up echoed in the report.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| anyhow::anyhow!("broker url {url:?} is not valid: {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("it needs a scheme, e.g. mqtt://127.0.0.1:1883"))?;
        if !scheme.eq_ignore_ascii_case("mqtt") && !scheme.eq_ignore_ascii_case("tcp") {
            return Err(bad(&format!(
                "scheme {scheme:?} is not supported (plain MQTT over TCP only: mqtt:// or tcp://)"
            )));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('#') {
            return Err(bad("it must not have a path or query"));
        }
        if authority.contains('@') {
            return Err(bad(
                "put credentials in --username/--password, not in the url",
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' around an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(bad(
                        "IPv6 addresses must be in brackets, e.g. mqtt://[::1]:1883",
                    ));
                }
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad(&format!("port {p:?} is not in 1..=65535"))),
                Ok(p) => p,
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// True for 127.0.0.0/8, ::1 (also written as ::ffff:127.x.y.z) and the
    /// name `localhost`. Other names are not resolved: a name that resolves to
    /// loopback today may not tomorrow, so only what is loopback by
    /// construction passes the guard.
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().is_loopback(),
            Err(_) => false,
        }
    }

    /// The host as rumqttc wants it: it formats `"{host}:{port}"` before
    /// resolving, so an IPv6 literal must keep its brackets.
    fn socket_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.socket_host(), self.port)
    }
}

/// Refuses to aim load at anything but this machine unless the operator
/// explicitly allowed it: load tests against other hosts are forbidden here
/// by default, and a typo in `--url` must not become one.
pub fn guard_target(url: &BrokerUrl, allow_remote: bool) -> anyhow::Result<()> {
    if url.is_loopback() || allow_remote {
        Ok(())
    } else {
        bail!(
            "refusing to send load to {url}: only loopback hosts (127.0.0.0/8, ::1, localhost) \
             are allowed without --allow-remote"
        )
    }
}

/// A short id unique to this process run, so that concurrent or repeated runs
/// against one broker neither steal each other's client ids (the broker
/// would disconnect the older session) nor see each other's messages.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // RandomState is seeded randomly per process: randomness without a crate.
    let hash = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), nanos));
    format!("{:08x}", hash & 0xffff_ffff)
}

/// Builds identically configured clients for one run.
#[derive(Debug, Clone)]
pub struct ClientFactory {
    url: BrokerUrl,
    credentials: Option<(String, Secret)>,
    max_packet_size: usize,
    run_id: String,
}

impl ClientFactory {
    /// `largest_message` is topic plus payload bytes of the biggest message
    /// the run sends; rumqttc drops larger packets (default limit 10 KiB).
    pub fn new(
        url: BrokerUrl,
        username: Option<String>,
        password: Option<Secret>,
        largest_message: usize,
        run_id: String,
    ) -> anyhow::Result<Self> {
        let credentials = match (username, password) {
            (Some(user), password) => Some((user, password.unwrap_or(Secret(String::new())))),
            (None, Some(_)) => bail!("--password was given without --username"),
            (None, None) => None,
        };
        Ok(Self {
            url,
            credentials,
            max_packet_size: (largest_message + PACKET_OVERHEAD).max(10 * 1024),
            run_id,
        })
    }

    pub fn url(&self) -> &BrokerUrl {
        &self.url
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Client id for the `index`th client of `role` (one letter). Only
    /// `[0-9a-z]` and at most 23 characters, the range MQTT 3.1.1 says every
    /// broker must accept.
    pub fn client_id(&self, role: char, index: u32) -> String {
        format!("hb{}{role}{index}", self.run_id)
    }

    /// A client and its (not yet connected) event loop, Nagle disabled.
    pub fn build(&self, role: char, index: u32) -> (AsyncClient, EventLoop) {
        let mut options = MqttOptions::new(
            self.client_id(role, index),
            self.url.socket_host(),
            self.url.port,
        );
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(self.max_packet_size, self.max_packet_size)
            .set_inflight(PUBLISH_INFLIGHT);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user.clone(), password.expose().to_owned());
        }
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
        // Without TCP_NODELAY every small publish waits for the peer's delayed
        // ACK (~40 ms on Linux), which would be measured as broker latency.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
        eventloop.set_network_options(network);
        (client, eventloop)
    }
}

/// Polls until the broker accepted the connection, or fails: a benchmark
/// client never reconnects, since a reconnect would silently drop its clean
/// session and skew every count.
pub async fn wait_connected(
    eventloop: &mut EventLoop,
    url: &BrokerUrl,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to {url}"))?
            // rumqttc's error already embeds its io::Error source; keeping it
            // as a source too would print "Connection refused" twice.
            .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
        if let Event::Incoming(Incoming::ConnAck(_)) = event {
            return Ok(());
        }
    }
}

/// Subscribes a connected client to every filter at `qos`, returning once
/// the SUBACKs granted them all, so no message published afterwards is missed.
pub async fn subscribe_all(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    filters: &[String],
    qos: QoS,
    deadline: Instant,
) -> anyhow::Result<()> {
    for batch in filters.chunks(SUBSCRIBE_BATCH) {
        let wanted = batch.iter().map(|t| SubscribeFilter::new(t.clone(), qos));
        client.subscribe_many(wanted).await?;
        loop {
            let event = tokio::time::timeout_at(deadline, eventloop.poll())
                .await
                .map_err(|_| anyhow!("timed out waiting for SUBACK"))??;
            if let Event::Incoming(Incoming::SubAck(ack)) = event {
                if let Some(refused) = ack
                    .return_codes
                    .iter()
                    .position(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    bail!(
                        "broker refused the subscription to {} (ACL?)",
                        batch.get(refused).map_or("?", String::as_str)
                    );
                }
                break;
            }
        }
    }
    Ok(())
}

/// Best-effort DISCONNECT so the broker logs a clean exit; bounded by
/// [`DISCONNECT_GRACE`] and by the run's deadline.
pub async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop, deadline: Instant) {
    if client.try_disconnect().is_err() {
        return;
    }
    let until = (Instant::now() + DISCONNECT_GRACE).min(deadline);
    // Either way the socket closes when the event loop is dropped.
    let _ = tokio::time::timeout_at(until, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> BrokerUrl {
        BrokerUrl::parse(s).expect("valid test url")
    }

    /// The pacing tests/hub.rs used to check against a wall clock: message
    /// `seq` of a run at `rate`/s is due `seq / rate` s after the start.
    #[test]
    fn messages_are_due_on_the_rate_schedule() {
        let start = Instant::now();
        let at = |seq, rate| due(start, seq, rate) - start;
        assert_eq!(at(0, 100), Duration::ZERO);
        assert_eq!(at(1, 100), Duration::from_millis(10));
        assert_eq!(at(199, 100), Duration::from_millis(1990));
        assert_eq!(at(200, 100), Duration::from_secs(2));
        assert_eq!(at(3, 3), Duration::from_secs(1));
        // A zero rate is treated as 1/s rather than dividing by zero.
        assert_eq!(at(2, 0), Duration::from_secs(2));
    }

    #[test]
    fn parses_mqtt_and_tcp_urls() {
        assert_eq!(
            url("mqtt://127.0.0.1:1884"),
            BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(
            url("tcp://localhost"),
            BrokerUrl {
                host: "localhost".into(),
                port: 1883
            }
        );
        assert_eq!(
            url("MQTT://[::1]:2000/"),
            BrokerUrl {
                host: "::1".into(),
                port: 2000
            }
        );
        assert_eq!(url("mqtt://[::1]").port, 1883);
        assert_eq!(url("mqtt://[::1]:2000").to_string(), "mqtt://[::1]:2000");
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in [
            "127.0.0.1:1883",
            "http://127.0.0.1",
            "mqtts://127.0.0.1",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://h/path",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://h:x",
            "mqtt://::1:1883",
            "mqtt://[::1",
            "mqtt://[::1]x",
            "mqtt://user:pw@127.0.0.1",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn only_loopback_passes_the_guard_by_default() {
        for ok in [
            "mqtt://127.0.0.1",
            "mqtt://127.1.2.3:1",
            "mqtt://localhost",
            "mqtt://LocalHost:1",
            "mqtt://[::1]",
            "mqtt://[::ffff:127.0.0.1]",
        ] {
            assert!(guard_target(&url(ok), false).is_ok(), "{ok} is loopback");
        }
        for remote in [
            "mqtt://10.0.0.5",
            "mqtt://192.168.1.2",
            "mqtt://0.0.0.0",
            "mqtt://[::]",
            "mqtt://[::ffff:10.0.0.1]",
            "mqtt://broker.example",
            "mqtt://localhost.example",
            "mqtt://128.0.0.1",
        ] {
            let err = guard_target(&url(remote), false).expect_err(remote);
            assert!(err.to_string().contains("--allow-remote"), "{err}");
            assert!(guard_target(&url(remote), true).is_ok());
        }
    }

    #[test]
    fn password_never_prints_and_needs_a_user() {
        let secret: Secret = "hunter2".parse().expect("infallible");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        let factory = ClientFactory::new(
            url("mqtt://127.0.0.1"),
            Some("bench".into()),
            Some(secret.clone()),
            100,
            "abc".into(),
        )
        .expect("user and password");
        assert!(!format!("{factory:?}").contains("hunter2"));
        assert!(
            ClientFactory::new(
                url("mqtt://127.0.0.1"),
                None,
                Some(secret),
                100,
                "abc".into()
            )
            .is_err()
        );
    }

    #[test]
    fn client_ids_are_short_alphanumeric_and_distinct() {
        let factory =
            ClientFactory::new(url("mqtt://127.0.0.1"), None, None, 100, new_run_id()).expect("ok");
        let a = factory.client_id('p', 9999);
        let b = factory.client_id('s', 9999);
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(
                id.len() <= 23 && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id}"
            );
        }
        assert_ne!(new_run_id(), new_run_id());
    }
}

/// How a publisher's event loop run ended.
#[derive(Debug)]
pub enum DriveEnd {
    Done,
    TimedOut,
    Failed(String),
}

/// What [`drive_publisher`] saw.
#[derive(Debug)]
pub struct Drive {
    pub acked: u64,
    pub last_acked_ns: Option<u64>,
    pub end: DriveEnd,
}

/// When message `seq` of a run paced at `rate` per second from `start` is
/// due. Paced against the schedule, not the previous send, so timer
/// granularity (~1 ms) causes bursts but never a lower rate.
pub fn due(start: Instant, seq: u64, rate: u32) -> Instant {
    let offset_ns = u128::from(seq) * 1_000_000_000 / u128::from(rate.max(1));
    start + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX))
}

/// Runs `sender`, which hands publishes to rumqttc's queue, while
/// [`drive_publisher`] polls `eventloop`: in one task, so neither waits for
/// a thread hop. The driver ends last in a healthy run (it waits for the
/// final ack); if it ends first the connection died or time ran out, and
/// the sender, blocked on a queue nobody drains, is dropped.
pub async fn send_while_driving(
    sender: impl Future<Output = ()>,
    eventloop: &mut EventLoop,
    qos: QoS,
    count: u64,
    deadline: Instant,
    now_ns: impl Fn() -> u64,
) -> Drive {
    let mut sender = std::pin::pin!(sender);
    let mut driver = std::pin::pin!(drive_publisher(eventloop, qos, count, deadline, now_ns));
    let mut sender_done = false;
    loop {
        tokio::select! {
            () = &mut sender, if !sender_done => sender_done = true,
            drive = &mut driver => return drive,
        }
    }
}

/// Polls a publisher's event loop until `count` messages are acknowledged
/// (QoS 1) or written (QoS 0), or `deadline`. `now_ns` stamps the last one.
/// Never reconnects: see [`wait_connected`].
pub async fn drive_publisher(
    eventloop: &mut EventLoop,
    qos: QoS,
    count: u64,
    deadline: Instant,
    now_ns: impl Fn() -> u64,
) -> Drive {
    let mut acked = 0;
    let mut last_acked_ns = None;
    let end = loop {
        if acked == count {
            break DriveEnd::Done;
        }
        let event = match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => break DriveEnd::TimedOut,
            Ok(Err(e)) => break DriveEnd::Failed(format!("connection failed: {e}")),
            Ok(Ok(event)) => event,
        };
        let done = matches!(
            (qos, event),
            (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
        );
        if done {
            acked += 1;
            last_acked_ns = Some(now_ns());
        }
    };
    Drive {
        acked,
        last_acked_ns,
        end,
    }
}
