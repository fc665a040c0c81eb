//! Sunrise and sunset at the hub's place, computed locally (no service to
//! ask, so it works offline). The `sunrise` crate does the astronomy (NOAA's
//! solar equations, no I/O, MIT); we only pick the day. Pure.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sunrise::{Coordinates, SolarDay, SolarEvent};

use super::definition::SunEvent;

/// Days searched for the next sun event: past a polar night or day.
const SEARCH_DAYS: i64 = 370;

/// Where the hub is, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    coordinates: Coordinates,
}

impl Place {
    /// `None` unless -90 <= latitude <= 90 and -180 <= longitude <= 180.
    pub fn new(latitude: f64, longitude: f64) -> Option<Self> {
        Coordinates::new(latitude, longitude).map(|coordinates| Self { coordinates })
    }

    fn event_on(&self, date: NaiveDate, event: SunEvent) -> Option<DateTime<Utc>> {
        let day = SolarDay::new(self.coordinates, date);
        day.event_time(match event {
            SunEvent::Sunrise => SolarEvent::Sunrise,
            SunEvent::Sunset => SolarEvent::Sunset,
        })
    }

    /// The first `event` (shifted by `offset_min`) strictly after `after`.
    pub fn next(
        &self,
        event: SunEvent,
        offset_min: i32,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let offset = Duration::minutes(offset_min.into());
        // The crate's day is a UTC date whose event can fall on the day
        // before or after; starting two days back and taking the first
        // event past `after` finds the next one wherever the hub is.
        let first = after.date_naive() - Duration::days(2);
        (0..SEARCH_DAYS)
            .filter_map(|d| self.event_on(first + Duration::days(d), event))
            .map(|t| t + offset)
            .find(|t| *t > after)
    }

    /// Whether the sun is up at `at`: the latest sun event before it was a
    /// sunrise. In a polar day or night, whichever event came last.
    pub fn sun_up(&self, at: DateTime<Utc>) -> bool {
        let first = at.date_naive() - Duration::days(2);
        let mut last: Option<(DateTime<Utc>, bool)> = None;
        for d in 0..4 {
            let date = first + Duration::days(d);
            for (event, up) in [(SunEvent::Sunrise, true), (SunEvent::Sunset, false)] {
                if let Some(t) = self.event_on(date, event)
                    && t <= at
                    && last.is_none_or(|(l, _)| t > l)
                {
                    last = Some((t, up));
                }
            }
        }
        match last {
            Some((_, up)) => up,
            // No event for days: midsummer or midwinter at the pole. The
            // sun's side follows the season of the hub's hemisphere.
            None => self.next(SunEvent::Sunrise, 0, at) > self.next(SunEvent::Sunset, 0, at),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn berlin() -> Place {
        Place::new(52.52, 13.405).unwrap()
    }

    #[test]
    fn berlin_in_june_rises_before_five_and_sets_after_nine_local() {
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 10, 0, 0).unwrap();
        let sunset = berlin().next(SunEvent::Sunset, 0, noon).unwrap();
        // 21:33 CEST is 19:33 UTC.
        assert_eq!(sunset.date_naive(), noon.date_naive(), "{sunset}");
        assert!(
            (19 * 60 + 25..19 * 60 + 40).contains(&minutes(sunset)),
            "{sunset}"
        );
        let sunrise = berlin().next(SunEvent::Sunrise, 0, noon).unwrap();
        // 04:43 CEST the next day is 02:43 UTC.
        assert!(
            (2 * 60 + 35..2 * 60 + 50).contains(&minutes(sunrise)),
            "{sunrise}"
        );
        assert!(berlin().sun_up(noon));
        assert!(!berlin().sun_up(sunset + Duration::minutes(1)));
        assert!(berlin().sun_up(sunrise + Duration::minutes(1)));
    }

    #[test]
    fn an_offset_moves_the_event_and_the_next_one_is_strictly_later() {
        let noon = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let sunset = berlin().next(SunEvent::Sunset, 0, noon).unwrap();
        let early = berlin().next(SunEvent::Sunset, -30, noon).unwrap();
        assert_eq!(sunset - early, Duration::minutes(30));
        let tomorrow = berlin().next(SunEvent::Sunset, 0, sunset).unwrap();
        let gap = tomorrow - sunset;
        assert!(
            gap > Duration::hours(23) && gap < Duration::hours(25),
            "{gap}"
        );
    }

    #[test]
    fn far_north_in_winter_the_sun_stays_down_and_rises_weeks_later() {
        let tromso = Place::new(69.65, 18.96).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 21, 11, 0, 0).unwrap();
        assert!(!tromso.sun_up(at));
        let rise = tromso.next(SunEvent::Sunrise, 0, at).unwrap();
        assert!(rise - at > Duration::days(14), "{rise}");
    }

    #[test]
    fn coordinates_off_the_globe_are_refused() {
        assert!(Place::new(91.0, 0.0).is_none());
        assert!(Place::new(0.0, 181.0).is_none());
    }

    fn minutes(t: DateTime<Utc>) -> u32 {
        use chrono::Timelike;
        t.hour() * 60 + t.minute()
    }
}
