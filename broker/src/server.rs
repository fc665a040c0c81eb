//! Starting rumqttd on its own thread and waiting until every listener accepts connections.
//!
//! rumqttd's `Broker::start()` blocks forever and, when a listener cannot bind,
//! only logs the error inside its thread. So we bind each address ourselves,
//! reporting "port in use" with the port and the cause, and hand the bound
//! sockets to rumqttd (our vendored patch, `rumqttd::adopt_listener`); then
//! we connect to each listener until it answers.
//!
//! The TLS listener is ours, not rumqttd's (see [`crate::tls_front`]): it
//! relays decrypted connections to a rumqttd listener on a private loopback
//! port.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::{ConnectionSettings, RouterConfig, ServerSettings};

use crate::acl::AclError;
use crate::auth::{AuthError, Authenticator};
use crate::config::{BrokerConfig, ConfigError, ListenerKind};
use crate::confine::{self, RefusalCounts, Refusals};
use crate::failed_logins::{FailedLogins, RelayedPeers};
use crate::local_client::LocalLink;
use crate::lost::LostMessages;
use crate::tls_front::{self, TlsFrontError};

/// The loopback address rumqttd listens on behind the TLS front.
const TLS_BACKEND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// How long `start` waits for the listeners to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid broker config: {0}")]
    Config(#[from] ConfigError),
    #[error("broker users: {0}")]
    Users(#[from] AuthError),
    #[error("broker ACL: {0}")]
    Acl(#[from] AclError),
    #[error("TLS listener: {0}")]
    Tls(#[from] TlsFrontError),
    #[error(
        "cannot listen on {addr} ({kind}): {source}. Is another MQTT broker (mosquitto?) \
         already running there? Stop it, or choose another port in [broker]"
    )]
    Bind {
        addr: SocketAddr,
        kind: &'static str,
        source: io::Error,
    },
    #[error(
        "the broker stopped while starting; its {kind} listener {addr} never accepted a connection"
    )]
    Exited {
        addr: SocketAddr,
        kind: &'static str,
    },
    #[error("the broker's {kind} listener {addr} did not accept connections within {waited:?}")]
    NotReady {
        addr: SocketAddr,
        kind: &'static str,
        waited: Duration,
    },
    #[error("cannot start the broker thread: {0}")]
    Thread(io::Error),
}

/// A broker running on its own thread for the rest of the process.
///
/// rumqttd cannot be stopped once started; the process exiting stops it.
#[derive(Debug)]
pub struct RunningBroker {
    listeners: Vec<(ListenerKind, SocketAddr)>,
    /// Builds the hub's in-process link (`crate::local_client`).
    links: rumqttd::LinkFactory,
    thread: JoinHandle<()>,
    tls_thread: Option<JoinHandle<()>>,
    refusals: Arc<Refusals>,
    lost: Arc<LostMessages>,
}

impl RunningBroker {
    /// Where each listener really listens (port 0 in the config is resolved).
    pub fn listeners(&self) -> &[(ListenerKind, SocketAddr)] {
        &self.listeners
    }

    /// The MQTT 3.1.1 listener's address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.addr(ListenerKind::V4)
            .expect("the v4 listener is always configured")
    }

    pub fn addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// A client linked to this broker in process, with no socket (see
    /// `local_client.rs`); it works once its [`LocalLink`] is driven.
    pub fn local_client(
        &self,
        client_id: &str,
        user: &str,
        will: Option<rumqttc::LastWill>,
    ) -> (rumqttc::AsyncClient, LocalLink) {
        crate::local_client::client(self.links.clone(), client_id, user, will)
    }

    /// `mqtt://host:port` for clients on this machine.
    pub fn local_url(&self) -> String {
        let addr = reachable(self.mqtt_addr());
        format!("mqtt://{addr}")
    }

    /// What the ACL and the client id rules refused since the start.
    pub fn refusals(&self) -> RefusalCounts {
        self.refusals.counts()
    }

    /// The live counters behind [`Self::refusals`], for a metrics endpoint.
    pub fn refusal_counters(&self) -> Arc<Refusals> {
        self.refusals.clone()
    }

    /// What each subscriber lost since the start: messages the log moved
    /// past before it read them (a subscriber taken for stuck), per client
    /// id, for a metrics endpoint.
    pub fn lost_messages(&self) -> Arc<LostMessages> {
        self.lost.clone()
    }

    pub fn is_running(&self) -> bool {
        !self.thread.is_finished() && self.tls_thread.as_ref().is_none_or(|t| !t.is_finished())
    }
}

/// Validates `config`, starts rumqttd, and returns once every listener accepts.
pub fn start(config: &BrokerConfig) -> Result<RunningBroker, StartError> {
    config.validate()?;
    let auth = if config.anonymous_allowed() {
        None
    } else {
        Some(Authenticator::from_config(config)?)
    };
    let users = auth.as_ref().map_or(0, Authenticator::len);
    let acl = config.load_acl()?.map(Arc::new);
    let acl_rules = acl.is_some();
    let refusals = Arc::new(Refusals::default());
    let authorizer = confine::factory(acl, config.client_id_prefix_user, refusals.clone());
    // Every port is bound for good here: the TLS port is served by our
    // front, the others are handed to rumqttd.
    let mut tls_front = None;
    let mut listeners = Vec::new();
    for (kind, addr) in config.listeners() {
        if kind == ListenerKind::Tls {
            let tls = config.tls.as_ref().ok_or(StartError::Exited {
                addr,
                kind: kind.name(),
            })?;
            let server = tls_front::server_config(&tls.cert, &tls.key)?;
            let listener = bind(kind, addr)?;
            let public = listener.local_addr().map_err(|source| StartError::Bind {
                addr,
                kind: kind.name(),
                source,
            })?;
            let backend = claim_port(kind, TLS_BACKEND)?;
            tls_front = Some((listener, server, backend));
            listeners.push((kind, public));
        } else {
            listeners.push((kind, claim_port(kind, addr)?));
        }
    }
    let backend = tls_front.as_ref().map(|(_, _, backend)| *backend);
    // Our TLS front relays to rumqttd: it tells the login check who the
    // client behind each relayed connection is.
    let relayed = Arc::new(RelayedPeers::default());
    let mut rumqttd_config = rumqttd_config(
        config,
        auth,
        authorizer,
        &listeners,
        backend,
        refusals.clone(),
        relayed.clone(),
    );
    let lost = Arc::new(LostMessages::default());
    rumqttd_config.router.lost_messages = Some(lost.hook());
    let (links_tx, links_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("hearth-broker".to_owned())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(rumqttd_config);
            // `start` keeps the broker: hand out what builds local links first.
            let _ = links_tx.send(broker.links());
            if let Err(error) = broker.start() {
                tracing::error!(%error, "embedded broker stopped");
            }
        })
        .map_err(StartError::Thread)?;
    // Sent before anything that can fail; an error means the thread died.
    let links = links_rx.recv().map_err(|_| {
        StartError::Thread(io::Error::other(
            "the broker thread stopped before its router started",
        ))
    })?;
    let mut running = RunningBroker {
        listeners,
        links,
        thread,
        tls_thread: None,
        refusals,
        lost,
    };
    if let Some((listener, server, backend)) = tls_front {
        wait_until_accepting(&running, ListenerKind::Tls, backend)?;
        running.tls_thread = Some(tls_front::spawn(
            listener,
            server,
            backend,
            Duration::from_millis(config.connect_timeout_ms.into()),
            config.max_connections,
            relayed,
        )?);
    }
    for (kind, addr) in running.listeners.clone() {
        wait_until_accepting(&running, kind, addr)?;
    }
    for (kind, addr) in &running.listeners {
        tracing::info!(listener = kind.name(), %addr, anonymous = config.anonymous_allowed(), users, acl = acl_rules, "broker listening");
    }
    Ok(running)
}

fn bind(kind: ListenerKind, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr,
        kind: kind.name(),
        source,
    })
}

/// Binds `addr` (port 0 resolved by the kernel) and hands the listening
/// socket to rumqttd, which serves it as is. Releasing the port for rumqttd to
/// bind again would let another socket take it in between, and then our
/// readiness probe could be answered by someone else's listener.
fn claim_port(kind: ListenerKind, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    let listener = bind(kind, addr)?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr,
        kind: kind.name(),
        source,
    })?;
    rumqttd::adopt_listener(listener);
    Ok(bound)
}

/// An address a local client can connect to for a listener on `addr`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn wait_until_accepting(
    broker: &RunningBroker,
    kind: ListenerKind,
    addr: SocketAddr,
) -> Result<(), StartError> {
    let started = Instant::now();
    let target = reachable(addr);
    loop {
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !broker.is_running() {
            return Err(StartError::Exited {
                addr,
                kind: kind.name(),
            });
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(StartError::NotReady {
                addr,
                kind: kind.name(),
                waited: READY_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A listener's connection limits from `config`; logins are set apart.
fn connection_settings(
    config: &BrokerConfig,
    authorizer: rumqttd::AuthorizerFactory,
) -> ConnectionSettings {
    ConnectionSettings {
        connection_timeout_ms: config.connect_timeout_ms,
        max_payload_size: config.max_payload_size,
        max_inflight_count: config.max_inflight,
        auth: None,
        external_auth: None,
        peer_auth: None,
        // Clients subscribe to whatever filters they like; without this
        // rumqttd only serves filters named up front.
        dynamic_filters: true,
        authorizer: Some(authorizer),
    }
}

fn rumqttd_config(
    config: &BrokerConfig,
    auth: Option<Authenticator>,
    authorizer: rumqttd::AuthorizerFactory,
    listeners: &[(ListenerKind, SocketAddr)],
    tls_backend: Option<SocketAddr>,
    refusals: Arc<Refusals>,
    relayed: Arc<RelayedPeers>,
) -> rumqttd::Config {
    // Topic ACL and client ids kept by their user (our vendored patch).
    let mut connections = connection_settings(config, authorizer);
    if let Some(auth) = auth {
        let failed = Arc::new(FailedLogins::default());
        connections.set_peer_auth_handler(
            move |client_id: String, user: String, pass: String, peer: SocketAddr| {
                let auth = auth.clone();
                let failed = failed.clone();
                let refusals = refusals.clone();
                let relayed = relayed.clone();
                async move {
                    // Only the user name is logged, never the password.
                    let username = user.clone();
                    let ok = auth.check(user, pass).await;
                    if !ok {
                        refusals.login_refused();
                        let client = relayed.client(peer).ip();
                        // For fail2ban: `MQTT login refused client=<ip> username=<name>`.
                        if let Some(unlogged) = failed.note(client, Instant::now()) {
                            tracing::warn!(%client, username = %username.escape_debug(), client_id = %client_id.escape_debug(), unlogged, "MQTT login refused");
                        }
                    }
                    ok
                }
            },
        );
    }
    let server = |kind: ListenerKind, listen: SocketAddr| {
        let name = kind.name().to_owned();
        let settings = ServerSettings {
            name: name.clone(),
            listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections: connections.clone(),
        };
        HashMap::from([(name, settings)])
    };
    let mut out = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: config.max_connections,
            max_outgoing_packet_count: config.max_outgoing_packets,
            max_segment_size: config.segment_size,
            max_segment_count: config.segment_count,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
            lost_messages: None,
        },
        ..Default::default()
    };
    for (kind, addr) in listeners {
        match kind {
            ListenerKind::V4 => out.v4 = Some(server(*kind, *addr)),
            ListenerKind::V5 => out.v5 = Some(server(*kind, *addr)),
            ListenerKind::WebSocket => out.ws = Some(server(*kind, *addr)),
            // Served by the TLS front; rumqttd gets the decrypted stream on
            // a loopback MQTT 3.1.1 listener.
            ListenerKind::Tls => {}
        }
    }
    if let Some(backend) = tls_backend {
        let v4 = out.v4.get_or_insert_with(HashMap::new);
        v4.extend(server(ListenerKind::Tls, backend));
    }
    out
}
