//! One MQTT connection per process part: options from settings, and the task that owns the socket.
//!
//! The driver task is the only thing that polls rumqttc's event loop. It turns
//! what arrives into [`LinkEvent`]s on a bounded channel (a slow consumer slows
//! the socket down instead of growing memory), and on any error it waits a
//! capped, jittered backoff before polling again, because rumqttc reconnects
//! immediately when polled. The backoff starts over only after a link has
//! stayed up for [`STABLE_LINK`], not at every ConnAck: a broker that closes
//! each new connection at once (another client with the same client id) is
//! then retried more and more slowly. Subscriptions are the consumer's job
//! on every [`LinkEvent::Connected`]: a broker restart forgets them.
//!
//! `mqtts://` URLs connect over TLS (rustls with ring, see [`crate::tls`]),
//! trusting `ca_file` or else the operating system's roots.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS,
    TlsConfiguration, Transport,
};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

/// Capacity of rumqttc's request channel (publishes waiting for the socket).
pub const REQUEST_CHANNEL_CAPACITY: usize = 256;
/// Capacity of the channel from the socket task to its consumer.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;

/// A password or other secret: never printed by `Debug` or `Display`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Default port of `mqtt://` (plain TCP).
pub const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://` (MQTT over TLS).
pub const MQTTS_PORT: u16 = 8883;

/// How to reach a broker.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// `mqtt://host:port` (plain TCP, default port 1883) or
    /// `mqtts://host:port` (TLS, default port 8883). `tcp://` and `ssl://`
    /// are accepted as the same two.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Seconds between keep-alive pings; must be at least 1 (rumqttd refuses 0).
    pub keep_alive_secs: u16,
    /// For `mqtts://` only: PEM file with the CA certificate(s) that signed
    /// the broker's certificate (a home CA, or the broker's self-signed
    /// certificate). Unset: the operating system's trusted roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            url: format!("mqtt://127.0.0.1:{MQTT_PORT}"),
            username: None,
            password: None,
            keep_alive_secs: 30,
            ca_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MqttError {
    #[error("broker url {url:?} is not valid: {why}")]
    BadUrl { url: String, why: String },
    #[error("keep_alive_secs must be at least 1 (brokers such as rumqttd refuse 0)")]
    ZeroKeepAlive,
    #[error("a password is set without a username")]
    PasswordWithoutUser,
}

/// Where a broker URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: the connection is TLS.
    pub tls: bool,
}

impl MqttSettings {
    /// Parses `url` (`mqtt://host[:port]`, `mqtts://host[:port]`, or their
    /// aliases `tcp://` and `ssl://`).
    pub fn address(&self) -> Result<BrokerAddress, MqttError> {
        let bad = |why: &str| MqttError::BadUrl {
            url: self.url.clone(),
            why: why.to_owned(),
        };
        let url = url::Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        // The URL is shown in logs, banners and errors: a password in it
        // would be echoed everywhere. It has fields of its own.
        if !url.username().is_empty() || url.password().is_some() {
            let mut shown = url.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            return Err(MqttError::BadUrl {
                url: shown.to_string(),
                why: "it holds a user or password, which would be shown wherever the url is; \
                      put them in mqtt.username and mqtt.password (HEARTH_MQTT__PASSWORD)"
                    .to_owned(),
            });
        }
        let (tls, default_port) = match url.scheme() {
            "mqtt" | "tcp" => (false, MQTT_PORT),
            "mqtts" | "ssl" => (true, MQTTS_PORT),
            other => {
                return Err(bad(&format!(
                    "scheme {other:?} is not supported; use mqtt:// or mqtts://"
                )));
            }
        };
        let host = url.host_str().ok_or_else(|| bad("it has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !url.path().is_empty() && url.path() != "/" {
            return Err(bad("it must not have a path"));
        }
        Ok(BrokerAddress {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
        })
    }

    /// rumqttc options for a client called `client_id`, with Nagle off.
    pub fn options(
        &self,
        client_id: &str,
        will: Option<LastWill>,
    ) -> Result<MqttOptions, MqttError> {
        let address = self.address()?;
        if self.keep_alive_secs == 0 {
            return Err(MqttError::ZeroKeepAlive);
        }
        // rumqttc resolves "{host}:{port}", so an IPv6 literal needs its brackets back.
        let host = if address.host.contains(':') {
            format!("[{}]", address.host)
        } else {
            address.host.clone()
        };
        let tls = if address.tls {
            Some(self.tls_transport(&address)?)
        } else if let Some(ca_file) = &self.ca_file {
            // A CA on a plain URL means the user expects TLS and would get
            // none: say so instead of silently sending the password in clear.
            return Err(MqttError::BadUrl {
                url: self.url.clone(),
                why: format!(
                    "ca_file {} is set but the url is not mqtts://; use mqtts://host:{MQTTS_PORT}",
                    ca_file.display()
                ),
            });
        } else {
            None
        };
        let mut options = MqttOptions::new(client_id, host, address.port);
        if let Some(transport) = tls {
            options.set_transport(transport);
        }
        options.set_keep_alive(Duration::from_secs(self.keep_alive_secs.into()));
        options.set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY);
        match (&self.username, &self.password) {
            (Some(user), password) => {
                options.set_credentials(
                    user.clone(),
                    password
                        .as_ref()
                        .map(|p| p.expose().to_owned())
                        .unwrap_or_default(),
                );
            }
            (None, Some(_)) => return Err(MqttError::PasswordWithoutUser),
            (None, None) => {}
        }
        if let Some(will) = will {
            options.set_last_will(will);
        }
        Ok(options)
    }

    /// The TLS transport for `mqtts://`. Its errors are reported as
    /// [`MqttError::BadUrl`] with a reason naming `ca_file`, because callers
    /// in other crates match on `MqttError` exhaustively (see docs/security.md).
    fn tls_transport(&self, address: &BrokerAddress) -> Result<Transport, MqttError> {
        let bad = |why: String| MqttError::BadUrl {
            url: self.url.clone(),
            why,
        };
        if address.host.contains(':') {
            // rumqttc checks the certificate against the host string it was
            // given, which for IPv6 must carry brackets to be dialled.
            return Err(bad(
                "mqtts:// to an IPv6 literal is not supported; use a host name".to_owned(),
            ));
        }
        let config =
            crate::tls::client_config(self.ca_file.as_deref()).map_err(|e| bad(e.to_string()))?;
        Ok(Transport::Tls(TlsConfiguration::Rustls(config)))
    }
}

/// Creates the client handle and its event loop, with TCP_NODELAY set: a
/// button press is one small packet and must not wait for the peer's
/// delayed ACK (Nagle costs ~40 ms per hop otherwise).
pub fn client(options: MqttOptions) -> (AsyncClient, EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(5);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// What the socket task reports to its consumer.
#[derive(Debug)]
pub enum LinkEvent {
    /// A CONNACK arrived: (re)subscribe and (re)publish retained state now.
    Connected {
        session_present: bool,
    },
    Message(Publish),
    /// A SUBACK arrived: the broker now routes that SUBSCRIBE's filters to us.
    Subscribed,
    /// The connection failed; the driver retries after `retry_in`.
    Disconnected {
        error: String,
        retry_in: Duration,
    },
}

/// While the broker stays unreachable, how often [`OutageLog`] says so at warn.
pub const STILL_DOWN_WARN_EVERY: Duration = Duration::from_secs(60);

/// How loudly a consumer reports [`LinkEvent::Disconnected`].
///
/// At warn: a working link lost, the first failure of an outage (at startup
/// too: a wrong password or a broker that is not there must show in
/// `kubectl logs` at the default level, not only a healthy-looking "started"
/// while the driver retries forever), and then every
/// [`STILL_DOWN_WARN_EVERY`] while it keeps failing. Every other retry is
/// debug, so a long outage is a line a minute, not one per attempt. The
/// error text comes from rumqttc and never contains the password.
#[derive(Debug, Default)]
pub struct OutageLog {
    connected: bool,
    outage: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    failures: u64,
    warned_at: Instant,
}

/// What [`OutageLog`] logged for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Lost,
    Unreachable,
    StillUnreachable,
    Quiet,
}

impl OutageLog {
    /// A CONNACK arrived: the outage, if any, is over.
    pub fn connected(&mut self) {
        self.connected = true;
        self.outage = None;
    }

    /// Logs a [`LinkEvent::Disconnected`] at the level it deserves.
    pub fn disconnected(&mut self, error: &str, retry_in: Duration) {
        self.disconnected_at(Instant::now(), error, retry_in);
    }

    fn disconnected_at(&mut self, now: Instant, error: &str, retry_in: Duration) -> Reported {
        let was_connected = std::mem::replace(&mut self.connected, false);
        let Some(outage) = &mut self.outage else {
            self.outage = Some(Outage {
                since: now,
                failures: 1,
                warned_at: now,
            });
            if was_connected {
                tracing::warn!(%error, ?retry_in, "lost the broker; reconnecting");
                return Reported::Lost;
            }
            tracing::warn!(
                %error,
                ?retry_in,
                "cannot connect to the broker (check mqtt.url, username and password); retrying"
            );
            return Reported::Unreachable;
        };
        outage.failures += 1;
        if now.duration_since(outage.warned_at) >= STILL_DOWN_WARN_EVERY {
            outage.warned_at = now;
            tracing::warn!(
                %error,
                failures = outage.failures,
                down_secs = now.duration_since(outage.since).as_secs(),
                ?retry_in,
                "still cannot connect to the broker"
            );
            Reported::StillUnreachable
        } else {
            tracing::debug!(%error, ?retry_in, "broker still unreachable");
            Reported::Quiet
        }
    }
}

/// A link that stays up this long counts as healthy: after it drops, the
/// first retry comes after the shortest pause again. A link dropped sooner
/// keeps the backoff growing, so two clients with one client id, which kick
/// each other off the broker at every connect, slow down to one attempt
/// every few seconds instead of flapping several times a second forever.
pub const STABLE_LINK: Duration = Duration::from_secs(30);
/// Links in a row dropped within [`STABLE_LINK`] of their ConnAck before the
/// driver suggests that another client uses the same client id.
pub const SHORT_LINKS_BEFORE_HINT: u32 = 3;
/// Least time between two such suggestions.
pub const SAME_CLIENT_ID_HINT_EVERY: Duration = Duration::from_secs(60);

/// Counts links that die soon after their ConnAck, to pace the backoff and
/// to name the likely cause.
#[derive(Debug, Default)]
struct ShortLinks {
    up_since: Option<Instant>,
    in_a_row: u32,
    hinted_at: Option<Instant>,
}

impl ShortLinks {
    fn connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// A failure at `now`: resets `backoff` only if the link had been up
    /// for [`STABLE_LINK`]. Returns whether to warn that the client id may
    /// be in use twice.
    fn failed(&mut self, now: Instant, backoff: &mut Backoff) -> bool {
        let Some(since) = self.up_since.take() else {
            // Never got a ConnAck: an ordinary failed attempt.
            return false;
        };
        if now.duration_since(since) >= STABLE_LINK {
            backoff.reset();
            self.in_a_row = 0;
            return false;
        }
        self.in_a_row += 1;
        let due = self
            .hinted_at
            .is_none_or(|at| now.duration_since(at) >= SAME_CLIENT_ID_HINT_EVERY);
        if self.in_a_row >= SHORT_LINKS_BEFORE_HINT && due {
            self.hinted_at = Some(now);
            return true;
        }
        false
    }
}

/// Most events held for a slow consumer before QoS 0 messages are dropped.
pub const PENDING_CAPACITY: usize = 1024;
/// Hard cap on held events, QoS 1 included. With manual acks the broker's
/// inflight window keeps QoS 1 far below it; with automatic acks a flood
/// beyond it is dropped (and counted) rather than growing memory.
pub const PENDING_HARD_CAP: usize = 4 * PENDING_CAPACITY;

/// Owns `eventloop` until `shutdown` is cancelled, the consumer goes away,
/// or our own DISCONNECT has been written (`AsyncClient::disconnect`).
///
/// rumqttc writes requests in the order they were made and flushes the
/// socket before it reports the DISCONNECT, so when `drive` returns after
/// one, every publish and ack queued before it has left: a clean shutdown
/// waits for that instead of sleeping. Events already received are still
/// handed to the consumer first.
///
/// Polling never waits for the consumer: if it did, a consumer blocked on
/// a full request channel (a publish) would wait for a poll that waits for
/// the consumer. Events queue in a small buffer instead, bounded as
/// [`PENDING_CAPACITY`] and [`PENDING_HARD_CAP`] say. Returns how many
/// messages were dropped for a slow consumer.
pub async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::Sender<LinkEvent>,
    shutdown: CancellationToken,
) -> u64 {
    let pending = std::sync::Mutex::new(VecDeque::<LinkEvent>::new());
    let ready = Notify::new();
    let consumer_gone = CancellationToken::new();
    // Our DISCONNECT went out: nothing more will be polled.
    let link_closed = CancellationToken::new();
    let mut dropped = 0u64;
    let push = |event: LinkEvent, dropped: &mut u64| {
        let mut queue = pending.lock().unwrap_or_else(|p| p.into_inner());
        let droppable = match &event {
            LinkEvent::Message(p) if p.qos == QoS::AtMostOnce => queue.len() >= PENDING_CAPACITY,
            _ => queue.len() >= PENDING_HARD_CAP,
        };
        if droppable {
            *dropped += 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = *dropped,
                    "consumer too slow: dropping MQTT messages"
                );
            }
        } else {
            queue.push_back(event);
            ready.notify_one();
        }
    };
    let client_id = eventloop.mqtt_options.client_id();
    let poller = async {
        let mut backoff = Backoff::default();
        let mut short_links = ShortLinks::default();
        loop {
            let polled = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = consumer_gone.cancelled() => return,
                polled = eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    // The backoff is not reset here: a link the broker
                    // closes again at once must not be retried at once.
                    short_links.connected(Instant::now());
                    let session_present = ack.session_present;
                    push(LinkEvent::Connected { session_present }, &mut dropped);
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    push(LinkEvent::Message(publish), &mut dropped)
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    push(LinkEvent::Subscribed, &mut dropped)
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    link_closed.cancel();
                    return;
                }
                Ok(_) => {}
                Err(error) => {
                    if short_links.failed(Instant::now(), &mut backoff) {
                        tracing::warn!(
                            %client_id,
                            drops = short_links.in_a_row,
                            %error,
                            "the broker keeps closing the connection soon after accepting it: \
                             another client may be using the same client id"
                        );
                    }
                    let retry_in = backoff.next_delay(&mut rand::rng());
                    let error = error.to_string();
                    push(LinkEvent::Disconnected { error, retry_in }, &mut dropped);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = consumer_gone.cancelled() => return,
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
    };
    let forwarder = async {
        loop {
            let next = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match next {
                Some(event) => {
                    if events.send(event).await.is_err() {
                        consumer_gone.cancel();
                        return;
                    }
                }
                None => tokio::select! {
                    _ = ready.notified() => {}
                    _ = shutdown.cancelled() => return,
                    _ = consumer_gone.cancelled() => return,
                    _ = link_closed.cancelled() => return,
                },
            }
        }
    };
    tokio::join!(poller, forwarder);
    dropped
}

/// A retained availability last will: the broker publishes `offline` for us.
pub fn offline_will(topic: &str) -> LastWill {
    LastWill::new(topic, "offline", QoS::AtLeastOnce, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> MqttSettings {
        MqttSettings {
            url: url.to_owned(),
            ..MqttSettings::default()
        }
    }

    #[test]
    fn parses_broker_urls() {
        let addr = settings("mqtt://10.0.0.5").address().unwrap();
        assert_eq!((addr.host.as_str(), addr.port), ("10.0.0.5", 1883));
        let addr = settings("tcp://broker.hearth.svc:11883").address().unwrap();
        assert_eq!(
            (addr.host.as_str(), addr.port),
            ("broker.hearth.svc", 11883)
        );
        let addr = settings("mqtt://[::1]:1884").address().unwrap();
        assert_eq!((addr.host.as_str(), addr.port), ("::1", 1884));
        for bad in ["127.0.0.1:1883", "http://x", "mqtt://", "mqtt://h/path"] {
            assert!(settings(bad).address().is_err(), "{bad}");
        }
        let addr = settings("mqtts://broker.home.arpa").address().unwrap();
        assert_eq!(
            (addr.host.as_str(), addr.port, addr.tls),
            ("broker.home.arpa", 8883, true)
        );
        let addr = settings("ssl://10.0.0.5:18883").address().unwrap();
        assert_eq!((addr.port, addr.tls), (18883, true));
        assert!(!settings("mqtt://h").address().unwrap().tls);
    }

    #[test]
    fn tls_settings_are_checked_up_front() {
        // A CA with a plain URL would send the password in clear: refused.
        let s = MqttSettings {
            ca_file: Some("/etc/hearth/ca.pem".into()),
            ..settings("mqtt://broker:1883")
        };
        let err = s.options("id", None).unwrap_err().to_string();
        assert!(err.contains("mqtts://"), "{err}");
        // A CA file that is not there is named.
        let s = MqttSettings {
            ca_file: Some("/nope/ca.pem".into()),
            ..settings("mqtts://broker")
        };
        let err = s.options("id", None).unwrap_err().to_string();
        assert!(err.contains("ca_file /nope/ca.pem"), "{err}");
        let s = settings("mqtts://[::1]:8883");
        assert!(s.options("id", None).is_err());
    }

    #[test]
    fn existing_configs_without_tls_keys_still_parse() {
        let parsed: MqttSettings =
            toml::from_str("url = \"mqtt://10.0.0.5\"\nusername = \"hub\"\n").unwrap();
        assert_eq!(parsed.ca_file, None);
        let parsed: MqttSettings =
            toml::from_str("url = \"mqtts://b:8883\"\nca_file = \"/etc/ca.pem\"\n").unwrap();
        assert_eq!(parsed.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert!(toml::from_str::<MqttSettings>("cafile = \"x\"\n").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = MqttSettings {
            username: Some("hub".into()),
            password: Some(Secret::new("hunter2")),
            ..MqttSettings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let options = s.options("id", None).unwrap();
        assert_eq!(
            options.credentials().map(|l| l.password),
            Some("hunter2".to_owned())
        );
    }

    #[test]
    fn outages_are_warned_about_once_then_every_minute() {
        let mut log = OutageLog::default();
        let start = Instant::now();
        let retry = Duration::from_secs(1);
        let at = |secs| start + Duration::from_secs(secs);
        // Never connected (wrong password, no broker): the first failure is
        // a warning, the retries right after it are not.
        assert_eq!(
            log.disconnected_at(at(0), "refused", retry),
            Reported::Unreachable
        );
        for secs in 1..60 {
            assert_eq!(
                log.disconnected_at(at(secs), "refused", retry),
                Reported::Quiet
            );
        }
        assert_eq!(
            log.disconnected_at(at(60), "refused", retry),
            Reported::StillUnreachable
        );
        assert_eq!(
            log.disconnected_at(at(61), "refused", retry),
            Reported::Quiet
        );
        assert_eq!(
            log.disconnected_at(at(125), "refused", retry),
            Reported::StillUnreachable
        );
        // Connected, then lost: said at once, and the next outage starts over.
        log.connected();
        assert_eq!(log.disconnected_at(at(200), "reset", retry), Reported::Lost);
        assert_eq!(
            log.disconnected_at(at(201), "refused", retry),
            Reported::Quiet
        );
        log.connected();
        assert_eq!(log.disconnected_at(at(202), "reset", retry), Reported::Lost);
    }

    #[test]
    fn only_a_link_that_stayed_up_resets_the_backoff() {
        let mut backoff = Backoff::default();
        let mut links = ShortLinks::default();
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut rng = rand::rng();
        // Kicked off 10 ms after every ConnAck: the pauses keep growing,
        // and from the third such drop on the client id is suspected, once.
        let mut hints = Vec::new();
        for i in 0..6 {
            links.connected(at(i * 1000));
            hints.push(links.failed(at(i * 1000 + 10), &mut backoff));
            backoff.next_delay(&mut rng);
        }
        assert_eq!(hints, [false, false, true, false, false, false]);
        assert_eq!(backoff.failures(), 6);
        // Failed attempts without a ConnAck do not reset it either.
        assert!(!links.failed(at(7000), &mut backoff));
        backoff.next_delay(&mut rng);
        assert_eq!(backoff.failures(), 7);
        // A link that lived STABLE_LINK starts over at the shortest pause.
        links.connected(at(8000));
        let later = 8000 + STABLE_LINK.as_millis() as u64;
        assert!(!links.failed(at(later), &mut backoff));
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.ceiling(), crate::backoff::DEFAULT_INITIAL);
    }

    #[test]
    fn refuses_credentials_in_the_url_without_echoing_them() {
        let settings = MqttSettings {
            url: "mqtt://hub:hunter2@10.0.0.5:1883".into(),
            ..MqttSettings::default()
        };
        let err = settings.address().unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, MqttError::BadUrl { .. }) && shown.contains("mqtt.username"),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("hub:"),
            "the error echoes the credentials: {shown}"
        );
        assert!(shown.contains("10.0.0.5:1883"), "{shown}");
    }

    #[test]
    fn refuses_zero_keep_alive_and_orphan_passwords() {
        let s = MqttSettings {
            keep_alive_secs: 0,
            ..MqttSettings::default()
        };
        assert_eq!(s.options("id", None).err(), Some(MqttError::ZeroKeepAlive));
        let s = MqttSettings {
            password: Some(Secret::new("x")),
            ..MqttSettings::default()
        };
        assert_eq!(
            s.options("id", None).err(),
            Some(MqttError::PasswordWithoutUser)
        );
    }
}
