//! Connection caps: how many connections are open in all and from each client address,
//! counted by guards that give their slot back when dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::Limits;
use crate::telemetry;

/// The unit one client is counted by: an IPv4 address, or an IPv6 /64 (one subscriber
/// usually gets a whole /64, so counting single IPv6 addresses would be no cap at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpKey {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(v4),
            IpAddr::V6(v6) => IpKey::V6Net((v6.to_bits() >> 64) as u64),
        }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    TotalCap,
    IpCap,
}

impl Refusal {
    /// The `reason` label of `hero_http_connections_refused_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::TotalCap => "total_cap",
            Refusal::IpCap => "ip_cap",
        }
    }
}

/// The open connections of one server.
#[derive(Debug)]
pub(crate) struct ConnectionCaps {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only clients with at least one open connection, so the map stays as small as the
    /// total cap however many addresses come and go.
    per_ip: HashMap<IpKey, usize>,
}

/// One open connection; its slot is given back when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    caps: Arc<ConnectionCaps>,
    key: IpKey,
}

impl ConnectionCaps {
    pub(crate) fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    /// Takes a slot for a connection from `ip`, unless a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let key = IpKey::from(ip);
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(Refusal::TotalCap);
        }
        let from_ip = open.per_ip.get(&key).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(Refusal::IpCap);
        }
        open.total += 1;
        open.per_ip.insert(key, from_ip + 1);
        drop(open);
        telemetry::connection_opened();
        Ok(ConnectionGuard {
            caps: Arc::clone(self),
            key,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // The counters are updated in one step each, so a panic elsewhere cannot leave them
        // half-written: a poisoned lock is still good.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn counts(&self, ip: IpAddr) -> (usize, usize, usize) {
        let open = self.lock();
        let from_ip = open.per_ip.get(&IpKey::from(ip)).copied().unwrap_or(0);
        (open.total, from_ip, open.per_ip.len())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.caps.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_ip.remove(&self.key);
            }
        }
        drop(open);
        telemetry::connection_closed();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn caps(max_total: usize, max_per_ip: usize) -> Arc<ConnectionCaps> {
        ConnectionCaps::new(&Limits {
            max_connections: max_total,
            max_connections_per_ip: max_per_ip,
            header_read_timeout: Duration::from_secs(1),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_cap_refuses_only_that_address() {
        let caps = caps(10, 2);
        let _a = caps.admit(ip("192.0.2.1")).unwrap();
        let _b = caps.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(caps.admit(ip("192.0.2.1")).unwrap_err(), Refusal::IpCap);
        let _c = caps.admit(ip("192.0.2.2")).unwrap();
    }

    #[test]
    fn total_cap_refuses_everyone() {
        let caps = caps(2, 2);
        let _a = caps.admit(ip("192.0.2.1")).unwrap();
        let _b = caps.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(caps.admit(ip("192.0.2.3")).unwrap_err(), Refusal::TotalCap);
    }

    #[test]
    fn dropping_a_guard_frees_its_slot_and_forgets_idle_addresses() {
        let caps = caps(1, 1);
        let guard = caps.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(caps.counts(ip("192.0.2.1")), (1, 1, 1));
        drop(guard);
        assert_eq!(caps.counts(ip("192.0.2.1")), (0, 0, 0));
        let _again = caps.admit(ip("192.0.2.9")).unwrap();
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_cap() {
        let caps = caps(10, 1);
        let _a = caps.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            caps.admit(ip("2001:db8:1:2:ffff::7")).unwrap_err(),
            Refusal::IpCap
        );
        let _other_net = caps.admit(ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_the_ipv4_address() {
        assert_eq!(
            IpKey::from(ip("::ffff:192.0.2.1")),
            IpKey::V4(Ipv4Addr::new(192, 0, 2, 1))
        );
        let caps = caps(10, 1);
        let _v4 = caps.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            caps.admit(ip("::ffff:192.0.2.1")).unwrap_err(),
            Refusal::IpCap
        );
    }
}
