//! Topic ACLs in Mosquitto's `acl_file` format, and the same rules from TOML.
//!
//! Pure: parsing text into an [`Acl`] and deciding whether a user (with a
//! client id) may publish to a topic or subscribe to a filter. The broker
//! asks it through the authorizer in [`crate::confine`].
//!
//! Mosquitto's rules, kept here so one file works on both brokers:
//! - `user <name>` starts a block; `topic [read|write|readwrite] <filter>`
//!   lines grant that user (no access word: readwrite).
//! - `topic` lines before the first `user` line are the anonymous clients'.
//! - `pattern [read|write|readwrite] <filter>` grants every client, with
//!   `%u` replaced by its user name and `%c` by its client id. A pattern
//!   with `%u` does nothing for an anonymous client, and patterns do nothing
//!   for a user name or client id holding `+` or `#` (either would widen the
//!   filter).
//! - Whatever is not granted is denied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// SUBSCRIBE (and so receive).
    Read,
    /// PUBLISH.
    Write,
    Readwrite,
}

impl Grant {
    fn reads(self) -> bool {
        matches!(self, Self::Read | Self::Readwrite)
    }
    fn writes(self) -> bool {
        matches!(self, Self::Write | Self::Readwrite)
    }
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub grant: Grant,
    pub filter: String,
}

/// One `[[broker.acl]]` entry: a `topic` for `user` (no user: anonymous
/// clients), or a `pattern` for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    pub user: Option<String>,
    pub topic: Option<String>,
    pub pattern: Option<String>,
    #[serde(default = "readwrite")]
    pub access: Grant,
}

fn readwrite() -> Grant {
    Grant::Readwrite
}

/// A whole ACL: what anonymous clients, each user and everyone may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: BTreeMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

/// Why an ACL cannot be used. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("{path}: cannot read the ACL file: {why}")]
    Read { path: PathBuf, why: String },
    #[error("ACL line {line}: unknown keyword {word:?} (expected user, topic or pattern)")]
    UnknownKeyword { line: usize, word: String },
    #[error("ACL line {line}: `{keyword}` needs {what}")]
    Missing {
        line: usize,
        keyword: &'static str,
        what: &'static str,
    },
    #[error("ACL line {line}: bad filter {filter:?}: {why}")]
    BadFilter {
        line: usize,
        filter: String,
        why: &'static str,
    },
    #[error("[[broker.acl]] entry {entry}: {why}")]
    BadEntry { entry: usize, why: &'static str },
}

impl Acl {
    /// Reads and parses an `acl_file`; errors name the file.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclError::Read {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Parses Mosquitto's `acl_file` format.
    pub fn parse(text: &str) -> Result<Self, AclError> {
        let mut acl = Self::default();
        // None: before the first `user` line, the anonymous clients' block.
        let mut current: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(trimmed);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(AclError::Missing {
                            line,
                            keyword: "user",
                            what: "a user name",
                        });
                    }
                    acl.users.entry(rest.to_owned()).or_default();
                    current = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let keyword = if keyword == "topic" {
                        "topic"
                    } else {
                        "pattern"
                    };
                    let rule = parse_rule(line, keyword, rest)?;
                    match (keyword, &current) {
                        ("pattern", _) => acl.patterns.push(rule),
                        (_, Some(user)) => acl.users.entry(user.clone()).or_default().push(rule),
                        (_, None) => acl.anonymous.push(rule),
                    }
                }
                word => {
                    return Err(AclError::UnknownKeyword {
                        line,
                        word: word.to_owned(),
                    });
                }
            }
        }
        Ok(acl)
    }

    /// Adds `[[broker.acl]]` entries to the rules (numbered from 1 in errors).
    pub fn extend(&mut self, entries: &[AclEntry]) -> Result<(), AclError> {
        for (index, entry) in entries.iter().enumerate() {
            let bad = |why| AclError::BadEntry {
                entry: index + 1,
                why,
            };
            let (filter, pattern) = match (&entry.topic, &entry.pattern) {
                (Some(topic), None) => (topic, false),
                (None, Some(pattern)) if entry.user.is_none() => (pattern, true),
                (None, Some(_)) => return Err(bad("a pattern applies to every user: drop `user`")),
                _ => return Err(bad("needs exactly one of `topic` or `pattern`")),
            };
            check_filter(filter).map_err(bad)?;
            let rule = Rule {
                grant: entry.access,
                filter: filter.clone(),
            };
            match (pattern, &entry.user) {
                (true, _) => self.patterns.push(rule),
                (false, Some(user)) => self.users.entry(user.clone()).or_default().push(rule),
                (false, None) => self.anonymous.push(rule),
            }
        }
        Ok(())
    }

    /// Whether `user` (None: anonymous) connected as `client_id` may
    /// publish to `topic`.
    pub fn may_publish(&self, user: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.rules(user, client_id)
            .any(|(grant, filter)| grant.writes() && topic_matches(&filter, topic))
    }

    /// Whether `user` may subscribe to `filter`: only if every topic the
    /// filter can match is readable. A shared subscription
    /// (`$share/<group>/<filter>`) is judged by its filter.
    pub fn may_subscribe(&self, user: Option<&str>, client_id: &str, filter: &str) -> bool {
        let filter = strip_share(filter);
        self.rules(user, client_id)
            .any(|(grant, rule)| grant.reads() && filter_covers(&rule, filter))
    }

    /// Every filter that applies to this client, patterns substituted.
    fn rules<'a>(
        &'a self,
        user: Option<&'a str>,
        client_id: &'a str,
    ) -> impl Iterator<Item = (Grant, String)> + 'a {
        let own = match user {
            Some(user) => self.users.get(user).map_or(&[][..], Vec::as_slice),
            None => &self.anonymous[..],
        };
        let wild = |s: &str| s.contains(['+', '#']);
        let patterns_apply = !wild(client_id) && !user.is_some_and(wild);
        let patterns = self
            .patterns
            .iter()
            .filter(move |_| patterns_apply)
            .filter_map(move |rule| {
                if rule.filter.contains("%u") && user.is_none() {
                    return None;
                }
                let filter = rule
                    .filter
                    .replace("%u", user.unwrap_or_default())
                    .replace("%c", client_id);
                Some((rule.grant, filter))
            });
        own.iter()
            .map(|rule| (rule.grant, rule.filter.clone()))
            .chain(patterns)
    }
}

fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

/// `[read|write|readwrite] <filter>`; the filter is the rest of the line,
/// as Mosquitto reads it.
fn parse_rule(line: usize, keyword: &'static str, rest: &str) -> Result<Rule, AclError> {
    let (first, after) = split_word(rest);
    let (grant, filter) = match first {
        "read" => (Grant::Read, after),
        "write" => (Grant::Write, after),
        "readwrite" => (Grant::Readwrite, after),
        _ => (Grant::Readwrite, rest),
    };
    if filter.is_empty() {
        return Err(AclError::Missing {
            line,
            keyword,
            what: "a topic filter",
        });
    }
    check_filter(filter).map_err(|why| AclError::BadFilter {
        line,
        filter: filter.to_owned(),
        why,
    })?;
    Ok(Rule {
        grant,
        filter: filter.to_owned(),
    })
}

fn check_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be a whole last level");
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level");
        }
    }
    Ok(())
}

fn strip_share(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, filter)| filter)
}

fn is_wild(level: &str) -> bool {
    level == "+" || level == "#"
}

/// MQTT topic matching, `$` topics not matched by a wildcard first level.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.split('/').next().is_some_and(is_wild) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        if level == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if level == "+" || level == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether every topic `filter` can match is matched by `rule`.
pub fn filter_covers(rule: &str, filter: &str) -> bool {
    let rule_first = rule.split('/').next().unwrap_or_default();
    let filter_first = filter.split('/').next().unwrap_or_default();
    // A wildcard rule reaches no `$` topic; a filter naming one is not covered.
    if is_wild(rule_first) && filter_first.starts_with('$') {
        return false;
    }
    let mut filter_levels = filter.split('/');
    for level in rule.split('/') {
        if level == "#" {
            return true;
        }
        match filter_levels.next() {
            Some("#") => return false,
            Some("+") if level == "+" => {}
            Some("+") => return false,
            Some(f) if level == "+" || level == f => {}
            _ => return false,
        }
    }
    filter_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../scripts/mosquitto-acl-example/acl");

    fn example() -> Acl {
        Acl::parse(EXAMPLE).expect("the example ACL parses")
    }

    #[test]
    fn the_example_file_parses_into_users_and_patterns() {
        let acl = example();
        assert!(acl.anonymous.is_empty(), "{:?}", acl.anonymous);
        assert_eq!(
            acl.users.keys().collect::<Vec<_>>(),
            ["alice", "homeassistant", "hub"]
        );
        assert_eq!(acl.users["hub"].len(), 2, "{:?}", acl.users["hub"]);
        assert_eq!(acl.patterns.len(), 17, "{:?}", acl.patterns);
        assert_eq!(
            acl.patterns[0],
            Rule {
                grant: Grant::Write,
                filter: "hearth/button/%u/set".to_owned()
            }
        );
    }

    #[test]
    fn the_example_confines_each_role() {
        let acl = example();
        let publish = |user, topic| acl.may_publish(Some(user), "c", topic);
        let subscribe = |user, filter| acl.may_subscribe(Some(user), "c", filter);
        for (user, topic, want) in [
            ("hub", "hearth/button/b1/state", true),
            ("hub", "homeassistant/light/x/config", true),
            ("hub", "other/x", false),
            ("pi-1", "hearth/node/pi-1/availability", true),
            ("pi-1", "hearth/node/pi-1/climate/temperature", true),
            ("pi-1", "hearth/node/pi-1/switch/fan/state", true),
            ("pi-1", "hearth/node/pi-2/availability", false),
            ("pi-1", "hearth/node/pi-1/switch/fan/set", false),
            ("pi-1", "hearth/button/b1/state", false),
            (
                "pi-1",
                "homeassistant/sensor/hearth_node_pi-1/t/config",
                true,
            ),
            (
                "pi-1",
                "homeassistant/sensor/hearth_node_pi-2/t/config",
                false,
            ),
            ("pi-1", "homeassistant/sensor/pi-1/t/config", false),
            ("alice", "hearth/button/b1/set", true),
            ("alice", "hearth/button/b1/state", false),
            ("alice", "hearth/node/pi-1/availability", false),
            ("homeassistant", "homeassistant/status", true),
            ("homeassistant", "hearth/node/pi-1/switch/fan/state", false),
            ("b1", "hearth/button/b1/press", true),
            ("b1", "hearth/button/b2/press", false),
            // A dimmable light's level; input states are node states too.
            ("pi-1", "hearth/node/pi-1/light/lamp/brightness", true),
            ("pi-1", "hearth/node/pi-2/light/lamp/brightness", false),
            ("pi-1", "hearth/node/pi-1/input/hall/state", true),
            ("alice", "hearth/node/pi-1/light/lamp/brightness/set", true),
            (
                "homeassistant",
                "hearth/node/pi-1/light/lamp/brightness/set",
                true,
            ),
            (
                "homeassistant",
                "hearth/node/pi-1/light/lamp/brightness",
                false,
            ),
        ] {
            assert_eq!(publish(user, topic), want, "{user} publishing {topic}");
        }
        for (user, filter, want) in [
            ("hub", "#", false),
            ("hub", "hearth/#", true),
            ("hub", "hearth/node/+/+/+/state", true),
            ("homeassistant", "hearth/#", true),
            ("homeassistant", "homeassistant/#", true),
            ("alice", "hearth/+/x", true),
            ("alice", "homeassistant/#", false),
            ("pi-1", "hearth/node/pi-1/+/+/set", true),
            ("pi-1", "hearth/node/pi-1/switch/fan/set", true),
            ("pi-1", "hearth/node/+/+/+/set", false),
            ("pi-1", "hearth/node/pi-1/#", false),
            // Its own retained states and discovery configs, read back.
            ("pi-1", "hearth/node/pi-1/+/+/state", true),
            ("pi-1", "hearth/node/pi-2/+/+/state", false),
            ("pi-1", "homeassistant/+/hearth_node_pi-1/#", true),
            ("pi-1", "homeassistant/+/hearth_node_pi-2/#", false),
            ("pi-1", "hearth/chime/pi-1/play", true),
            ("pi-1", "hearth/node/pi-1/+/+/brightness/set", true),
            ("pi-1", "hearth/node/pi-1/input/+/simulate", true),
            ("pi-1", "hearth/node/pi-2/input/+/simulate", false),
            ("pi-1", "hearth/chime/kitchen/play", false),
            ("pi-1", "homeassistant/status", true),
            ("b1", "hearth/button/b1/state", true),
            ("b1", "hearth/clock/hhmm", true),
            ("b1", "hearth/button/+/state", false),
        ] {
            assert_eq!(subscribe(user, filter), want, "{user} subscribing {filter}");
        }
    }

    #[test]
    fn anonymous_clients_get_the_lines_before_the_first_user_and_no_percent_u() {
        let acl = Acl::parse(
            "topic read public/#\npattern write dev/%c/x\npattern write u/%u\nuser a\ntopic b\n",
        )
        .unwrap();
        assert!(acl.may_subscribe(None, "c1", "public/x"));
        assert!(!acl.may_subscribe(Some("a"), "c1", "public/x"));
        assert!(acl.may_publish(Some("a"), "c1", "b"));
        assert!(!acl.may_publish(None, "c1", "b"));
        assert!(acl.may_publish(None, "c1", "dev/c1/x"));
        assert!(!acl.may_publish(None, "c1", "u/"));
        assert!(acl.may_publish(Some("a"), "c1", "u/a"));
        // A wildcard in the id would widen the pattern: patterns stop applying.
        assert!(!acl.may_publish(None, "+", "dev/+/x"));
        assert!(!acl.may_publish(Some("#"), "c", "u/x"));
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        for (text, want) in [
            ("# c\nuser\n", "ACL line 2: `user` needs a user name"),
            ("topic read\n", "ACL line 1: `topic` needs a topic filter"),
            (
                "\nfoo bar\n",
                "ACL line 2: unknown keyword \"foo\" (expected user, topic or pattern)",
            ),
            (
                "user a\ntopic a/#/b\n",
                "ACL line 2: bad filter \"a/#/b\": `#` must be a whole last level",
            ),
            (
                "pattern write a+/b\n",
                "ACL line 1: bad filter \"a+/b\": `+` must be a whole level",
            ),
        ] {
            let err = Acl::parse(text).unwrap_err();
            assert_eq!(err.to_string(), want, "{text:?}");
        }
    }

    #[test]
    fn toml_entries_add_topics_and_patterns() {
        let mut acl = Acl::default();
        let entry =
            |user: Option<&str>, topic: Option<&str>, pattern: Option<&str>, access| AclEntry {
                user: user.map(str::to_owned),
                topic: topic.map(str::to_owned),
                pattern: pattern.map(str::to_owned),
                access,
            };
        acl.extend(&[
            entry(Some("ha"), Some("hearth/#"), None, Grant::Read),
            entry(None, None, Some("dev/%u/#"), Grant::Readwrite),
        ])
        .unwrap();
        assert!(acl.may_subscribe(Some("ha"), "c", "hearth/x"));
        assert!(!acl.may_publish(Some("ha"), "c", "hearth/x"));
        assert!(acl.may_publish(Some("ha"), "c", "dev/ha/x"));
        let err = acl
            .extend(&[entry(Some("ha"), None, Some("x"), Grant::Read)])
            .unwrap_err();
        assert!(
            err.to_string().starts_with("[[broker.acl]] entry 1"),
            "{err}"
        );
        let err = acl
            .extend(&[entry(None, Some("a"), Some("b"), Grant::Read)])
            .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn coverage_is_every_topic_the_filter_can_match() {
        for (rule, filter, want) in [
            ("a/#", "a", true),
            ("a/#", "a/#", true),
            ("a/#", "a/+/c", true),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/b", "a/+", false),
            ("a/+/c", "a/b/c/d", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("#", "+/x", true),
            ("$SYS/#", "$SYS/x", true),
        ] {
            assert_eq!(
                filter_covers(rule, filter),
                want,
                "{rule} covering {filter}"
            );
        }
        assert_eq!(strip_share("$share/g/a/b"), "a/b");
        assert!(topic_matches("a/#", "a"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(!topic_matches("a/+", "a/b/c"));
    }
}
