//! The web dashboard's files, compiled into the binary: no build server, no CDN.
//!
//! The page is plain HTML, CSS and JavaScript that talks only to `/api/v1`
//! (a snapshot over Server-Sent Events, commands as JSON), so it works in a
//! house with no internet. Each file carries a content hash as its ETag and
//! is revalidated on every load: a reload costs a 304, an upgrade is seen at
//! once. A strict Content-Security-Policy allows nothing but this origin.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::HttpState;

/// Nothing but our own files and our own API; no framing by other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: &'static str,
}

macro_rules! asset {
    ($file:literal, $content_type:literal) => {{
        const BODY: &str = include_str!(concat!("../../assets/dashboard/", $file));
        const TAG: [u8; 18] = etag(fnv1a(BODY.as_bytes()));
        const ETAG: &str = match std::str::from_utf8(&TAG) {
            Ok(tag) => tag,
            Err(_) => panic!("an ETag is ASCII"),
        };
        Asset {
            body: BODY,
            content_type: $content_type,
            etag: ETAG,
        }
    }};
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
const SCRIPT: Asset = asset!("app.js", "text/javascript; charset=utf-8");
const HOUSE: Asset = asset!("house.js", "text/javascript; charset=utf-8");
const LOGBOOK: Asset = asset!("logbook.js", "text/javascript; charset=utf-8");
const TIMELINE: Asset = asset!("timeline.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("app.css", "text/css; charset=utf-8");
const ICON: Asset = asset!("icon.svg", "image/svg+xml");
const MANIFEST: Asset = asset!("manifest.json", "application/manifest+json");

/// Path -> file. `/favicon.ico` is what browsers ask for unprompted.
const FILES: [(&str, &Asset); 9] = [
    ("/", &INDEX),
    ("/app.js", &SCRIPT),
    ("/house.js", &HOUSE),
    ("/logbook.js", &LOGBOOK),
    ("/timeline.js", &TIMELINE),
    ("/app.css", &STYLE),
    ("/icon.svg", &ICON),
    ("/favicon.ico", &ICON),
    ("/manifest.json", &MANIFEST),
];

pub fn routes() -> Router<Arc<HttpState>> {
    FILES
        .into_iter()
        .fold(Router::new(), |router, (path, asset)| {
            router.route(
                path,
                get(move |request: HeaderMap| async move { serve(asset, &request) }),
            )
        })
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// FNV-1a: a content hash the compiler can work out, for ETags.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"<16 hex digits>"`, worked out at compile time.
const fn etag(hash: u64) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        tag[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_hex_of_the_content() {
        assert_eq!(&etag(0x0123_4567_89ab_cdef), b"\"0123456789abcdef\"");
        assert_eq!(INDEX.etag.len(), 18);
        assert_ne!(INDEX.etag, SCRIPT.etag);
    }
}
