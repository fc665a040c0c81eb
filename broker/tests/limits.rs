//! Limits under abuse, against the real broker over loopback TCP: a connection flood,
//! max_connections, the inflight window, and a subscriber that stops reading.
//!
//! Every loop here is bounded in count and in time, and only 127.0.0.1 is used.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hearth_broker::BrokerConfig;
use hearth_broker::config::RUMQTTD_OUTGOING_INFLIGHT;
use hearth_testkit::raw::{self, StalledSubscriber, proc_status_kib};
use hearth_testkit::{
    BrokerProcess, Subscriber, TestClient, broker_config, mosquitto_pub, require_tool, start_broker,
};
use rumqttc::{AsyncClient, Event, Incoming, QoS};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_2000_connects_leaves_existing_subscribers_served() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("flood/after", QoS::AtLeastOnce).await;

    // 4 threads x 500: a third connect and drop at once, a third send half a
    // CONNECT and drop, a third send a whole CONNECT and drop without
    // waiting for the CONNACK. Bounded by count and by a 60 s deadline.
    const FLOODERS: usize = 4;
    const PER_FLOODER: usize = 500;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let connect = raw::connect("flooder", 30, None);
    let threads: Vec<_> = (0..FLOODERS)
        .map(|t| {
            let connect = connect.clone();
            std::thread::spawn(move || {
                let mut refused = 0usize;
                for i in 0..PER_FLOODER {
                    assert!(
                        Instant::now() < deadline,
                        "flooder {t} managed only {i} connects in 60 s"
                    );
                    match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(mut s) => {
                            let _ = match (t * PER_FLOODER + i) % 3 {
                                0 => Ok(()),
                                1 => s.write_all(&connect[..connect.len() / 2]),
                                _ => s.write_all(&connect),
                            };
                        }
                        Err(_) => refused += 1,
                    }
                }
                refused
            })
        })
        .collect();
    let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let flood_time = started.elapsed();

    // The subscriber that was there all along still gets a message, soon.
    let sent = Instant::now();
    let out = mosquitto_pub(port, &["-t", "flood/after", "-q", "1", "-m", "still here"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = watcher.recv_on("flood/after", WAIT).await;
    assert_eq!(&got.payload[..], b"still here");
    assert!(watcher.is_connected(), "the flood disconnected the watcher");
    // And new clients are still welcome.
    let late = TestClient::connect(port, "after-the-flood").await;
    assert!(late.is_connected(), "a client after the flood was dropped");
    eprintln!(
        "flood: {} connects in {flood_time:?} ({refused} refused by the OS); \
         existing subscriber got a message {:?} after it was sent",
        FLOODERS * PER_FLOODER,
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_eleventh_client_and_keeps_the_ten() {
    let config = BrokerConfig {
        max_connections: 10,
        ..broker_config()
    };
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(TestClient::connect(port, &format!("c{i}")).await);
    }
    clients[0].subscribe("limit/#", QoS::AtLeastOnce).await;

    let eleventh = TestClient::try_connect(TestClient::options(port, "c10")).await;
    assert!(eleventh.is_err(), "the 11th client was accepted");
    eprintln!("11th client: {}", eleventh.err().unwrap_or_default());

    // The ten are unaffected.
    clients[9]
        .publish("limit/x", QoS::AtLeastOnce, false, "from the tenth")
        .await;
    let got = clients[0].recv_on("limit/x", WAIT).await;
    assert_eq!(&got.payload[..], b"from the tenth");
    let connected: Vec<bool> = clients.iter().map(TestClient::is_connected).collect();
    assert!(
        connected.iter().all(|c| *c),
        "the eleventh knocked one of the ten off: {connected:?}"
    );

    // A slot freed is a slot taken.
    clients.pop().unwrap().kill();
    let deadline = Instant::now() + WAIT;
    loop {
        match TestClient::try_connect(TestClient::options(port, "c11")).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the freed slot stayed taken: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_acks_gets_at_most_the_inflight_window() {
    // max_inflight is set low on purpose: rumqttd 0.20 ignores it for the
    // window towards a subscriber, which is fixed at 100 (see config.rs).
    let config = BrokerConfig {
        max_inflight: 10,
        ..broker_config()
    };
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();

    let mut options = TestClient::options(port, "lazy");
    options.set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let (tx, mut rx) = mpsc::channel(1024);
    let (subacked, suback) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subacked = Some(subacked);
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Incoming::SubAck(ack)) = &event {
                let _ = subacked.take().map(|done| done.send(ack.clone()));
            }
            if let Event::Incoming(Incoming::Publish(p)) = event
                && tx.send(p).await.is_err()
            {
                return;
            }
        }
    });
    client
        .subscribe("window/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let ack = tokio::time::timeout(hearth_testkit::HANG_LIMIT, suback)
        .await
        .expect("a SUBACK for window/#")
        .expect("the event loop ran until the SUBACK");
    assert!(
        matches!(
            ack.return_codes[..],
            [rumqttc::SubscribeReasonCode::Success(_)]
        ),
        "window/# refused: {ack:?}"
    );

    const SENT: usize = 3 * RUMQTTD_OUTGOING_INFLIGHT;
    let publisher = TestClient::connect(port, "eager").await;
    for i in 0..SENT {
        publisher
            .publish("window/n", QoS::AtLeastOnce, false, i.to_string())
            .await;
    }

    let mut held = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        held.push(p);
    }
    eprintln!(
        "unacked subscriber received {} of {SENT} QoS 1 messages (max_inflight = 10)",
        held.len()
    );
    assert!(!held.is_empty(), "nothing was delivered");
    assert!(
        held.len() <= RUMQTTD_OUTGOING_INFLIGHT,
        "{} unacked messages were sent, more than the window of {RUMQTTD_OUTGOING_INFLIGHT}",
        held.len()
    );

    // Acknowledge as we go: everything else arrives, in order, none lost.
    let mut seen: Vec<usize> = Vec::new();
    for p in held {
        seen.push(std::str::from_utf8(&p.payload).unwrap().parse().unwrap());
        client.ack(&p).await.unwrap();
    }
    while seen.len() < SENT {
        let p = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} of {SENT}", seen.len()))
            .unwrap();
        seen.push(std::str::from_utf8(&p.payload).unwrap().parse().unwrap());
        client.ack(&p).await.unwrap();
    }
    assert_eq!(seen, (0..SENT).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_grow_the_brokers_memory_without_bound() {
    const MESSAGES: usize = 200_000;
    const PAYLOAD: usize = 200;
    let defaults = BrokerConfig::default();
    let mut broker = BrokerProcess::start_exe(
        std::path::Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[],
        &[],
    );
    let (port, pid) = (broker.port(), broker.pid());

    let _stalled = StalledSubscriber::start(port, "stalled", "slow/#", 0);
    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("done", QoS::AtLeastOnce).await;
    let before = proc_status_kib(pid, "VmRSS");

    let publisher = TestClient::connect(port, "firehose").await;
    let payload = vec![b'x'; PAYLOAD];
    let started = Instant::now();
    for _ in 0..MESSAGES {
        publisher
            .publish("slow/data", QoS::AtMostOnce, false, payload.clone())
            .await;
    }
    // Same connection, so it is routed after every message above.
    publisher
        .publish("done", QoS::AtLeastOnce, false, "done")
        .await;
    watcher.recv_on("done", Duration::from_secs(120)).await;
    let published_in = started.elapsed();
    let after = proc_status_kib(pid, "VmRSS");
    let peak = proc_status_kib(pid, "VmHWM");

    // What the broker may keep: one filter's log (segment_size x
    // segment_count), one client's outgoing queue (max_outgoing_packets
    // messages), plus slack for socket buffers, allocator and the runtime.
    let log_kib = (defaults.segment_size * defaults.segment_count / 1024) as u64;
    let outgoing_kib = defaults.max_outgoing_packets * (PAYLOAD as u64 + 64) / 1024;
    let slack_kib = 24 * 1024;
    let bound = log_kib + outgoing_kib + slack_kib;
    let published_kib = (MESSAGES * PAYLOAD / 1024) as u64;
    eprintln!(
        "stalled subscriber: {MESSAGES} x {PAYLOAD} B ({} MiB) published in {published_in:?}; \
         broker VmRSS {} MiB before, {} MiB after (+{} MiB), peak {} MiB; bound +{} MiB",
        published_kib / 1024,
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024,
        peak / 1024,
        bound / 1024
    );
    assert!(
        after.saturating_sub(before) <= bound && peak.saturating_sub(before) <= bound,
        "broker memory grew by {} KiB (peak +{} KiB), more than the {bound} KiB bound",
        after.saturating_sub(before),
        peak.saturating_sub(before)
    );
    // The publisher was held for the stalled reader, then went on; the
    // broker says who loses messages.
    let said = broker.log().wait_for(|line| {
        (line.contains("subscriber is not reading") && line.contains("stalled"))
            .then(|| line.to_owned())
    });
    assert!(
        said.is_ok(),
        "no log line names the stalled subscriber: {said:?}"
    );

    // The broker still serves everyone else.
    let sub = Subscriber::start(port, "after/stall", &[]);
    let published = mosquitto_pub(port, &["-t", "after/stall", "-m", "ok"]);
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    sub.expect_line("after/stall ok", WAIT);
}

/// Memory follows what is subscribed, not every filter ever used: 2,000
/// distinct filters, 100 at a time, each subscribed, fed 20 x 1 KiB and
/// unsubscribed. The broker's peak grows by about one batch's logs; rumqttd
/// as released kept every filter's log until it stopped (about 40 MiB here,
/// 327 MB for the 10,000-filter run in issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_nobody_subscribes_to_any_more_gives_its_memory_back() {
    const BATCHES: usize = 20;
    const FILTERS: usize = 100;
    const MESSAGES: usize = 20;
    let broker = BrokerProcess::start_exe(
        std::path::Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[],
        &[],
    );
    let (port, pid) = (broker.port(), broker.pid());
    let mut subscriber = TestClient::connect(port, "churn-sub").await;
    let publisher = TestClient::connect(port, "churn-pub").await;
    let before = proc_status_kib(pid, "VmHWM");
    let payload = vec![b'x'; 1024];
    for batch in 0..BATCHES {
        let topic = |i: usize| format!("churn/{batch}/{i}");
        for i in 0..FILTERS {
            subscriber.subscribe(&topic(i), QoS::AtLeastOnce).await;
        }
        for i in 0..FILTERS {
            for _ in 0..MESSAGES {
                publisher
                    .publish(&topic(i), QoS::AtLeastOnce, false, payload.clone())
                    .await;
            }
        }
        for n in 0..FILTERS * MESSAGES {
            subscriber
                .recv(Duration::from_secs(30))
                .await
                .unwrap_or_else(|| {
                    panic!(
                        "batch {batch}: only {n} of {} messages came",
                        FILTERS * MESSAGES
                    )
                });
        }
        for i in 0..FILTERS {
            subscriber.unsubscribe(&topic(i)).await;
        }
    }
    // A SUBACK after the last UNSUBSCRIBEs: the router has handled them.
    subscriber.subscribe("churn/done", QoS::AtLeastOnce).await;
    let grown = proc_status_kib(pid, "VmHWM").saturating_sub(before);
    let fed_kib = (BATCHES * FILTERS * MESSAGES) as u64;
    eprintln!(
        "churn: {} filters x {MESSAGES} x 1 KiB ({} MiB fed), broker peak +{} MiB",
        BATCHES * FILTERS,
        fed_kib / 1024,
        grown / 1024
    );
    assert!(
        grown < fed_kib / 3,
        "the broker's peak grew by {grown} KiB for {fed_kib} KiB fed through filters nobody \
         holds any more: their logs were kept"
    );
}

/// Freeing a filter's log never loses what someone still reads: a filter
/// unsubscribed and subscribed again works, and a persistent session's
/// filter keeps its log (and its queued messages) while the session is
/// away, though the last live subscriber left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_filter_works_again_and_a_saved_session_keeps_its_messages() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let publisher = TestClient::connect(port, "pub").await;

    let mut again = TestClient::connect(port, "again").await;
    again.subscribe("re/x", QoS::AtLeastOnce).await;
    again.unsubscribe("re/x").await;
    again.subscribe("re/x", QoS::AtLeastOnce).await;
    publisher
        .publish("re/x", QoS::AtLeastOnce, false, "back")
        .await;
    let got = again.recv_on("re/x", WAIT).await;
    assert_eq!(&got.payload[..], b"back");

    let mut options = TestClient::options(port, "keeper");
    options.set_clean_session(false);
    let keeper = TestClient::connect_with(options.clone()).await;
    keeper.subscribe("keep/x", QoS::AtLeastOnce).await;
    keeper.kill();
    // The last live subscriber of keep/x comes and goes.
    let passer = TestClient::connect(port, "passer").await;
    passer.subscribe("keep/x", QoS::AtLeastOnce).await;
    passer.unsubscribe("keep/x").await;
    passer.subscribe("marker", QoS::AtLeastOnce).await;
    for n in 0..3 {
        publisher
            .publish("keep/x", QoS::AtLeastOnce, false, format!("m{n}"))
            .await;
    }
    let mut keeper = TestClient::connect_with(options).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let message = keeper.recv_on("keep/x", WAIT).await;
        got.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    assert_eq!(got, ["m0", "m1", "m2"], "queued for the saved session");
}

/// A log every subscriber has read gives its memory back while they stay
/// subscribed: one subscriber holds 40 filters and reads 1,100 x 1 KiB
/// through each in turn, more than the segment_count x segment_size
/// (4 x 256 KiB) a log keeps, so every log fills. Each log then keeps its
/// active segment and what is unread, and the memory one filter's read
/// segments gave back serves the next: the broker's peak grows by about
/// the active segments plus one full log. rumqttd as released kept
/// segment_count segments of every filter until new messages overwrote
/// them (about 1 MiB per filter here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_every_subscriber_has_read_gives_its_memory_back_while_subscribed() {
    read_logs_while_subscribed(true).await;
}

/// The same with a persistent session, whose unacknowledged QoS 1 messages
/// also hold their segments (a reconnect would resend from them): a
/// segment goes once its last message in flight is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gives_read_segments_back_once_acknowledged() {
    read_logs_while_subscribed(false).await;
}

async fn read_logs_while_subscribed(clean_session: bool) {
    const FILTERS: usize = 40;
    const MESSAGES: usize = 1_100;
    const PAYLOAD: usize = 1024;
    let defaults = BrokerConfig::default();
    let broker = BrokerProcess::start_exe(
        std::path::Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[],
        &[],
    );
    let (port, pid) = (broker.port(), broker.pid());
    let mut options = TestClient::options(port, "reader");
    options.set_clean_session(clean_session);
    let mut subscriber = TestClient::connect_with(options).await;
    let publisher = TestClient::connect(port, "writer").await;
    let topic = |i: usize| format!("read/{i}");
    for i in 0..FILTERS {
        subscriber.subscribe(&topic(i), QoS::AtLeastOnce).await;
    }
    let before = proc_status_kib(pid, "VmHWM");
    let payload = vec![b'x'; PAYLOAD];
    for i in 0..FILTERS {
        for _ in 0..MESSAGES {
            publisher
                .publish(&topic(i), QoS::AtLeastOnce, false, payload.clone())
                .await;
        }
        for n in 0..MESSAGES {
            let got = subscriber
                .recv(Duration::from_secs(30))
                .await
                .unwrap_or_else(|| panic!("filter {i}: only {n} of {MESSAGES} messages came"));
            assert_eq!(
                got.topic,
                topic(i),
                "filter {i}: message {n} came on another filter"
            );
        }
    }
    let grown = proc_status_kib(pid, "VmHWM").saturating_sub(before);
    let rss = proc_status_kib(pid, "VmRSS");
    let fed_kib = (FILTERS * MESSAGES * PAYLOAD / 1024) as u64;
    // Each log's active segment, one log in full, slack for the runtime,
    // socket buffers and the allocator.
    let segment_kib = (defaults.segment_size / 1024) as u64;
    let log_kib = segment_kib * defaults.segment_count as u64;
    let bound = FILTERS as u64 * segment_kib + log_kib + 8 * 1024;
    eprintln!(
        "read logs (clean session {clean_session}): {FILTERS} filters x {MESSAGES} x \
         {PAYLOAD} B ({} MiB fed), still subscribed; broker peak +{} MiB (bound +{} MiB), \
         VmRSS {} MiB",
        fed_kib / 1024,
        grown / 1024,
        bound / 1024,
        rss / 1024
    );
    assert!(
        grown <= bound,
        "the broker's peak grew by {grown} KiB (bound {bound} KiB) for {fed_kib} KiB read \
         through {FILTERS} filters: read segments were kept"
    );
}

/// Freeing read segments never frees one a saved session has not read: a
/// persistent session subscribes and goes away, a live subscriber reads
/// 600 x 1 KiB through the same filter (past two segment ends, so the
/// broker looks for segments to free), and the session, back, gets all
/// 600 in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_keeps_the_segments_it_has_not_read() {
    const MESSAGES: usize = 600;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut options = TestClient::options(port, "away");
    options.set_clean_session(false);
    let away = TestClient::connect_with(options.clone()).await;
    away.subscribe("kept/x", QoS::AtLeastOnce).await;
    away.kill();
    let mut live = TestClient::connect(port, "live").await;
    live.subscribe("kept/x", QoS::AtLeastOnce).await;
    let publisher = TestClient::connect(port, "pub").await;
    let payload = |n: usize| format!("{n:04}").repeat(256);
    for n in 0..MESSAGES {
        publisher
            .publish("kept/x", QoS::AtLeastOnce, false, payload(n))
            .await;
    }
    for n in 0..MESSAGES {
        live.recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("the live subscriber got only {n} of {MESSAGES}"));
    }
    let mut away = TestClient::connect_with(options).await;
    for n in 0..MESSAGES {
        let got = away.recv(WAIT).await.unwrap_or_else(|| {
            panic!("the saved session got only {n} of the {MESSAGES} queued for it")
        });
        assert_eq!(
            &got.payload[..4],
            format!("{n:04}").as_bytes(),
            "the saved session's message {n} of {MESSAGES}"
        );
    }
}

/// Freeing read segments never frees one a persistent session still has
/// unacknowledged messages in (a reconnect resends from the first): the
/// session acknowledges the first 200 of 400 x 1 KiB, gets the next 100
/// (its window) without acknowledging them, so its read cursor is past the
/// first segment's end (about 254 of these messages) while messages 200..
/// in that segment are still in flight. It goes away and comes back: the
/// broker resends from message 200, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_its_unacknowledged_messages_again_after_reading_past_them() {
    const MESSAGES: usize = 400;
    const ACKED: usize = 200;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut options = TestClient::options(port, "holder");
    options.set_clean_session(false);
    let mut manual = options.clone();
    manual.set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(manual, 64);
    let (tx, mut rx) = mpsc::channel(1024);
    let (subacked, suback) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut subacked = Some(subacked);
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Incoming::SubAck(_)) = &event {
                let _ = subacked.take().map(|done| done.send(()));
            }
            if let Event::Incoming(Incoming::Publish(p)) = event
                && tx.send(p).await.is_err()
            {
                return;
            }
        }
    });
    client.subscribe("held/x", QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(hearth_testkit::HANG_LIMIT, suback)
        .await
        .expect("a SUBACK for held/x")
        .expect("the event loop ran until the SUBACK");
    let publisher = TestClient::connect(port, "pub").await;
    let payload = |n: usize| format!("{n:04}").repeat(256);
    for n in 0..MESSAGES {
        publisher
            .publish("held/x", QoS::AtLeastOnce, false, payload(n))
            .await;
    }
    let index = |p: &rumqttc::Publish| -> usize {
        std::str::from_utf8(&p.payload[..4])
            .unwrap()
            .parse()
            .unwrap()
    };
    // Acknowledge the first ACKED, then take a window's worth unacknowledged.
    for n in 0..ACKED + RUMQTTD_OUTGOING_INFLIGHT {
        let p = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the session got only {n} messages before going away"))
            .unwrap();
        assert_eq!(index(&p), n, "message {n} before going away");
        if n < ACKED {
            client.ack(&p).await.unwrap();
        }
    }
    task.abort();
    drop(client);
    let mut back = TestClient::connect_with(options).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&(MESSAGES - 1)) {
        let p = back
            .recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("back, the session stalled after {seen:?}"));
        seen.push(index(&p));
    }
    assert_eq!(
        seen,
        (ACKED..MESSAGES).collect::<Vec<_>>(),
        "back, the session gets everything from its first unacknowledged message"
    );
}

/// A `mosquitto_sub -C want` on `burst` that counts what it prints on its
/// own thread (no bounded queue between it and the test, so a busy test
/// thread cannot lose lines): returns once its SUBACK came, with the
/// receiver of the final count (at exit: `want`, or fewer if it was
/// killed or the broker went away).
fn counting_subscriber(
    port: u16,
    qos: &str,
    want: usize,
) -> (std::process::Child, mpsc::Receiver<usize>) {
    use std::io::BufRead;
    let mut child = hearth_testkit::mosquitto::debug_sub_command(port, "burst-counter", "burst")
        .args(["-q", qos, "-C", &want.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mosquitto_sub");
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
    let (count_tx, count) = mpsc::channel(1);
    std::thread::spawn(move || {
        let mut received = 0;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("Subscribed (mid") {
                let _ = ready_tx.try_send(());
            } else if !line.starts_with("Client ") {
                received += 1;
            }
        }
        let _ = count_tx.try_send(received);
    });
    ready
        .recv_timeout(Duration::from_secs(30))
        .expect("mosquitto_sub got no SUBACK");
    (child, count)
}

/// A subscriber that keeps up on average loses nothing, whatever the
/// burst: mosquitto_pub flat out (100,000 at QoS 0, then 50,000 at QoS 1)
/// into one mosquitto_sub. rumqttd as released dropped the oldest part of
/// the filter's log when the publisher got a log's length ahead (20,000 to
/// 38,000 of 100,000 lost in 3 runs of 5); the broker now holds the
/// publisher until the reader has read what would be dropped.
#[test]
fn a_flat_out_burst_reaches_a_subscriber_that_keeps_up_in_full() {
    require_tool("mosquitto_pub");
    let broker = BrokerProcess::start_exe(
        std::path::Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[],
        &[],
    );
    let (port, pid) = (broker.port(), broker.pid());
    let payload = "x".repeat(64);
    for (qos, messages) in [("0", 100_000usize), ("1", 50_000)] {
        let (mut subscriber, count) = counting_subscriber(port, qos, messages);
        let publisher = {
            let (payload, repeat) = (payload.clone(), messages.to_string());
            std::thread::spawn(move || {
                mosquitto_pub(
                    port,
                    &[
                        "-t", "burst", "-q", qos, "-m", &payload, "--repeat", &repeat,
                    ],
                )
            })
        };
        let out = publisher.join().unwrap();
        // It exits at `messages`; if some never come, the hang limit ends it
        // and the count says how many did.
        let received = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                let mut count = count;
                match tokio::time::timeout(Duration::from_secs(120), count.recv()).await {
                    Ok(received) => received.unwrap_or(0),
                    Err(_) => {
                        let _ = subscriber.kill();
                        count.recv().await.unwrap_or(0)
                    }
                }
            });
        let _ = subscriber.wait();
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
        assert_eq!(
            received, messages,
            "QoS {qos}: the subscriber got {received} of {messages} published flat out"
        );
        eprintln!(
            "burst QoS {qos}: {messages} of {messages} delivered; broker peak {} MiB",
            proc_status_kib(pid, "VmHWM") / 1024
        );
    }
    // Ten publishers that disconnect as soon as their last message is
    // written: a held publisher's last packets are routed before its
    // connection is let go (hearth-bench, 10 x 10,000 at QoS 0).
    let out = std::process::Command::new(hearth_testkit::binary("hearth-bench"))
        .args(["broker", "--url", &format!("mqtt://127.0.0.1:{port}")])
        .args([
            "--subscribers",
            "1",
            "--publishers",
            "10",
            "--messages",
            "10000",
        ])
        .args(["--qos", "0", "--timeout", "120", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("hearth-bench: {e}: {out:?}"));
    assert_eq!(
        (report["delivered"].as_u64(), report["lost"].as_u64()),
        (Some(100_000), Some(0)),
        "10 -> 1 at QoS 0, publishers leaving at once: {report}"
    );
}

/// A subscriber that stops reading its socket is taken for stuck after
/// `STUCK_READER_AFTER`, and the log then moves past what it had not read.
/// When it reads again, what it lost is counted under its client id (and
/// logged once), and with what it did get adds up to what was published;
/// a subscriber that kept up lost nothing and is not in the metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stuck_subscriber_loses_is_counted_under_its_client_id() {
    // 30 MiB: far more than the stalled socket's buffers (a few MiB on
    // loopback), its outgoing queue and the filter's log (1 MiB) together.
    const MESSAGES: usize = 30_000;
    const PAYLOAD: usize = 1024;
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();

    let stalled = StalledSubscriber::start(port, "stuck-reader", "flood/#", 0);
    let mut keeper = TestClient::connect(port, "keeps-up").await;
    keeper.subscribe("flood/#", QoS::AtMostOnce).await;
    let publisher = TestClient::connect(port, "flood-publisher").await;
    let payload = vec![b'x'; PAYLOAD];
    for _ in 0..MESSAGES {
        publisher
            .publish("flood/data", QoS::AtMostOnce, false, payload.clone())
            .await;
    }
    // Same connection and filter: routed after every message above.
    publisher
        .publish("flood/end", QoS::AtMostOnce, false, "end")
        .await;
    let kept = keeper.collect_until("flood/end").await;
    let lost = broker.lost_messages();
    assert_eq!(
        (kept.len(), lost.of("keeps-up")),
        (MESSAGES, 0),
        "the subscriber that kept up (received, lost): {:?}",
        lost.counts()
    );

    // The loss is found when the stalled reader's cursor is next read,
    // behind the log's start: so it reads again first.
    let received = tokio::task::spawn_blocking(move || stalled.resume_until("flood/end"))
        .await
        .unwrap();
    let lost_by_stuck = lost.of("stuck-reader");
    assert!(
        lost_by_stuck > 0,
        "the stalled reader got {received} of {MESSAGES} and nothing is counted as lost: {:?}",
        lost.counts()
    );
    assert_eq!(
        received as u64 + lost_by_stuck,
        MESSAGES as u64,
        "the stalled reader got {received} and {lost_by_stuck} are counted lost, of {MESSAGES}"
    );
    let text = lost.render();
    assert!(
        text.contains(&format!(
            "hearth_broker_lost_messages_total{{client=\"stuck-reader\"}} {lost_by_stuck}\n"
        )) && !text.contains("keeps-up"),
        "{text}"
    );
    eprintln!(
        "stuck reader: {received} of {MESSAGES} delivered, {lost_by_stuck} counted lost; \
         the reader that kept up: {} delivered",
        kept.len()
    );
}
