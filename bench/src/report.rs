//! Turning measurements into text a person reads at a glance: units chosen by magnitude.
//!
//! JSON output is plain serde; these helpers only serve the human format.

/// A nanosecond duration with a unit that keeps 3 significant figures
/// readable: `870 ns`, `412 µs`, `1.23 ms`, `2.50 s`.
pub fn duration_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.0} µs", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

/// Messages per second without spurious precision.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0} msgs/s")
    } else {
        format!("{per_sec:.1} msgs/s")
    }
}

/// `count / secs`, or 0 when nothing was timed (avoids NaN/inf in reports).
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_units_by_magnitude() {
        assert_eq!(duration_ns(870), "870 ns");
        assert_eq!(duration_ns(412_300), "412 µs");
        assert_eq!(duration_ns(1_234_000), "1.23 ms");
        assert_eq!(duration_ns(2_500_000_000), "2.50 s");
    }

    #[test]
    fn rates_never_divide_by_zero() {
        assert_eq!(per_sec(10, 0.0), 0.0);
        assert_eq!(rate(per_sec(1000, 0.5)), "2000 msgs/s");
        assert_eq!(rate(12.34), "12.3 msgs/s");
    }
}
