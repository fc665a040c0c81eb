//! The hub clock: `HHMM` in the configured time zone, published at every minute boundary.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// `HHMM` for `now` in `tz`: what homeslice clocks display.
pub fn hhmm(tz: Tz, now: DateTime<Utc>) -> String {
    let local = now.with_timezone(&tz);
    hearth_protocol::payload::hhmm(local.hour(), local.minute())
}

/// Time from `now` until the next whole minute (UTC minutes are local
/// minutes in every zone in use today, so one boundary serves all zones).
pub fn until_next_minute(now: DateTime<Utc>) -> Duration {
    let into_minute = Duration::from_secs(now.second().into())
        + Duration::from_nanos(now.nanosecond().min(999_999_999).into());
    Duration::from_secs(60).saturating_sub(into_minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn local_hhmm_in_several_zones() {
        let now = utc("2026-11-23T00:20:30Z");
        assert_eq!(hhmm(chrono_tz::UTC, now), "0020");
        assert_eq!(hhmm(chrono_tz::America::Los_Angeles, now), "1620");
        assert_eq!(hhmm(chrono_tz::Europe::Berlin, now), "0120");
        assert_eq!(hhmm(chrono_tz::Asia::Kolkata, now), "0550");
    }

    #[test]
    fn hhmm_follows_daylight_saving() {
        // Berlin switches from CET to CEST at 01:00 UTC on 2026-03-29.
        assert_eq!(
            hhmm(chrono_tz::Europe::Berlin, utc("2026-03-29T00:59:00Z")),
            "0159"
        );
        assert_eq!(
            hhmm(chrono_tz::Europe::Berlin, utc("2026-03-29T01:00:00Z")),
            "0300"
        );
    }

    #[test]
    fn sleeps_to_the_minute_boundary() {
        assert_eq!(
            until_next_minute(utc("2026-11-22T14:20:00Z")),
            Duration::from_secs(60)
        );
        assert_eq!(
            until_next_minute(utc("2026-11-22T14:20:59.5Z")),
            Duration::from_millis(500)
        );
    }
}
