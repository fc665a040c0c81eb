//! DHT11/DHT22 frames, pure: edges to pulse widths to 40 bits to a reading, checksum and range.
//!
//! Wire protocol (both models): after the host's start pulse the sensor
//! answers 80 µs low, 80 µs high, then sends 40 bits, each 50 µs low followed
//! by 26–28 µs high for a 0 or 70 µs high for a 1, then 50 µs low and it lets
//! the line go. Bytes: humidity (2), temperature (2), checksum = low byte of
//! the sum of the first four.
//!
//! The decoder reads the last 40 high pulses, so a missed preamble (the
//! host may start listening a little late) does not matter, while a missed
//! edge inside the frame shows up as two pulses of the same level or a pulse
//! longer than any bit can be, and is reported rather than guessed around.

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Bits in a frame.
pub const FRAME_BITS: usize = 40;
/// Shortest and longest plausible low pulse before a data bit, in µs (nominal 50).
pub const BIT_LOW_US: (u32, u32) = (25, 95);
/// Shortest and longest plausible data high pulse, in µs (nominal 27 or 70).
pub const BIT_HIGH_US: (u32, u32) = (10, 95);

/// Which sensor: same wire protocol, different byte formats and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Dht11,
    Dht22,
}

impl Model {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dht11 => "dht11",
            Self::Dht22 => "dht22",
        }
    }

    /// Datasheet measuring range: (temperature °C, relative humidity %).
    pub fn range(self) -> ((f64, f64), (f64, f64)) {
        match self {
            Self::Dht11 => ((0.0, 50.0), (20.0, 90.0)),
            Self::Dht22 => ((-40.0, 80.0), (0.0, 100.0)),
        }
    }

    /// How long the host holds the line low to ask for a reading.
    pub fn start_pulse(self) -> Duration {
        match self {
            Self::Dht11 => Duration::from_millis(20),
            Self::Dht22 => Duration::from_millis(2),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded reading in °C and %RH.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub temperature: f64,
    pub humidity: f64,
}

/// A level change on the data line, timestamped by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub at: Duration,
    pub rising: bool,
}

/// A stretch of constant level between two edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulse {
    pub high: bool,
    pub micros: u32,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("only {found} of {FRAME_BITS} bits received (edges lost or the sensor did not answer)")]
    TooFewBits { found: usize },
    #[error("edge missing before bit {bit}: two {level} pulses in a row")]
    MissingEdge { bit: usize, level: &'static str },
    #[error("bit {bit}: {level} pulse of {micros} µs is outside {min}-{max} µs")]
    BadPulse {
        bit: usize,
        level: &'static str,
        micros: u32,
        min: u32,
        max: u32,
    },
    #[error("checksum mismatch: frame says {expected:#04x}, bytes add up to {computed:#04x}")]
    Checksum { expected: u8, computed: u8 },
    #[error(
        "reading {temperature} °C / {humidity} %RH is outside the {model} range \
         ({t_min}..{t_max} °C, {h_min}..{h_max} %RH)"
    )]
    OutOfRange {
        model: Model,
        temperature: f64,
        humidity: f64,
        t_min: f64,
        t_max: f64,
        h_min: f64,
        h_max: f64,
    },
}

fn level_name(high: bool) -> &'static str {
    if high { "high" } else { "low" }
}

/// Pulse widths between consecutive edges; the level after the last edge
/// has no end and yields no pulse.
pub fn pulses(edges: &[Edge]) -> Vec<Pulse> {
    edges
        .windows(2)
        .map(|pair| Pulse {
            high: pair[0].rising,
            micros: u32::try_from(pair[1].at.saturating_sub(pair[0].at).as_micros())
                .unwrap_or(u32::MAX),
        })
        .collect()
}

/// The five frame bytes carried by `pulses`.
pub fn frame_bytes(pulses: &[Pulse]) -> Result<[u8; 5], DecodeError> {
    let highs: Vec<usize> = pulses
        .iter()
        .enumerate()
        .filter(|(_, p)| p.high)
        .map(|(i, _)| i)
        .collect();
    if highs.len() < FRAME_BITS {
        return Err(DecodeError::TooFewBits { found: highs.len() });
    }
    let data = &highs[highs.len() - FRAME_BITS..];
    let mut lows = [0u32; FRAME_BITS];
    for (bit, &at) in data.iter().enumerate() {
        let low = at
            .checked_sub(1)
            .map(|i| pulses[i])
            .ok_or(DecodeError::TooFewBits { found: bit })?;
        if low.high {
            return Err(DecodeError::MissingEdge { bit, level: "high" });
        }
        if let Some(&next) = data.get(bit + 1)
            && next != at + 2
        {
            return Err(DecodeError::MissingEdge {
                bit: bit + 1,
                level: "low",
            });
        }
        check_width(bit, low, BIT_LOW_US)?;
        check_width(bit, pulses[at], BIT_HIGH_US)?;
        lows[bit] = low.micros;
    }
    // A 1 is longer than the 50 µs low before it and a 0 shorter; comparing
    // with this frame's own lows absorbs a sensor whose clock runs fast or slow.
    let threshold = lows.iter().map(|&l| u64::from(l)).sum::<u64>() / FRAME_BITS as u64;
    let mut bytes = [0u8; 5];
    for (bit, &at) in data.iter().enumerate() {
        if u64::from(pulses[at].micros) > threshold {
            bytes[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    Ok(bytes)
}

fn check_width(bit: usize, pulse: Pulse, (min, max): (u32, u32)) -> Result<(), DecodeError> {
    if (min..=max).contains(&pulse.micros) {
        Ok(())
    } else {
        Err(DecodeError::BadPulse {
            bit,
            level: level_name(pulse.high),
            micros: pulse.micros,
            min,
            max,
        })
    }
}

/// The checksum byte a frame must carry.
pub fn checksum(bytes: &[u8; 5]) -> u8 {
    bytes[..4].iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

/// Interprets checked frame bytes for `model` (no range check).
pub fn reading_from_frame(model: Model, bytes: &[u8; 5]) -> Result<Reading, DecodeError> {
    let computed = checksum(bytes);
    if computed != bytes[4] {
        return Err(DecodeError::Checksum {
            expected: bytes[4],
            computed,
        });
    }
    let reading = match model {
        // Integer byte then a tenths byte; newer DHT11s flag negatives in bit 7.
        Model::Dht11 => {
            let tenths = i32::from(bytes[2]) * 10 + i32::from(bytes[3] & 0x7f);
            let sign = if bytes[3] & 0x80 != 0 { -1 } else { 1 };
            Reading {
                temperature: f64::from(sign * tenths) / 10.0,
                humidity: f64::from(i32::from(bytes[0]) * 10 + i32::from(bytes[1])) / 10.0,
            }
        }
        // 16-bit tenths, big endian; temperature is sign-magnitude.
        Model::Dht22 => {
            let magnitude = i32::from(u16::from_be_bytes([bytes[2] & 0x7f, bytes[3]]));
            let sign = if bytes[2] & 0x80 != 0 { -1 } else { 1 };
            Reading {
                temperature: f64::from(sign * magnitude) / 10.0,
                humidity: f64::from(u16::from_be_bytes([bytes[0], bytes[1]])) / 10.0,
            }
        }
    };
    Ok(reading)
}

/// Decodes a frame from pulse widths: bits, checksum, format (no range check).
pub fn decode(model: Model, pulses: &[Pulse]) -> Result<Reading, DecodeError> {
    reading_from_frame(model, &frame_bytes(pulses)?)
}

/// Rejects readings outside the sensor's datasheet range: a DHT that says
/// 255 °C has misread, and publishing it would trigger rules.
pub fn check_range(model: Model, reading: Reading) -> Result<Reading, DecodeError> {
    let ((t_min, t_max), (h_min, h_max)) = model.range();
    let ok = (t_min..=t_max).contains(&reading.temperature)
        && (h_min..=h_max).contains(&reading.humidity);
    if ok {
        Ok(reading)
    } else {
        Err(DecodeError::OutOfRange {
            model,
            temperature: reading.temperature,
            humidity: reading.humidity,
            t_min,
            t_max,
            h_min,
            h_max,
        })
    }
}

/// The frame a sensor would send for `reading` (rounded to its resolution).
/// The simulation and the tests use it to go through the real decoder.
pub fn encode(model: Model, reading: Reading) -> [u8; 5] {
    let tenths = |v: f64| (v * 10.0).round().abs().min(f64::from(u16::MAX)) as u16;
    let negative = reading.temperature < 0.0;
    let t = tenths(reading.temperature);
    let h = tenths(reading.humidity);
    let mut bytes = match model {
        Model::Dht11 => {
            let byte = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
            let t_dec = byte(t % 10) | if negative { 0x80 } else { 0 };
            [byte(h / 10), byte(h % 10), byte(t / 10), t_dec, 0]
        }
        Model::Dht22 => {
            let [h_hi, h_lo] = h.to_be_bytes();
            let [t_hi, t_lo] = t.min(0x7fff).to_be_bytes();
            [h_hi, h_lo, t_hi | if negative { 0x80 } else { 0 }, t_lo, 0]
        }
    };
    bytes[4] = checksum(&bytes);
    bytes
}
