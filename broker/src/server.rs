//! Starting rumqttd on its own thread and waiting until every listener accepts connections.
//!
//! rumqttd's `Broker::start()` blocks forever and, when a listener cannot bind,
//! only logs the error inside its thread. So before starting it we bind each
//! address ourselves to report "port in use" with the port and the cause, and
//! afterwards we connect to each listener until it answers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::{ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};

use crate::auth::Authenticator;
use crate::config::{BrokerConfig, ConfigError, ListenerKind};

/// How long `start` waits for the listeners to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid broker config: {0}")]
    Config(#[from] ConfigError),
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
    thread: JoinHandle<()>,
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

    /// `mqtt://host:port` for clients on this machine.
    pub fn local_url(&self) -> String {
        let addr = reachable(self.mqtt_addr());
        format!("mqtt://{addr}")
    }

    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

/// Validates `config`, starts rumqttd, and returns once every listener accepts.
pub fn start(config: &BrokerConfig) -> Result<RunningBroker, StartError> {
    config.validate()?;
    let listeners = config
        .listeners()
        .into_iter()
        .map(|(kind, addr)| claim_port(kind, addr).map(|addr| (kind, addr)))
        .collect::<Result<Vec<_>, _>>()?;
    let rumqttd_config = rumqttd_config(config, &listeners);
    let thread = std::thread::Builder::new()
        .name("hearth-broker".to_owned())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(rumqttd_config);
            if let Err(error) = broker.start() {
                tracing::error!(%error, "embedded broker stopped");
            }
        })
        .map_err(StartError::Thread)?;
    let running = RunningBroker { listeners, thread };
    for (kind, addr) in running.listeners.clone() {
        wait_until_accepting(&running, kind, addr)?;
    }
    for (kind, addr) in &running.listeners {
        tracing::info!(listener = kind.name(), %addr, anonymous = config.anonymous_allowed(), users = config.users.len(), "broker listening");
    }
    Ok(running)
}

/// Binds `addr` once to prove it is free and to resolve port 0, then releases it.
fn claim_port(kind: ListenerKind, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr,
        kind: kind.name(),
        source,
    })?;
    listener.local_addr().map_err(|source| StartError::Bind {
        addr,
        kind: kind.name(),
        source,
    })
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

fn rumqttd_config(
    config: &BrokerConfig,
    listeners: &[(ListenerKind, SocketAddr)],
) -> rumqttd::Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: config.connect_timeout_ms,
        max_payload_size: config.max_payload_size,
        max_inflight_count: config.max_inflight,
        auth: None,
        external_auth: None,
        // Clients subscribe to whatever filters they like; without this
        // rumqttd only serves filters named up front.
        dynamic_filters: true,
    };
    if !config.anonymous_allowed() {
        let auth = Authenticator::new(config.users.clone());
        connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
            let auth = auth.clone();
            async move {
                let ok = auth.verify(&user, &pass);
                if !ok {
                    tracing::warn!(%client_id, username = %user, "login refused");
                }
                ok
            }
        });
    }
    let server = |kind: ListenerKind, listen: SocketAddr, tls: Option<TlsConfig>| {
        let name = kind.name().to_owned();
        let settings = ServerSettings {
            name: name.clone(),
            listen,
            tls,
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
        },
        ..Default::default()
    };
    for (kind, addr) in listeners {
        match kind {
            ListenerKind::V4 => out.v4 = Some(server(*kind, *addr, None)),
            ListenerKind::V5 => out.v5 = Some(server(*kind, *addr, None)),
            ListenerKind::WebSocket => out.ws = Some(server(*kind, *addr, None)),
            ListenerKind::Tls => {
                let tls = config.tls.as_ref().map(|t| TlsConfig::Rustls {
                    capath: None,
                    certpath: t.cert.display().to_string(),
                    keypath: t.key.display().to_string(),
                });
                let v4 = out.v4.get_or_insert_with(HashMap::new);
                v4.extend(server(*kind, *addr, tls));
            }
        }
    }
    out
}
