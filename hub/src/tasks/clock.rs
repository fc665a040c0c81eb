//! The clock task: publishes `hearth/clock/hhmm` (retained) at every minute boundary while the hub leads.

use std::sync::Arc;

use chrono::Utc;
use hearth_protocol::Topic;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::decide::clock;
use crate::leader::Role;
use crate::model::effects::Publication;
use crate::publish::Publisher;

/// Publishes the clock until `shutdown`.
pub async fn run_clock(
    settings: Arc<Settings>,
    role: watch::Receiver<Role>,
    publisher: Publisher,
    shutdown: CancellationToken,
) {
    let topic = settings.topics.build(&Topic::ClockHhmm);
    loop {
        let now = Utc::now();
        let until = clock::until_next_minute(now);
        // Timers run on the monotonic clock: waking a hair before the wall
        // clock reaches the minute must not publish the old minute again.
        let boundary = now + chrono::Duration::from_std(until).unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(until) => {}
        }
        if *role.borrow() != Role::Leader {
            continue;
        }
        let payload = clock::hhmm(settings.timezone, Utc::now().max(boundary));
        publisher
            .publish(Publication::retained(topic.clone(), payload))
            .await;
    }
}
