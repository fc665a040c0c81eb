//! A TCP forwarder a test puts between a client and its broker, to pull the cable and plug it back.
//!
//! [`Proxy::cut`] behaves like an unplugged Ethernet cable or a Wi-Fi
//! drop-out: no byte passes in either direction, but no socket is closed
//! either, so neither end hears a FIN or a reset and each only notices
//! through its own keep-alive. [`Proxy::restore`] plugs it back in.
//! [`Proxy::drop_connections`] is the other kind of failure: a NAT or
//! proxy restart that ends every connection at once, which both ends see
//! straight away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bytes moved per read; MQTT packets in tests are far smaller.
const CHUNK: usize = 16 * 1024;

/// A forwarder from a loopback port to `upstream`, stopped on drop.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    /// `true` while bytes flow: the cable is plugged in.
    open: watch::Sender<bool>,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    connections: Mutex<Vec<JoinHandle<()>>>,
    accepted: AtomicU64,
    accepted_while_cut: AtomicU64,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let (open, _) = watch::channel(true);
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            open.subscribe(),
            shared.clone(),
        ));
        Self {
            addr,
            open,
            shared,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `mqtt://127.0.0.1:<port>`, for a client's config.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }

    /// Pulls the cable: nothing passes, nothing is closed.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Plugs the cable back in. Connections from before the cut carry on
    /// with whatever was held back (if an end gave up meanwhile, the other
    /// end now hears it); connection attempts made during the cut, which a
    /// real cable would never have let complete, are closed, and new ones
    /// are forwarded again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }

    /// Ends every connection through the proxy at once, as a NAT or proxy
    /// restart would; new connections are forwarded as before.
    pub fn drop_connections(&self) {
        let mut connections = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for task in connections.drain(..) {
            // Aborting drops both sockets, which closes them.
            task.abort();
        }
    }

    /// Connections accepted so far, counting those accepted during a cut.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Relaxed)
    }

    /// Connection attempts that arrived while the cable was out: how a test
    /// sees that the client noticed the loss and started redialling.
    pub fn accepted_while_cut(&self) -> u64 {
        self.shared.accepted_while_cut.load(Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    open: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    while let Ok((client, _)) = listener.accept().await {
        shared.accepted.fetch_add(1, Relaxed);
        let cut = !*open.borrow();
        if cut {
            shared.accepted_while_cut.fetch_add(1, Relaxed);
        }
        let task = tokio::spawn(serve(client, upstream, open.clone(), cut));
        let mut connections = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.retain(|t| !t.is_finished());
        connections.push(task);
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut open: watch::Receiver<bool>,
    cut: bool,
) {
    if cut {
        // The kernel completed this handshake because our listener exists;
        // through a pulled cable it never would have. Hold the socket silent
        // (the client waits for its CONNACK and times out, as with a dead
        // link) and close it when the cable is back, so a stale CONNECT can
        // never reach the broker and take over the client's new session.
        let _ = open.wait_for(|o| *o).await;
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, open.clone()),
        pump(server_read, client_write, open),
    );
}

/// Copies one direction while the cable is in. Bytes (or an end of stream)
/// read just as the cable is pulled are "on the wire": delivered only once
/// it is plugged back in.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut open: watch::Receiver<bool>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        let n = from.read(&mut buf).await.unwrap_or(0);
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An echo server on a free port.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn read_some(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(n)) => Some(buf[..n].to_vec()),
            Ok(Err(_)) => Some(Vec::new()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn a_cut_holds_bytes_without_closing_and_a_restore_delivers_them() {
        let proxy = Proxy::start(echo().await).await;
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        s.write_all(b"one").await.unwrap();
        assert_eq!(
            read_some(&mut s, Duration::from_secs(2)).await.unwrap(),
            b"one"
        );

        proxy.cut();
        s.write_all(b"two").await.unwrap();
        // Neither an echo nor an end of stream: silence, like a dead link.
        assert_eq!(read_some(&mut s, Duration::from_millis(300)).await, None);

        // A new connection during the cut is accepted but goes nowhere,
        // and is closed once the cable is back.
        let mut late = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        late.write_all(b"lost").await.unwrap();
        assert_eq!(read_some(&mut late, Duration::from_millis(300)).await, None);
        assert_eq!(proxy.accepted_while_cut(), 1);

        proxy.restore();
        assert_eq!(
            read_some(&mut s, Duration::from_secs(2)).await.unwrap(),
            b"two"
        );
        assert_eq!(
            read_some(&mut late, Duration::from_secs(2)).await.unwrap(),
            b"",
            "the connection made during the cut is closed"
        );
        let mut fresh = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        fresh.write_all(b"three").await.unwrap();
        assert_eq!(
            read_some(&mut fresh, Duration::from_secs(2)).await.unwrap(),
            b"three"
        );
        assert_eq!(proxy.accepted(), 3);
    }

    #[tokio::test]
    async fn drop_connections_closes_both_ends_and_new_ones_still_pass() {
        let proxy = Proxy::start(echo().await).await;
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        s.write_all(b"x").await.unwrap();
        assert_eq!(
            read_some(&mut s, Duration::from_secs(2)).await.unwrap(),
            b"x"
        );
        proxy.drop_connections();
        assert_eq!(
            read_some(&mut s, Duration::from_secs(2)).await.unwrap(),
            b""
        );
        let mut fresh = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        fresh.write_all(b"y").await.unwrap();
        assert_eq!(
            read_some(&mut fresh, Duration::from_secs(2)).await.unwrap(),
            b"y"
        );
    }
}
