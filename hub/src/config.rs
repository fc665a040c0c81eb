//! The hub's settings file (`hearth.toml`): sections, defaults, and validation into typed values.
//!
//! Raw sections deserialize with `deny_unknown_fields` so a typo names its
//! key; [`HubConfig::validate`] then turns strings into checked types (time
//! zone, ids, rules) so the rest of the hub never sees an unchecked value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use hearth_broker::BrokerConfig;
use hearth_common::mqtt::MqttSettings;
use hearth_protocol::{DiscoveryTopics, Id, OutputRef, Topics};
use serde::Deserialize;

use crate::decide::discovery::HubDiscovery;
use crate::decide::network::Cidr;
use crate::decide::rules::{Rule, RuleConfig, RuleError};
use crate::model::chime::{Chime, ChimeError, ChimeSpec, Source};
/// The `[database]` section; the store owns its shape.
pub use crate::store::DatabaseSection;

/// Everything in `hearth.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    pub hub: HubSection,
    pub broker: BrokerConfig,
    pub mqtt: MqttSettings,
    pub database: DatabaseSection,
    pub http: HttpSection,
    pub rules: Vec<RuleConfig>,
    /// Automations declared in the file (docs/automations.md).
    pub automations: Vec<hearth_protocol::AutomationSpec>,
    /// Scenes declared in the file: named sets of output states.
    pub scenes: Vec<hearth_protocol::SceneSpec>,
    /// homeslice switch id -> node output (`"pi-1/switch/lamp"`).
    pub switches: BTreeMap<String, String>,
    /// Chimes declared in the file (synced into the database at startup).
    pub chimes: Vec<ChimeSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// IANA time zone for the clock topic and HHMM answers.
    pub timezone: String,
    /// Root of every Hearth topic.
    pub topic_prefix: String,
    /// MQTT client id; keep it stable so the broker keeps the hub's session.
    pub client_id: String,
    /// How long `POST /api/v0/switches/...` waits for the agent to confirm.
    pub switch_timeout_ms: u64,
    /// Publish Home Assistant discovery configs for the hub's entities.
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its MQTT integration setting).
    pub discovery_prefix: String,
    /// Where Home Assistant's "Visit" link on Hearth's devices leads (the
    /// dashboard). Unset: `http://<host name>.local:<port>/` when the HTTP
    /// API listens on every address, else its listen address.
    pub dashboard_url: Option<String>,
    /// Where the house is, for sunrise and sunset (degrees, north and
    /// east positive). Both or neither.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// How late a stored automation delay or wait may still go on after
    /// the hub was down; past it the run is recorded missed.
    pub automation_catch_up_s: u64,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            timezone: "UTC".to_owned(),
            topic_prefix: hearth_protocol::topic::DEFAULT_PREFIX.to_owned(),
            client_id: "hearth-hub".to_owned(),
            switch_timeout_ms: 3_000,
            discovery: true,
            discovery_prefix: hearth_protocol::topic::DEFAULT_DISCOVERY_PREFIX.to_owned(),
            dashboard_url: None,
            latitude: None,
            longitude: None,
            automation_catch_up_s: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// HTTP API, health and metrics listener.
    pub listen: SocketAddr,
    /// Logins for the dashboard and API: argon2 hashes written by
    /// `hearth-broker passwd FILE USER`. Off when neither this nor `users` is set.
    pub password_file: Option<std::path::PathBuf>,
    /// user -> plain-text password (accepted, warned about; prefer the file).
    pub users: BTreeMap<String, hearth_broker::Password>,
    /// With logins on, let homeslice devices use `/api/v0` without one, for
    /// the buttons in `v0_buttons` and the switches under `[switches]` only.
    pub v0_without_login: bool,
    /// Button ids `/api/v0` serves without a login (with `v0_without_login`).
    pub v0_buttons: Vec<String>,
    /// Networks (`192.168.1.0/24`) those requests must come from; empty: any.
    pub v0_networks: Vec<String>,
    /// Serve the HTTP side beyond loopback with no login at all.
    pub allow_anonymous: bool,
    /// Host names the hub is reached by besides its own (a reverse proxy's
    /// `hearth.example.org`): requests naming another host are refused.
    pub external_names: Vec<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("constant address parses"),
            password_file: None,
            users: BTreeMap::new(),
            v0_without_login: false,
            v0_buttons: Vec::new(),
            v0_networks: Vec::new(),
            allow_anonymous: false,
            external_names: Vec::new(),
        }
    }
}

impl HttpSection {
    fn has_users(&self) -> bool {
        self.password_file.is_some() || !self.users.is_empty()
    }

    /// The start checks: no LAN listener without logins unless asked for,
    /// no placeholder password on one; the v0 scope and names parse.
    fn validate(&self) -> Result<(Vec<Id>, Vec<Cidr>), ConfigError> {
        if !self.listen.ip().is_loopback() {
            if !self.has_users() && !self.allow_anonymous {
                return Err(ConfigError::HttpAnonymousOnNetwork(self.listen));
            }
            if let Some((user, _)) = self.users.iter().find(|(_, p)| p.is_placeholder()) {
                return Err(ConfigError::HttpPlaceholderPassword(user.clone()));
            }
        }
        let buttons = self
            .v0_buttons
            .iter()
            .map(|b| Id::new(b).map_err(|e| ConfigError::V0Button(format!("{b:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        let networks = self
            .v0_networks
            .iter()
            .map(|n| n.parse::<Cidr>())
            .collect::<Result<_, _>>()?;
        if let Some(bad) = self.external_names.iter().find(|n| {
            n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        }) {
            return Err(ConfigError::ExternalName(bad.clone()));
        }
        Ok((buttons, networks))
    }
}

/// Longest catch-up window for stored automation runs: a day.
pub const MAX_CATCH_UP_S: u64 = 24 * 3600;

/// Longest climate history kept; far beyond it the prune's date
/// arithmetic would leave chrono's range.
pub const MAX_HISTORY_DAYS: u32 = 36_500;

/// Why a config cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "hub.timezone {0:?} is not an IANA time zone (e.g. \"Europe/Berlin\", \"America/Los_Angeles\", \"UTC\")"
    )]
    UnknownTimezone(String),
    #[error("hub.topic_prefix: {0}")]
    Prefix(#[from] hearth_protocol::TopicError),
    #[error("hub.discovery_prefix: {0}")]
    DiscoveryPrefix(hearth_protocol::TopicError),
    #[error("hub.client_id must be 1 to 64 printable ASCII characters")]
    ClientId,
    #[error("database.history_days {0} must be 1 to {MAX_HISTORY_DAYS} (a century)")]
    HistoryDays(u32),
    #[error("database.url {0:?} must start with sqlite:// or postgres://")]
    DatabaseUrl(String),
    #[error("switches.{id}: {why}")]
    Switch { id: String, why: String },
    // `error`, not `source`: thiserror would chain a `source` field as the
    // cause, and the message, which already shows it, would say it twice.
    #[error("rules[{index}]: {error}")]
    Rule { index: usize, error: RuleError },
    #[error(
        "rules or automations set each other off forever: {0}; give one of them a `payload` condition its predecessor's action does not produce"
    )]
    RuleLoop(String),
    #[error("automations[{index}].{error}")]
    Automation {
        index: usize,
        error: crate::decide::automations::AutomationError,
    },
    #[error("scenes[{index}].{error}")]
    Scene {
        index: usize,
        error: crate::decide::automations::AutomationError,
    },
    #[error("scenes[{index}]: id {id:?} is used twice")]
    DuplicateScene { index: usize, id: String },
    #[error("hub.automation_catch_up_s {0} must be at most {MAX_CATCH_UP_S} (a day)")]
    CatchUp(u64),
    #[error("automations[{index}]: id {id:?} is used twice")]
    DuplicateAutomation { index: usize, id: String },
    #[error("automations[{index}]: {why}")]
    AutomationReference { index: usize, why: String },
    #[error(
        "hub.latitude and hub.longitude: give both, latitude -90 to 90 and longitude -180 to 180 (got {0:?}, {1:?})"
    )]
    Place(Option<f64>, Option<f64>),
    #[error("chimes[{index}].{error}")]
    Chime { index: usize, error: ChimeError },
    #[error("chimes[{index}]: id {id:?} is used twice")]
    DuplicateChime { index: usize, id: String },
    #[error("broker: {0}")]
    Broker(#[from] hearth_broker::ConfigError),
    #[error(
        "http.listen {0} is reachable from the network but the dashboard and API have no \
         logins, so anyone on the LAN could switch lights. Fix: name users in [http] \
         (`hearth-broker passwd /etc/hearth/http-passwd alice`, then password_file), or \
         listen on 127.0.0.1, or set allow_anonymous = true under [http] if this network is trusted"
    )]
    HttpAnonymousOnNetwork(SocketAddr),
    #[error(
        "http.users.{0} has the example's placeholder password and http.listen is reachable \
         from the network. Fix: give it a password of its own (`openssl rand -base64 24`), \
         or better a hashed one (`hearth-broker passwd FILE {0}`)"
    )]
    HttpPlaceholderPassword(String),
    #[error("http.v0_networks: {0}")]
    V0Network(#[from] crate::decide::network::CidrError),
    #[error("http.v0_buttons: {0}")]
    V0Button(String),
    #[error("http.external_names: {0:?} is not a host name")]
    ExternalName(String),
    #[error("hub.dashboard_url {0:?} must be an http:// or https:// URL")]
    DashboardUrl(String),
    #[error("mqtt: {0}")]
    Mqtt(#[from] hearth_common::mqtt::MqttError),
}

/// A validated config: what the hub runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub timezone: Tz,
    pub topics: Topics,
    /// Home Assistant discovery prefix; `None` when discovery is off.
    pub discovery: Option<DiscoveryTopics>,
    /// The dashboard's address, for Home Assistant's device pages.
    pub dashboard_url: String,
    pub client_id: String,
    pub switch_timeout: Duration,
    pub broker: Option<BrokerConfig>,
    pub mqtt: MqttSettings,
    pub database: DatabaseSection,
    pub http: HttpSection,
    /// `http.v0_buttons`, checked.
    pub v0_buttons: Vec<Id>,
    /// `http.v0_networks`, parsed.
    pub v0_networks: Vec<Cidr>,
    pub rules: Vec<Rule>,
    pub automations: Vec<crate::decide::automations::Automation>,
    pub scenes: Vec<crate::decide::automations::Scene>,
    /// `hub.automation_catch_up_s`.
    pub automation_catch_up: Duration,
    /// `hub.latitude`/`longitude`, for sun triggers and conditions.
    pub place: Option<crate::decide::automations::Place>,
    pub switches: BTreeMap<Id, OutputRef>,
    pub chimes: Vec<Chime>,
}

impl Settings {
    /// The builder of the hub's discovery messages; `None` when discovery is off.
    pub fn hub_discovery(&self) -> Option<HubDiscovery> {
        self.discovery.clone().map(|topics| {
            HubDiscovery::with(topics, self.topics.clone()).linking(&self.dashboard_url)
        })
    }
}

/// The dashboard's address as another machine on the LAN reaches it: the
/// host's mDNS name when the HTTP API listens on every address.
pub fn dashboard_url(listen: SocketAddr, hostname: Option<&str>) -> String {
    let hostname = hostname.map(str::trim).filter(|h| !h.is_empty());
    match hostname {
        Some(host) if listen.ip().is_unspecified() => {
            format!("http://{host}.local:{}/", listen.port())
        }
        // SocketAddr prints IPv6 in brackets, as a URL needs.
        _ => format!("http://{listen}/"),
    }
}

/// This machine's host name, for the names the hub answers to.
pub fn machine_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
}

impl HubConfig {
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let timezone: Tz = self
            .hub
            .timezone
            .parse()
            .map_err(|_| ConfigError::UnknownTimezone(self.hub.timezone.clone()))?;
        let topics = Topics::new(&self.hub.topic_prefix)?;
        // Checked even when off, so switching it on later cannot fail.
        let discovery = DiscoveryTopics::new(&self.hub.discovery_prefix)
            .map_err(ConfigError::DiscoveryPrefix)?;
        let id = &self.hub.client_id;
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::ClientId);
        }
        if !(1..=MAX_HISTORY_DAYS).contains(&self.database.history_days) {
            return Err(ConfigError::HistoryDays(self.database.history_days));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError::DatabaseUrl(url.clone()));
        }
        let (v0_buttons, v0_networks) = self.http.validate()?;
        let broker = if self.broker.embedded {
            self.broker.validate()?;
            Some(self.broker)
        } else {
            None
        };
        let mqtt = match &broker {
            // The default URL already points at the default embedded listener;
            // follow the listener if it moved.
            Some(b) if self.mqtt.url == MqttSettings::default().url => MqttSettings {
                url: format!("mqtt://{}", loopback_of(b.listen)),
                ..self.mqtt
            },
            _ => self.mqtt,
        };
        mqtt.options("check", None)?;
        let rules = self
            .rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                rule.validate()
                    .map_err(|error| ConfigError::Rule { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(cycle) = crate::decide::rules::find_loop(&rules, &topics) {
            let named: Vec<String> = cycle
                .iter()
                .map(|&i| format!("rules[{i}] ({:?})", rules[i].name))
                .collect();
            return Err(ConfigError::RuleLoop(named.join(" -> ")));
        }
        let place = match (self.hub.latitude, self.hub.longitude) {
            (None, None) => None,
            (Some(lat), Some(lon)) => Some(
                crate::decide::automations::Place::new(lat, lon)
                    .ok_or(ConfigError::Place(Some(lat), Some(lon)))?,
            ),
            (lat, lon) => return Err(ConfigError::Place(lat, lon)),
        };
        let automations = validate_automations(&self.automations, timezone, place.is_some())?;
        let scenes = validate_scenes(&self.scenes, timezone)?;
        check_scene_references(&automations, &scenes)?;
        if let Some(cycle) = crate::decide::automations::loops::find_loop(
            &rules,
            &automations.iter().collect::<Vec<_>>(),
            &scenes.iter().collect::<Vec<_>>(),
            &topics,
        ) {
            return Err(ConfigError::RuleLoop(cycle));
        }
        if self.hub.automation_catch_up_s > MAX_CATCH_UP_S {
            return Err(ConfigError::CatchUp(self.hub.automation_catch_up_s));
        }
        let switches = self
            .switches
            .into_iter()
            .map(|(id, target)| {
                let bad = |why: String| ConfigError::Switch {
                    id: id.clone(),
                    why,
                };
                let key = Id::new(&id).map_err(|e| bad(e.to_string()))?;
                let output =
                    crate::decide::rules::parse_output(&target).map_err(|e| bad(e.to_string()))?;
                Ok((key, output))
            })
            .collect::<Result<_, ConfigError>>()?;
        let mut chimes: Vec<Chime> = Vec::new();
        for (index, spec) in self.chimes.iter().enumerate() {
            let chime = spec
                .validate(None, timezone, Source::Config)
                .map_err(|error| ConfigError::Chime { index, error })?;
            if chimes.iter().any(|c| c.id == chime.id) {
                return Err(ConfigError::DuplicateChime {
                    index,
                    id: chime.id.to_string(),
                });
            }
            chimes.push(chime);
        }
        let dashboard_url = match self.hub.dashboard_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
            Some(url) => return Err(ConfigError::DashboardUrl(url)),
            None => dashboard_url(self.http.listen, machine_hostname().as_deref()),
        };
        Ok(Settings {
            chimes,
            timezone,
            topics,
            discovery: self.hub.discovery.then_some(discovery),
            dashboard_url,
            client_id: self.hub.client_id,
            switch_timeout: Duration::from_millis(self.hub.switch_timeout_ms),
            broker,
            mqtt,
            database: self.database,
            http: self.http,
            v0_buttons,
            v0_networks,
            rules,
            automations,
            scenes,
            automation_catch_up: Duration::from_secs(self.hub.automation_catch_up_s),
            place,
            switches,
        })
    }
}

/// The file's automations, checked one by one and then together: ids are
/// unique and every `enable`/`disable` names one of them.
fn validate_automations(
    specs: &[hearth_protocol::AutomationSpec],
    timezone: Tz,
    located: bool,
) -> Result<Vec<crate::decide::automations::Automation>, ConfigError> {
    use crate::decide::automations::definition::Step;
    use crate::decide::automations::{Automation, Context};
    let cx = Context { timezone, located };
    let mut automations: Vec<Automation> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let automation = Automation::validate(spec, None, cx)
            .map_err(|error| ConfigError::Automation { index, error })?;
        if automations.iter().any(|a| a.id == automation.id) {
            return Err(ConfigError::DuplicateAutomation {
                index,
                id: automation.id.to_string(),
            });
        }
        automations.push(automation);
    }
    for (index, automation) in automations.iter().enumerate() {
        for (step, action) in automation.steps.iter().enumerate() {
            if let Step::Enable {
                automation: other, ..
            } = action
                && !automations.iter().any(|a| a.id == *other)
            {
                return Err(ConfigError::AutomationReference {
                    index,
                    why: format!(
                        "actions[{step}] names automation \"{other}\", which is not defined"
                    ),
                });
            }
        }
    }
    Ok(automations)
}

/// Every `{ scene = ... }` action names a scene of the file.
fn check_scene_references(
    automations: &[crate::decide::automations::Automation],
    scenes: &[crate::decide::automations::Scene],
) -> Result<(), ConfigError> {
    use crate::decide::automations::definition::Step;
    for (index, automation) in automations.iter().enumerate() {
        for (step, action) in automation.steps.iter().enumerate() {
            if let Step::Scene(id) = action
                && !scenes.iter().any(|s| s.id == *id)
            {
                return Err(ConfigError::AutomationReference {
                    index,
                    why: format!("actions[{step}] names scene \"{id}\", which is not defined"),
                });
            }
        }
    }
    Ok(())
}

/// The file's scenes, checked; ids unique.
fn validate_scenes(
    specs: &[hearth_protocol::SceneSpec],
    timezone: Tz,
) -> Result<Vec<crate::decide::automations::Scene>, ConfigError> {
    use crate::decide::automations::{Context, Scene};
    let cx = Context {
        timezone,
        located: false,
    };
    let mut scenes: Vec<Scene> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let scene =
            Scene::validate(spec, None, cx).map_err(|error| ConfigError::Scene { index, error })?;
        if scenes.iter().any(|s| s.id == scene.id) {
            return Err(ConfigError::DuplicateScene {
                index,
                id: scene.id.to_string(),
            });
        }
        scenes.push(scene);
    }
    Ok(scenes)
}

/// Where a local client reaches a listener bound to `addr`.
fn loopback_of(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_to_the_all_in_one_setup() {
        let settings = HubConfig::default().validate().unwrap();
        assert_eq!(settings.timezone, chrono_tz::UTC);
        assert!(settings.broker.is_some());
        assert_eq!(settings.mqtt.url, "mqtt://127.0.0.1:1883");
        assert_eq!(settings.database.url, "sqlite://data/hearth.db");
        assert_eq!(settings.http.listen.to_string(), "127.0.0.1:8080");
    }

    fn with_toml(text: &str) -> Result<Settings, ConfigError> {
        let config: HubConfig = toml::from_str(text).expect("the test's TOML parses");
        config.validate()
    }

    #[test]
    fn a_bad_automation_stops_startup_naming_its_field() {
        let err = with_toml(
            r#"
            [[automations]]
            id = "fan"
            triggers = [{ climate = "bedroom", reading = "temprature", above = 26.0 }]
            actions = [{ output = "bedroom/switch/fan", command = "ON" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("automations[0].triggers[0].reading: \"temprature\""),
            "{err}"
        );
        let twice = r#"
            [[automations]]
            id = "a"
            triggers = [{ hub = "start" }]
            actions = [{ disable = "b" }]
            "#;
        let err = with_toml(twice).unwrap_err().to_string();
        assert!(err.contains("\"b\", which is not defined"), "{err}");
        let err = with_toml(&format!(
            "{twice}{}",
            twice.replace("disable = \"b\"", "delay_s = 1")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("automations[1]: id \"a\" is used twice"),
            "{err}"
        );
    }

    #[test]
    fn automations_that_set_each_other_off_forever_are_refused() {
        let err = with_toml(
            r#"
            [[automations]]
            id = "ping"
            triggers = [{ topic = "test/ping" }]
            actions = [{ publish = "test/pong", payload = "x" }]

            [[automations]]
            id = "pong"
            triggers = [{ topic = "test/pong" }]
            actions = [{ publish = "test/ping", payload = "x" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("automation ping -> automation pong -> automation ping"),
            "{err}"
        );
        let err = with_toml(
            r#"
            [[automations]]
            id = "a"
            triggers = [{ hub = "start" }]
            actions = [{ scene = "nope" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("scene \"nope\", which is not defined"),
            "{err}"
        );
    }

    #[test]
    fn sun_automations_need_both_coordinates() {
        let sunset = r#"
            [[automations]]
            id = "porch"
            triggers = [{ sun = "sunset" }]
            actions = [{ output = "pi-1/light/porch", command = "ON" }]
            "#;
        let err = with_toml(sunset).unwrap_err().to_string();
        assert!(err.contains("hub.latitude"), "{err}");
        let err = with_toml("[hub]\nlatitude = 52.5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("give both"), "{err}");
        let settings = with_toml(&format!(
            "[hub]\nlatitude = 52.5\nlongitude = 13.4\n{sunset}"
        ))
        .expect("located, a sunset automation is fine");
        assert_eq!(settings.automations.len(), 1);
    }

    #[test]
    fn an_unknown_time_zone_is_named() {
        let mut config = HubConfig::default();
        config.hub.timezone = "Europe/Atlantis".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("Europe/Atlantis"), "{err}");
    }

    #[test]
    fn the_client_follows_a_moved_embedded_listener() {
        let mut config = HubConfig::default();
        config.broker.listen = "0.0.0.0:11883".parse().unwrap();
        config.broker.allow_anonymous = Some(true);
        let settings = config.validate().unwrap();
        assert_eq!(settings.mqtt.url, "mqtt://127.0.0.1:11883");
    }

    #[test]
    fn switches_map_to_node_outputs() {
        let mut config = HubConfig::default();
        config
            .switches
            .insert("lamp".into(), "pi-1/switch/lamp".into());
        let settings = config.validate().unwrap();
        let out = &settings.switches[&Id::new("lamp").unwrap()];
        assert_eq!(out.to_string(), "pi-1/switch/lamp");

        let mut config = HubConfig::default();
        config
            .switches
            .insert("lamp".into(), "pi-1/fan/lamp".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with("switches.lamp:"), "{err}");
    }

    #[test]
    fn the_dashboard_url_is_what_another_machine_can_open() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6: SocketAddr = "[fd00::5]:80".parse().unwrap();
        assert_eq!(
            dashboard_url(any, Some("pi-hub\n")),
            "http://pi-hub.local:8080/"
        );
        assert_eq!(
            dashboard_url(local, Some("pi-hub")),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(dashboard_url(v6, None), "http://[fd00::5]:80/");
        let mut config = HubConfig::default();
        config.hub.dashboard_url = Some("hearth.lan".into());
        assert!(
            matches!(config.clone().validate(), Err(ConfigError::DashboardUrl(_))),
            "a URL without a scheme is refused"
        );
        config.hub.dashboard_url = Some("https://hearth.lan/".into());
        assert_eq!(
            config.validate().unwrap().dashboard_url,
            "https://hearth.lan/"
        );
    }

    #[test]
    fn home_assistant_discovery_is_on_by_default_and_its_prefix_checked() {
        let settings = HubConfig::default().validate().unwrap();
        assert_eq!(
            settings.discovery.map(|d| d.status()),
            Some("homeassistant/status".to_owned())
        );
        let mut config = HubConfig::default();
        config.hub.discovery = false;
        assert!(config.validate().unwrap().discovery.is_none());
        let mut config = HubConfig::default();
        config.hub.discovery_prefix = "ha/#".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with("hub.discovery_prefix:"), "{err}");
    }

    #[test]
    fn http_beyond_loopback_needs_logins_or_an_explicit_yes() {
        let mut config = HubConfig::default();
        config.http.listen = "0.0.0.0:8080".parse().unwrap();
        let err = config.clone().validate().unwrap_err();
        assert!(
            matches!(err, ConfigError::HttpAnonymousOnNetwork(_)),
            "{err:?}"
        );
        assert!(err.to_string().contains("allow_anonymous = true"), "{err}");
        let mut open = config.clone();
        open.http.allow_anonymous = true;
        assert!(open.validate().is_ok());
        config.http.users.insert(
            "alice".into(),
            hearth_broker::Password::new("CHANGE-ME-placeholder"),
        );
        let err = config.clone().validate().unwrap_err().to_string();
        assert!(
            err.contains("http.users.alice") && err.contains("openssl rand"),
            "{err}"
        );
        config
            .http
            .users
            .insert("alice".into(), hearth_broker::Password::new("x8Jq2mWv"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn broker_placeholders_on_the_lan_stop_the_hub() {
        let mut config = HubConfig::default();
        config.broker.listen = "0.0.0.0:1883".parse().unwrap();
        config
            .broker
            .users
            .insert("home".into(), hearth_broker::Password::new("change-me"));
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("placeholder") && err.contains("\"home\""),
            "{err}"
        );
    }

    #[test]
    fn the_v0_scope_is_checked() {
        let mut config = HubConfig::default();
        config.http.v0_networks = vec!["192.168.1.0/24".into(), "lan".into()];
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("http.v0_networks:") && err.contains("lan"),
            "{err}"
        );
        let mut config = HubConfig::default();
        config.http.v0_buttons = vec!["desk".into()];
        config.http.v0_networks = vec!["192.168.1.0/24".into()];
        let settings = config.validate().unwrap();
        assert_eq!(settings.v0_buttons, vec![Id::new("desk").unwrap()]);
        assert_eq!(settings.v0_networks.len(), 1);
    }

    #[test]
    fn database_urls_must_name_a_backend() {
        let mut config = HubConfig::default();
        config.database.url = "mysql://x".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DatabaseUrl(_))
        ));
    }
}
