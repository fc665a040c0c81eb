//! Optional logins for the dashboard and the HTTP API: HTTP Basic against the broker's user store.
//!
//! Off unless `[http] password_file` or `[http.users]` names someone, so
//! nothing changes for a hub on loopback or a trusted LAN. When on, every
//! path needs a login except the probes (`/healthz`, `/readyz`) and, with
//! `v0_without_login`, the homeslice devices' `/api/v0` for the ids the
//! config lists, whose firmware cannot log in. Passwords are checked with the broker's `Authenticator`
//! (argon2 hashes from `hearth-broker passwd`, timing that does not tell
//! which users exist, at most two verifications at once); a verified
//! `Authorization` value is remembered for [`LOGIN_TTL`] so a dashboard's
//! requests do not each cost an argon2 run. Basic sends the password with
//! every request: serve the hub over TLS (a reverse proxy) beyond your LAN.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hearth_broker::{AuthError, Authenticator, BrokerConfig, FailedLogins};

use super::HttpState;
use crate::config::{HttpSection, Settings};

/// How long a verified login is remembered.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Verified logins remembered at once; beyond, the oldest are forgotten.
pub const REMEMBERED_LOGINS: usize = 64;

/// The users who may log in, and the logins verified lately.
#[derive(Debug, Clone)]
pub struct Logins {
    users: Authenticator,
    v0_without_login: bool,
    remembered: Arc<Mutex<HashMap<String, Instant>>>,
    failed: Arc<FailedLogins>,
}

impl Logins {
    /// `None` when `[http]` names no users: logins are off.
    pub fn from_settings(http: &HttpSection) -> Result<Option<Self>, AuthError> {
        if http.password_file.is_none() && http.users.is_empty() {
            return Ok(None);
        }
        if http.v0_without_login && http.v0_buttons.is_empty() {
            tracing::warn!(
                "http.v0_without_login is on but http.v0_buttons names no button: without a login \
                 /api/v0 serves only the clock and [switches]"
            );
        }
        // The same file format and rules as the broker's users.
        let users = Authenticator::from_config(&BrokerConfig {
            password_file: http.password_file.clone(),
            users: http.users.clone(),
            ..BrokerConfig::default()
        })?;
        Ok(Some(Self {
            users,
            v0_without_login: http.v0_without_login,
            remembered: Arc::default(),
            failed: Arc::default(),
        }))
    }

    fn open_path(&self, path: &str) -> bool {
        path == super::ops::HEALTH_PATH || path == super::ops::READY_PATH
    }

    fn remembers(&self, authorization: &str) -> bool {
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        match remembered.get(authorization) {
            Some(at) if at.elapsed() < LOGIN_TTL => true,
            Some(_) => {
                remembered.remove(authorization);
                false
            }
            None => false,
        }
    }

    fn remember(&self, authorization: String) {
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= REMEMBERED_LOGINS {
            let oldest = remembered
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                remembered.remove(&oldest);
            }
        }
        remembered.insert(authorization, Instant::now());
    }

    /// Whether `authorization` (the header's value) names a user with the
    /// right password.
    async fn accepts(&self, authorization: &str, client: Option<IpAddr>) -> bool {
        if self.remembers(authorization) {
            return true;
        }
        let (user, password) = basic_credentials(authorization).unwrap_or_default();
        let ok = !user.is_empty() && self.users.check(user.clone(), password).await;
        if ok {
            self.remember(authorization.to_owned());
        } else {
            self.log_failure(client, &user);
        }
        ok
    }

    /// One line per refusal, at most [`FAILED_LOGINS_LOGGED`] per address
    /// per window, for fail2ban: `HTTP login refused client=<ip> user=<name>`.
    /// The user name only: never the password.
    fn log_failure(&self, client: Option<IpAddr>, user: &str) {
        let Some(client) = client else {
            tracing::warn!(user = %user.escape_debug(), "HTTP login refused");
            return;
        };
        if let Some(unlogged) = self.failed.note(client, Instant::now()) {
            tracing::warn!(%client, user = %user.escape_debug(), unlogged, "HTTP login refused");
        }
    }
}

/// What `/api/v0` without a login may reach.
#[derive(Debug, PartialEq, Eq)]
enum V0Scope {
    /// Not a `/api/v0` path: the login is needed.
    NotV0,
    Open,
    Refused(StatusCode, String),
}

/// The homeslice devices' narrow door: only from `v0_networks` (when
/// named), only the buttons of `v0_buttons` and the `[switches]`, and the
/// clock. Anything else is 404 here, so an unknown button is never created.
fn v0_scope(settings: &Settings, path: &str, client: Option<IpAddr>) -> V0Scope {
    let Some(rest) = path.strip_prefix("/api/v0/") else {
        return V0Scope::NotV0;
    };
    if !settings.v0_networks.is_empty()
        && !client.is_some_and(|ip| settings.v0_networks.iter().any(|n| n.contains(ip)))
    {
        return V0Scope::Refused(
            StatusCode::FORBIDDEN,
            "this network may not use /api/v0 without a login (http.v0_networks)".to_owned(),
        );
    }
    let mut parts = rest.trim_end_matches('/').split('/');
    let listed = match (parts.next(), parts.next()) {
        (Some("clocktime"), None) | (Some("buttons"), None) => true,
        (Some("buttons" | "buttontimes"), Some(id)) => {
            settings.v0_buttons.iter().any(|b| b.as_str() == id)
        }
        (Some("switches"), Some(id)) => settings.switches.keys().any(|s| s.as_str() == id),
        _ => false,
    };
    if listed {
        V0Scope::Open
    } else {
        V0Scope::Refused(
            StatusCode::NOT_FOUND,
            "not found (without a login /api/v0 serves only http.v0_buttons and [switches])"
                .to_owned(),
        )
    }
}

/// `Basic <base64 of user:password>` -> (user, password).
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let encoded = authorization
        .strip_prefix("Basic ")
        .or_else(|| authorization.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Who made a request, as the login middleware verified it: in the
/// request's extensions, absent when logins are off (or on an open path).
/// The logbook names them (`http:<user>`).
#[derive(Debug, Clone)]
pub struct LoggedIn(pub String);

/// The middleware: lets a request through, or answers 401 asking for a login.
pub async fn require_login(
    State(shared): State<Arc<HttpState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(logins) = &shared.logins else {
        return next.run(request).await;
    };
    if logins.open_path(request.uri().path()) {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if authorization.is_none() && logins.v0_without_login {
        match v0_scope(&shared.settings, request.uri().path(), client) {
            V0Scope::NotV0 => {}
            V0Scope::Open => return next.run(request).await,
            V0Scope::Refused(status, why) => return (status, format!("{why}\n")).into_response(),
        }
    }
    match authorization {
        Some(a) if logins.accepts(&a, client).await => {
            if let Some((user, _)) = basic_credentials(&a) {
                request.extensions_mut().insert(LoggedIn(user));
            }
            next.run(request).await
        }
        _ => {
            let mut response = (StatusCode::UNAUTHORIZED, "login required\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Hearth\", charset=\"UTF-8\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_without_login_reaches_the_listed_ids_from_the_listed_networks_only() {
        let mut config = crate::HubConfig::default();
        config.http.v0_buttons = vec!["desk".into()];
        config.http.v0_networks = vec!["192.168.1.0/24".into()];
        config
            .switches
            .insert("lamp".into(), "pi-1/switch/lamp".into());
        let settings = config.validate().unwrap();
        let lan = Some("192.168.1.20".parse().unwrap());
        let wan = Some("10.9.9.9".parse().unwrap());
        for path in [
            "/api/v0/buttons/desk/on/",
            "/api/v0/buttons/desk",
            "/api/v0/buttontimes/desk/",
            "/api/v0/switches/lamp/toggle/",
            "/api/v0/clocktime/",
        ] {
            assert_eq!(v0_scope(&settings, path, lan), V0Scope::Open, "{path}");
            assert!(
                matches!(
                    v0_scope(&settings, path, wan),
                    V0Scope::Refused(StatusCode::FORBIDDEN, _)
                ),
                "{path}"
            );
        }
        for path in ["/api/v0/buttons/garage/on/", "/api/v0/switches/heater/on/"] {
            assert!(
                matches!(
                    v0_scope(&settings, path, lan),
                    V0Scope::Refused(StatusCode::NOT_FOUND, _)
                ),
                "{path}"
            );
        }
        assert_eq!(v0_scope(&settings, "/api/v1/buttons", lan), V0Scope::NotV0);
    }

    #[test]
    fn basic_credentials_are_decoded_and_junk_is_not() {
        // "alice:open sesame:2"
        assert_eq!(
            basic_credentials("Basic YWxpY2U6b3BlbiBzZXNhbWU6Mg=="),
            Some(("alice".to_owned(), "open sesame:2".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        // "nocolon"
        assert_eq!(basic_credentials("Basic bm9jb2xvbg=="), None);
    }
}
