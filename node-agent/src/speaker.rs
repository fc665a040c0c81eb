//! The speaker: plays `<prefix>/chime/<speaker>/play` requests one at a time from a bounded queue.
//!
//! Requests are checked when they arrive (sound name, file present), so a bad
//! one is answered on the error topic at once. Accepted ones wait in a queue
//! of [`SPEAKER_QUEUE_CAPACITY`]; when it is full the request is dropped with
//! an error instead of piling up chimes that would play late. The player runs
//! without a shell and is killed after its timeout; a buzzer plays its on/off
//! pattern and is always left off.

pub mod sound;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::{ChimePlay, OnOff};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{SpeakerConfig, SpeakerOutput};
use crate::gpio::{self, OutputPins, PinSpec};
use sound::SoundError;

/// Plays waiting behind the one playing.
pub const SPEAKER_QUEUE_CAPACITY: usize = 4;
/// Finished plays reported back to the agent loop.
pub const SPEAKER_OUTCOME_CAPACITY: usize = 8;

/// Why a play request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeakerError {
    #[error(transparent)]
    Sound(#[from] SoundError),
    #[error("speaker busy: {capacity} plays already queued; this one is dropped")]
    Busy { capacity: usize },
    #[error("speaker stopped")]
    Stopped,
}

/// An accepted play request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub sound: String,
    /// The file to play; `None` for a buzzer, which has one sound.
    pub path: Option<PathBuf>,
    pub volume: u8,
}

/// How a play ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub sound: String,
    pub result: Result<(), String>,
}

/// The agent's handle on the speaker task.
#[derive(Debug)]
pub struct Speaker {
    config: SpeakerConfig,
    queue: mpsc::Sender<Job>,
}

impl Speaker {
    /// Starts the player task; it stops when `shutdown` is cancelled.
    pub fn start(
        config: SpeakerConfig,
        pins: Arc<dyn OutputPins>,
        outcomes: mpsc::Sender<Outcome>,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        if let SpeakerOutput::Player { sounds_dir, .. } = &config.output
            && !sounds_dir.is_dir()
        {
            tracing::warn!(dir = %sounds_dir.display(), "sounds directory does not exist; every play will fail");
        }
        let (queue, jobs) = mpsc::channel(SPEAKER_QUEUE_CAPACITY);
        let task = tokio::spawn(run(jobs, config.output.clone(), pins, outcomes, shutdown));
        (Self { config, queue }, task)
    }

    /// Checks `play` and queues it, or says why not.
    pub fn submit(&self, play: &ChimePlay) -> Result<(), SpeakerError> {
        let path = match &self.config.output {
            SpeakerOutput::Player { sounds_dir, .. } => {
                Some(sound::resolve(sounds_dir, &play.sound)?)
            }
            SpeakerOutput::Buzzer { .. } => {
                sound::validate_name(&play.sound)?;
                None
            }
        };
        let job = Job {
            sound: play.sound.clone(),
            path,
            volume: play.volume.unwrap_or(self.config.default_volume),
        };
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => SpeakerError::Busy {
                capacity: SPEAKER_QUEUE_CAPACITY,
            },
            TrySendError::Closed(_) => SpeakerError::Stopped,
        })
    }
}

async fn run(
    mut jobs: mpsc::Receiver<Job>,
    output: SpeakerOutput,
    pins: Arc<dyn OutputPins>,
    outcomes: mpsc::Sender<Outcome>,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = shutdown.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        tracing::info!(sound = %job.sound, volume = job.volume, "playing");
        // Dropping the play future on shutdown kills the player (kill_on_drop).
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = play(&output, &*pins, &job) => result,
        };
        let outcome = Outcome {
            sound: job.sound,
            result,
        };
        if outcomes.send(outcome).await.is_err() {
            return;
        }
    }
}

async fn play(output: &SpeakerOutput, pins: &dyn OutputPins, job: &Job) -> Result<(), String> {
    match (output, &job.path) {
        (SpeakerOutput::Player { argv, timeout, .. }, Some(path)) => {
            run_player(&sound::player_args(argv, path, job.volume), *timeout).await
        }
        (SpeakerOutput::Buzzer { pin, pattern }, _) => beep(pins, *pin, pattern).await,
        (SpeakerOutput::Player { .. }, None) => Err("no sound file resolved".to_owned()),
    }
}

async fn run_player(args: &[String], timeout: Duration) -> Result<(), String> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| "the player command is empty".to_owned())?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start player {program:?}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("player {program:?} failed: {status}")),
        Ok(Err(e)) => Err(format!("waiting for player {program:?}: {e}")),
        Err(_) => {
            let killed = child.kill().await;
            Err(format!(
                "player {program:?} still running after {} s; killed{}",
                timeout.as_secs(),
                killed
                    .err()
                    .map(|e| format!(" (kill failed: {e})"))
                    .unwrap_or_default()
            ))
        }
    }
}

async fn beep(pins: &dyn OutputPins, pin: PinSpec, pattern: &[Duration]) -> Result<(), String> {
    let mut result = Ok(());
    for (i, duration) in pattern.iter().enumerate() {
        let state = OnOff::from(i % 2 == 0);
        if let Err(e) = gpio::drive(pins, pin, state) {
            result = Err(format!("buzzer: {e}"));
            break;
        }
        tokio::time::sleep(*duration).await;
    }
    // Whatever happened, a buzzer must not be left sounding.
    gpio::drive(pins, pin, OnOff::Off).map_err(|e| format!("buzzer: {e}"))?;
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gpio::{Level, SimulatedPins};

    fn play(sound: &str) -> ChimePlay {
        ChimePlay {
            sound: sound.to_owned(),
            volume: None,
            chime: None,
            scheduled_for: None,
        }
    }

    fn buzzer_config() -> SpeakerConfig {
        SpeakerConfig {
            name: hearth_protocol::Id::new("hall").unwrap(),
            output: SpeakerOutput::Buzzer {
                pin: PinSpec {
                    pin: 18,
                    active_low: true,
                },
                pattern: vec![Duration::from_millis(10); 3],
            },
            default_volume: 80,
        }
    }

    #[tokio::test]
    async fn a_buzzer_beeps_its_pattern_and_ends_off() {
        let pins = Arc::new(SimulatedPins::new([(18, "buzzer".to_owned())]));
        let (tx, mut rx) = mpsc::channel(SPEAKER_OUTCOME_CAPACITY);
        let shutdown = CancellationToken::new();
        let (speaker, task) = Speaker::start(buzzer_config(), pins.clone(), tx, shutdown.clone());
        speaker.submit(&play("doorbell")).unwrap();
        let outcome = rx.recv().await.unwrap();
        assert_eq!(outcome.result, Ok(()));
        let levels: Vec<Level> = pins.transitions().iter().map(|t| t.level).collect();
        // Active low: on is low. On, off, on, then the final off.
        assert_eq!(levels, [Level::Low, Level::High, Level::Low, Level::High]);
        assert!(matches!(
            speaker.submit(&play("../x")),
            Err(SpeakerError::Sound(SoundError::Name(
                hearth_protocol::sound::SoundNameError::BadName { .. }
            )))
        ));
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_the_player_is_killed_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("long.wav"), b"x").unwrap();
        let config = SpeakerConfig {
            name: hearth_protocol::Id::new("kitchen").unwrap(),
            output: SpeakerOutput::Player {
                // A player that would never finish by itself.
                argv: vec!["sleep".into(), "30".into()],
                sounds_dir: dir.path().to_owned(),
                timeout: Duration::from_secs(1),
            },
            default_volume: 1,
        };
        let pins = Arc::new(SimulatedPins::default());
        let (tx, mut rx) = mpsc::channel(SPEAKER_OUTCOME_CAPACITY);
        let shutdown = CancellationToken::new();
        let (speaker, task) = Speaker::start(config, pins, tx, shutdown.clone());
        let mut results = Vec::new();
        for _ in 0..SPEAKER_QUEUE_CAPACITY + 3 {
            results.push(speaker.submit(&play("long.wav")));
        }
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(SpeakerError::Busy { .. })))
            .count();
        assert!(busy >= 2, "{results:?}");
        // The player would run 30 s; "killed" says the 1 s timeout ended it.
        // The 20 s only bounds a hang, below the player's own 30 s.
        let outcome = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the player was not killed on its timeout")
            .unwrap();
        let error = outcome.result.unwrap_err();
        assert!(error.contains("killed"), "{error}");
        shutdown.cancel();
        task.await.unwrap();
    }
}
