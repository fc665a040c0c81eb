//! Fuzzes the node agent's DHT11/DHT22 frame decoder (`hearth_node_agent::dht`) with arbitrary pulse trains and frames.
#![no_main]

use std::time::Duration;

use hearth_node_agent::dht::{self, Edge, Model, Pulse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let model = if first & 1 == 0 {
        Model::Dht11
    } else {
        Model::Dht22
    };
    // 3 bytes per pulse: level + 16-bit width (µs), so widths near the
    // 25-95 µs windows are common.
    let pulses: Vec<Pulse> = rest
        .chunks_exact(3)
        .map(|c| Pulse {
            high: c[0] & 1 == 1,
            micros: u32::from(u16::from_le_bytes([c[1], c[2]])),
        })
        .collect();
    if let Ok(reading) = dht::decode(model, &pulses) {
        assert!(reading.temperature.is_finite() && reading.humidity.is_finite());
        if let Ok(ranged) = dht::check_range(model, reading) {
            // A reading that passed the range check encodes back to itself.
            let back = dht::reading_from_frame(model, &dht::encode(model, ranged))
                .expect("an encoded frame has a valid checksum");
            assert!(
                (back.temperature - ranged.temperature).abs() < 0.051,
                "{ranged:?} -> {back:?}"
            );
            assert!(
                (back.humidity - ranged.humidity).abs() < 0.051,
                "{ranged:?} -> {back:?}"
            );
        }
    }
    // Edges with arbitrary (even decreasing) timestamps.
    let edges: Vec<Edge> = rest
        .chunks_exact(3)
        .map(|c| Edge {
            at: Duration::from_micros(u64::from(u16::from_le_bytes([c[1], c[2]])) * 7),
            rising: c[0] & 1 == 1,
        })
        .collect();
    let _ = dht::decode(model, &dht::pulses(&edges));
    if rest.len() >= 5 {
        let frame = [rest[0], rest[1], rest[2], rest[3], rest[4]];
        let _ = dht::reading_from_frame(model, &frame);
    }
});
