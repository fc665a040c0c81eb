//! A raw MQTT 3.1.1 client for the conformance tests: hand-written packets
//! over a plain `TcpStream`, and the fixed-header bits (QoS, retain, session
//! present, return codes) that a client library would hide.

use std::time::Duration;

use hearth_testkit::HANG_LIMIT;
use hearth_testkit::raw::packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Packet types (the high nibble of the fixed header), MQTT 3.1.1 §2.2.1.
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBACK: u8 = 9;
pub const UNSUBACK: u8 = 11;
pub const PINGRESP: u8 = 13;

/// What a CONNECT carries besides the client id.
#[derive(Debug, Clone)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub clean_session: bool,
    pub keep_alive: u16,
    /// Will topic, payload and QoS.
    pub will: Option<(&'a str, &'a [u8], u8)>,
}

impl<'a> Connect<'a> {
    /// Clean session, a keep-alive long enough never to matter, no will.
    pub fn new(client_id: &'a str) -> Self {
        Self {
            client_id,
            clean_session: true,
            keep_alive: 600,
            will: None,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        body.push(4); // protocol level: 3.1.1
        let mut flags = 0;
        if self.clean_session {
            flags |= 0x02;
        }
        if let Some((_, _, qos)) = self.will {
            flags |= 0x04 | (qos << 3);
        }
        body.push(flags);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        string(self.client_id.as_bytes(), &mut body);
        if let Some((topic, payload, _)) = self.will {
            string(topic.as_bytes(), &mut body);
            string(payload, &mut body);
        }
        packet(0x10, &body)
    }
}

/// One packet as read: the fixed header's first byte and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: u8,
    pub body: Vec<u8>,
}

impl Packet {
    pub fn kind(&self) -> u8 {
        self.header >> 4
    }
}

/// A PUBLISH as the broker sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub pkid: u16,
    pub payload: Vec<u8>,
}

impl Publish {
    fn parse(p: &Packet) -> Self {
        let qos = (p.header >> 1) & 0x03;
        let len = usize::from(u16::from_be_bytes([p.body[0], p.body[1]]));
        let topic = String::from_utf8_lossy(&p.body[2..2 + len]).into_owned();
        let mut rest = 2 + len;
        let mut pkid = 0;
        if qos > 0 {
            pkid = u16::from_be_bytes([p.body[rest], p.body[rest + 1]]);
            rest += 2;
        }
        Self {
            topic,
            qos,
            retain: p.header & 0x01 == 1,
            pkid,
            payload: p.body[rest..].to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&u16::try_from(s.len()).expect("short string").to_be_bytes());
    out.extend_from_slice(s);
}

/// A connection to the broker that does exactly what the test writes.
#[derive(Debug)]
pub struct Raw {
    stream: TcpStream,
    name: String,
}

impl Raw {
    /// Opens a TCP connection and sends `connect`; returns the connection
    /// and the CONNACK's two variable-header bytes (session present, code).
    pub async fn connect(port: u16, connect: &Connect<'_>) -> (Self, [u8; 2]) {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        let mut raw = Self {
            stream,
            name: format!("client {:?}", connect.client_id),
        };
        raw.send(&connect.encode()).await;
        let ack = raw.expect(CONNACK).await;
        assert_eq!(ack.body.len(), 2, "{}: CONNACK {ack:02x?}", raw.name);
        (raw, [ack.body[0], ack.body[1]])
    }

    /// Connects and asserts the CONNACK accepted it (return code 0).
    pub async fn accepted(port: u16, connect: &Connect<'_>) -> (Self, bool) {
        let (raw, ack) = Self::connect(port, connect).await;
        assert_eq!(ack[1], 0, "{}: CONNACK refused: {ack:02x?}", raw.name);
        (raw, ack[0] & 0x01 == 1)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("{}: write: {e}", self.name));
    }

    /// The next packet, `None` once the broker closed the connection.
    /// Panics after `limit` with nothing read.
    pub async fn read_within(&mut self, limit: Duration) -> Option<Packet> {
        let read = async {
            let header = match self.stream.read_u8().await {
                Ok(h) => h,
                Err(_) => return None,
            };
            let mut len = 0usize;
            for shift in [0, 7, 14, 21] {
                let byte = self.stream.read_u8().await.ok()?;
                len |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0; len];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(Packet { header, body })
        };
        match tokio::time::timeout(limit, read).await {
            Ok(p) => p,
            Err(_) => panic!("{}: nothing read within {limit:?}", self.name),
        }
    }

    pub async fn read(&mut self) -> Option<Packet> {
        self.read_within(HANG_LIMIT).await
    }

    /// The next packet, which must be of `kind`.
    pub async fn expect(&mut self, kind: u8) -> Packet {
        match self.read().await {
            Some(p) if p.kind() == kind => p,
            other => panic!(
                "{}: expected packet type {kind}, got {other:02x?}",
                self.name
            ),
        }
    }

    /// Waits for the broker to close the connection; panics on any packet.
    pub async fn expect_closed(&mut self) {
        if let Some(p) = self.read().await {
            panic!(
                "{}: expected the connection closed, got {p:02x?}",
                self.name
            );
        }
    }

    /// The next PUBLISH (acknowledged if QoS 1); panics on anything else.
    pub async fn next_publish(&mut self) -> Publish {
        let p = self.expect(PUBLISH).await;
        let publish = Publish::parse(&p);
        if publish.qos == 1 {
            self.send(&puback(publish.pkid)).await;
        }
        publish
    }

    /// Every PUBLISH up to and without the first one on `marker`.
    pub async fn publishes_until(&mut self, marker: &str) -> Vec<Publish> {
        let mut seen = Vec::new();
        loop {
            let p = self.next_publish().await;
            if p.topic == marker {
                return seen;
            }
            seen.push(p);
        }
    }

    /// SUBSCRIBE to one filter; returns the SUBACK's return code.
    pub async fn subscribe(&mut self, pkid: u16, filter: &str, qos: u8) -> u8 {
        let mut body = pkid.to_be_bytes().to_vec();
        string(filter.as_bytes(), &mut body);
        body.push(qos);
        self.send(&packet(0x82, &body)).await;
        let ack = self.expect(SUBACK).await;
        assert_eq!(
            ack.body[..2],
            pkid.to_be_bytes(),
            "{}: SUBACK for another packet: {ack:02x?}",
            self.name
        );
        ack.body[2]
    }

    /// UNSUBSCRIBE from one filter and wait for its UNSUBACK.
    pub async fn unsubscribe(&mut self, pkid: u16, filter: &str) {
        let mut body = pkid.to_be_bytes().to_vec();
        string(filter.as_bytes(), &mut body);
        self.send(&packet(0xa2, &body)).await;
        let ack = self.expect(UNSUBACK).await;
        assert_eq!(
            ack.body,
            pkid.to_be_bytes(),
            "{}: UNSUBACK {ack:02x?}",
            self.name
        );
    }

    /// PUBLISH; at QoS 1 waits for the PUBACK, so the broker has taken it.
    pub async fn publish(&mut self, topic: &str, qos: u8, retain: bool, payload: &[u8]) {
        const PKID: u16 = 1;
        let mut body = Vec::new();
        string(topic.as_bytes(), &mut body);
        if qos > 0 {
            body.extend_from_slice(&PKID.to_be_bytes());
        }
        body.extend_from_slice(payload);
        self.send(&packet(0x30 | (qos << 1) | u8::from(retain), &body))
            .await;
        if qos > 0 {
            let ack = self.expect(PUBACK).await;
            assert_eq!(
                ack.body,
                PKID.to_be_bytes(),
                "{}: PUBACK {ack:02x?}",
                self.name
            );
        }
    }

    /// PINGREQ, answered by PINGRESP.
    pub async fn ping(&mut self) {
        self.send(&[0xc0, 0x00]).await;
        let resp = self.expect(PINGRESP).await;
        assert!(resp.body.is_empty(), "{}: PINGRESP {resp:02x?}", self.name);
    }

    pub async fn disconnect(&mut self) {
        self.send(&[0xe0, 0x00]).await;
    }
}

fn puback(pkid: u16) -> Vec<u8> {
    packet(0x40, &pkid.to_be_bytes())
}
