//! Fuzzes every payload parser a message from the network reaches: no panics, and accepted commands survive a round trip.
#![no_main]

use hearth_protocol::payload::parse_number;
use hearth_protocol::{Availability, ChimePlay, Climate, Command, OnOff, Press, PressAction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = Command::parse(data) {
        assert_eq!(Command::parse(command.as_str().as_bytes()), Ok(command));
    }
    if let Ok(state) = OnOff::parse(data) {
        assert_eq!(OnOff::parse(state.to_string().as_bytes()), Ok(state));
    }
    let _ = Press::parse(data);
    let _ = PressAction::parse(data);
    if let Ok(climate) = Climate::parse(data) {
        assert!(climate.temperature.is_finite() && climate.humidity.is_finite());
    }
    if let Ok(play) = ChimePlay::parse(data) {
        assert!(play.volume.is_none_or(|v| v <= 100));
    }
    if let Ok(n) = parse_number(data) {
        assert!(n.is_finite());
    }
    let _ = Availability::parse(data);
});
