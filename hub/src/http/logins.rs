//! Optional logins for the dashboard and the HTTP API: HTTP Basic against the broker's user store.
//!
//! Off unless `[http] password_file` or `[http.users]` names someone, so
//! nothing changes for a hub on loopback or a trusted LAN. When on, every
//! path needs a login except the probes (`/healthz`, `/readyz`) and, with
//! `v0_without_login`, the homeslice devices' `/api/v0`, whose firmware
//! cannot log in. Passwords are checked with the broker's `Authenticator`
//! (argon2 hashes from `hearth-broker passwd`, timing that does not tell
//! which users exist, at most two verifications at once); a verified
//! `Authorization` value is remembered for [`LOGIN_TTL`] so a dashboard's
//! requests do not each cost an argon2 run. Basic sends the password with
//! every request: serve the hub over TLS (a reverse proxy) beyond your LAN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hearth_broker::{AuthError, Authenticator, BrokerConfig};

use super::HttpState;
use crate::config::HttpSection;

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
}

impl Logins {
    /// `None` when `[http]` names no users: logins are off.
    pub fn from_settings(http: &HttpSection) -> Result<Option<Self>, AuthError> {
        if http.password_file.is_none() && http.users.is_empty() {
            return Ok(None);
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
        }))
    }

    fn open_path(&self, path: &str) -> bool {
        path == super::ops::HEALTH_PATH
            || path == super::ops::READY_PATH
            || (self.v0_without_login && path.starts_with("/api/v0/"))
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
    async fn accepts(&self, authorization: &str) -> bool {
        if self.remembers(authorization) {
            return true;
        }
        let Some((user, password)) = basic_credentials(authorization) else {
            return false;
        };
        let ok = self.users.check(user.clone(), password).await;
        if ok {
            self.remember(authorization.to_owned());
        } else {
            // The user name only: never the password.
            tracing::warn!(%user, "HTTP login refused");
        }
        ok
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

/// The middleware: lets a request through, or answers 401 asking for a login.
pub async fn require_login(
    State(shared): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(logins) = &shared.logins else {
        return next.run(request).await;
    };
    if logins.open_path(request.uri().path()) {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match authorization {
        Some(a) if logins.accepts(&a).await => next.run(request).await,
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
