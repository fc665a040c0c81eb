//! The core's handling of HTTP API calls: the same decisions as MQTT, in the same order.

use chrono::Utc;
use hearth_protocol::{OnOff, Topic};
use tokio::sync::oneshot;

use super::{Core, Stopping};
use crate::decide::logbook;
use crate::handle::ApiCall;
use crate::leader::Role;
use crate::model::effects::{Delivery, Publication, Write};
use crate::model::input::Input;
use crate::model::logbook::Via;

impl Core<'_> {
    pub(super) async fn on_api(&mut self, call: ApiCall, role: Role) -> Result<(), Stopping> {
        let settings = self.settings;
        match call {
            ApiCall::SetButton {
                id, command, reply, ..
            } if role == Role::Standby => {
                // The leader applies changes; hand this one over the way any
                // device would, and answer once the broker has it.
                let predicted = self
                    .house
                    .read(|h| h.buttons.get(&id).map(|b| b.state))
                    .unwrap_or_default()
                    .apply(command);
                let topic = settings.topics.build(&Topic::ButtonSet(id));
                self.publisher
                    .publish_all(vec![Publication::event(topic, command.as_str())])
                    .await;
                let (done, durable) = oneshot::channel();
                let _ = done.send(());
                let _ = reply.send((predicted, durable));
                Ok(())
            }
            ApiCall::SetButton {
                id,
                command,
                by,
                reply,
            } => {
                // Exactly what the same command over MQTT does, rules on the
                // set topic included: HTTP-only devices are no lesser.
                let topic = settings.topics.build(&Topic::ButtonSet(id.clone()));
                let input = Input::parse(
                    &settings.topics,
                    &topic,
                    command.as_str().as_bytes(),
                    Delivery::Live,
                );
                let mut outcome = self.house.change(|house| {
                    self.brain
                        .decide(house, &mut self.recent, &input, Utc::now(), Via::Http)
                });
                self.automate(&mut outcome, &topic, command.as_str().as_bytes());
                let state = self
                    .house
                    .read(|h| h.buttons.get(&id).map(|b| b.state))
                    .unwrap_or_default();
                let mut writes = self.record(outcome).await;
                logbook::by_user(&mut writes, by.as_deref());
                let (done, durable) = oneshot::channel();
                let _ = reply.send((state, durable));
                self.queue(writes, None, Some(done)).await
            }
            ApiCall::ForgetButton { id, reply } => {
                let outcome = self
                    .house
                    .change(|house| self.brain.forget_button(house, &id));
                match outcome {
                    None => {
                        let _ = reply.send(None);
                        Ok(())
                    }
                    Some(outcome) => {
                        let writes = self.record(outcome).await;
                        let (done, durable) = oneshot::channel();
                        let _ = reply.send(Some(durable));
                        self.queue(writes, None, Some(done)).await
                    }
                }
            }
            ApiCall::Catalog { request, reply } if role == Role::Standby => {
                // The leader owns the automations; a standby's would be stale.
                let _ = reply.send(Err(crate::model::catalog::CatalogError::Invalid(
                    "this hub stands by: change automations on the leading hub".to_owned(),
                )));
                let _ = request;
                Ok(())
            }
            ApiCall::Catalog { request, reply } => match self.on_catalog(request).await {
                Ok((outcome, shown)) => {
                    let writes = self.record(outcome).await;
                    let (done, durable) = oneshot::channel();
                    let _ = reply.send(Ok((shown, durable)));
                    self.queue(writes, None, Some(done)).await
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                    Ok(())
                }
            },
            ApiCall::Traces { id, reply } => {
                let _ = reply.send(self.automations.traces(&id));
                Ok(())
            }
            ApiCall::CatalogViews { reply } => {
                let _ = reply.send(self.views());
                Ok(())
            }
            ApiCall::Brightness {
                output,
                level,
                by,
                reply,
            } => {
                let topic = settings.topics.build(&Topic::BrightnessSet(output.clone()));
                tracing::debug!(%output, brightness = level.0, "brightness from HTTP");
                self.publisher
                    .publish_all(vec![Publication::event(topic, level.to_string())])
                    .await;
                let _ = reply.send(());
                // Logged after it is out, as a command is.
                let source = logbook::http_source(by.as_deref());
                let entry = logbook::brightness(&output, level.0, Utc::now(), &source);
                self.queue(vec![Write::Logbook(entry)], None, None).await
            }
            ApiCall::CommandOutput {
                output,
                command,
                by,
                reply,
            } => {
                let outgoing = self
                    .house
                    .read(|house| self.brain.command_output(house, &output, command));
                let sent = OnOff::parse(&outgoing.payload).unwrap_or_default();
                self.publisher.publish_all(vec![outgoing]).await;
                let _ = reply.send(sent);
                // Logged after the command is out, so the lamp never waits
                // for it; the writer's queue is the one every change takes.
                let source = logbook::http_source(by.as_deref());
                let entry = logbook::command(&output, sent, Utc::now(), &source);
                self.queue(vec![Write::Logbook(entry)], None, None).await
            }
        }
    }
}
