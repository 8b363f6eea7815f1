//! Per-client-address rate limits for the unauthenticated endpoints an attacker would flood:
//! guest sign-up, device login, refresh, node registration and heartbeats. A fixed one-minute
//! window per (address, kind); IPv6 clients count by their /64. Kept in memory, swept as it
//! grows, so one flood cannot grow it without bound.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::ApiError;

/// What a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Guest sign-up, device login, refresh.
    Auth,
    NodeRegistration,
    Heartbeat,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Auth => "sign-in",
            Kind::NodeRegistration => "node registration",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

/// Requests allowed per minute and address, by kind (0: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct IpLimits {
    pub auth_per_minute: u32,
    pub register_per_minute: u32,
    pub heartbeat_per_minute: u32,
}

const WINDOW_MS: i64 = 60_000;
/// How often (in checks) expired windows are swept.
const SWEEP_EVERY: u64 = 1024;

pub struct IpLimiter {
    limits: IpLimits,
    windows: DashMap<(IpAddr, Kind), (i64, u32)>,
    checks: AtomicU64,
}

/// The address a client is counted by: IPv4 as is, IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl IpLimiter {
    pub fn new(limits: IpLimits) -> Self {
        Self {
            limits,
            windows: DashMap::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of `kind` from `ip`, or refuses it with 429 and `Retry-After`.
    pub fn check(&self, ip: IpAddr, kind: Kind, now_ms: i64) -> Result<(), ApiError> {
        let limit = match kind {
            Kind::Auth => self.limits.auth_per_minute,
            Kind::NodeRegistration => self.limits.register_per_minute,
            Kind::Heartbeat => self.limits.heartbeat_per_minute,
        };
        if limit == 0 {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.windows
                .retain(|_, (start, _)| now_ms - *start < WINDOW_MS);
        }
        let mut window = self
            .windows
            .entry((client_key(ip), kind))
            .or_insert((now_ms, 0));
        if now_ms - window.0 >= WINDOW_MS {
            *window = (now_ms, 0);
        }
        if window.1 >= limit {
            let wait_ms = (window.0 + WINDOW_MS - now_ms).max(1);
            metrics::counter!(super::metrics::IP_RATE_LIMITED, "kind" => kind.as_str())
                .increment(1);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many {} requests from your address ({limit} a minute): retry later",
                    kind.as_str()
                ),
                retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(60),
            });
        }
        window.1 += 1;
        Ok(())
    }

    /// Windows held in memory (bounded by the sweep).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> IpLimiter {
        IpLimiter::new(IpLimits {
            auth_per_minute: 2,
            register_per_minute: 1,
            heartbeat_per_minute: 0,
        })
    }

    #[test]
    fn limits_per_address_and_kind_then_resets() {
        let l = limiter();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a, Kind::Auth, 0).is_ok());
        assert!(l.check(a, Kind::Auth, 1).is_ok());
        match l.check(a, Kind::Auth, 2) {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 60),
            other => panic!("{other:?}"),
        }
        assert!(l.check(b, Kind::Auth, 2).is_ok(), "another address");
        assert!(
            l.check(a, Kind::NodeRegistration, 2).is_ok(),
            "another kind"
        );
        assert!(l.check(a, Kind::Auth, 60_000).is_ok(), "a new minute");
        for t in 0..1000 {
            assert!(l.check(a, Kind::Heartbeat, t).is_ok(), "0 is unlimited");
        }
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        let l = limiter();
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let two: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(l.check(one, Kind::NodeRegistration, 0).is_ok());
        assert!(l.check(two, Kind::NodeRegistration, 0).is_err());
    }

    #[test]
    fn memory_is_swept() {
        let l = limiter();
        for i in 0..5_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            let _ = l.check(ip, Kind::Auth, i64::from(i) * 100);
        }
        assert!(l.len() < 2_000, "{} windows kept", l.len());
    }
}
