//! The embedded broker against real clients over TCP: rumqttc and Debian's mosquitto_pub/sub.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hearth_broker::{BrokerConfig, Password, StartError};
use hearth_testkit::{Subscriber, TestClient, broker_config, mosquitto_pub, start_broker};
use rumqttc::{LastWill, Packet, Publish, QoS};

const WAIT: Duration = Duration::from_secs(5);
/// Largest MQTT packet the WebSocket test client reads or writes.
const MAX_PACKET: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_qos0_and_qos1_between_rumqttc_clients() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut sub = TestClient::connect(port, "sub").await;
    sub.subscribe("t/qos", QoS::AtLeastOnce).await;
    let publisher = TestClient::connect(port, "pub").await;
    publisher
        .publish("t/qos", QoS::AtMostOnce, false, "zero")
        .await;
    publisher
        .publish("t/qos", QoS::AtLeastOnce, false, "one")
        .await;
    let first = sub.recv_on("t/qos", WAIT).await;
    let second = sub.recv_on("t/qos", WAIT).await;
    assert_eq!(&first.payload[..], b"zero");
    assert_eq!(&second.payload[..], b"one");
    assert_eq!(second.qos, QoS::AtLeastOnce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_work_with_qos_0_and_1() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let sub = Subscriber::start(port, "shell/#", &["-q", "1"]);
    for qos in ["0", "1"] {
        let out = mosquitto_pub(
            port,
            &["-t", "shell/hello", "-q", qos, "-m", &format!("qos{qos}")],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sub.expect_line(&format!("shell/hello qos{qos}"), WAIT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_late_subscribers() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let out = mosquitto_pub(port, &["-t", "hearth/button/desk/state", "-r", "-m", "ON"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A rumqttc subscriber that arrives later still gets it...
    let mut late = TestClient::connect(port, "late").await;
    late.subscribe("hearth/button/+/state", QoS::AtLeastOnce)
        .await;
    let retained = late.recv_on("hearth/button/desk/state", WAIT).await;
    assert!(retained.retain, "not marked retained: {retained:?}");
    assert_eq!(&retained.payload[..], b"ON");
    // ...and so does mosquitto_sub.
    let sub = Subscriber::start(port, "hearth/#", &[]);
    sub.expect_line("hearth/button/desk/state ON", WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_is_published_when_a_client_dies() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let sub = Subscriber::start(port, "hearth/node/+/availability", &[]);
    let will = LastWill::new(
        "hearth/node/pi-1/availability",
        "offline",
        QoS::AtLeastOnce,
        true,
    );
    let node = TestClient::connect_with_will(port, "pi-1", will).await;
    node.publish(
        "hearth/node/pi-1/availability",
        QoS::AtLeastOnce,
        true,
        "online",
    )
    .await;
    sub.expect_line("hearth/node/pi-1/availability online", WAIT);
    node.kill();
    sub.expect_line("hearth/node/pi-1/availability offline", WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_and_hash_wildcards_match_as_mqtt_says() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut plus = TestClient::connect(port, "plus").await;
    plus.subscribe("a/+/c", QoS::AtMostOnce).await;
    let mut hash = TestClient::connect(port, "hash").await;
    hash.subscribe("a/#", QoS::AtMostOnce).await;
    // "a/end/c" matches both filters and comes last from the same
    // publisher: whatever else either filter matched arrived before it.
    for topic in ["a/b/c", "a/b/d", "a/x/c/d", "b/b/c", "a/end/c"] {
        let out = mosquitto_pub(port, &["-t", topic, "-m", topic]);
        assert!(out.status.success(), "mosquitto_pub {topic}: {out:?}");
    }
    let topics = |got: Vec<Publish>| got.into_iter().map(|p| p.topic).collect::<Vec<_>>();
    let got_plus = topics(plus.collect_until("a/end/c").await);
    let got_hash = topics(hash.collect_until("a/end/c").await);
    assert_eq!(got_plus, ["a/b/c"]);
    assert_eq!(got_hash, ["a/b/c", "a/b/d", "a/x/c/d"]);
}

fn with_users() -> BrokerConfig {
    BrokerConfig {
        users: BTreeMap::from([("hub".to_owned(), Password::new("s3cret"))]),
        ..broker_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked() {
    let broker = start_broker(&with_users());
    let port = broker.mqtt_addr().port();
    let login = |user: &str, pass: &str| {
        let mut o = TestClient::options(port, &format!("c-{user}-{pass}"));
        o.set_credentials(user, pass);
        o
    };
    if let Err(why) = TestClient::try_connect(login("hub", "s3cret")).await {
        panic!("the right password was refused: {why}");
    }
    for (user, pass) in [("hub", "wrong"), ("nobody", "s3cret")] {
        if let Ok(client) = TestClient::try_connect(login(user, pass)).await {
            panic!("{user}/{pass} was let in: {client:?}");
        }
    }
    if let Ok(client) = TestClient::try_connect(TestClient::options(port, "anon")).await {
        panic!("an anonymous client was let in: {client:?}");
    }

    // The shell experience: mosquitto_pub fails without the password.
    let out = mosquitto_pub(port, &["-t", "x", "-m", "y"]);
    assert!(!out.status.success(), "anonymous mosquitto_pub must fail");
    let out = mosquitto_pub(port, &["-t", "x", "-m", "y", "-u", "hub", "-P", "s3cret"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_refused_when_the_config_says_so() {
    let mut config = with_users();
    config.allow_anonymous = Some(false);
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();
    let out = mosquitto_pub(port, &["-t", "x", "-m", "y"]);
    assert!(
        !out.status.success(),
        "mosquitto_pub got in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_lan_listener_without_users_does_not_start() {
    let config = BrokerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..BrokerConfig::default()
    };
    let err = hearth_broker::start(&config).unwrap_err();
    assert!(matches!(err, StartError::Config(_)), "{err}");
    assert!(err.to_string().contains("allow_anonymous = true"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_and_others_still_served() {
    let config = BrokerConfig {
        max_payload_size: 1024,
        ..broker_config()
    };
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();
    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("big/#", QoS::AtLeastOnce).await;

    let big = "x".repeat(4096);
    let _ = mosquitto_pub(port, &["-t", "big/one", "-q", "1", "-m", &big]);
    // The small message comes after the big one: had the big one been
    // delivered, it would have arrived first.
    let out = mosquitto_pub(port, &["-t", "big/two", "-q", "1", "-m", "small"]);
    assert!(out.status.success(), "{out:?}");
    let before = watcher.collect_until("big/two").await;
    assert!(
        before.is_empty(),
        "an oversized message was delivered: {before:?}"
    );
    assert!(watcher.is_connected(), "the watcher lost its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_come_and_go_and_the_broker_still_serves() {
    let broker = start_broker(&broker_config());
    let port = broker.mqtt_addr().port();
    let mut watcher = TestClient::connect(port, "watcher").await;
    watcher.subscribe("crowd/+", QoS::AtLeastOnce).await;

    let mut tasks = Vec::new();
    for i in 0..500 {
        tasks.push(tokio::spawn(async move {
            let mut c = TestClient::connect(port, &format!("crowd-{i}")).await;
            let topic = format!("crowd/{i}");
            c.subscribe(&topic, QoS::AtMostOnce).await;
            c.publish(&topic, QoS::AtLeastOnce, false, i.to_string())
                .await;
            // Its own message coming back means the broker routed it (to
            // the watcher too) before this client leaves.
            c.recv_on(&topic, WAIT).await;
            c.client.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 500 {
        match watcher.recv(WAIT).await {
            Some(p) => {
                seen.insert(p.topic);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 500, "every crowd client's message arrives");
    let sub = Subscriber::start(port, "after/crowd", &[]);
    let published = mosquitto_pub(port, &["-t", "after/crowd", "-m", "still here"]);
    assert!(
        published.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    sub.expect_line("after/crowd still here", WAIT);
}

#[test]
fn a_port_in_use_fails_fast_and_names_the_port() {
    let first = start_broker(&broker_config());
    let taken = first.mqtt_addr();
    let config = BrokerConfig {
        listen: taken,
        ..BrokerConfig::default()
    };
    let started = Instant::now();
    let err = hearth_broker::start(&config).unwrap_err();
    // Fast means it fails on the bind itself, not after waiting out
    // READY_TIMEOUT for a listener that never came up (StartError::NotReady).
    assert!(
        matches!(&err, StartError::Bind { addr, .. } if *addr == taken),
        "saw {err:?}"
    );
    eprintln!("a taken port was refused after {:?}", started.elapsed());
    let msg = err.to_string();
    assert!(msg.contains(&taken.to_string()), "{msg}");
    assert!(msg.contains("in use"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_listeners_accept_mqtt5_and_websocket_connections() {
    let config = BrokerConfig {
        listen_v5: Some("127.0.0.1:0".parse().unwrap()),
        listen_ws: Some("127.0.0.1:0".parse().unwrap()),
        ..broker_config()
    };
    let broker = start_broker(&config);
    let v5 = broker.addr(hearth_broker::ListenerKind::V5).unwrap();
    let sub = Subscriber::start(broker.mqtt_addr().port(), "v5/#", &[]);
    let out = mosquitto_pub(
        v5.port(),
        &["-V", "mqttv5", "-t", "v5/hello", "-m", "from v5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sub.expect_line("v5/hello from v5", WAIT);
    let ws = broker.addr(hearth_broker::ListenerKind::WebSocket).unwrap();
    // MQTT over WebSocket both ways: a browser dashboard's path in. An open
    // TCP port alone would also pass with a plain MQTT listener there.
    let sub = Subscriber::start(broker.mqtt_addr().port(), "ws/#", &[]);
    let mut client = WsMqtt::connect(ws).await;
    client.subscribe("ws/in/#").await;
    client
        .send(Packet::Publish(Publish::new(
            "ws/out/hello",
            QoS::AtMostOnce,
            "from ws",
        )))
        .await;
    sub.expect_line("ws/out/hello from ws", WAIT);
    let out = mosquitto_pub(
        broker.mqtt_addr().port(),
        &["-t", "ws/in/hello", "-m", "to ws"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match client.recv().await {
        Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_str(), &p.payload[..]),
                ("ws/in/hello", &b"to ws"[..])
            );
        }
        other => panic!("expected the publish over WebSocket, got {other:?}"),
    }
}

/// An MQTT 3.1.1 client over WebSocket: rumqttc's packet codec in binary
/// frames, as browser MQTT libraries send it (subprotocol `mqtt`).
struct WsMqtt {
    ws: async_tungstenite::WebSocketStream<async_tungstenite::tokio::ConnectStream>,
    read: BytesMut,
}

impl WsMqtt {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        use async_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/mqtt").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
        let (ws, response) =
            tokio::time::timeout(WAIT, async_tungstenite::tokio::connect_async(request))
                .await
                .expect("no WebSocket handshake answer")
                .unwrap_or_else(|e| panic!("WebSocket handshake with {addr} failed: {e}"));
        assert_eq!(response.status(), 101, "{response:?}");
        let mut client = Self {
            ws,
            read: BytesMut::new(),
        };
        client
            .send(Packet::Connect(rumqttc::Connect::new("ws-client")))
            .await;
        match client.recv().await {
            Packet::ConnAck(ack) => {
                assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success, "{ack:?}");
            }
            other => panic!("expected a CONNACK over WebSocket, got {other:?}"),
        }
        client
    }

    async fn subscribe(&mut self, filter: &str) {
        let mut subscribe = rumqttc::Subscribe::new(filter, QoS::AtMostOnce);
        subscribe.pkid = 1;
        self.send(Packet::Subscribe(subscribe)).await;
        match self.recv().await {
            Packet::SubAck(ack) => assert_eq!(
                ack.return_codes,
                [rumqttc::SubscribeReasonCode::Success(QoS::AtMostOnce)],
                "{ack:?}"
            ),
            other => panic!("expected a SUBACK over WebSocket, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut bytes = BytesMut::new();
        packet.write(&mut bytes, MAX_PACKET).unwrap();
        self.ws
            .send(Message::Binary(bytes.to_vec()))
            .await
            .unwrap_or_else(|e| panic!("sending {packet:?} over WebSocket: {e}"));
    }

    /// The next MQTT packet, however the broker split it into frames.
    async fn recv(&mut self) -> Packet {
        loop {
            match Packet::read(&mut self.read, MAX_PACKET) {
                Ok(packet) => return packet,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("undecodable MQTT over WebSocket: {e}"),
            }
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("nothing arrived over WebSocket")
                .expect("the broker closed the WebSocket")
                .unwrap_or_else(|e| panic!("WebSocket read failed: {e}"));
            match frame {
                Message::Binary(data) => self.read.extend_from_slice(&data),
                Message::Close(close) => panic!("the broker closed the WebSocket: {close:?}"),
                _ => {}
            }
        }
    }
}
