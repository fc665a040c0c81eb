//! The browser boundary: requests for another host (DNS rebinding) and state changes from another site are refused.
//!
//! A web page in a household member's browser can send requests to the hub
//! (a form POST needs no CORS), and a name of the attacker's that resolves
//! to the hub's address lets it read the answers too. Browsers tell both
//! apart in headers they do not let pages forge: `Host`, `Origin` and
//! `Sec-Fetch-Site`. [`decide`] is the pure rule; [`guard`] the middleware.
//! Clients that are not browsers (curl, homeslice firmware, Home Assistant)
//! send no `Origin` and no `Sec-Fetch-Site`, and pass.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::HttpState;

/// The names the hub answers to (lowercase, without port).
#[derive(Debug, Clone, Default)]
pub struct HostNames {
    names: Vec<String>,
    /// Names of reverse proxies in front of the hub: an `Origin` naming one
    /// of them is the hub's own page, whatever port the proxy serves on.
    external: Vec<String>,
}

impl HostNames {
    /// The hub's names: `localhost`, its listen address, the machine's host
    /// name and `<hostname>.local` (mDNS), and `external` (`[http] external_names`).
    pub fn new(listen: SocketAddr, hostname: Option<&str>, external: &[String]) -> Self {
        let mut names: Vec<String> = vec!["localhost".to_owned()];
        if !listen.ip().is_unspecified() {
            names.push(listen.ip().to_string());
        }
        if let Some(h) = hostname.map(str::trim).filter(|h| !h.is_empty()) {
            let h = h.to_ascii_lowercase();
            names.push(format!("{h}.local"));
            names.push(h);
        }
        let external: Vec<String> = external
            .iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        names.extend(external.iter().cloned());
        Self { names, external }
    }

    /// Whether `host` (a `Host` header's name, without port) is the hub's.
    /// Any IP address is: rebinding needs a name, and a user who typed an
    /// address meant this hub (it may have several, on a LAN with DHCP).
    fn is_ours(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
            || self.names.contains(&host)
    }
}

/// What the boundary says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// 421: the `Host` names somebody else (DNS rebinding, a misrouted proxy).
    ForeignHost(String),
    /// 403: a state change sent by a page of another site.
    CrossSite(String),
}

/// The headers [`decide`] reads, as text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub fetch_site: Option<&'a str>,
}

/// Splits `host[:port]` (or `[v6]:port`) into the name and the port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (name, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address without brackets has several colons.
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (authority, None),
    }
}

/// `scheme://host[:port]` -> (host, port with the scheme's default).
fn origin_authority(origin: &str) -> Option<(String, String)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (name, port) = split_authority(rest.trim_end_matches('/'));
    Some((
        name.to_ascii_lowercase(),
        port.unwrap_or(default).to_owned(),
    ))
}

fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The rule. `Host` must be one of the hub's names (or an IP address). A
/// state change (anything but GET, HEAD, OPTIONS) carrying an `Origin` must
/// come from the origin it is sent to (the same host and port) or from a
/// configured external name; `Sec-Fetch-Site: cross-site` is refused, and
/// `same-site` (another port or subdomain) needs that matching `Origin`.
pub fn decide(names: &HostNames, method: &Method, seen: Seen<'_>) -> Verdict {
    let host = seen.host.map(split_authority);
    if let Some((name, _)) = host
        && !names.is_ours(name)
    {
        return Verdict::ForeignHost(format!(
            "this hub does not answer to {name:?}; add it to [http] external_names if a proxy uses it"
        ));
    }
    if !changes_state(method) {
        return Verdict::Allow;
    }
    let own_origin = match seen.origin {
        None => None,
        Some(origin) => {
            let Some((o_name, o_port)) = origin_authority(origin) else {
                return Verdict::CrossSite(format!("requests from origin {origin:?} are refused"));
            };
            let same = host.is_some_and(|(name, port)| {
                name.eq_ignore_ascii_case(&o_name) && port.unwrap_or(&o_port) == o_port
            });
            if !same && !names.external.contains(&o_name) {
                return Verdict::CrossSite(format!(
                    "a page of {origin} may not change anything here"
                ));
            }
            Some(())
        }
    };
    match seen.fetch_site.map(str::to_ascii_lowercase).as_deref() {
        Some("cross-site") => Verdict::CrossSite("cross-site requests are refused".to_owned()),
        Some("same-site") if own_origin.is_none() => {
            Verdict::CrossSite("requests from another host of this site are refused".to_owned())
        }
        _ => Verdict::Allow,
    }
}

const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// The middleware: [`decide`] on the request's headers.
pub async fn guard(State(shared): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    let verdict = {
        let headers = request.headers();
        let text =
            |name: &header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let seen = Seen {
            host: text(&header::HOST),
            origin: text(&header::ORIGIN),
            fetch_site: text(&SEC_FETCH_SITE),
        };
        decide(&shared.names, request.method(), seen)
    };
    match verdict {
        Verdict::Allow => next.run(request).await,
        Verdict::ForeignHost(why) => {
            (StatusCode::MISDIRECTED_REQUEST, format!("{why}\n")).into_response()
        }
        Verdict::CrossSite(why) => (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HostNames {
        HostNames::new(
            "0.0.0.0:8080".parse().unwrap(),
            Some("Hub"),
            &["hearth.example.org".to_owned()],
        )
    }

    fn post(host: &str, origin: Option<&str>, fetch_site: Option<&str>) -> Verdict {
        let seen = Seen {
            host: Some(host),
            origin,
            fetch_site,
        };
        decide(&names(), &Method::POST, seen)
    }

    #[test]
    fn the_hubs_names_and_any_address_are_answered() {
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "hub:8080",
            "HUB.local:8080",
            "192.168.1.10:8080",
            "hearth.example.org",
        ] {
            let seen = Seen {
                host: Some(host),
                ..Seen::default()
            };
            assert_eq!(
                decide(&names(), &Method::GET, seen),
                Verdict::Allow,
                "{host}"
            );
        }
    }

    #[test]
    fn other_names_are_refused_even_for_reads() {
        let seen = Seen {
            host: Some("evil.example:8080"),
            ..Seen::default()
        };
        let verdict = decide(&names(), &Method::GET, seen);
        assert!(matches!(verdict, Verdict::ForeignHost(_)), "{verdict:?}");
    }

    #[test]
    fn the_hubs_own_pages_and_non_browsers_may_change_state() {
        assert_eq!(post("hub.local:8080", None, None), Verdict::Allow, "curl");
        assert_eq!(
            post(
                "hub.local:8080",
                Some("http://hub.local:8080"),
                Some("same-origin")
            ),
            Verdict::Allow
        );
        assert_eq!(
            post("192.168.1.10:8080", Some("http://192.168.1.10:8080"), None),
            Verdict::Allow
        );
        assert_eq!(
            post("hub", Some("http://hub"), Some("same-origin")),
            Verdict::Allow,
            "default port on both sides"
        );
        assert_eq!(
            post(
                "127.0.0.1:8080",
                Some("https://hearth.example.org"),
                Some("same-origin")
            ),
            Verdict::Allow,
            "behind a proxy that rewrites Host"
        );
        assert_eq!(
            post("hub:8080", None, Some("none")),
            Verdict::Allow,
            "typed URL"
        );
    }

    #[test]
    fn other_sites_may_not_change_state() {
        for (origin, site) in [
            (Some("http://evil.example"), Some("cross-site")),
            (Some("http://evil.example"), None),
            (Some("http://localhost:5555"), Some("same-site")),
            (Some("null"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            let verdict = post("localhost:8080", origin, site);
            assert!(
                matches!(verdict, Verdict::CrossSite(_)),
                "{origin:?} {site:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn authorities_split_with_and_without_ports() {
        assert_eq!(split_authority("hub:80"), ("hub", Some("80")));
        assert_eq!(split_authority("[::1]:8080"), ("::1", Some("8080")));
        assert_eq!(split_authority("::1"), ("::1", None));
        assert_eq!(
            origin_authority("https://Hub.Local"),
            Some(("hub.local".to_owned(), "443".to_owned()))
        );
    }
}
