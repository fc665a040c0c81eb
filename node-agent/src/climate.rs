//! The climate reader loop: read on schedule, retry bad readings at least 2 s apart, report every attempt.
//!
//! Like Adafruit's `read_retry`, a failed or implausible reading is retried a
//! bounded number of times, but never sooner than [`MIN_READ_GAP`] after the
//! previous read: a DHT asked again too soon answers with garbage. Every
//! attempt is reported so the agent can count failures by reason.

use std::time::Duration;

use chrono::Utc;
use hearth_protocol::Climate;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::dht::{self, Model, Reading};
use crate::sensor::{ClimateSensor, ReadError};

/// A DHT needs this long between two reads.
pub const MIN_READ_GAP: Duration = Duration::from_secs(2);
/// Events from the reader to the agent loop (a few per interval at most).
pub const CLIMATE_CHANNEL_CAPACITY: usize = 16;

/// What one read attempt or cycle produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ClimateEvent {
    Reading(Climate),
    Failed {
        attempt: u32,
        error: ReadError,
    },
    /// Every attempt of this interval failed; the next interval tries again.
    GaveUp {
        attempts: u32,
    },
}

/// How often and how persistently to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub model: Model,
    pub interval: Duration,
    pub max_attempts: u32,
}

/// When the next read may happen: as scheduled, but never within
/// [`MIN_READ_GAP`] of the previous one.
pub fn next_read_at(scheduled: Instant, last_read: Option<Instant>) -> Instant {
    last_read.map_or(scheduled, |last| scheduled.max(last + MIN_READ_GAP))
}

/// The reading if it decoded and is within the sensor's range.
pub fn judge(model: Model, result: Result<Reading, ReadError>) -> Result<Reading, ReadError> {
    result.and_then(|r| dht::check_range(model, r).map_err(ReadError::from))
}

/// Reads until `shutdown`, sending every outcome on `events`.
pub async fn run(
    mut sensor: Box<dyn ClimateSensor>,
    schedule: Schedule,
    events: mpsc::Sender<ClimateEvent>,
    shutdown: CancellationToken,
) {
    let mut last_read = None;
    let mut scheduled = Instant::now();
    loop {
        for attempt in 1..=schedule.max_attempts {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = sleep_until(next_read_at(scheduled, last_read)) => {}
            }
            let Some((returned, result)) = read_once(sensor).await else {
                return;
            };
            sensor = returned;
            last_read = Some(Instant::now());
            let event = match judge(schedule.model, result) {
                Ok(reading) => ClimateEvent::Reading(Climate {
                    temperature: reading.temperature,
                    humidity: reading.humidity,
                    at: Utc::now(),
                }),
                Err(error) => ClimateEvent::Failed { attempt, error },
            };
            let done = matches!(event, ClimateEvent::Reading(_));
            if events.send(event).await.is_err() {
                return;
            }
            if done {
                break;
            }
            if attempt == schedule.max_attempts
                && events
                    .send(ClimateEvent::GaveUp { attempts: attempt })
                    .await
                    .is_err()
            {
                return;
            }
        }
        // A cycle that overran its interval starts the next one at once
        // (subject to the gap) instead of firing a burst to catch up.
        scheduled = (scheduled + schedule.interval).max(Instant::now());
    }
}

/// One read, on the blocking pool when it touches hardware. `None` if the
/// read panicked, which ends the loop: the sensor is gone with the thread.
async fn read_once(
    mut sensor: Box<dyn ClimateSensor>,
) -> Option<(Box<dyn ClimateSensor>, Result<Reading, ReadError>)> {
    if !sensor.blocks() {
        let result = sensor.read();
        return Some((sensor, result));
    }
    match tokio::task::spawn_blocking(move || {
        let result = sensor.read();
        (sensor, result)
    })
    .await
    {
        Ok(pair) => Some(pair),
        Err(error) => {
            tracing::error!(%error, "sensor read panicked; climate readings stop");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::dht::DecodeError;

    #[derive(Debug)]
    struct Scripted(VecDeque<Result<Reading, ReadError>>);

    impl ClimateSensor for Scripted {
        fn read(&mut self) -> Result<Reading, ReadError> {
            self.0
                .pop_front()
                .unwrap_or(Err(ReadError::Timeout("script over".into())))
        }
        fn blocks(&self) -> bool {
            false
        }
    }

    fn reading(temperature: f64, humidity: f64) -> Result<Reading, ReadError> {
        Ok(Reading {
            temperature,
            humidity,
        })
    }

    #[test]
    fn reads_keep_their_distance() {
        let now = Instant::now();
        assert_eq!(next_read_at(now, None), now);
        let just_read = now - Duration::from_millis(500);
        assert_eq!(next_read_at(now, Some(just_read)), just_read + MIN_READ_GAP);
        let long_ago = now - Duration::from_secs(60);
        assert_eq!(next_read_at(now, Some(long_ago)), now);
    }

    #[test]
    fn implausible_readings_are_failures() {
        assert_eq!(
            judge(Model::Dht11, reading(21.0, 40.0)).ok(),
            Some(Reading {
                temperature: 21.0,
                humidity: 40.0
            })
        );
        let err = judge(Model::Dht11, reading(21.0, 99.0)).unwrap_err();
        assert_eq!(err.reason(), crate::sensor::FailureReason::OutOfRange);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_two_seconds_apart_then_reads_on_schedule() {
        let checksum = Err(ReadError::from(DecodeError::Checksum {
            expected: 0,
            computed: 1,
        }));
        let script = VecDeque::from([
            checksum.clone(),
            reading(99.0, 40.0),
            reading(21.0, 40.0),
            checksum.clone(),
            checksum,
        ]);
        let (tx, mut rx) = mpsc::channel(CLIMATE_CHANNEL_CAPACITY);
        let shutdown = CancellationToken::new();
        let schedule = Schedule {
            model: Model::Dht11,
            interval: Duration::from_secs(30),
            max_attempts: 2,
        };
        let start = Instant::now();
        let task = tokio::spawn(run(
            Box::new(Scripted(script)),
            schedule,
            tx,
            shutdown.clone(),
        ));
        let mut seen = Vec::new();
        for _ in 0..6 {
            let event = rx.recv().await.unwrap();
            let label = match &event {
                ClimateEvent::Reading(c) => format!("ok {}", c.temperature),
                ClimateEvent::Failed { attempt, error } => {
                    format!("fail#{attempt} {}", error.reason())
                }
                ClimateEvent::GaveUp { attempts } => format!("gave up after {attempts}"),
            };
            seen.push((label, (Instant::now() - start).as_secs()));
        }
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(
            seen,
            [
                ("fail#1 checksum".to_owned(), 0),
                ("fail#2 out_of_range".to_owned(), 2),
                ("gave up after 2".to_owned(), 2),
                ("ok 21".to_owned(), 30),
                ("fail#1 checksum".to_owned(), 60),
                ("fail#2 checksum".to_owned(), 62),
            ]
        );
    }
}
