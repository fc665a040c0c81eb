//! MQTT over TLS in front of rumqttd: handshakes with a deadline, one task each, then a byte relay to a loopback listener.
//!
//! Why not rumqttd's own TLS listener: rumqttd 0.20 runs the TLS handshake
//! inside its accept loop, so one client that opens a TCP connection to the
//! TLS port and sends nothing stops that listener from accepting anybody
//! else until it goes away (tests/tls.rs shows it). Here the accept loop
//! only accepts; each handshake runs in its own task and must finish within
//! `connect_timeout_ms`. The decrypted stream is relayed to a plain rumqttd
//! listener on a private loopback port, which checks logins like every
//! other listener.
//!
//! This also brings rustls 0.23 (ring provider) to the server side, which
//! tolerates the IP address OpenSSL clients such as mosquitto_pub put in
//! SNI when they are pointed at an IP; rustls 0.22 inside rumqttd refused
//! those handshakes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::failed_logins::RelayedPeers;

/// Why the TLS front cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsFrontError {
    #[error("TLS {what} file {path}: {why}")]
    File {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("TLS certificate and key do not work together: {0}")]
    Rustls(String),
    #[error("cannot start the TLS listener thread: {0}")]
    Io(#[from] std::io::Error),
}

/// The server side of TLS: the certificate chain and key from PEM files,
/// TLS 1.2 and 1.3, ring as the crypto provider, no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsFrontError> {
    let file_error = |what: &'static str, path: &Path, why: String| TlsFrontError::File {
        what,
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("certificate", cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("certificate", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            cert,
            "no -----BEGIN CERTIFICATE----- block".to_owned(),
        ));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsFrontError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsFrontError::Rustls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Serves TLS on `listener` (already bound) on a thread of its own,
/// relaying each connection to `backend`. At most `max_connections`
/// connections are open at once, handshakes included; more are closed at
/// once rather than queued.
pub fn spawn(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    handshake_timeout: Duration,
    max_connections: usize,
    relayed: Arc<RelayedPeers>,
) -> Result<std::thread::JoinHandle<()>, TlsFrontError> {
    listener.set_nonblocking(true)?;
    let thread = std::thread::Builder::new()
        .name("hearth-tls".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "cannot start the TLS listener runtime");
                    return;
                }
            };
            runtime.block_on(serve(
                listener,
                config,
                backend,
                handshake_timeout,
                max_connections,
                relayed,
            ));
        })?;
    Ok(thread)
}

async fn serve(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    handshake_timeout: Duration,
    max_connections: usize,
    relayed: Arc<RelayedPeers>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "TLS listener unusable");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(%error, "TLS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, max_connections, "TLS connection refused: too many connections");
            continue;
        };
        let acceptor = acceptor.clone();
        let relayed = relayed.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, ?handshake_timeout, "TLS handshake timed out");
                    return;
                }
            };
            relay(tls, backend, peer, &relayed).await;
        });
    }
}

/// Copies bytes both ways until either side closes.
async fn relay(
    mut tls: tokio_rustls::server::TlsStream<TcpStream>,
    backend: SocketAddr,
    peer: SocketAddr,
    relayed: &RelayedPeers,
) {
    let mut plain = match TcpStream::connect(backend).await {
        Ok(plain) => plain,
        Err(error) => {
            tracing::error!(%peer, %backend, %error, "cannot reach the broker behind TLS");
            return;
        }
    };
    let _ = plain.set_nodelay(true);
    // Recorded before the first byte goes through, so the CONNECT's login
    // check finds it.
    let local = plain.local_addr().ok();
    if let Some(local) = local {
        relayed.insert(local, peer);
    }
    if let Err(error) = tokio::io::copy_bidirectional(&mut tls, &mut plain).await {
        tracing::debug!(%peer, %error, "TLS connection ended");
    }
    if let Some(local) = local {
        relayed.remove(&local);
    }
}
