//! `hearth-bench buttons`: press-to-command latency through a broker and the Hearth hub.
//!
//! Phases, each bounded by the run's deadline (`--timeout`):
//! 1. with `--hub-http`, the hub's `/readyz` must answer 200 and `/metrics`
//!    is read, so the final counts are deltas of this run only;
//! 2. the "light" client subscribes to `<prefix>/node/<node>/light/+/set`
//!    and waits for its SUBACK, so no command can be missed;
//! 3. the presser publishes `--presses` presses at QoS 1, paced by `--rate`,
//!    round-robin over buttons `b0..b<B-1>`;
//! 4. the light matches each command to its press (see
//!    [`PressLedger`]) until every press is answered or `--press-timeout`
//!    passed since the last press was sent;
//! 5. with `--hub-http`, `/metrics` is polled (at most `--press-timeout`)
//!    until the hub has counted every acknowledged press.
//!
//! Latency is the light's receive time minus the presser's send time, both
//! from one monotonic clock in this process, taken just before the press is
//! handed to rumqttc: broker in, hub, broker out, as a person would see it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, QoS};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};

use crate::cli::ButtonsArgs;
use crate::client::{self, BrokerUrl, ClientFactory};
use crate::http::{self, HttpUrl};
use crate::hub;
use crate::report;
use crate::stats::{Answer, LatencySummary, PressLedger};

/// How often the light looks up whether pressing has finished.
const PHASE_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How often `/metrics` is polled while waiting for the hub to catch up.
const METRICS_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest one HTTP request to the hub may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes a press payload may take beyond its topic: the JSON with a run id
/// and a 20-digit sequence number is well under this.
const PRESS_PAYLOAD_MAX: usize = 128;
/// Send time of a press not sent yet.
const UNSENT: u64 = u64::MAX;

/// Prometheus series the hub check reads.
const SERIES_PRESSES: &str = "hearth_messages_in_total{kind=\"button_press\"}";
const SERIES_DUPLICATES: &str = "hearth_messages_in_total{kind=\"duplicate\"}";
const SERIES_INVALID: &str = "hearth_messages_in_total{kind=\"invalid\"}";
const SERIES_DB_COUNT: &str = "hearth_db_write_seconds_count";
const SERIES_DB_SUM: &str = "hearth_db_write_seconds_sum";

/// The run's parameters as reported (no password).
#[derive(Debug, Clone, Serialize)]
pub struct ButtonsConfig {
    pub url: String,
    pub username: Option<String>,
    pub presses: u64,
    /// Presses per second in total; 0 = as fast as acknowledged.
    pub rate: u32,
    pub buttons: u32,
    pub node: String,
    pub prefix: String,
    pub press_timeout_secs: u64,
    pub timeout_secs: u64,
    pub hub_http: Option<String>,
    /// Part of every press id and client id of this run.
    pub run_id: String,
}

/// What the hub's `/metrics` said about this run (deltas over the run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HubCheck {
    /// Presses the hub counted (`hearth_messages_in_total{kind="button_press"}`).
    /// The hub acknowledges a press to the broker only after committing it.
    pub presses: u64,
    /// Presses the hub dropped as redeliveries of an id it already had.
    pub duplicates: u64,
    /// Messages the hub rejected.
    pub invalid: u64,
    /// Database transactions committed (one per batch of messages).
    pub db_commits: u64,
    /// Mean time of one commit, in microseconds.
    pub db_commit_mean_us: f64,
    /// Every press the broker acknowledged was counted by the hub.
    pub complete: bool,
    pub error: Option<String>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ButtonsReport {
    pub scenario: &'static str,
    pub config: ButtonsConfig,
    /// Presses handed to the client library.
    pub sent: u64,
    /// Presses the broker acknowledged (PUBACK).
    pub acked: u64,
    /// First press sent to last PUBACK.
    pub press_secs: f64,
    /// `acked / press_secs`: the press rate achieved.
    pub presses_per_sec: f64,
    /// Commands matched to a press.
    pub commands: u64,
    /// Commands for no outstanding press (redelivered or foreign).
    pub extra_commands: u64,
    /// Commands that came, but more than `--press-timeout` after their press.
    pub late: u64,
    /// Sent presses without a command within `--press-timeout` (late included).
    pub lost: u64,
    /// First press sent to last command received.
    pub elapsed_secs: f64,
    /// `commands / elapsed_secs`.
    pub commands_per_sec: f64,
    /// Press-to-command latency of every matched command.
    pub latency: LatencySummary,
    pub hub: Option<HubCheck>,
    /// The deadline cut the run short; counts are what arrived before it.
    pub timed_out: bool,
    pub errors: Vec<String>,
}

/// The rules file text for these options (`--write-rules`).
pub fn rules_for(args: &ButtonsArgs) -> String {
    match args.automations {
        Some(total) => hub::automations_toml(args.buttons, total, &args.node, &args.prefix),
        None => hub::rules_toml(args.buttons, &args.node, &args.prefix),
    }
}

/// What every task of one run shares.
#[derive(Debug)]
struct Plan {
    prefix: String,
    node: String,
    presses: u64,
    buttons: u32,
    rate: u32,
    press_timeout: Duration,
    run_id: String,
    /// Send time of each press (ns since `epoch`), [`UNSENT`] until sent.
    sent_ns: Vec<AtomicU64>,
    epoch: Instant,
    deadline: Instant,
}

impl Plan {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Runs the scenario; errors only when it could not start (bad flags,
/// refused target, hub not ready, broker unreachable). Once running it
/// always returns a report, even if the deadline cut it short.
pub async fn run(args: &ButtonsArgs) -> anyhow::Result<ButtonsReport> {
    let url = BrokerUrl::parse(&args.connect.url)?;
    client::guard_target(&url, args.connect.allow_remote)?;
    let hub_url = match &args.hub_http {
        Some(raw) => {
            let parsed = HttpUrl::parse(raw)?;
            if !parsed.is_loopback() && !args.connect.allow_remote {
                bail!(
                    "refusing to poll {parsed}: only loopback hosts are allowed without --allow-remote"
                );
            }
            Some(parsed)
        }
        None => None,
    };
    let run_id = client::new_run_id();
    let longest_topic = hub::press_topic(&args.prefix, args.buttons)
        .len()
        .max(hub::command_filter(&args.prefix, &args.node).len() + 16);
    let factory = ClientFactory::new(
        url.clone(),
        args.connect.username.clone(),
        args.connect.password.clone(),
        longest_topic + PRESS_PAYLOAD_MAX,
        run_id.clone(),
    )?;
    let presses = usize::try_from(args.presses)?;
    let epoch = Instant::now();
    let plan = Arc::new(Plan {
        prefix: args.prefix.clone(),
        node: args.node.clone(),
        presses: args.presses,
        buttons: args.buttons,
        rate: args.rate,
        press_timeout: Duration::from_secs(args.press_timeout),
        run_id: run_id.clone(),
        sent_ns: (0..presses).map(|_| AtomicU64::new(UNSENT)).collect(),
        epoch,
        deadline: epoch + Duration::from_secs(args.timeout),
    });
    let config = ButtonsConfig {
        url: url.to_string(),
        username: args.connect.username.clone(),
        presses: args.presses,
        rate: args.rate,
        buttons: args.buttons,
        node: args.node.clone(),
        prefix: args.prefix.clone(),
        press_timeout_secs: args.press_timeout,
        timeout_secs: args.timeout,
        hub_http: hub_url.as_ref().map(ToString::to_string),
        run_id,
    };

    // Phase 1: is there a hub, and where do its counters start?
    let before = match &hub_url {
        Some(hub_url) => {
            let limit = (Instant::now() + HTTP_TIMEOUT).min(plan.deadline);
            let (status, body) = http::get(hub_url, "/readyz", limit).await?;
            if status != 200 {
                bail!(
                    "the hub at {hub_url} is not ready (/readyz answered {status}: {}); \
                     is it connected to the broker and its database?",
                    body.trim()
                );
            }
            let limit = (Instant::now() + HTTP_TIMEOUT).min(plan.deadline);
            Some(snapshot(hub_url, limit).await?)
        }
        None => None,
    };

    // Phase 2: the light listens before anything is pressed.
    let (light, mut light_loop) = factory.build('l', 0);
    client::wait_connected(&mut light_loop, &url, plan.deadline).await?;
    let filter = hub::command_filter(&plan.prefix, &plan.node);
    client::subscribe_all(
        &light,
        &mut light_loop,
        std::slice::from_ref(&filter),
        QoS::AtLeastOnce,
        plan.deadline,
    )
    .await
    .map_err(|e| e.context("the light could not subscribe"))?;
    let (pressed_tx, pressed_rx) = watch::channel(None::<Instant>);
    let light_task = tokio::spawn(light_side(light, light_loop, plan.clone(), pressed_rx));

    let (presser, mut presser_loop) = factory.build('p', 0);
    if let Err(e) = client::wait_connected(&mut presser_loop, &url, plan.deadline).await {
        light_task.abort();
        return Err(e.context("the presser could not connect"));
    }

    // Phase 3: press.
    let pressed = press_all(presser, presser_loop, plan.clone()).await;
    // The light waits for stragglers from the last send on.
    let last_send = pressed
        .last_sent_ns
        .map_or_else(Instant::now, |ns| epoch + Duration::from_nanos(ns));
    pressed_tx.send_replace(Some(last_send));

    // Phase 4: the light finishes matching.
    let mut errors = Vec::new();
    errors.extend(pressed.error.clone());
    let mut light = match light_task.await {
        Ok(outcome) => outcome,
        Err(e) => {
            errors.push(format!("light task failed: {e}"));
            LightOutcome::empty(&plan)
        }
    };
    errors.extend(light.error.clone());
    // Only meaningful when every press went out: an unsent press is not the hub's fault.
    let silent = light.ledger.silent_buttons();
    if let (Some(first), true) = (silent.first(), pressed.sent == args.presses) {
        errors.push(format!(
            "{} button(s) got no command at all (first: b{first}); does the hub have \
             their rules? Write them with --write-rules",
            silent.len()
        ));
    }

    // Phase 5: did the hub take in every press?
    let hub_check = match (&hub_url, before) {
        (Some(hub_url), Some(before)) => {
            Some(check_hub(hub_url, &before, pressed.acked, plan.press_timeout).await)
        }
        _ => None,
    };

    let span_secs = |end: Option<u64>| match (pressed.first_sent_ns, end) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)).as_secs_f64(),
        _ => 0.0,
    };
    let press_secs = span_secs(pressed.last_acked_ns);
    let elapsed_secs = span_secs(light.last_command_ns);
    let commands = light.ledger.matched();
    let lost = pressed.sent.saturating_sub(commands) + light.late;
    Ok(ButtonsReport {
        scenario: "buttons",
        config,
        sent: pressed.sent,
        acked: pressed.acked,
        press_secs,
        presses_per_sec: report::per_sec(pressed.acked, press_secs),
        commands,
        extra_commands: light.ledger.extra(),
        late: light.late,
        lost,
        elapsed_secs,
        commands_per_sec: report::per_sec(commands, elapsed_secs),
        latency: LatencySummary::from_samples(&mut light.latencies),
        hub: hub_check,
        timed_out: pressed.timed_out || light.timed_out,
        errors,
    })
}

#[derive(Debug, Default)]
struct PressOutcome {
    sent: u64,
    acked: u64,
    first_sent_ns: Option<u64>,
    last_sent_ns: Option<u64>,
    last_acked_ns: Option<u64>,
    timed_out: bool,
    error: Option<String>,
}

/// The presser: a send loop feeding rumqttc and a driver polling its event
/// loop, in one task so neither waits for a thread hop.
async fn press_all(client: AsyncClient, mut eventloop: EventLoop, plan: Arc<Plan>) -> PressOutcome {
    let mut outcome = PressOutcome::default();
    let start = Instant::now();
    let drive = client::send_while_driving(
        send_presses(&client, &plan, start, &mut outcome),
        &mut eventloop,
        QoS::AtLeastOnce,
        plan.presses,
        plan.deadline,
        || plan.now_ns(),
    )
    .await;
    outcome.acked = drive.acked;
    outcome.last_acked_ns = drive.last_acked_ns;
    match drive.end {
        client::DriveEnd::Done => {}
        client::DriveEnd::TimedOut => outcome.timed_out = true,
        client::DriveEnd::Failed(e) => outcome.error = Some(format!("presser: {e}")),
    }
    client::disconnect(&client, &mut eventloop, plan.deadline).await;
    outcome
}

/// Hands every press to rumqttc, paced by [`client::due`].
async fn send_presses(
    client: &AsyncClient,
    plan: &Plan,
    start: Instant,
    outcome: &mut PressOutcome,
) {
    let buttons = u64::from(plan.buttons);
    for seq in 0..plan.presses {
        if plan.rate > 0 {
            let due = client::due(start, seq, plan.rate);
            if due >= plan.deadline {
                outcome.timed_out = true;
                return;
            }
            tokio::time::sleep_until(due).await;
        }
        // seq % buttons < buttons, which is a u32.
        let k = u32::try_from(seq % buttons).unwrap_or_default();
        let topic = hub::press_topic(&plan.prefix, k);
        let payload = hub::press_payload(&plan.run_id, seq);
        let sent_ns = plan.now_ns();
        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| plan.sent_ns.get(i)) {
            // Release: a command can only follow its press, and the light
            // reads this slot with Acquire when the command arrives.
            slot.store(sent_ns, Ordering::Release);
        }
        match timeout_at(
            plan.deadline,
            client.publish(topic, QoS::AtLeastOnce, false, payload),
        )
        .await
        {
            Ok(Ok(())) => {
                outcome.sent += 1;
                outcome.first_sent_ns.get_or_insert(sent_ns);
                outcome.last_sent_ns = Some(sent_ns);
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
struct LightOutcome {
    ledger: PressLedger,
    latencies: Vec<u64>,
    late: u64,
    last_command_ns: Option<u64>,
    timed_out: bool,
    error: Option<String>,
}

impl LightOutcome {
    fn empty(plan: &Plan) -> Self {
        let expected = (0..plan.buttons)
            .map(|k| hub::presses_for(k, plan.buttons, plan.presses))
            .collect();
        Self {
            ledger: PressLedger::new(expected),
            latencies: Vec::new(),
            late: 0,
            last_command_ns: None,
            timed_out: false,
            error: None,
        }
    }
}

/// The light: matches commands to presses until all are answered, or
/// `press_timeout` has passed since the last press, or the deadline.
async fn light_side(
    client: AsyncClient,
    mut eventloop: EventLoop,
    plan: Arc<Plan>,
    pressed: watch::Receiver<Option<Instant>>,
) -> LightOutcome {
    let mut outcome = LightOutcome::empty(&plan);
    outcome.latencies = Vec::with_capacity(usize::try_from(plan.presses).unwrap_or_default());
    let late_ns = u64::try_from(plan.press_timeout.as_nanos()).unwrap_or(u64::MAX);
    loop {
        if outcome.ledger.complete() {
            break;
        }
        let now = Instant::now();
        if now >= plan.deadline {
            outcome.timed_out = true;
            break;
        }
        let give_up = (*pressed.borrow()).map(|last| last + plan.press_timeout);
        if give_up.is_some_and(|t| now >= t) {
            break; // the rest never came
        }
        let wake = give_up
            .unwrap_or(now + PHASE_CHECK_INTERVAL)
            .min(plan.deadline);
        let event = match timeout_at(wake, eventloop.poll()).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                outcome.error = Some(format!("light connection failed: {e}"));
                break;
            }
            Ok(Ok(event)) => event,
        };
        let Event::Incoming(Incoming::Publish(publish)) = event else {
            continue;
        };
        let received_ns = plan.now_ns();
        let Some(k) = hub::command_button(&publish.topic, &plan.prefix, &plan.node) else {
            outcome.ledger.foreign();
            continue;
        };
        if let Answer::Press { nth } = outcome.ledger.command(k) {
            let seq = hub::press_seq(k, nth, plan.buttons);
            let sent = usize::try_from(seq)
                .ok()
                .and_then(|i| plan.sent_ns.get(i))
                .map_or(UNSENT, |slot| slot.load(Ordering::Acquire));
            if sent == UNSENT {
                // Cannot be a reply to this run: the press was never sent.
                outcome.error.get_or_insert_with(|| {
                    format!("a command for b{k} arrived before its press was sent (another hub or rule?)")
                });
                continue;
            }
            let latency = received_ns.saturating_sub(sent);
            if latency > late_ns {
                outcome.late += 1;
            }
            outcome.latencies.push(latency);
            outcome.last_command_ns = Some(received_ns);
        }
    }
    client::disconnect(&client, &mut eventloop, plan.deadline).await;
    outcome
}

/// The hub's counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    presses: f64,
    duplicates: f64,
    invalid: f64,
    db_count: f64,
    db_sum: f64,
}

/// Reads the hub's counters; the request must finish by `deadline`.
async fn snapshot(hub_url: &HttpUrl, deadline: Instant) -> anyhow::Result<Snapshot> {
    let (status, text) = http::get(hub_url, "/metrics", deadline).await?;
    if status != 200 {
        bail!("{hub_url}/metrics answered {status}");
    }
    let presses = http::metric_value(&text, SERIES_PRESSES).ok_or_else(|| {
        anyhow!("{hub_url}/metrics has no {SERIES_PRESSES}: is this a Hearth hub?")
    })?;
    let value = |series| http::metric_value(&text, series).unwrap_or_default();
    Ok(Snapshot {
        presses,
        duplicates: value(SERIES_DUPLICATES),
        invalid: value(SERIES_INVALID),
        db_count: value(SERIES_DB_COUNT),
        db_sum: value(SERIES_DB_SUM),
    })
}

/// Polls `/metrics` until the hub counted `expected` more presses than in
/// `before`, or `wait` passes.
async fn check_hub(
    hub_url: &HttpUrl,
    before: &Snapshot,
    expected: u64,
    wait: Duration,
) -> HubCheck {
    let give_up = Instant::now() + wait;
    let mut check = HubCheck::default();
    loop {
        let limit = (Instant::now() + HTTP_TIMEOUT).min(give_up);
        match snapshot(hub_url, limit).await {
            Ok(now) => {
                check = hub_delta(before, &now, expected);
                if check.complete {
                    return check;
                }
            }
            Err(e) => check.error = Some(format!("{e:#}")),
        }
        if Instant::now() + METRICS_POLL_INTERVAL >= give_up {
            return check;
        }
        tokio::time::sleep(METRICS_POLL_INTERVAL).await;
    }
}

/// What changed between two snapshots. Counters are integers sent as floats,
/// so the casts are exact below 2^53.
fn hub_delta(before: &Snapshot, after: &Snapshot, expected: u64) -> HubCheck {
    let delta = |a: f64, b: f64| (b - a).max(0.0) as u64;
    let presses = delta(before.presses, after.presses);
    let db_commits = delta(before.db_count, after.db_count);
    let db_secs = (after.db_sum - before.db_sum).max(0.0);
    HubCheck {
        presses,
        duplicates: delta(before.duplicates, after.duplicates),
        invalid: delta(before.invalid, after.invalid),
        db_commits,
        db_commit_mean_us: if db_commits > 0 {
            db_secs * 1e6 / db_commits as f64
        } else {
            0.0
        },
        complete: presses >= expected,
        error: None,
    }
}

fn rate_text(per_sec: f64, unit: &str) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0} {unit}/s")
    } else {
        format!("{per_sec:.1} {unit}/s")
    }
}

impl fmt::Display for ButtonsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let rate = match c.rate {
            0 => "max".to_owned(),
            r => format!("{r}/s"),
        };
        writeln!(
            f,
            "hearth-bench buttons  {url}  {n} presses over {b} button(s), rate {rate}, press timeout {pt} s, timeout {to} s",
            url = c.url,
            n = c.presses,
            b = c.buttons,
            pt = c.press_timeout_secs,
            to = c.timeout_secs,
        )?;
        writeln!(
            f,
            "  pressed     {} ({} acked) in {:.3} s = {}",
            self.sent,
            self.acked,
            self.press_secs,
            rate_text(self.presses_per_sec, "presses")
        )?;
        writeln!(
            f,
            "  commands    {} of {} in {:.3} s = {}",
            self.commands,
            self.sent,
            self.elapsed_secs,
            rate_text(self.commands_per_sec, "commands")
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
            "  lost        {} (of which late, after more than {} s: {})",
            self.lost, c.press_timeout_secs, self.late
        )?;
        if self.extra_commands > 0 {
            writeln!(
                f,
                "  extra       {} commands matched no press",
                self.extra_commands
            )?;
        }
        if let Some(h) = &self.hub {
            writeln!(
                f,
                "  hub         {} presses counted{} ({} duplicates, {} invalid); {} commits, mean {}",
                h.presses,
                if h.complete { "" } else { " - INCOMPLETE" },
                h.duplicates,
                h.invalid,
                h.db_commits,
                report::duration_ns((h.db_commit_mean_us * 1e3) as u64),
            )?;
            if let Some(e) = &h.error {
                writeln!(f, "  hub error: {e}")?;
            }
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

    fn args(argv: &[&str]) -> ButtonsArgs {
        use clap::Parser;
        let argv = ["hearth-bench", "buttons"].iter().chain(argv).copied();
        match crate::cli::Cli::try_parse_from(argv)
            .expect("valid test arguments")
            .command
        {
            crate::cli::Command::Buttons(args) => args,
            crate::cli::Command::Broker(_) => panic!("not a buttons command line"),
        }
    }

    #[test]
    fn hub_delta_counts_only_this_run() {
        let before = Snapshot {
            presses: 100.0,
            duplicates: 1.0,
            invalid: 0.0,
            db_count: 10.0,
            db_sum: 0.5,
        };
        let after = Snapshot {
            presses: 300.0,
            duplicates: 1.0,
            invalid: 2.0,
            db_count: 30.0,
            db_sum: 0.52,
        };
        let d = hub_delta(&before, &after, 200);
        assert_eq!(
            (d.presses, d.duplicates, d.invalid, d.db_commits),
            (200, 0, 2, 20)
        );
        assert!(
            (d.db_commit_mean_us - 1000.0).abs() < 1e-6,
            "{}",
            d.db_commit_mean_us
        );
        assert!(d.complete);
        assert!(!hub_delta(&before, &after, 201).complete);
        // A restarted hub (counters reset) must not underflow.
        assert_eq!(hub_delta(&after, &before, 0).presses, 0);
        assert_eq!(hub_delta(&before, &before, 0).db_commit_mean_us, 0.0);
    }

    #[test]
    fn rules_follow_the_flags() {
        let text = rules_for(&args(&["--buttons", "2", "--node", "bench-node"]));
        assert!(text.contains("output = \"bench-node/light/l1\""), "{text}");
        assert!(!text.contains("l2"), "{text}");
    }

    #[tokio::test]
    async fn refuses_remote_targets_before_connecting() {
        let err = run(&args(&["--url", "mqtt://10.0.0.1:1883", "--timeout", "5"]))
            .await
            .expect_err("remote broker");
        assert!(err.to_string().contains("--allow-remote"), "{err:#}");
        let err = run(&args(&[
            "--url",
            "mqtt://127.0.0.1:1",
            "--hub-http",
            "http://192.168.1.2:8080",
            "--timeout",
            "5",
        ]))
        .await
        .expect_err("remote hub");
        assert!(err.to_string().contains("--allow-remote"), "{err:#}");
    }

    #[test]
    fn report_prints_the_hub_check_and_loss() {
        let report = ButtonsReport {
            scenario: "buttons",
            config: ButtonsConfig {
                url: "mqtt://127.0.0.1:1883".into(),
                username: None,
                presses: 10,
                rate: 10,
                buttons: 2,
                node: "pi-1".into(),
                prefix: "hearth".into(),
                press_timeout_secs: 5,
                timeout_secs: 60,
                hub_http: Some("http://127.0.0.1:8080".into()),
                run_id: "abc".into(),
            },
            sent: 10,
            acked: 10,
            press_secs: 0.9,
            presses_per_sec: 11.1,
            commands: 9,
            extra_commands: 0,
            late: 1,
            lost: 2,
            elapsed_secs: 0.95,
            commands_per_sec: 9.5,
            latency: LatencySummary::default(),
            hub: Some(HubCheck {
                presses: 9,
                complete: false,
                ..HubCheck::default()
            }),
            timed_out: false,
            errors: vec![],
        };
        let text = report.to_string();
        assert!(text.contains("lost        2 (of which late"), "{text}");
        assert!(text.contains("9 presses counted - INCOMPLETE"), "{text}");
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["lost"], 2);
        assert_eq!(json["hub"]["complete"], false);
    }
}
