//! The embedding hub's link to the broker in its own process: rumqttd's
//! local link behind rumqttc's client type, so no socket in between.
//!
//! Why: a press crosses the broker twice (button -> hub, hub -> light).
//! Through a loopback socket each crossing into and out of the hub wakes
//! the broker's network thread and the hub's once more, and on an idle Pi
//! every wake costs tens of microseconds (docs/benchmarks.md, "The hub
//! linked in process"). Here the hub's requests go straight to the router
//! and the router's deliveries straight to the hub's consumer.
//!
//! The hub keeps using [`rumqttc::AsyncClient`] (built with
//! `from_senders`), so nothing above the connection knows which link it has.
//! [`LocalLink::drive`] plays the part `hearth_common::mqtt::drive` plays for
//! a socket: it owns the link, turns requests into packets for the router and
//! deliveries into [`LinkEvent`]s, in order, and never waits for the
//! consumer (a consumer blocked on a full request queue would wait for us).
//! Delivery is the socket's: QoS 1 messages wait for the hub's PUBACK, and
//! while the hub's queue is full the router holds what comes next in its log.

use std::collections::VecDeque;

use bytes::Bytes;
use hearth_common::backoff::Backoff;
use hearth_common::mqtt::{LinkEvent, PENDING_CAPACITY};
use rumqttc::{AsyncClient, LastWill, Request};
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{
    Disconnect, DisconnectReasonCode, Filter, Packet, PubAck, PubAckReason, Publish, QoS,
    RetainForwardRule, Subscribe, Unsubscribe,
};
use rumqttd::{LinkFactory, Notification};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Requests (publishes, acks, subscriptions) queued for the router; as
/// rumqttc's own request queue, a full one makes the publisher wait.
pub const LOCAL_REQUEST_CAPACITY: usize = 1024;

/// The broker side of an [`AsyncClient`] made by [`crate::RunningBroker::local_client`].
pub struct LocalLink {
    links: LinkFactory,
    client_id: String,
    user: String,
    will: Option<LastWill>,
    requests: flume::Receiver<Request>,
}

impl std::fmt::Debug for LocalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLink")
            .field("client_id", &self.client_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A client whose requests go to the router in this process. `user` is
/// the session's owner as the client id rules see it (no socket client
/// can take the session over without logging in as `user`).
pub(crate) fn client(
    links: LinkFactory,
    client_id: &str,
    user: &str,
    will: Option<LastWill>,
) -> (AsyncClient, LocalLink) {
    let (tx, requests) = flume::bounded(LOCAL_REQUEST_CAPACITY);
    let link = LocalLink {
        links,
        client_id: client_id.to_owned(),
        user: user.to_owned(),
        will,
        requests,
    };
    (AsyncClient::from_senders(tx), link)
}

/// Why a link ended.
enum Ended {
    /// Shutdown, our own DISCONNECT, or every client and the consumer gone.
    Done,
    /// The router dropped or refused the link: connect again.
    Lost(String),
}

impl LocalLink {
    /// Runs the link until `shutdown`, the consumer goes away, or our own
    /// DISCONNECT has gone to the router (everything requested before it
    /// went first). If the router drops the link (another client took the
    /// session), reports [`LinkEvent::Disconnected`] and links again after a
    /// backoff. Returns how many messages were dropped (always 0: the router
    /// holds messages back instead; the count matches `mqtt::drive`).
    pub async fn drive(self, events: mpsc::Sender<LinkEvent>, shutdown: CancellationToken) -> u64 {
        let mut backoff = Backoff::default();
        loop {
            let built = {
                let links = self.links.clone();
                let (client_id, user) = (self.client_id.clone(), self.user.clone());
                let will = self.will.clone().map(|w| rumqttd::protocol::LastWill {
                    topic: Bytes::from(w.topic.into_bytes()),
                    message: w.message,
                    qos: qos_in(w.qos),
                    retain: w.retain,
                });
                // Waits for the router's CONNACK on a channel: a blocking
                // call, though a short one.
                tokio::task::spawn_blocking(move || {
                    links
                        .builder(&client_id)
                        .clean_session(true)
                        .last_will(will)
                        .authorizer(Some(user), None)
                        .build()
                        // Its error holds a whole router event: say it, keep it small.
                        .map_err(|error| error.to_string())
                })
                .await
            };
            let lost = match built {
                Ok(Ok((tx, rx, _connack))) => {
                    backoff.reset();
                    match self.run(tx, rx, &events, &shutdown).await {
                        Ended::Done => return 0,
                        Ended::Lost(why) => why,
                    }
                }
                Ok(Err(error)) => error,
                Err(error) => error.to_string(),
            };
            let retry_in = backoff.next_delay(&mut rand::rng());
            let event = LinkEvent::Disconnected {
                error: lost,
                retry_in,
            };
            if events.send(event).await.is_err() {
                return 0;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return 0,
                _ = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    async fn run(
        &self,
        mut tx: LinkTx,
        mut rx: LinkRx,
        events: &mpsc::Sender<LinkEvent>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut pending = VecDeque::from([LinkEvent::Connected {
            session_present: false,
        }]);
        // The router stopped handing us deliveries until we say we are ready.
        let mut unscheduled = false;
        let mut ids = PacketIds::default();
        loop {
            if unscheduled && pending.len() < PENDING_CAPACITY {
                if let Err(error) = rx.wake().await {
                    return Ended::Lost(error.to_string());
                }
                unscheduled = false;
            }
            // As a socket link: read no further ahead of the router than it
            // takes in (it wakes us when it has).
            let room = tx.buffer().len() < rumqttd::MAX_INCOMING_BACKLOG;
            let take = pending.len() < PENDING_CAPACITY;
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Done,
                permit = events.reserve(), if !pending.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = pending.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => return Ended::Done,
                },
                request = self.requests.recv_async(), if room => {
                    let Ok(request) = request else {
                        // Every client is gone.
                        return Ended::Done;
                    };
                    let last = matches!(request, Request::Disconnect(_));
                    if let Some(packet) = packet(request, &mut ids)
                        && let Err(error) = tx.send(packet).await
                    {
                        return Ended::Lost(error.to_string());
                    }
                    if last {
                        return Ended::Done;
                    }
                }
                notification = rx.next(), if take => match notification {
                    Ok(Some(notification)) => match notification {
                        Notification::Forward(forward) => {
                            pending.push_back(LinkEvent::Message(delivered(forward.publish)));
                        }
                        Notification::DeviceAck(rumqttd::Ack::SubAck(_))
                        | Notification::DeviceAck(rumqttd::Ack::SubAckWithProperties(..)) => {
                            pending.push_back(LinkEvent::Subscribed);
                        }
                        Notification::Unschedule => unscheduled = true,
                        Notification::Disconnect(disconnect, _) => {
                            return Ended::Lost(format!(
                                "the broker closed the hub's link: {:?}",
                                disconnect.reason_code
                            ));
                        }
                        // Acks of our own publishes and the rest: nothing waits on them.
                        _ => {}
                    },
                    Ok(None) => {}
                    Err(error) => return Ended::Lost(error.to_string()),
                },
            }
        }
    }
}

/// Packet ids for what we send at QoS 1 and for subscriptions. The router
/// answers each at once and keeps none, so cycling through them is safe.
#[derive(Default)]
struct PacketIds(u16);

impl PacketIds {
    fn next(&mut self) -> u16 {
        self.0 = self.0.checked_add(1).unwrap_or(1);
        self.0
    }
}

/// What the router is sent for a request; `None` for those a local link
/// has no use for (pings).
fn packet(request: Request, ids: &mut PacketIds) -> Option<Packet> {
    Some(match request {
        Request::Publish(p) => {
            let publish = Publish::new(Bytes::from(p.topic.into_bytes()), p.payload, p.retain);
            let publish = match qos_in(p.qos) {
                QoS::AtMostOnce => publish,
                qos => publish.with_qos(qos, ids.next()),
            };
            Packet::Publish(publish, None)
        }
        Request::PubAck(ack) => Packet::PubAck(
            PubAck {
                pkid: ack.pkid,
                reason: PubAckReason::Success,
            },
            None,
        ),
        Request::Subscribe(s) => Packet::Subscribe(
            Subscribe {
                pkid: ids.next(),
                filters: s
                    .filters
                    .into_iter()
                    .map(|f| Filter {
                        path: f.path,
                        qos: qos_in(f.qos),
                        nolocal: false,
                        preserve_retain: false,
                        retain_forward_rule: RetainForwardRule::OnEverySubscribe,
                    })
                    .collect(),
            },
            None,
        ),
        Request::Unsubscribe(u) => Packet::Unsubscribe(
            Unsubscribe {
                pkid: ids.next(),
                filters: u.topics,
            },
            None,
        ),
        Request::Disconnect(_) => Packet::Disconnect(
            Disconnect {
                reason_code: DisconnectReasonCode::NormalDisconnection,
            },
            None,
        ),
        _ => return None,
    })
}

/// A delivery as rumqttc would have read it off a socket.
fn delivered(publish: Publish) -> rumqttc::Publish {
    let (qos, pkid, dup) = (qos_out(publish.qos()), publish.pkid(), publish.dup());
    let mut out = rumqttc::Publish::new(
        String::from_utf8_lossy(&publish.topic),
        qos,
        publish.payload,
    );
    out.retain = publish.retain;
    out.pkid = pkid;
    out.dup = dup;
    out
}

fn qos_in(qos: rumqttc::QoS) -> QoS {
    match qos {
        rumqttc::QoS::AtMostOnce => QoS::AtMostOnce,
        rumqttc::QoS::AtLeastOnce => QoS::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_out(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_skip_zero_when_they_wrap() {
        let mut ids = PacketIds(u16::MAX - 1);
        assert_eq!((ids.next(), ids.next(), ids.next()), (u16::MAX, 1, 2));
    }

    #[test]
    fn a_qos_1_publish_gets_a_packet_id_and_a_qos_0_one_none() {
        let mut ids = PacketIds::default();
        let request = |qos| {
            Request::Publish(rumqttc::Publish::new(
                "hearth/node/pi-1/light/lamp/set",
                qos,
                "ON",
            ))
        };
        let Some(Packet::Publish(one, _)) = packet(request(rumqttc::QoS::AtLeastOnce), &mut ids)
        else {
            panic!("a publish became something else");
        };
        assert_eq!((one.qos(), one.pkid()), (QoS::AtLeastOnce, 1));
        let Some(Packet::Publish(zero, _)) = packet(request(rumqttc::QoS::AtMostOnce), &mut ids)
        else {
            panic!("a publish became something else");
        };
        assert_eq!((zero.qos(), zero.pkid()), (QoS::AtMostOnce, 0));
        assert_eq!(&zero.topic[..], b"hearth/node/pi-1/light/lamp/set");
    }
}
