//! Tracing setup shared by every binary.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Default filter: our crates at info, the embedded broker silent: rumqttd
/// logs every ordinary client disconnect at ERROR. Failures that matter
/// (a port in use, a refused login) are reported by hearth-broker itself.
/// `HEARTH_LOG=info,rumqttd=info` shows rumqttd's own view.
pub const DEFAULT_FILTER: &str = "info,rumqttd=off,sqlx=warn";

/// Starts logging to stderr. `HEARTH_LOG` (or `RUST_LOG`) overrides the filter.
///
/// Colours only on a terminal (and not with `NO_COLOR`): journald, `kubectl
/// logs` and fail2ban read plain `key=value` text.
pub fn init() {
    let filter = std::env::var("HEARTH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .try_init();
}

fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
