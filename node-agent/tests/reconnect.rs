//! Broker restart: the agent reconnects, resubscribes and republishes what the broker forgot,
//! also while commands keep coming.
//!
//! rumqttd cannot be stopped inside a process, so the broker here is the
//! `hearth-broker` binary, killed and restarted on the same port.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{InProcessAgent, line, node_toml, topic, write};
use hearth_node_agent::gpio::Level;
use hearth_testkit::{BrokerProcess, HANG_LIMIT, Subscriber, TestClient, mosquitto_pub};

/// Reconnect backoff tops out at 10 s; allow one full pause and change.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

fn publish(port: u16, rest: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-t", &topic(rest), "-m", payload]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_states_are_republished_and_commands_obeyed() {
    let broker = BrokerProcess::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, "")));
    let sub = Subscriber::start(port, &topic("#"), &[]);
    sub.expect_line(&line("availability", "online"), common::WAIT);
    publish(port, "light/red/set", "ON");
    sub.expect_line(&line("light/red/state", "ON"), common::WAIT);
    drop(sub);

    // A crash: retained messages and subscriptions are gone with it.
    let broker = broker.restart();

    let sub = Subscriber::start(port, &topic("#"), &[]);
    let deadline = Instant::now() + RECONNECT_WAIT;
    let mut seen = Vec::new();
    let wanted = [
        line("availability", "online"),
        line("light/red/state", "ON"),
        line("light/green/state", "OFF"),
        line("sequence/traffic/state", "OFF"),
    ];
    while !wanted.iter().all(|w| seen.contains(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_line(left) {
            Some(l) => seen.push(l),
            None => panic!("not republished within {RECONNECT_WAIT:?}: {seen:?}"),
        }
    }
    // The subscription came back too: a new command is obeyed.
    publish(port, "light/green/set", "ON");
    sub.expect_line(&line("light/green/state", "ON"), common::WAIT);
    assert_eq!(agent.level(22), Some(Level::High));

    agent.stop().await;
    drop(broker);
}

/// Gap between two commands of the load: about 50 a second.
const COMMAND_GAP: Duration = Duration::from_millis(20);

/// What became of the commands a [`Toggler`] sent, by when each was started
/// (so an acknowledgement counted as "after" some moment surely came after it).
#[derive(Debug, Default)]
struct Tally {
    /// `mosquitto_pub -q 1` exited 0: the broker acknowledged the command.
    acked: Vec<Instant>,
    /// It could not connect or got no PUBACK: the user saw an error.
    failed: Vec<Instant>,
}

impl Tally {
    fn acked_between(&self, from: Instant, to: Instant) -> usize {
        self.acked.iter().filter(|t| **t > from && **t < to).count()
    }
}

/// A person (or a script) sending `TOGGLE` to the red light about 50 times
/// a second, one `mosquitto_pub -q 1` each, until stopped.
struct Toggler {
    stop: Arc<AtomicBool>,
    /// Commands acknowledged and failed so far, for the test to wait on.
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: JoinHandle<Tally>,
}

impl Toggler {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (acked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (acks, failures) = (acked.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let mut tally = Tally::default();
            while !flag.load(Relaxed) {
                let started = Instant::now();
                let out = mosquitto_pub(
                    port,
                    &["-q", "1", "-t", &topic("light/red/set"), "-m", "TOGGLE"],
                );
                let (list, count) = if out.status.success() {
                    (&mut tally.acked, &acks)
                } else {
                    (&mut tally.failed, &failures)
                };
                list.push(started);
                count.fetch_add(1, Relaxed);
                std::thread::sleep(COMMAND_GAP);
            }
            tally
        });
        Self {
            stop,
            acked,
            failed,
            thread,
        }
    }

    /// Waits until `count` (acked or failed) reaches `at_least`; panics
    /// after [`HANG_LIMIT`] saying how far it got.
    fn wait_count(count: &AtomicUsize, at_least: usize, what: &str) {
        let deadline = Instant::now() + HANG_LIMIT;
        while count.load(Relaxed) < at_least {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {at_least} within {HANG_LIMIT:?}",
                count.load(Relaxed)
            );
            // The counter has no waker; it moves every COMMAND_GAP.
            std::thread::sleep(COMMAND_GAP);
        }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap()
    }
}

/// The `light/red/state` payloads among `lines`, in order.
fn red_states(lines: &[String]) -> Vec<&str> {
    let prefix = format!("{} ", topic("light/red/state"));
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect()
}

/// The broker is killed and restarted while commands arrive at ~50/s.
///
/// What a command sent in that window means: QoS 0 or 1, a command the
/// broker acknowledged just before it died, or one it accepted after its
/// restart but before the agent had subscribed again, is dropped by the
/// broker (rumqttd keeps no sessions across a restart, and a message with
/// no subscriber goes nowhere); one sent while it was down fails at the
/// sender. Neither reaches the agent, so neither can be its loss. What the
/// agent owns, and this test holds it to: the state it reports (retained,
/// and its last confirmation) is always its pin's real level, and once it
/// is back every acknowledged command is obeyed, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_a_stream_of_commands_leaves_state_and_pins_agreeing() {
    let mut broker = BrokerProcess::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let agent = InProcessAgent::start(&write(dir.path(), "node.toml", &node_toml(port, "")));
    common::wait_online(port);

    let before = Subscriber::start(port, &topic("light/red/state"), &["-R"]);
    let started_at = Instant::now();
    let toggler = Toggler::start(port);
    // The stream runs until the agent has obeyed more than ten commands.
    let mut obeyed = Vec::new();
    while obeyed.len() <= 10 {
        match before.next_line(HANG_LIMIT) {
            Some(l) => obeyed.push(l),
            None => panic!("the agent obeyed only {obeyed:?} within {HANG_LIMIT:?}"),
        }
    }
    let obeyed_before = red_states(&obeyed).len();

    broker.kill();
    let killed_at = Instant::now();
    drop(before);
    // Down until the stream has run into the outage: a command failed.
    let failed_so_far = toggler.failed.load(Relaxed);
    Toggler::wait_count(
        &toggler.failed,
        failed_so_far + 1,
        "commands failed while down",
    );
    let broker = broker.restart();
    let restarted_at = Instant::now();

    let after = Subscriber::start(port, &topic("#"), &[]);
    after.expect_line(&line("availability", "online"), RECONNECT_WAIT);
    // The agent subscribes before it says `online`, on one connection, so
    // every command acknowledged from here on has a subscriber.
    let back_at = Instant::now();
    let back_after = back_at - restarted_at;
    // Keep the stream going until more than ten commands were acknowledged
    // with the agent back, then stop and let it settle.
    let acked_so_far = toggler.acked.load(Relaxed);
    Toggler::wait_count(
        &toggler.acked,
        acked_so_far + 12,
        "commands acked once back",
    );
    let tally = toggler.stop();
    let stopped_at = Instant::now();
    // Every command the broker took before the marker is confirmed before it.
    let seen = common::until_refused(&after, port);
    let confirmed = red_states(&seen);

    let acked_before = tally.acked_between(started_at, killed_at);
    let failed_down = tally
        .failed
        .iter()
        .filter(|t| **t > killed_at && **t < restarted_at)
        .count();
    let acked_after = tally.acked_between(restarted_at, stopped_at);
    let acked_once_back = tally.acked_between(back_at, stopped_at);
    // The first state line is the agent's republish (or the retained copy of it).
    let obeyed_after = confirmed.len().saturating_sub(1);
    assert!(
        obeyed_before > 10,
        "the agent obeyed {obeyed_before} commands before the kill"
    );
    assert!(
        failed_down > 0,
        "the stream really ran into the outage: {tally:?}"
    );
    assert!(
        acked_once_back > 10 && obeyed_after >= acked_once_back,
        "every command acknowledged once the agent was back is obeyed: {acked_once_back} \
         acknowledged, {obeyed_after} obeyed: {seen:?}"
    );

    // The truth, three ways: the pin, the agent's last word, the retained state.
    let level = agent.level(17).unwrap();
    let pin_state = if level == Level::High { "ON" } else { "OFF" };
    assert_eq!(
        confirmed.last().copied(),
        Some(pin_state),
        "the agent's last confirmation matches its pin"
    );
    assert_eq!(
        TestClient::retained(port, &topic("light/red/state")).await,
        [(topic("light/red/state"), pin_state.to_owned())],
        "the retained state matches the pin"
    );

    // Steady again: every acknowledged command is obeyed, once, in order.
    const EXACT: usize = 40;
    // `-R`: the retained state is not a confirmation of these commands.
    let sub = Subscriber::start(port, &topic("#"), &["-R"]);
    for _ in 0..EXACT {
        publish_qos1(port, "light/red/set", "TOGGLE");
    }
    let mut expected = Vec::new();
    let mut state = pin_state;
    for _ in 0..EXACT {
        state = if state == "ON" { "OFF" } else { "ON" };
        expected.push(line("light/red/state", state));
    }
    // The marker after the toggles: each one's confirmation, and any
    // extra, comes before it.
    // (The filter covers the commands too: only the red light's states count.)
    let red = format!("{} ", topic("light/red/state"));
    let got: Vec<String> = common::until_refused(&sub, port)
        .into_iter()
        .filter(|l| l.starts_with(&red))
        .collect();
    assert_eq!(got, expected, "{EXACT} toggles, {EXACT} flips");
    assert_eq!(
        agent.level(17),
        Some(if state == "ON" {
            Level::High
        } else {
            Level::Low
        })
    );

    println!(
        "{acked_before} commands acknowledged before the kill ({obeyed_before} obeyed), \
         {failed_down} refused while the broker was down, {acked_after} acknowledged after the \
         restart and {obeyed_after} obeyed: {} dropped by the broker before the agent had \
         subscribed again (seen back {back_after:.1?} after the restart)",
        acked_after.saturating_sub(obeyed_after),
    );
    agent.stop().await;
    drop(broker);
}

fn publish_qos1(port: u16, rest: &str, payload: &str) {
    let out = mosquitto_pub(port, &["-q", "1", "-t", &topic(rest), "-m", payload]);
    assert!(out.status.success(), "{out:?}");
}
