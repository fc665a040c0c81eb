//! `/readyz` against a hand-driven broker: 503 while no broker answers,
//! 503 while the subscription is not acknowledged, 200 once it is, and 503
//! again when the broker goes; the body says why each time.
//!
//! The broker here is a bare TCP listener the test answers byte by byte, so
//! each step is held for as long as the test looks at it: no race with a
//! real broker that would acknowledge before the test could look.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Backend, TestDb, call, spawn_hub_on};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bounds a hang only.
const WAIT: Duration = Duration::from_secs(30);

const CONNECT: u8 = 0x10;
const SUBSCRIBE: u8 = 0x82;
const PINGREQ: u8 = 0xc0;

/// One MQTT packet: (first byte, body); `None` when the peer closed.
async fn read_packet(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let header = stream.read_u8().await.ok()?;
    let mut len = 0usize;
    for shift in [0, 7, 14, 21] {
        let byte = stream.read_u8().await.ok()?;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some((header, body))
}

/// Reads until a packet whose first byte is `wanted`, answering pings;
/// `None` if the peer closed first.
async fn read_until(stream: &mut TcpStream, wanted: u8) -> Option<Vec<u8>> {
    loop {
        let (header, body) = read_packet(stream).await?;
        if header == wanted {
            return Some(body);
        }
        if header == PINGREQ {
            stream.write_all(&[0xd0, 0]).await.ok()?;
        }
    }
}

/// A SUBACK granting QoS 1 to each filter of the SUBSCRIBE `body`.
fn suback(subscribe: &[u8]) -> Vec<u8> {
    let (id, mut rest) = subscribe.split_at(2);
    let mut filters = 0;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[(2 + len + 1).min(rest.len())..];
        filters += 1;
    }
    let mut out = vec![0x90, (2 + filters) as u8];
    out.extend_from_slice(id);
    out.extend(std::iter::repeat_n(1u8, filters));
    out
}

/// `/readyz` once its answer differs from `(from_status, from_body)`.
async fn readyz_after(url: &str, from: (u16, &str)) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = call("GET", url, None).await;
        if (status, body.as_str()) != from {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {status} {body:?} for {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_connection_and_the_subscription() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    let db = TestDb::new(Backend::Sqlite).await;
    let hub = spawn_hub_on(&db, &url, "").await;
    let readyz = format!("http://{}/readyz", hub.http_addr);
    const DOWN: (u16, &str) = (503, "not ready: broker disconnected\n");

    // Nothing has answered the hub's CONNECT yet.
    let (status, _, body) = call("GET", &readyz, None).await;
    assert_eq!((status, body.as_str()), DOWN, "before any CONNACK");

    // Accept, take the CONNECT, acknowledge it, and hold the SUBACK back.
    // A connection the hub gave up on meanwhile (its 5 s CONNACK timeout on
    // a loaded machine) closes before its SUBSCRIBE: take the next one.
    let (mut stream, subscribe) = loop {
        let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the hub never connected")
            .unwrap();
        if read_until(&mut stream, CONNECT).await.is_none() {
            continue;
        }
        // CONNACK, no session present, accepted.
        if stream.write_all(&[0x20, 2, 0, 0]).await.is_err() {
            continue;
        }
        if let Some(subscribe) = read_until(&mut stream, SUBSCRIBE).await {
            break (stream, subscribe);
        }
    };
    let (status, body) = readyz_after(&readyz, DOWN).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: subscribing\n"),
        "connected, SUBACK not sent"
    );

    stream.write_all(&suback(&subscribe)).await.unwrap();
    let (status, body) = readyz_after(&readyz, (503, "not ready: subscribing\n")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ready\n"),
        "after the SUBACK"
    );

    // The broker goes away (its socket closed, the port still bound, so
    // the hub's next CONNECT gets no answer).
    drop(stream);
    let (status, body) = readyz_after(&readyz, (200, "ready\n")).await;
    assert_eq!(
        (status, body.as_str()),
        DOWN,
        "after the broker closed the connection"
    );
    hub.stop().await;
}
