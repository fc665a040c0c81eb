//! Who knocks: refused logins logged with the client's address, a few lines per address and minute.
//!
//! fail2ban and a reader of the journal need the address and the user name
//! of every refused login; a client retrying a wrong password in a loop must
//! not flood the log. So per address the first [`FAILED_LOGINS_LOGGED`]
//! refusals of each [`FAILED_LOGIN_WINDOW`] are logged and the rest are
//! counted and summed up in the next line logged for that address. Shared by
//! the broker's MQTT logins and the hub's HTTP logins.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses whose refusals are counted at once; beyond, the one counted
/// longest ago is forgotten (a flood from many addresses costs bounded memory).
pub const FAILED_LOGIN_ADDRESSES: usize = 256;
/// Refusals logged per address per [`FAILED_LOGIN_WINDOW`].
pub const FAILED_LOGINS_LOGGED: u32 = 5;
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Per address: when its window began, lines logged in it, refusals not logged.
type Seen = HashMap<IpAddr, (Instant, u32, u64)>;

/// The per-address log limiter.
#[derive(Debug, Default)]
pub struct FailedLogins {
    seen: Mutex<Seen>,
}

impl FailedLogins {
    /// Counts a refusal from `client` at `now`: `Some(n)` if it is to be
    /// logged, `n` being the refusals from it not logged since the last line.
    pub fn note(&self, client: IpAddr, now: Instant) -> Option<u64> {
        note(
            &mut self.seen.lock().unwrap_or_else(|p| p.into_inner()),
            client,
            now,
        )
    }

    /// Addresses counted now.
    pub fn addresses(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn note(seen: &mut Seen, client: IpAddr, now: Instant) -> Option<u64> {
    if !seen.contains_key(&client) && seen.len() >= FAILED_LOGIN_ADDRESSES {
        let oldest = seen
            .iter()
            .min_by_key(|(_, (at, _, _))| *at)
            .map(|(ip, _)| *ip);
        if let Some(oldest) = oldest {
            seen.remove(&oldest);
        }
    }
    let entry = seen.entry(client).or_insert((now, 0, 0));
    if now.duration_since(entry.0) >= FAILED_LOGIN_WINDOW {
        *entry = (now, 0, entry.2);
    }
    if entry.1 < FAILED_LOGINS_LOGGED {
        entry.1 += 1;
        Some(std::mem::take(&mut entry.2))
    } else {
        entry.2 += 1;
        None
    }
}

/// The client behind each connection our TLS front relays to rumqttd.
///
/// rumqttd sees the relay's loopback address; the front records, by the
/// relay socket's local address, the TLS client's real one, and forgets it
/// when the connection ends (so the map holds at most `max_connections`).
#[derive(Debug, Default)]
pub struct RelayedPeers {
    peers: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

impl RelayedPeers {
    pub fn insert(&self, relay: SocketAddr, client: SocketAddr) {
        self.lock().insert(relay, client);
    }

    pub fn remove(&self, relay: &SocketAddr) {
        self.lock().remove(relay);
    }

    /// The real client behind `peer`, or `peer` itself when not relayed.
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        self.lock().get(&peer).copied().unwrap_or(peer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_a_few_times_per_address_and_window() {
        let failed = FailedLogins::default();
        let a: IpAddr = "192.168.1.66".parse().unwrap();
        let t0 = Instant::now();
        let logged: Vec<_> = (0..8).map(|_| failed.note(a, t0)).collect();
        assert_eq!(
            logged,
            [
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ],
            "five lines per window, then counted"
        );
        let other: IpAddr = "192.168.1.67".parse().unwrap();
        assert_eq!(
            failed.note(other, t0),
            Some(0),
            "another address has its own count"
        );
        let later = t0 + FAILED_LOGIN_WINDOW;
        assert_eq!(failed.note(a, later), Some(3), "the unlogged are summed");
        for i in 0..(FAILED_LOGIN_ADDRESSES as u32 + 10) {
            failed.note(IpAddr::from(i.to_be_bytes()), later);
        }
        assert_eq!(failed.addresses(), FAILED_LOGIN_ADDRESSES, "bounded");
    }

    #[test]
    fn a_relayed_connection_names_its_real_client_until_it_ends() {
        let peers = RelayedPeers::default();
        let relay: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let client: SocketAddr = "192.168.1.20:40000".parse().unwrap();
        peers.insert(relay, client);
        assert_eq!(peers.client(relay), client);
        peers.remove(&relay);
        assert_eq!(peers.client(relay), relay, "forgotten once the relay ends");
    }
}
