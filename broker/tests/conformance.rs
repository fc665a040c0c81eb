//! The embedded broker against MQTT 3.1.1's normative statements, over real
//! TCP. Each test names the statements it checks ([MQTT-x.y.z-n]); what the
//! spec leaves open (how many copies an overlapping subscription gets) is
//! left open here too. A raw-packet client reads the header bits a library
//! hides (QoS, retain, session present); rumqttc and mosquitto_sub elsewhere.

#![allow(clippy::unwrap_used)]

#[path = "conformance/raw.rs"]
mod raw;

use std::time::{Duration, Instant};

use hearth_testkit::{
    HANG_LIMIT, Subscriber, TestClient, broker_config, mosquitto_pub, start_broker,
};
use raw::{Connect, Raw};
use rumqttc::QoS;

/// Keep-alive of the clients that are meant to be timed out, in seconds.
const SHORT_KEEP_ALIVE: u16 = 1;

/// [MQTT-3.1.2-24]: keep-alive N, silent client, dropped after 1.5 N. Only
/// a lower bound is asserted (never dropped before N): the upper one is a
/// hang limit, so a busy machine cannot fail the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_n_drops_a_silent_client_after_one_and_a_half_n() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let started = Instant::now();
    let (mut silent, _) = Raw::accepted(
        port,
        &Connect {
            keep_alive: SHORT_KEEP_ALIVE,
            ..Connect::new("silent")
        },
    )
    .await;
    silent.expect_closed().await;
    let lived = started.elapsed();
    assert!(
        lived >= Duration::from_secs(SHORT_KEEP_ALIVE.into()),
        "a client with keep-alive {SHORT_KEEP_ALIVE} s was dropped after {lived:?}"
    );
}

/// §3.1.2.10: keep-alive 0 turns the mechanism off. The CONNECT is accepted
/// and the client is never timed out: after a client with keep-alive 1 that
/// connected later went silent and was dropped, the keep-alive-0 client,
/// silent for longer, still answers a PINGREQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_zero_is_accepted_and_never_times_out() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut off, _) = Raw::accepted(
        port,
        &Connect {
            keep_alive: 0,
            ..Connect::new("keep-alive-off")
        },
    )
    .await;
    let (mut short, _) = Raw::accepted(
        port,
        &Connect {
            keep_alive: SHORT_KEEP_ALIVE,
            ..Connect::new("keep-alive-short")
        },
    )
    .await;
    short.expect_closed().await;
    off.ping().await;
}

/// The same with a client library: rumqttc with keep-alive 0 (mosquitto_sub
/// refuses `-k 0` itself) connects, subscribes and receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_with_keep_alive_zero_is_served() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut options = TestClient::options(port, "rumqttc-ka0");
    options.set_keep_alive(Duration::ZERO);
    let mut client = TestClient::connect_with(options).await;
    client.subscribe("ka0/#", QoS::AtLeastOnce).await;
    let out = mosquitto_pub(port, &["-t", "ka0/x", "-m", "hello"]);
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
    let got = client.recv_on("ka0/x", HANG_LIMIT).await;
    assert_eq!(&got.payload[..], b"hello");
}

/// [MQTT-3.1.2-24] counts Control Packets received from the client: one
/// that only receives deliveries and never sends is still dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_counts_what_the_client_sends_not_what_it_receives() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut listener, _) = Raw::accepted(
        port,
        &Connect {
            keep_alive: SHORT_KEEP_ALIVE,
            ..Connect::new("receive-only")
        },
    )
    .await;
    listener.subscribe(1, "feed", 0).await;
    let (mut feeder, _) = Raw::accepted(port, &Connect::new("feeder")).await;
    // Each message is sent once the previous one arrived: the listener
    // hears from the broker all the time and says nothing itself.
    let started = Instant::now();
    let mut delivered = 0u64;
    loop {
        assert!(
            started.elapsed() < HANG_LIMIT,
            "a receive-only client with keep-alive {SHORT_KEEP_ALIVE} s still connected \
             after {delivered} deliveries in {HANG_LIMIT:?}"
        );
        feeder.publish("feed", 0, false, b"tick").await;
        match listener.read().await {
            Some(p) if p.kind() == raw::PUBLISH => delivered += 1,
            Some(p) => panic!("expected a PUBLISH on feed, got {p:02x?}"),
            None => break,
        }
    }
    assert!(delivered > 0, "dropped before any delivery");
}

/// §3.8.4, §4.3: a message goes out at the lower of the publish's QoS and
/// the subscription's, both ways ([MQTT-3.8.4-6]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut sub1, _) = Raw::accepted(port, &Connect::new("sub-qos1")).await;
    assert_eq!(sub1.subscribe(1, "q/#", 1).await, 1, "SUBACK granted QoS");
    let (mut sub0, _) = Raw::accepted(port, &Connect::new("sub-qos0")).await;
    assert_eq!(sub0.subscribe(1, "q/#", 0).await, 0, "SUBACK granted QoS");
    let (mut publisher, _) = Raw::accepted(port, &Connect::new("pub")).await;
    publisher.publish("q/zero", 0, false, b"0").await;
    publisher.publish("q/one", 1, false, b"1").await;
    publisher.publish("q/end", 1, false, b"").await;
    let got = |ps: Vec<raw::Publish>| ps.into_iter().map(|p| (p.topic, p.qos)).collect::<Vec<_>>();
    assert_eq!(
        got(sub1.publishes_until("q/end").await),
        [("q/zero".to_owned(), 0), ("q/one".to_owned(), 1)],
        "QoS 1 subscriber: (topic, delivered QoS)"
    );
    assert_eq!(
        got(sub0.publishes_until("q/end").await),
        [("q/zero".to_owned(), 0), ("q/one".to_owned(), 0)],
        "QoS 0 subscriber: (topic, delivered QoS)"
    );
}

/// The case with Mosquitto's own clients: `mosquitto_pub -q 0` to
/// `mosquitto_sub -q 1` arrives at QoS 0 (`%q` prints the delivered QoS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_see_the_downgrade() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let sub = Subscriber::start(port, "dq/#", &["-q", "1", "-F", "%t %q %p"]);
    for (topic, qos) in [("dq/zero", "0"), ("dq/one", "1")] {
        let out = mosquitto_pub(port, &["-t", topic, "-q", qos, "-m", qos]);
        assert!(out.status.success(), "mosquitto_pub {topic}: {out:?}");
    }
    let lines = sub.expect_all(
        &["dq/zero 0 0".to_owned(), "dq/one 1 1".to_owned()],
        HANG_LIMIT,
    );
    assert_eq!(
        lines,
        ["dq/zero 0 0", "dq/one 1 1"],
        "topic, delivered QoS, payload"
    );
}

/// §3.3.1.3: retained messages are set, replaced, cleared by an empty
/// retained payload ([MQTT-3.3.1-10, -11]), untouched by a non-retained
/// publish ([MQTT-3.3.1-12]); sent on a new subscription with RETAIN 1
/// ([MQTT-3.3.1-8]) and to established subscriptions with RETAIN 0
/// ([MQTT-3.3.1-9]), at no more than the subscription's QoS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_follow_the_retain_rules() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut publisher, _) = Raw::accepted(port, &Connect::new("retainer")).await;
    publisher.publish("r/a", 1, true, b"first").await;
    publisher.publish("r/a", 1, true, b"second").await;
    publisher.publish("r/b", 0, true, b"b-zero").await;

    let (mut early, _) = Raw::accepted(port, &Connect::new("early")).await;
    early.subscribe(1, "r/#", 1).await;
    publisher.publish("r/end", 1, false, b"").await;
    let mut on_subscribe = early.publishes_until("r/end").await;
    on_subscribe.sort_by(|a, b| a.topic.cmp(&b.topic));
    let seen: Vec<_> = on_subscribe
        .iter()
        .map(|p| (p.topic.as_str(), p.text(), p.qos, p.retain))
        .collect();
    assert_eq!(
        seen,
        [
            ("r/a", "second".to_owned(), 1, true),
            ("r/b", "b-zero".to_owned(), 0, true)
        ],
        "retained on subscribe: (topic, payload, QoS, RETAIN)"
    );

    // Live: a retained publish reaches the established subscription with
    // RETAIN 0; an empty retained one clears r/a and is still delivered; a
    // non-retained empty one leaves r/b's retained message alone.
    publisher.publish("r/c", 1, true, b"live").await;
    publisher.publish("r/a", 1, true, b"").await;
    publisher.publish("r/b", 1, false, b"").await;
    publisher.publish("r/end", 1, false, b"").await;
    let live: Vec<_> = early
        .publishes_until("r/end")
        .await
        .into_iter()
        .map(|p| (p.topic.clone(), p.text(), p.retain))
        .collect();
    assert_eq!(
        live,
        [
            ("r/c".to_owned(), "live".to_owned(), false),
            ("r/a".to_owned(), String::new(), false),
            ("r/b".to_owned(), String::new(), false)
        ],
        "live deliveries: (topic, payload, RETAIN)"
    );

    let (mut late, _) = Raw::accepted(port, &Connect::new("late")).await;
    late.subscribe(1, "r/#", 1).await;
    publisher.publish("r/end", 1, false, b"").await;
    let mut kept: Vec<_> = late
        .publishes_until("r/end")
        .await
        .into_iter()
        .map(|p| (p.topic.clone(), p.text(), p.retain))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("r/b".to_owned(), "b-zero".to_owned(), true),
            ("r/c".to_owned(), "live".to_owned(), true)
        ],
        "retained after the clear: (topic, payload, RETAIN)"
    );
}

/// §4.7.2 [MQTT-4.7.2-1]: `#` and `+` at the first level do not match a
/// topic starting with `$`; a filter that starts with `$` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_at_the_first_level_do_not_match_dollar_topics() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut hash = TestClient::connect(port, "hash").await;
    hash.subscribe("#", QoS::AtLeastOnce).await;
    let mut plus = TestClient::connect(port, "plus").await;
    plus.subscribe("+/x", QoS::AtLeastOnce).await;
    let mut dollar = TestClient::connect(port, "dollar").await;
    dollar.subscribe("$foo/#", QoS::AtLeastOnce).await;
    let mut sys = TestClient::connect(port, "sys").await;
    sys.subscribe("$SYS/#", QoS::AtLeastOnce).await;

    let publisher = TestClient::connect(port, "pub").await;
    for topic in [
        "$foo/x", "$SYS/y", "plain/x", "$foo/end", "$SYS/end", "end/x",
    ] {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, topic)
            .await;
    }
    let topics = |got: Vec<rumqttc::Publish>| got.into_iter().map(|p| p.topic).collect::<Vec<_>>();
    // Each marker is on a filter the client holds, after what it must not get.
    assert_eq!(topics(hash.collect_until("end/x").await), ["plain/x"]);
    assert_eq!(topics(plus.collect_until("end/x").await), ["plain/x"]);
    assert_eq!(topics(dollar.collect_until("$foo/end").await), ["$foo/x"]);
    assert_eq!(topics(sys.collect_until("$SYS/end").await), ["$SYS/y"]);
}

/// §3.3.5 [MQTT-3.3.5-1]: a message matching two of one client's filters
/// is delivered at the maximum QoS of the matching subscriptions; further
/// copies are allowed, one per extra filter, each at that filter's QoS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_deliver_at_the_highest_matching_qos() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut sub, _) = Raw::accepted(port, &Connect::new("overlap")).await;
    sub.subscribe(1, "o/+", 0).await;
    sub.subscribe(2, "+/a", 1).await;
    let (mut publisher, _) = Raw::accepted(port, &Connect::new("pub")).await;
    publisher.publish("o/a", 1, false, b"both").await;
    // One marker per filter, each matching only its own filter: whatever
    // either filter delivers of o/a came before that filter's marker.
    publisher.publish("o/end", 1, false, b"").await;
    publisher.publish("end/a", 1, false, b"").await;
    let mut copies = Vec::new();
    let mut markers = 0;
    while markers < 2 {
        let p = sub.next_publish().await;
        match p.topic.as_str() {
            "o/end" | "end/a" => markers += 1,
            _ => copies.push((p.topic, p.qos)),
        }
    }
    let mut qos: Vec<u8> = copies.iter().map(|(_, q)| *q).collect();
    qos.sort_unstable();
    assert!(
        copies.iter().all(|(t, _)| t == "o/a") && (qos == [1] || qos == [0, 1]),
        "expected o/a once at QoS 1, or twice at QoS 0 and 1; got {copies:?}"
    );
}

/// §3.1.2.4, §3.2.2.2 [MQTT-3.2.2-1..3]: session present is 0 for a clean
/// session and for a new one, 1 when a clean-session-0 client comes back;
/// QoS 1 messages for its subscriptions while it was away are then sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_is_present_and_gets_what_was_queued() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let persistent = Connect {
        clean_session: false,
        ..Connect::new("persistent")
    };
    let (mut away, present) = Raw::accepted(port, &persistent).await;
    assert!(!present, "session present on a brand-new session");
    away.subscribe(1, "s/#", 1).await;
    away.disconnect().await;
    away.expect_closed().await;

    let (mut publisher, _) = Raw::accepted(port, &Connect::new("pub")).await;
    publisher.publish("s/queued", 1, false, b"while away").await;
    publisher.publish("s/end", 1, false, b"").await;

    let (mut back, present) = Raw::accepted(port, &persistent).await;
    assert!(
        present,
        "session present 0 on resuming a clean-session-0 session"
    );
    let queued: Vec<_> = back
        .publishes_until("s/end")
        .await
        .into_iter()
        .map(|p| (p.topic.clone(), p.text(), p.qos))
        .collect();
    assert_eq!(
        queued,
        [("s/queued".to_owned(), "while away".to_owned(), 1)],
        "queued while away: (topic, payload, QoS)"
    );
    back.disconnect().await;
    back.expect_closed().await;

    let (_clean, present) = Raw::accepted(port, &Connect::new("persistent")).await;
    assert!(!present, "session present with clean session 1");
}

/// §3.1.2.5, §3.14.4: the will is published when the connection closes
/// without DISCONNECT ([MQTT-3.1.2-8]) and discarded on DISCONNECT
/// ([MQTT-3.1.2-10], [MQTT-3.14.4-3]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_is_sent_on_an_abrupt_close_and_not_after_disconnect() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let watcher = Subscriber::start(port, "will/#", &["-q", "1"]);
    let (mut polite, _) = Raw::accepted(
        port,
        &Connect {
            will: Some(("will/polite", b"gone", 1)),
            ..Connect::new("polite")
        },
    )
    .await;
    let (crashing, _) = Raw::accepted(
        port,
        &Connect {
            will: Some(("will/crashed", b"gone", 1)),
            ..Connect::new("crashing")
        },
    )
    .await;
    // The broker closes the polite client's socket once it has handled the
    // DISCONNECT (the client keeps its end open), so its will is discarded
    // before the crashing client's connection drops.
    polite.disconnect().await;
    polite.expect_closed().await;
    drop(crashing);
    let lines = watcher.expect_line("will/crashed gone", HANG_LIMIT);
    assert!(
        !lines.iter().any(|l| l.starts_with("will/polite")),
        "a will published after DISCONNECT: {lines:?}"
    );
}

/// §3.10.4 [MQTT-3.10.4-2]: after the UNSUBACK nothing new is sent for the
/// filter. Anchored without a quiet window: the client subscribes again and
/// a marker on the same filter arrives after anything the old one sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut sub, _) = Raw::accepted(port, &Connect::new("unsub")).await;
    let (mut publisher, _) = Raw::accepted(port, &Connect::new("pub")).await;
    sub.subscribe(1, "u/a", 1).await;
    publisher.publish("u/a", 1, false, b"before").await;
    assert_eq!(sub.next_publish().await.text(), "before");
    sub.unsubscribe(2, "u/a").await;
    publisher.publish("u/a", 1, false, b"after").await;
    sub.subscribe(3, "u/a", 1).await;
    publisher.publish("u/a", 1, false, b"marker").await;
    let got = sub.next_publish().await;
    assert_eq!(
        got.text(),
        "marker",
        "after UNSUBACK the broker sent {got:?}"
    );
}

/// §3.1.3.1: a zero-length client id is accepted with clean session 1 and
/// given a unique id ([MQTT-3.1.3-6]: two such clients stay connected side
/// by side), and refused with CONNACK 0x02 then closed with clean session 0
/// ([MQTT-3.1.3-8]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_length_client_ids_follow_the_clean_session_rule() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut first, present) = Raw::accepted(port, &Connect::new("")).await;
    assert!(!present, "session present for a zero-length client id");
    let (mut second, _) = Raw::accepted(port, &Connect::new("")).await;
    first.ping().await;
    second.ping().await;

    let (mut refused, ack) = Raw::connect(
        port,
        &Connect {
            clean_session: false,
            ..Connect::new("")
        },
    )
    .await;
    assert_eq!(ack, [0x00, 0x02], "CONNACK (session present, return code)");
    refused.expect_closed().await;
}

/// §3.10.4 [MQTT-3.10.4-5]: an UNSUBSCRIBE is answered with an UNSUBACK even
/// when it names no filter the client holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_of_an_unknown_filter_is_still_acknowledged() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let (mut client, _) = Raw::accepted(port, &Connect::new("unsub-unknown")).await;
    client.unsubscribe(1, "never/subscribed").await;
    client.ping().await;
}
