//! The probe carried in every benchmark message: who sent it, its sequence number and when.
//!
//! Layout (little-endian, fixed offsets so decoding costs no allocation):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `HBP1` |
//! | 4..8 | publisher index (`u32`) |
//! | 8..16 | sequence number (`u64`) |
//! | 16..24 | send time, nanoseconds since the run's epoch (`u64`) |
//! | 24.. | padding up to `--payload-size` |
//!
//! The magic lets a subscriber tell probes from foreign traffic that happens to
//! match its filters (another client on a shared broker), which it counts
//! instead of mistaking for a lost or duplicated message.

use std::fmt;

/// Identifies a probe; bumped if the layout ever changes.
pub const MAGIC: [u8; 4] = *b"HBP1";
/// Smallest payload that still carries the whole header.
pub const HEADER_LEN: usize = 24;
/// Padding byte: not zero, so a broker or proxy that trims trailing NULs
/// would show up as a decode error rather than pass unnoticed.
const PAD: u8 = b'.';

/// The decoded header of one benchmark message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub publisher: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Why a received payload is not a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooShort { len: usize },
    BadMagic,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "payload of {len} bytes is shorter than the {HEADER_LEN}-byte probe header"
                )
            }
            Self::BadMagic => f.write_str("payload does not start with the probe magic"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Probe {
    /// Serialises the probe padded to `size` bytes (never shorter than the header).
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(size.max(HEADER_LEN));
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&self.publisher.to_le_bytes());
        buf.extend_from_slice(&self.seq.to_le_bytes());
        buf.extend_from_slice(&self.sent_ns.to_le_bytes());
        buf.resize(size.max(HEADER_LEN), PAD);
        buf
    }

    /// Reads the header back; padding is ignored so any size decodes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::TooShort { len: bytes.len() })?;
        let (magic, rest) = header.split_at(4);
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let (publisher, rest) = rest.split_at(4);
        let (seq, sent_ns) = rest.split_at(8);
        // The split points above are constants that sum to HEADER_LEN, so the
        // conversions cannot fail; expect documents that rather than hides it.
        Ok(Self {
            publisher: u32::from_le_bytes(publisher.try_into().expect("4-byte publisher field")),
            seq: u64::from_le_bytes(seq.try_into().expect("8-byte seq field")),
            sent_ns: u64::from_le_bytes(sent_ns.try_into().expect("8-byte timestamp field")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_size() {
        let probe = Probe {
            publisher: 7,
            seq: u64::MAX - 3,
            sent_ns: 1_234_567_890_123,
        };
        for size in [HEADER_LEN, 25, 64, 1024] {
            let bytes = probe.encode(size);
            assert_eq!(bytes.len(), size);
            assert_eq!(Probe::decode(&bytes), Ok(probe));
        }
    }

    #[test]
    fn never_encodes_shorter_than_the_header() {
        let bytes = Probe {
            publisher: 1,
            seq: 2,
            sent_ns: 3,
        }
        .encode(4);
        assert_eq!(bytes.len(), HEADER_LEN);
    }

    #[test]
    fn rejects_foreign_payloads() {
        assert_eq!(Probe::decode(b"ON"), Err(DecodeError::TooShort { len: 2 }));
        let mut bytes = Probe {
            publisher: 0,
            seq: 0,
            sent_ns: 0,
        }
        .encode(64);
        bytes[0] = b'X';
        assert_eq!(Probe::decode(&bytes), Err(DecodeError::BadMagic));
    }
}
