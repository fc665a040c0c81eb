//! The node id: configured, or derived from Kubernetes' `NODE_NAME` or the hostname.
//!
//! A DaemonSet gets the same ConfigMap on every Pi, so the id cannot live in
//! the file there; the downward API's `NODE_NAME` (or, outside Kubernetes, the
//! hostname) tells the Pis apart. Host names allow characters the topic
//! contract does not (`Pi-1.local`), so they are folded into `[a-z0-9_-]`.

use hearth_protocol::id::MAX_ID_LEN;
use hearth_protocol::{Id, IdError};

/// Environment variable the Kubernetes downward API fills with the node name.
pub const NODE_NAME_ENV: &str = "NODE_NAME";

/// Why no node id could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    #[error("{0}")]
    Configured(IdError),
    #[error(
        "cannot derive a node id: {NODE_NAME_ENV} is unset and the hostname {hostname:?} has no usable \
         characters; set [node] id or HEARTH_NODE__ID"
    )]
    Unusable { hostname: String },
    #[error(
        "cannot derive a node id: neither {NODE_NAME_ENV} nor a hostname is available; set [node] id \
         or HEARTH_NODE__ID"
    )]
    Missing,
}

/// Where the node id came from, for the startup log and `--check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    Config,
    NodeName,
    Hostname,
}

impl IdSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::NodeName => NODE_NAME_ENV,
            Self::Hostname => "hostname",
        }
    }
}

/// What the host says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    pub node_name: Option<String>,
    pub hostname: Option<String>,
}

impl HostIdentity {
    /// Reads `NODE_NAME` and the kernel's hostname (std has no hostname call,
    /// and /proc avoids a libc dependency).
    pub fn from_system() -> Self {
        let non_empty = |s: String| {
            let s = s.trim().to_owned();
            (!s.is_empty()).then_some(s)
        };
        let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok().and_then(non_empty))
            .or_else(|| std::env::var("HOSTNAME").ok().and_then(non_empty));
        Self {
            node_name: std::env::var(NODE_NAME_ENV).ok().and_then(non_empty),
            hostname,
        }
    }
}

/// Folds a host or node name into a contract id: lowercase, every other
/// character becomes `-`, runs of `-` collapse, no `-` at either end.
pub fn sanitize(raw: &str) -> Option<Id> {
    let mut folded = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && folded.ends_with('-')) {
            folded.push(c);
        }
    }
    let trimmed: String = folded.trim_matches('-').chars().take(MAX_ID_LEN).collect();
    Id::new(trimmed.trim_end_matches('-')).ok()
}

/// The configured id if any, else `NODE_NAME`, else the hostname.
pub fn resolve(
    configured: Option<&str>,
    host: &HostIdentity,
) -> Result<(Id, IdSource), NodeIdError> {
    if let Some(raw) = configured {
        return Id::new(raw)
            .map(|id| (id, IdSource::Config))
            .map_err(NodeIdError::Configured);
    }
    if let Some(id) = host.node_name.as_deref().and_then(sanitize) {
        return Ok((id, IdSource::NodeName));
    }
    match host.hostname.as_deref() {
        Some(name) => sanitize(name)
            .map(|id| (id, IdSource::Hostname))
            .ok_or_else(|| NodeIdError::Unusable {
                hostname: name.to_owned(),
            }),
        None => Err(NodeIdError::Missing),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host(node_name: Option<&str>, hostname: Option<&str>) -> HostIdentity {
        HostIdentity {
            node_name: node_name.map(str::to_owned),
            hostname: hostname.map(str::to_owned),
        }
    }

    #[test]
    fn sanitizes_host_names_into_contract_ids() {
        for (raw, want) in [
            ("pi-1", "pi-1"),
            ("RaspberryPi-K3s-A", "raspberrypi-k3s-a"),
            ("pi-1.local", "pi-1-local"),
            ("  --Pi__2--  ", "pi__2"),
            ("büro pi", "b-ro-pi"),
        ] {
            assert_eq!(
                sanitize(raw).map(|id| id.to_string()),
                Some(want.into()),
                "{raw}"
            );
        }
        assert_eq!(sanitize("..."), None);
        assert_eq!(sanitize(""), None);
        let long = format!("{}-{}", "a".repeat(63), "b".repeat(10));
        let id = sanitize(&long).expect("long names are cut");
        assert_eq!(id.as_str(), "a".repeat(63), "no trailing '-' after the cut");
    }

    #[test]
    fn config_beats_node_name_beats_hostname() {
        let both = host(Some("k3s-worker-1"), Some("raspberrypi"));
        assert_eq!(
            resolve(Some("pi-1"), &both).map(|(id, s)| (id.to_string(), s)),
            Ok(("pi-1".into(), IdSource::Config))
        );
        assert_eq!(
            resolve(None, &both).map(|(id, s)| (id.to_string(), s)),
            Ok(("k3s-worker-1".into(), IdSource::NodeName))
        );
        assert_eq!(
            resolve(None, &host(None, Some("RaspberryPi"))).map(|(id, s)| (id.to_string(), s)),
            Ok(("raspberrypi".into(), IdSource::Hostname))
        );
    }

    #[test]
    fn impossible_ids_are_clear_errors() {
        assert!(matches!(
            resolve(Some("Pi 1"), &HostIdentity::default()),
            Err(NodeIdError::Configured(IdError::BadChar { .. }))
        ));
        let err = resolve(None, &host(None, Some("***"))).unwrap_err();
        assert!(err.to_string().contains("\"***\""), "{err}");
        assert!(err.to_string().contains("HEARTH_NODE__ID"), "{err}");
        assert_eq!(resolve(None, &host(None, None)), Err(NodeIdError::Missing));
    }
}
