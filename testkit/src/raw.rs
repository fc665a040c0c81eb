//! Hand-written MQTT 3.1.1 packets for clients that misbehave on purpose: floods, stalled readers.
//!
//! A real client library would read, ping and acknowledge for us; these
//! tests need a peer that does exactly what a broken device does and
//! nothing more, over a plain `TcpStream`.

use std::io::{Read, Write};
use std::net::TcpStream;

/// MQTT remaining-length encoding (1 to 4 bytes).
fn remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A whole MQTT packet: the fixed header byte, the remaining length, `body`.
pub fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// CONNECT (MQTT 3.1.1, clean session) with an optional login.
pub fn connect(client_id: &str, keep_alive_secs: u16, login: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session
    if login.is_some() {
        flags |= 0x80 | 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive_secs.to_be_bytes());
    string(client_id, &mut body);
    if let Some((user, pass)) = login {
        string(user, &mut body);
        string(pass, &mut body);
    }
    packet(0x10, &body)
}

/// SUBSCRIBE to one filter.
pub fn subscribe(packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    string(filter, &mut body);
    body.push(qos);
    packet(0x82, &body)
}

/// PUBLISH at QoS 0.
pub fn publish_qos0(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic, &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// A subscriber that connects, subscribes to `filter` and then never reads
/// another byte, like a device whose main loop hung: the broker's writes
/// to it fill the socket buffers and then stall.
#[derive(Debug)]
pub struct StalledSubscriber {
    stream: TcpStream,
}

impl StalledSubscriber {
    pub fn start(port: u16, client_id: &str, filter: &str, qos: u8) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
        stream.set_nodelay(true).expect("nodelay");
        // A long keep-alive so the broker keeps the stalled client instead
        // of timing it out during the test.
        stream
            .write_all(&connect(client_id, 3_600, None))
            .expect("send CONNECT");
        stream
            .write_all(&subscribe(1, filter, qos))
            .expect("send SUBSCRIBE");
        // Read the CONNACK (4 bytes) and the SUBACK (5 bytes for one
        // filter), then never read again: from here the broker routes to us.
        stream
            .set_read_timeout(Some(crate::HANG_LIMIT))
            .expect("read timeout");
        let mut acks = [0_u8; 9];
        stream
            .read_exact(&mut acks)
            .unwrap_or_else(|e| panic!("no CONNACK and SUBACK for {client_id}: {e}"));
        assert!(
            acks[..4] == [0x20, 0x02, 0x00, 0x00] && acks[4..8] == [0x90, 0x03, 0x00, 0x01],
            "{client_id}: expected CONNACK accepted and SUBACK for packet 1, got {acks:02x?}"
        );
        assert!(
            acks[8] <= 2,
            "{client_id}: subscription to {filter} refused: {acks:02x?}"
        );
        Self { stream }
    }

    /// Reads again, like a device whose main loop came back: counts the
    /// PUBLISH packets that arrive before the first one on `marker` and
    /// returns that count. Panics, saying how many came, if the connection
    /// ends or nothing arrives for [`crate::HANG_LIMIT`].
    pub fn resume_until(mut self, marker: &str) -> usize {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0_u8; 64 * 1024];
        let mut publishes = 0;
        loop {
            // Whole packets first: fixed header, remaining length, body.
            while let Some((header, body, used)) = split_packet(&pending) {
                if header >> 4 == 3 {
                    let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                    if &body[2..2 + topic_len] == marker.as_bytes() {
                        return publishes;
                    }
                    publishes += 1;
                }
                pending.drain(..used);
            }
            let read = self.stream.read(&mut chunk).unwrap_or_else(|e| {
                panic!("resumed reader: {publishes} PUBLISH before an error, no {marker}: {e}")
            });
            assert!(
                read > 0,
                "resumed reader: {publishes} PUBLISH, then the broker closed the connection before {marker}"
            );
            pending.extend_from_slice(&chunk[..read]);
        }
    }
}

/// The first whole packet in `bytes`: (fixed header byte, body, bytes used).
fn split_packet(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&header, rest) = bytes.split_first()?;
    let (mut len, mut shift, mut used) = (0_usize, 0, 1);
    for &byte in rest.iter().take(4) {
        used += 1;
        len |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return (bytes.len() >= used + len)
                .then(|| (header, &bytes[used..used + len], used + len));
        }
    }
    None
}

/// One line of `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_matches_the_spec_examples() {
        for (len, want) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            remaining_length(len, &mut out);
            assert_eq!(out, want, "{len}");
        }
    }
}
