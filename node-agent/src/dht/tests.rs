//! Decoder tests on synthetic waveforms built from the datasheet timings.

#![allow(clippy::unwrap_used)]

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOST_START_US: u64 = 18_000;
const HOST_RELEASE_US: u64 = 30;
const RESPONSE_LOW_US: u64 = 80;
const RESPONSE_HIGH_US: u64 = 80;
const BIT_LOW_NOMINAL_US: u64 = 50;
const ZERO_HIGH_US: u64 = 27;
const ONE_HIGH_US: u64 = 70;
const END_LOW_US: u64 = 50;

/// Edges of a whole exchange: host start pulse, sensor answer, 40 bits, end
/// pulse, release. Every width is jittered by up to `jitter_us` either way.
fn waveform(bytes: &[u8; 5], jitter_us: i64, rng: &mut StdRng) -> Vec<Edge> {
    let mut edges = Vec::new();
    let mut t = 1_000u64;
    let mut level = |rising: bool, width: u64, t: &mut u64| {
        edges.push(Edge {
            at: Duration::from_micros(*t),
            rising,
        });
        let jitter = if jitter_us == 0 {
            0
        } else {
            rng.random_range(-jitter_us..=jitter_us)
        };
        *t += u64::try_from(width as i64 + jitter).unwrap_or(0).max(1);
    };
    level(false, HOST_START_US, &mut t);
    level(true, HOST_RELEASE_US, &mut t);
    level(false, RESPONSE_LOW_US, &mut t);
    level(true, RESPONSE_HIGH_US, &mut t);
    for bit in 0..FRAME_BITS {
        let one = bytes[bit / 8] & (0x80 >> (bit % 8)) != 0;
        level(false, BIT_LOW_NOMINAL_US, &mut t);
        level(true, if one { ONE_HIGH_US } else { ZERO_HIGH_US }, &mut t);
    }
    level(false, END_LOW_US, &mut t);
    edges.push(Edge {
        at: Duration::from_micros(t),
        rising: true,
    });
    edges
}

fn clean(bytes: &[u8; 5]) -> Vec<Edge> {
    waveform(bytes, 0, &mut StdRng::seed_from_u64(0))
}

/// Index of the falling edge that starts data bit `bit`.
fn bit_edge(bit: usize) -> usize {
    4 + 2 * bit
}

#[test]
fn pulses_are_the_gaps_between_edges() {
    let us = Duration::from_micros;
    let edges = [
        Edge {
            at: us(0),
            rising: false,
        },
        Edge {
            at: us(50),
            rising: true,
        },
        Edge {
            at: us(120),
            rising: false,
        },
    ];
    assert_eq!(
        pulses(&edges),
        [
            Pulse {
                high: false,
                micros: 50
            },
            Pulse {
                high: true,
                micros: 70
            },
        ]
    );
    assert!(pulses(&edges[..1]).is_empty());
}

#[test]
fn dht11_frame_at_datasheet_timings() {
    let bytes = [45, 0, 23, 5, 73];
    let reading = decode(Model::Dht11, &pulses(&clean(&bytes))).unwrap();
    assert_eq!(
        reading,
        Reading {
            temperature: 23.5,
            humidity: 45.0
        }
    );
    assert_eq!(encode(Model::Dht11, reading), bytes);
}

#[test]
fn dht22_datasheet_examples_including_negative_temperatures() {
    // AM2302 datasheet: 65.8 %RH, 26.9 °C -> 02 92 01 0D A2.
    let warm = [0x02, 0x92, 0x01, 0x0d, 0xa2];
    assert_eq!(
        decode(Model::Dht22, &pulses(&clean(&warm))).unwrap(),
        Reading {
            temperature: 26.9,
            humidity: 65.8
        }
    );
    // Sign bit set: -10.1 °C, 65.2 %RH -> 02 8C 80 65 73.
    let cold = [0x02, 0x8c, 0x80, 0x65, 0x73];
    let reading = decode(Model::Dht22, &pulses(&clean(&cold))).unwrap();
    assert_eq!(
        reading,
        Reading {
            temperature: -10.1,
            humidity: 65.2
        }
    );
    assert_eq!(encode(Model::Dht22, reading), cold);
    let coldest = Reading {
        temperature: -40.0,
        humidity: 0.0,
    };
    let frame = encode(Model::Dht22, coldest);
    assert_eq!(reading_from_frame(Model::Dht22, &frame), Ok(coldest));
}

#[test]
fn jittered_frames_decode_exactly_seeded() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..400 {
        let (model, reading) = if round % 2 == 0 {
            let r = Reading {
                temperature: f64::from(rng.random_range(0..=500)) / 10.0,
                humidity: f64::from(rng.random_range(20..=90)),
            };
            (Model::Dht11, r)
        } else {
            let r = Reading {
                temperature: f64::from(rng.random_range(-400..=800)) / 10.0,
                humidity: f64::from(rng.random_range(0..=1000)) / 10.0,
            };
            (Model::Dht22, r)
        };
        let bytes = encode(model, reading);
        let edges = waveform(&bytes, 8, &mut rng);
        let decoded = decode(model, &pulses(&edges))
            .unwrap_or_else(|e| panic!("round {round}: {reading:?} as {bytes:02x?}: {e}"));
        assert_eq!(decoded, reading, "round {round}");
        assert_eq!(check_range(model, decoded), Ok(decoded));
    }
}

#[test]
fn a_late_start_that_misses_the_preamble_still_decodes() {
    let bytes = encode(
        Model::Dht11,
        Reading {
            temperature: 21.0,
            humidity: 40.0,
        },
    );
    let edges = clean(&bytes);
    let late = &edges[bit_edge(0)..];
    // The very reading that was sent, not merely some reading: a decoder
    // that filled a frame without a preamble with zeros also returns Ok.
    assert_eq!(
        decode(Model::Dht11, &pulses(late)),
        Ok(Reading {
            temperature: 21.0,
            humidity: 40.0,
        })
    );
}

#[test]
fn a_missing_edge_is_reported_not_guessed() {
    let bytes = [45, 0, 23, 5, 73];
    let mut edges = clean(&bytes);
    // Lose the rising edge of bit 17: its low and high merge into one "low".
    edges.remove(bit_edge(17) + 1);
    let err = decode(Model::Dht11, &pulses(&edges)).unwrap_err();
    assert!(matches!(err, DecodeError::MissingEdge { .. }), "{err:?}");
}

#[test]
fn a_missing_pulse_makes_an_impossible_width() {
    let bytes = [45, 0, 23, 5, 73];
    let mut edges = clean(&bytes);
    // Lose both edges of bit 20's low: bits 19 and 20 merge into one high.
    edges.drain(bit_edge(20)..bit_edge(20) + 2);
    let err = decode(Model::Dht11, &pulses(&edges)).unwrap_err();
    assert!(
        matches!(err, DecodeError::BadPulse { level: "high", .. }),
        "{err:?}"
    );
}

#[test]
fn a_truncated_frame_has_too_few_bits() {
    let edges = clean(&[45, 0, 23, 5, 73]);
    let err = decode(Model::Dht11, &pulses(&edges[..bit_edge(30)])).unwrap_err();
    assert!(matches!(err, DecodeError::TooFewBits { .. }), "{err:?}");
    assert_eq!(
        decode(Model::Dht11, &[]),
        Err(DecodeError::TooFewBits { found: 0 })
    );
}

#[test]
fn a_bad_checksum_is_rejected() {
    let mut bytes = [45, 0, 23, 5, 73];
    bytes[4] ^= 0x01;
    let err = decode(Model::Dht11, &pulses(&clean(&bytes))).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Checksum {
            expected: 72,
            computed: 73
        }
    );
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn readings_outside_the_datasheet_range_are_rejected() {
    let r = |temperature, humidity| Reading {
        temperature,
        humidity,
    };
    assert!(check_range(Model::Dht11, r(25.0, 50.0)).is_ok());
    assert!(check_range(Model::Dht11, r(0.0, 20.0)).is_ok());
    assert!(check_range(Model::Dht11, r(50.0, 90.0)).is_ok());
    for bad in [r(51.0, 50.0), r(-1.0, 50.0), r(25.0, 19.0), r(25.0, 95.0)] {
        assert!(
            matches!(
                check_range(Model::Dht11, bad),
                Err(DecodeError::OutOfRange { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(check_range(Model::Dht22, r(-40.0, 0.0)).is_ok());
    assert!(check_range(Model::Dht22, r(-40.1, 50.0)).is_err());
    assert!(check_range(Model::Dht22, r(80.5, 50.0)).is_err());
    let err = check_range(Model::Dht11, r(255.0, 50.0)).unwrap_err();
    assert!(err.to_string().contains("dht11 range"), "{err}");
}
