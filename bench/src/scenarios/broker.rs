//! `hearth-bench broker`: N publishers -> M subscribers over T topics against any MQTT 3.1.1 broker.
//!
//! Phases, each bounded by the run's deadline (`--timeout`):
//! 1. every subscriber connects and subscribes to every topic, and says so
//!    only after its SUBACKs, so no early message can be missed;
//! 2. every publisher connects (connect time is not load);
//! 3. publishers send their probes while subscribers count them;
//! 4. once all publishers are done (QoS 1: every PUBACK in; QoS 0: every
//!    publish written to the socket), a subscriber that has everything, or has
//!    heard nothing for [`DRAIN_IDLE`], stops; what never came is lost.
//!
//! Latency is subscriber receive time minus the send time in the probe, both
//! read from one monotonic clock in this process. The send time is taken just
//! before the publish is handed to rumqttc, so at full speed it includes the
//! wait in the client's own queue: the delay an application would see.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, QoS};
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::cli::BrokerArgs;
use crate::client::{self, BrokerUrl, ClientFactory};
use crate::payload::Probe;
use crate::report;
use crate::stats::{DeliveryCounts, DeliveryTracker, LatencySummary, Seen};

/// How long a subscriber keeps waiting, once every publisher is done, after
/// the last message it received. Long enough for a broker to flush a deep
/// queue that is still moving; a queue that stalls this long lost its tail.
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// How often a subscriber looks up whether publishing has finished.
const PHASE_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Latency samples preallocated per subscriber; more grow the vector.
const LATENCY_PREALLOC: usize = 1 << 20;
/// Most deliveries one run may expect (subscribers x publishers x messages).
/// Every delivery keeps an 8-byte latency sample until the report, so this
/// caps that memory at ~1.6 GB instead of letting a typo exhaust the machine.
pub const MAX_EXPECTED_DELIVERIES: u64 = 200_000_000;

/// The run's parameters as reported (no password).
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub url: String,
    pub username: Option<String>,
    pub publishers: u32,
    pub subscribers: u32,
    pub messages_per_publisher: u64,
    pub qos: u8,
    pub payload_size: u32,
    /// Messages per second per publisher; 0 = unthrottled.
    pub rate_per_publisher: u32,
    pub topics: u32,
    pub timeout_secs: u64,
    /// Prefix of this run's topics and client ids.
    pub run_id: String,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerReport {
    pub scenario: &'static str,
    pub config: RunConfig,
    /// Publishes handed to the client library.
    pub published: u64,
    /// Publishes the broker acknowledged (QoS 1) or that were written to the
    /// socket (QoS 0).
    pub acknowledged: u64,
    /// First publish to last acknowledgement.
    pub publish_secs: f64,
    pub published_per_sec: f64,
    #[serde(flatten)]
    pub deliveries: DeliveryCounts,
    /// First publish to last delivery at any subscriber.
    pub elapsed_secs: f64,
    /// `delivered / elapsed_secs`, all subscribers together.
    pub delivered_per_sec: f64,
    /// End-to-end latency of first copies (duplicates excluded).
    pub latency: LatencySummary,
    /// The deadline cut the run short; counts are what arrived before it.
    pub timed_out: bool,
    pub errors: Vec<String>,
}

/// What every task of one run shares.
#[derive(Debug)]
struct Plan {
    url: BrokerUrl,
    topics: Vec<String>,
    qos: QoS,
    payload_size: usize,
    publishers: u32,
    messages: u64,
    rate: u32,
    /// Zero of every timestamp in the probes.
    epoch: Instant,
    deadline: Instant,
}

impl Plan {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Runs the scenario; errors only when it could not start (bad flags,
/// refused target, broker unreachable). Once running it always returns a
/// report, even if the deadline cut it short.
pub async fn run(args: &BrokerArgs) -> anyhow::Result<BrokerReport> {
    let url = BrokerUrl::parse(&args.connect.url)?;
    client::guard_target(&url, args.connect.allow_remote)?;
    check_size(args)?;
    let run_id = client::new_run_id();
    let topics: Vec<String> = (0..args.topics)
        .map(|i| format!("hearth-bench/{run_id}/{i}"))
        .collect();
    let longest_topic = topics.iter().map(String::len).max().unwrap_or_default();
    let factory = ClientFactory::new(
        url.clone(),
        args.connect.username.clone(),
        args.connect.password.clone(),
        longest_topic + args.payload_size as usize,
        run_id.clone(),
    )?;
    let epoch = Instant::now();
    let plan = Arc::new(Plan {
        url: url.clone(),
        topics,
        qos: if args.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        },
        payload_size: args.payload_size as usize,
        publishers: args.publishers,
        messages: args.messages,
        rate: args.rate,
        epoch,
        deadline: epoch + Duration::from_secs(args.timeout),
    });
    let config = RunConfig {
        url: url.to_string(),
        username: args.connect.username.clone(),
        publishers: args.publishers,
        subscribers: args.subscribers,
        messages_per_publisher: args.messages,
        qos: args.qos,
        payload_size: args.payload_size,
        rate_per_publisher: args.rate,
        topics: args.topics,
        timeout_secs: args.timeout,
        run_id,
    };

    // Phase 1: subscribers first, so that no probe is published before
    // every subscription is in place.
    let (finished_tx, finished_rx) = watch::channel(false);
    let mut subscribers = Vec::new();
    let mut ready = Vec::new();
    for index in 0..args.subscribers {
        let (client, eventloop) = factory.build('s', index);
        let (ready_tx, ready_rx) = oneshot::channel();
        subscribers.push(tokio::spawn(subscriber(
            client,
            eventloop,
            plan.clone(),
            ready_tx,
            finished_rx.clone(),
        )));
        ready.push(ready_rx);
    }
    for ready_rx in ready {
        let outcome = ready_rx
            .await
            .unwrap_or_else(|_| Err(anyhow!("a subscriber task ended before subscribing")));
        if let Err(e) = outcome {
            abort_all(&subscribers);
            return Err(e.context("subscribers could not subscribe"));
        }
    }

    // Phase 2: publishers connect before the clock of the load starts.
    let connecting: Vec<_> = (0..args.publishers)
        .map(|index| {
            let (client, mut eventloop) = factory.build('p', index);
            let plan = plan.clone();
            tokio::spawn(async move {
                client::wait_connected(&mut eventloop, &plan.url, plan.deadline).await?;
                anyhow::Ok((client, eventloop))
            })
        })
        .collect();
    let mut connected = Vec::new();
    let mut connect_error = None;
    for handle in connecting {
        match handle.await {
            Ok(Ok(pair)) => connected.push(pair),
            Ok(Err(e)) => connect_error = connect_error.or(Some(e)),
            Err(e) => connect_error = connect_error.or(Some(anyhow!("publisher task: {e}"))),
        }
    }
    if let Some(e) = connect_error {
        abort_all(&subscribers);
        return Err(e.context("publishers could not connect"));
    }

    // Phase 3: load.
    let start = Instant::now();
    let publishers: Vec<_> = connected
        .into_iter()
        .zip(0u32..)
        .map(|((client, eventloop), index)| {
            tokio::spawn(publisher(index, client, eventloop, plan.clone(), start))
        })
        .collect();
    let mut errors = Vec::new();
    let mut timed_out = false;
    let mut pubs = Vec::new();
    for handle in publishers {
        match handle.await {
            Ok(outcome) => pubs.push(outcome),
            Err(e) => errors.push(format!("publisher task failed: {e}")),
        }
    }
    // Phase 4: subscribers drain and stop.
    finished_tx.send_replace(true);
    let mut subs = Vec::new();
    for handle in subscribers {
        match handle.await {
            Ok(outcome) => subs.push(outcome),
            Err(e) => errors.push(format!("subscriber task failed: {e}")),
        }
    }

    let mut published = 0;
    let mut acknowledged = 0;
    let mut first_sent_ns = None::<u64>;
    let mut last_acked_ns = None::<u64>;
    for p in &pubs {
        published += p.sent;
        acknowledged += p.acked;
        first_sent_ns = min_opt(first_sent_ns, p.first_sent_ns);
        last_acked_ns = max_opt(last_acked_ns, p.last_acked_ns);
        timed_out |= p.timed_out;
        errors.extend(p.error.clone());
    }
    let lost_subscriber = DeliveryTracker::new(args.publishers, args.messages).counts();
    // A subscriber whose task died still counts: everything it expected is lost.
    let mut deliveries: DeliveryCounts = (subs.len()..args.subscribers as usize)
        .map(|_| lost_subscriber)
        .sum();
    let mut samples = Vec::new();
    let mut last_delivery_ns = None::<u64>;
    for s in &mut subs {
        deliveries = deliveries + s.tracker.counts();
        samples.append(&mut s.latencies);
        last_delivery_ns = max_opt(last_delivery_ns, s.last_delivery_ns);
        timed_out |= s.timed_out;
        errors.extend(s.error.clone());
    }
    let span_secs = |end: Option<u64>| match (first_sent_ns, end) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)).as_secs_f64(),
        _ => 0.0,
    };
    let publish_secs = span_secs(last_acked_ns);
    let elapsed_secs = span_secs(last_delivery_ns);
    Ok(BrokerReport {
        scenario: "broker",
        config,
        published,
        acknowledged,
        publish_secs,
        published_per_sec: report::per_sec(acknowledged, publish_secs),
        deliveries,
        elapsed_secs,
        delivered_per_sec: report::per_sec(deliveries.delivered, elapsed_secs),
        latency: LatencySummary::from_samples(&mut samples),
        timed_out,
        errors,
    })
}

/// Refuses runs whose per-delivery bookkeeping would not fit in memory.
fn check_size(args: &BrokerArgs) -> anyhow::Result<()> {
    let expected = u64::from(args.subscribers)
        .saturating_mul(u64::from(args.publishers))
        .saturating_mul(args.messages);
    if expected > MAX_EXPECTED_DELIVERIES {
        bail!(
            "{} subscribers x {} publishers x {} messages = {expected} deliveries; \
             at most {MAX_EXPECTED_DELIVERIES} are tracked per run",
            args.subscribers,
            args.publishers,
            args.messages
        );
    }
    Ok(())
}

fn abort_all<T>(handles: &[JoinHandle<T>]) {
    for h in handles {
        h.abort();
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.max(b)
}

#[derive(Debug, Default)]
struct PublisherOutcome {
    sent: u64,
    acked: u64,
    first_sent_ns: Option<u64>,
    last_acked_ns: Option<u64>,
    timed_out: bool,
    error: Option<String>,
}

/// One publisher: a send loop feeding rumqttc's queue and a driver polling
/// its event loop, in one task so neither waits for a thread hop.
async fn publisher(
    index: u32,
    client: AsyncClient,
    mut eventloop: EventLoop,
    plan: Arc<Plan>,
    start: Instant,
) -> PublisherOutcome {
    let mut outcome = PublisherOutcome::default();
    let drive = client::send_while_driving(
        send_all(index, &client, &plan, start, &mut outcome),
        &mut eventloop,
        plan.qos,
        plan.messages,
        plan.deadline,
        || plan.now_ns(),
    )
    .await;
    outcome.acked = drive.acked;
    outcome.last_acked_ns = drive.last_acked_ns;
    match drive.end {
        client::DriveEnd::Done => {}
        client::DriveEnd::TimedOut => outcome.timed_out = true,
        client::DriveEnd::Failed(e) => outcome.error = Some(format!("publisher {index}: {e}")),
    }
    client::disconnect(&client, &mut eventloop, plan.deadline).await;
    outcome
}

/// Hands every probe to rumqttc, paced by `--rate` when set.
async fn send_all(
    index: u32,
    client: &AsyncClient,
    plan: &Plan,
    start: Instant,
    outcome: &mut PublisherOutcome,
) {
    for seq in 0..plan.messages {
        if plan.rate > 0 {
            let due = client::due(start, seq, plan.rate);
            if due >= plan.deadline {
                outcome.timed_out = true;
                return;
            }
            tokio::time::sleep_until(due).await;
        }
        let sent_ns = plan.now_ns();
        let payload = Probe {
            publisher: index,
            seq,
            sent_ns,
        }
        .encode(plan.payload_size);
        let topic = &plan.topics[(seq % plan.topics.len() as u64) as usize];
        match timeout_at(
            plan.deadline,
            client.publish(topic.as_str(), plan.qos, false, payload),
        )
        .await
        {
            Ok(Ok(())) => {
                outcome.sent += 1;
                outcome.first_sent_ns.get_or_insert(sent_ns);
            }
            // The event loop is gone; the driver reports why.
            Ok(Err(_)) => return,
            Err(_) => {
                outcome.timed_out = true;
                return;
            }
        }
    }
}

#[derive(Debug)]
struct SubscriberOutcome {
    tracker: DeliveryTracker,
    latencies: Vec<u64>,
    last_delivery_ns: Option<u64>,
    timed_out: bool,
    error: Option<String>,
}

/// One subscriber: subscribe, report ready, then count until complete,
/// drained, failed or out of time.
async fn subscriber(
    client: AsyncClient,
    mut eventloop: EventLoop,
    plan: Arc<Plan>,
    ready: oneshot::Sender<anyhow::Result<()>>,
    finished: watch::Receiver<bool>,
) -> SubscriberOutcome {
    let mut outcome = SubscriberOutcome {
        tracker: DeliveryTracker::new(plan.publishers, plan.messages),
        latencies: Vec::new(),
        last_delivery_ns: None,
        timed_out: false,
        error: None,
    };
    if let Err(e) = subscribe(&client, &mut eventloop, &plan).await {
        outcome.error = Some(format!("{e:#}"));
        // The orchestrator aborts the run on this error; if it is already
        // gone there is nobody left to tell.
        let _ = ready.send(Err(e));
        return outcome;
    }
    let expected = outcome.tracker.counts().expected;
    outcome.latencies = Vec::with_capacity(
        usize::try_from(expected)
            .unwrap_or(usize::MAX)
            .min(LATENCY_PREALLOC),
    );
    let _ = ready.send(Ok(()));

    // Idle time counts from the later of the last delivery and the moment
    // this subscriber learned that publishing is over.
    let mut last_activity = Instant::now();
    let mut draining = false;
    loop {
        if outcome.tracker.complete() {
            break;
        }
        let now = Instant::now();
        if !draining && *finished.borrow() {
            draining = true;
            last_activity = now;
        }
        let wake = if draining {
            last_activity + DRAIN_IDLE
        } else {
            now + PHASE_CHECK_INTERVAL
        }
        .min(plan.deadline);
        if now >= plan.deadline {
            outcome.timed_out = true;
            break;
        }
        if draining && now >= wake {
            break; // idle: the rest is lost
        }
        let event = match timeout_at(wake, eventloop.poll()).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                outcome.error = Some(format!("subscriber connection failed: {e}"));
                break;
            }
            Ok(Ok(event)) => event,
        };
        if let Event::Incoming(Incoming::Publish(publish)) = event {
            let received_ns = plan.now_ns();
            last_activity = Instant::now();
            match Probe::decode(&publish.payload) {
                Ok(probe) => match outcome.tracker.record(probe.publisher, probe.seq) {
                    Seen::New => {
                        outcome
                            .latencies
                            .push(received_ns.saturating_sub(probe.sent_ns));
                        outcome.last_delivery_ns = Some(received_ns);
                    }
                    Seen::Duplicate => outcome.last_delivery_ns = Some(received_ns),
                    Seen::Unexpected => {}
                },
                Err(_) => outcome.tracker.record_foreign(),
            }
        }
    }
    client::disconnect(&client, &mut eventloop, plan.deadline).await;
    outcome
}

/// Connects and subscribes to every topic, returning once all SUBACKs
/// granted the subscriptions.
async fn subscribe(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    plan: &Plan,
) -> anyhow::Result<()> {
    client::wait_connected(eventloop, &plan.url, plan.deadline).await?;
    client::subscribe_all(client, eventloop, &plan.topics, plan.qos, plan.deadline).await
}

impl fmt::Display for BrokerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let d = &self.deliveries;
        let rate = match c.rate_per_publisher {
            0 => "max".to_owned(),
            r => format!("{r}/s"),
        };
        writeln!(
            f,
            "hearth-bench broker  {url}  {p} pub -> {s} sub, {m} msgs/pub, QoS {q}, {b} B payload, {t} topic(s), rate {rate}, timeout {to} s",
            url = c.url,
            p = c.publishers,
            s = c.subscribers,
            m = c.messages_per_publisher,
            q = c.qos,
            b = c.payload_size,
            t = c.topics,
            to = c.timeout_secs,
        )?;
        writeln!(
            f,
            "  delivered   {} of {} in {:.3} s = {}",
            d.delivered,
            d.expected,
            self.elapsed_secs,
            report::rate(self.delivered_per_sec)
        )?;
        writeln!(
            f,
            "  published   {} ({} {}) in {:.3} s = {}",
            self.published,
            self.acknowledged,
            if c.qos == 0 { "written" } else { "acked" },
            self.publish_secs,
            report::rate(self.published_per_sec)
        )?;
        let l = &self.latency;
        writeln!(
            f,
            "  latency     p50 {}  p99 {}  max {}  (mean {}, {} samples)",
            report::duration_ns(l.p50_ns),
            report::duration_ns(l.p99_ns),
            report::duration_ns(l.max_ns),
            report::duration_ns(l.mean_ns),
            l.count
        )?;
        writeln!(
            f,
            "  lost        {}\n  duplicated  {}",
            d.lost, d.duplicated
        )?;
        if d.unexpected > 0 {
            writeln!(
                f,
                "  unexpected  {} (foreign traffic on the run's topics)",
                d.unexpected
            )?;
        }
        if self.timed_out {
            writeln!(
                f,
                "  TIMED OUT after {} s: counts are partial",
                c.timeout_secs
            )?;
        }
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> BrokerArgs {
        use clap::Parser;
        let argv = ["hearth-bench", "broker"].iter().chain(argv).copied();
        match crate::cli::Cli::try_parse_from(argv)
            .expect("valid test arguments")
            .command
        {
            crate::cli::Command::Broker(args) => args,
            crate::cli::Command::Buttons(_) => panic!("not a broker command line"),
        }
    }

    #[test]
    fn refuses_runs_too_big_to_track() {
        assert!(check_size(&args(&["--subscribers", "10", "--publishers", "10"])).is_ok());
        let err = check_size(&args(&[
            "--subscribers",
            "100",
            "--publishers",
            "100",
            "--messages",
            "1000000",
        ]))
        .expect_err("10^10 deliveries");
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[tokio::test]
    async fn refuses_non_loopback_brokers_before_connecting() {
        // 0.0.0.0 is not loopback to the guard, yet Linux routes a connect to
        // it to this machine: if the guard ever regressed, this test would
        // fail on "connection refused" without sending a packet elsewhere.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("ephemeral port")
            .port();
        let url = format!("mqtt://0.0.0.0:{port}");
        let err = run(&args(&["--url", &url, "--timeout", "5"]))
            .await
            .expect_err("not loopback and no --allow-remote");
        assert!(err.to_string().contains("--allow-remote"), "{err:#}");
    }

    #[test]
    fn option_extremes_ignore_missing_values() {
        assert_eq!(min_opt(None, Some(3)), Some(3));
        assert_eq!(min_opt(Some(2), Some(3)), Some(2));
        assert_eq!(max_opt(Some(2), None), Some(2));
        assert_eq!(max_opt(Some(2), Some(3)), Some(3));
        assert_eq!(min_opt(None, None), None);
    }
}
