//! TCP_NODELAY on both ends of a hub's MQTT connection, read off the
//! sockets themselves rather than inferred from a latency; and no socket at
//! all between the default hub and its embedded broker.
//!
//! vendor/rumqttd is patched to set it on every accepted socket (see
//! vendor/README.md): without it a small packet written right after
//! another waits for the peer's delayed ACK, ~40 ms a press. A latency
//! figure on a busy machine cannot tell that from load; the option can.
//! The hub and its embedded broker run in this test process, so every
//! socket they hold is one of ours: `pidfd_getfd` on our own pid hands us a
//! duplicate of each, safely.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Backend, TestDb, mqtt_port, spawn_hub, spawn_hub_on, wait_ready};
use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

/// One TCP connection end held by this process.
#[derive(Debug)]
struct Socket {
    local: SocketAddr,
    peer: SocketAddr,
    nodelay: bool,
}

/// Every connected TCP socket this process holds.
fn connected_tcp_sockets() -> Vec<Socket> {
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).unwrap();
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.into_iter()
        .filter_map(|fd| {
            // Gone since the listing, or not ours to take: not a socket we want.
            let dup = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).ok()?;
            // Anything that is not a connected TCP socket fails one of these.
            let stream = TcpStream::from(dup);
            Some(Socket {
                local: stream.local_addr().ok()?,
                peer: stream.peer_addr().ok()?,
                nodelay: stream.nodelay().ok()?,
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_and_a_hub_set_tcp_nodelay_and_the_embedded_hub_uses_no_socket() {
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub(&db, "").await;
    wait_ready(&hub).await;
    let port = mqtt_port(&hub);
    // A second hub on the first one's broker, over a socket (the
    // Kubernetes layout's way to reach a broker elsewhere).
    let other_db = TestDb::new(Backend::Sqlite).await;
    let other = spawn_hub_on(&other_db, &format!("mqtt://127.0.0.1:{port}"), "").await;
    wait_ready(&other).await;

    // A client that leaves Nagle on, connected for sure once its CONNACK is in.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    plain
        .write_all(&hearth_testkit::raw::connect("plain-client", 60, None))
        .unwrap();
    let mut connack = [0u8; 4];
    plain.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK for the plain client");
    let plain_addr = plain.local_addr().unwrap();

    let sockets = connected_tcp_sockets();
    let seen = format!("{sockets:#?}");
    let accepted: Vec<&Socket> = sockets.iter().filter(|s| s.local.port() == port).collect();
    let client_ends: Vec<&Socket> = sockets.iter().filter(|s| s.peer.port() == port).collect();
    let ours = sockets
        .iter()
        .find(|s| s.local == plain_addr)
        .unwrap_or_else(|| panic!("the test's own client socket is not among {seen}"));
    let other_end: Vec<&Socket> = client_ends
        .iter()
        .copied()
        .filter(|s| s.local != plain_addr)
        .collect();

    // The probe can see the option off: the test's own end never set it.
    assert!(!ours.nodelay, "the plain client's end has NODELAY? {seen}");
    // The embedded hub is linked in process: only the second hub and the
    // plain client hold connections to the broker.
    assert_eq!(
        accepted.len(),
        2,
        "expected the broker's ends of exactly the second hub's and the plain client's connections (port {port}); the embedded hub should hold none: {seen}"
    );
    assert!(
        accepted.iter().all(|s| s.nodelay),
        "a socket the broker accepted has TCP_NODELAY off (vendor/rumqttd's patch): {accepted:#?}"
    );
    assert_eq!(
        other_end.len(),
        1,
        "expected the second hub's one client end towards port {port}: {seen}"
    );
    assert!(
        other_end[0].nodelay,
        "the hub's MQTT client socket has TCP_NODELAY off: {other_end:#?}"
    );
    other.stop().await;
    hub.stop().await;
}
