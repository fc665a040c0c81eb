//! The hub's one way to publish: every task that sends MQTT goes through [`Publisher`], so every message is counted once.
//!
//! `hearth_messages_out_total` counts what rumqttc accepted; a refusal
//! (its request queue is closed: the hub is stopping) is logged and counted
//! under `hearth_errors_total{reason="publish"}`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rumqttc::AsyncClient;

use crate::metrics::{ErrorReason, Metrics};
use crate::model::effects::Publication;

/// Publishes and counts.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
    metrics: Arc<Metrics>,
}

impl Publisher {
    pub fn new(client: AsyncClient, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }

    /// Publishes `message`; false if rumqttc refused it.
    pub async fn publish(&self, message: Publication) -> bool {
        match self
            .client
            .publish(message.topic, message.qos, message.retain, message.payload)
            .await
        {
            Ok(()) => {
                self.metrics.messages_out.fetch_add(1, Relaxed);
                true
            }
            Err(error) => {
                self.metrics.error(ErrorReason::Publish);
                tracing::warn!(%error, "publish failed");
                false
            }
        }
    }

    /// Publishes each message in order.
    pub async fn publish_all(&self, messages: impl IntoIterator<Item = Publication>) {
        for message in messages {
            self.publish(message).await;
        }
    }
}
