//! MQTT over TLS: the broker's `[broker.tls]` listener with a CA made in the test, reached by
//! Debian's mosquitto_pub/sub `--cafile` and by Hearth's own client (`mqtts://` + `ca_file`).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hearth_broker::{BrokerConfig, ListenerKind, RunningBroker, TlsSettings};
use hearth_common::mqtt::{self, MqttSettings};
use hearth_testkit::tls::TestPki;
use hearth_testkit::{Subscriber, broker_config, mosquitto_pub, start_broker};
use rumqttc::{Event, Incoming, QoS};

const WAIT: Duration = Duration::from_secs(5);

fn tls_broker(pki: &TestPki) -> RunningBroker {
    let config = BrokerConfig {
        tls: Some(TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        }),
        ..broker_config()
    };
    start_broker(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_talk_tls_with_the_ca_and_fail_without_it() {
    let pki = TestPki::new("hearth test CA");
    let other = TestPki::new("somebody else's CA");
    let broker = tls_broker(&pki);
    let tls_port = broker.addr(ListenerKind::Tls).unwrap().port();
    let plain_port = broker.mqtt_addr().port();
    let ca = pki.ca.to_str().unwrap();

    // By IP (127.0.0.1 is in the certificate's SANs) and by host name.
    let by_ip = Subscriber::start(tls_port, "secure/#", &["--cafile", ca]);
    let by_name = Subscriber::start(tls_port, "secure/#", &["--cafile", ca, "-h", "localhost"]);
    let plain = Subscriber::start(plain_port, "secure/#", &[]);

    let out = mosquitto_pub(
        tls_port,
        &[
            "--cafile",
            ca,
            "-t",
            "secure/hello",
            "-q",
            "1",
            "-m",
            "over tls",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    by_ip.expect_line("secure/hello over tls", WAIT);
    by_name.expect_line("secure/hello over tls", WAIT);
    plain.expect_line("secure/hello over tls", WAIT);

    // The wrong CA: the handshake fails and nothing is published.
    let out = mosquitto_pub(
        tls_port,
        &[
            "--cafile",
            other.ca.to_str().unwrap(),
            "-h",
            "localhost",
            "-t",
            "secure/forged",
            "-m",
            "x",
        ],
    );
    assert!(
        !out.status.success(),
        "a certificate from another CA was trusted"
    );
    // Plain MQTT to the TLS port is not MQTT to it.
    let out = mosquitto_pub(tls_port, &["-t", "secure/plain", "-m", "x"]);
    assert!(
        !out.status.success(),
        "plain MQTT on the TLS port succeeded"
    );
    // A marker over TLS after both attempts: whatever got through arrived before it.
    let out = mosquitto_pub(
        tls_port,
        &[
            "--cafile",
            ca,
            "-t",
            "secure/marker",
            "-q",
            "1",
            "-m",
            "end",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let before = plain.expect_line("secure/marker end", WAIT);
    assert!(
        before.is_empty(),
        "a forged or plain message was published: {before:?}"
    );
}

/// Connects with Hearth's settings and returns the first event or error.
async fn hearth_connect(settings: &MqttSettings, id: &str) -> Result<rumqttc::AsyncClient, String> {
    let options = settings.options(id, None).map_err(|e| e.to_string())?;
    let (client, mut eventloop) = mqtt::client(options);
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no CONNACK".to_owned()));
    first?;
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_clients_connect_with_the_configured_ca_and_refuse_another() {
    let pki = TestPki::new("hearth test CA");
    let other = TestPki::new("somebody else's CA");
    let broker = tls_broker(&pki);
    let tls_port = broker.addr(ListenerKind::Tls).unwrap().port();
    let watcher = Subscriber::start(broker.mqtt_addr().port(), "hearth/#", &[]);

    for host in ["127.0.0.1", "localhost"] {
        let settings = MqttSettings {
            url: format!("mqtts://{host}:{tls_port}"),
            ca_file: Some(pki.ca.clone()),
            ..MqttSettings::default()
        };
        let client = hearth_connect(&settings, &format!("hub-{host}"))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        client
            .publish("hearth/hub/availability", QoS::AtLeastOnce, false, host)
            .await
            .unwrap();
        watcher.expect_line(&format!("hearth/hub/availability {host}"), WAIT);
    }

    let wrong = MqttSettings {
        url: format!("mqtts://127.0.0.1:{tls_port}"),
        ca_file: Some(other.ca.clone()),
        ..MqttSettings::default()
    };
    let err = hearth_connect(&wrong, "hub-wrong-ca").await.unwrap_err();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "a broker certificate from another CA must be refused, got: {err}"
    );

    // The system roots do not know the test CA either.
    let system = MqttSettings {
        url: format!("mqtts://localhost:{tls_port}"),
        ..MqttSettings::default()
    };
    match hearth_connect(&system, "hub-system-roots").await {
        Ok(_) => panic!("the test CA must not be trusted by the system roots"),
        Err(err) => eprintln!("system roots refuse the test CA: {err}"),
    }

    // Plain mqtt:// to the TLS port does not get in either.
    let plain = MqttSettings {
        url: format!("mqtt://127.0.0.1:{tls_port}"),
        ..MqttSettings::default()
    };
    let result = hearth_connect(&plain, "hub-plain").await;
    assert!(
        result.is_err(),
        "plain MQTT got in on the TLS port: {:?}",
        result.map(|_| "connected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_does_not_block_others() {
    // Long enough that a login stuck behind the idle connections (the bug)
    // would only get in after they are dropped, which the test sees.
    const CONNECT_TIMEOUT_MS: u16 = 5_000;
    let pki = TestPki::new("hearth test CA");
    let config = BrokerConfig {
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        tls: Some(TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        }),
        ..broker_config()
    };
    let broker = start_broker(&config);
    let tls_port = broker.addr(ListenerKind::Tls).unwrap().port();
    // Ten idle TCP connections and one that sends half a ClientHello:
    // with rumqttd's own TLS listener, one of these froze every TLS login.
    let mut idle: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap())
        .collect();
    std::io::Write::write_all(&mut idle[0], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let out = mosquitto_pub(
        tls_port,
        &["--cafile", pki.ca.to_str().unwrap(), "-t", "t", "-m", "x"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logged_in_after = started.elapsed();
    // In while the idle ones were still there: it did not wait for them
    // to be dropped. (No wall-clock limit: a busy machine is only slower.)
    let mut buf = [0u8; 16];
    for (i, conn) in idle.iter_mut().enumerate() {
        conn.set_nonblocking(true).unwrap();
        let read = std::io::Read::read(conn, &mut buf);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "idle connection {i} was already closed ({read:?}) when the login got in,              {logged_in_after:?} after it began: the login waited for it"
        );
        conn.set_nonblocking(false).unwrap();
    }
    eprintln!("TLS login with idle connections open took {logged_in_after:?}");

    // And the idle ones are dropped once connect_timeout_ms has passed
    // (the read timeout only bounds a hang).
    idle[1]
        .set_read_timeout(Some(
            Duration::from_millis(u64::from(CONNECT_TIMEOUT_MS)) * 6,
        ))
        .unwrap();
    let closed = std::io::Read::read(&mut idle[1], &mut buf);
    // Closed is an orderly end (0 bytes) or, when the broker's close races
    // the kernel's, a reset; a timeout means it was never closed.
    assert!(
        matches!(&closed, Ok(0))
            || matches!(&closed, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "an idle TLS connection outlived connect_timeout_ms: read gave {closed:?}"
    );
}

#[test]
fn a_tls_listener_with_no_key_in_its_key_file_does_not_start() {
    let pki = TestPki::new("hearth test CA");
    // The classic mistake: the certificate where the key should be.
    std::fs::copy(&pki.cert, &pki.key).unwrap();
    let config = BrokerConfig {
        tls: Some(TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        }),
        ..broker_config()
    };
    let err = hearth_broker::start(&config).unwrap_err().to_string();
    assert!(err.contains(&pki.key.display().to_string()), "{err}");
}
