//! Just enough HTTP/1.1 to read the hub's `/readyz` and `/metrics`, and to pick values out of Prometheus text.
//!
//! A plain GET with `Connection: close` over a tokio socket: the bench needs
//! two endpoints of a loopback hub, which does not justify an HTTP client
//! crate and its TLS stack. Parsing is split from I/O so it is unit-tested.

use std::fmt;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::client::BrokerUrl;

/// Largest response read; `/metrics` of the hub is a few KiB, so anything
/// far bigger is not the hub and is refused rather than buffered.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Where the hub's HTTP API listens: `http://host[:port]` (no TLS, no path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host and port, reusing the broker URL's parsing and loopback rules.
    pub addr: BrokerUrl,
}

impl HttpUrl {
    /// Parses `http://host[:port]`; the port defaults to 80. A trailing `/`
    /// is accepted, any other path is refused: the bench picks the paths.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("hub url {url:?} must start with http://"))?;
        // BrokerUrl's parser handles brackets, ports and refuses paths and
        // credentials; only the scheme and the default port differ.
        let mut addr = BrokerUrl::parse(&format!("tcp://{rest}"))
            .map_err(|e| anyhow!("hub url {url:?} is not valid: {e:#}"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let has_port = match authority.rsplit_once(']') {
            Some((_, after)) => after.starts_with(':'),
            None => authority.contains(':'),
        };
        if !has_port {
            addr.port = 80;
        }
        Ok(Self { addr })
    }

    pub fn is_loopback(&self) -> bool {
        self.addr.is_loopback()
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.addr.host.contains(':') {
            format!("[{}]", self.addr.host)
        } else {
            self.addr.host.clone()
        };
        write!(f, "http://{host}:{}", self.addr.port)
    }
}

/// `GET path` and return the status code and body, bounded by `deadline`.
pub async fn get(url: &HttpUrl, path: &str, deadline: Instant) -> anyhow::Result<(u16, String)> {
    let host = if url.addr.host.contains(':') {
        format!("[{}]", url.addr.host)
    } else {
        url.addr.host.clone()
    };
    let exchange = async {
        let mut stream = TcpStream::connect((url.addr.host.as_str(), url.addr.port))
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n",
            port = url.addr.port
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut raw)
            .await?;
        if raw.len() as u64 > MAX_RESPONSE_BYTES {
            bail!("response from {url}{path} is larger than {MAX_RESPONSE_BYTES} bytes");
        }
        parse_response(&raw).with_context(|| format!("bad response from {url}{path}"))
    };
    timeout_at(deadline, exchange)
        .await
        .map_err(|_| anyhow!("timed out reading {url}{path}"))?
}

/// Splits a complete HTTP/1.1 response into status code and body, decoding
/// a chunked body.
pub fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).context("headers are not UTF-8")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x status line: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status code in {status_line:?}"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        decode_chunked(body)?
    } else {
        body.to_vec()
    };
    let body = String::from_utf8(body).context("body is not UTF-8")?;
    Ok((status, body))
}

/// Decodes a `Transfer-Encoding: chunked` body (chunk extensions ignored).
pub fn decode_chunked(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunk size"))?;
        let size_field = std::str::from_utf8(&body[..eol]).context("chunk size")?;
        let size_hex = size_field.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or_else(|| anyhow!("truncated chunk"))?;
        out.extend_from_slice(chunk);
        body = body
            .get(size..)
            .and_then(|rest| rest.strip_prefix(b"\r\n"))
            .ok_or_else(|| anyhow!("chunk not followed by CRLF"))?;
    }
}

/// The value of one series in Prometheus text format, e.g.
/// `hearth_messages_in_total{kind="button_press"}`; `None` when absent.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            // The series must end here: `foo` must not match `foo_total`.
            let rest = rest.strip_prefix([' ', '\t'])?;
            rest.split_whitespace().next()?.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!((u.addr.host.as_str(), u.addr.port), ("127.0.0.1", 8080));
        assert!(u.is_loopback());
        assert_eq!(u.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            HttpUrl::parse("http://localhost/")
                .expect("valid")
                .addr
                .port,
            80
        );
        let v6 = HttpUrl::parse("http://[::1]:9").expect("valid");
        assert_eq!(v6.to_string(), "http://[::1]:9");
        assert_eq!(HttpUrl::parse("http://[::1]").expect("valid").addr.port, 80);
        assert!(
            !HttpUrl::parse("http://10.1.2.3:80")
                .expect("valid")
                .is_loopback()
        );
        for bad in [
            "https://127.0.0.1",
            "127.0.0.1:8080",
            "http://127.0.0.1/metrics",
            "http://u:p@127.0.0.1",
            "http://",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).expect("ok"), (200, "hello".into()));
        let unavailable = b"HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready";
        assert_eq!(parse_response(unavailable).expect("ok").0, 503);
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).expect("ok"),
            (200, "Wikipedia ".into())
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(decode_chunked(b"5\r\nab").is_err());
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn finds_exact_series_only() {
        let text = "# HELP hearth_messages_in_total x\n\
                    # TYPE hearth_messages_in_total counter\n\
                    hearth_messages_in_total{kind=\"button_press\"} 1234\n\
                    hearth_messages_in_total{kind=\"duplicate\"} 2\n\
                    hearth_db_write_seconds_sum 0.125\n\
                    hearth_db_write_seconds_count 17\n";
        let v = |s| metric_value(text, s);
        assert_eq!(
            v("hearth_messages_in_total{kind=\"button_press\"}"),
            Some(1234.0)
        );
        assert_eq!(v("hearth_messages_in_total{kind=\"duplicate\"}"), Some(2.0));
        assert_eq!(v("hearth_db_write_seconds_sum"), Some(0.125));
        assert_eq!(v("hearth_db_write_seconds_count"), Some(17.0));
        assert_eq!(v("hearth_db_write_seconds"), None);
        assert_eq!(v("hearth_messages_in_total{kind=\"climate\"}"), None);
    }
}
