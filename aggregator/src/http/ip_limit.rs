//! Per-client-address rate limits for the unauthenticated endpoints an attacker would flood:
//! sign-ins (guest, device, wallet, Google, refresh), node registration and heartbeats, a
//! sliding minute per (address, kind); and new accounts (guest, wallet or Google), a sliding day
//! per address.
//! IPv6 clients count by their /64. The windows are this process's, or shared by every
//! replica through Redis ([`crate::auth::windows`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::ApiError;
use crate::auth::windows::Windows;

/// What a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Guest sign-up, device, wallet and Google sign-in, refresh.
    Auth,
    NodeRegistration,
    Heartbeat,
    /// A new account: a guest, or a first sign-in with a wallet or a Google account (per day).
    NewAccount,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Auth => "sign-in",
            Kind::NodeRegistration => "node registration",
            Kind::Heartbeat => "heartbeat",
            Kind::NewAccount => "new account",
        }
    }
}

/// Requests allowed per address, by kind (0: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct IpLimits {
    pub auth_per_minute: u32,
    pub register_per_minute: u32,
    pub heartbeat_per_minute: u32,
    pub accounts_per_day: u32,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub struct IpLimiter {
    limits: IpLimits,
    windows: Arc<Windows>,
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
    pub fn new(limits: IpLimits, windows: Arc<Windows>) -> Self {
        Self { limits, windows }
    }

    /// Counts one request of `kind` from `ip`, or refuses it with 429 and `Retry-After`.
    pub async fn check(&self, ip: IpAddr, kind: Kind, now_ms: i64) -> Result<(), ApiError> {
        let (limit, window_ms, per) = match kind {
            Kind::Auth => (self.limits.auth_per_minute, MINUTE_MS, "a minute"),
            Kind::NodeRegistration => (self.limits.register_per_minute, MINUTE_MS, "a minute"),
            Kind::Heartbeat => (self.limits.heartbeat_per_minute, MINUTE_MS, "a minute"),
            Kind::NewAccount => (self.limits.accounts_per_day, DAY_MS, "a day"),
        };
        if limit == 0 {
            return Ok(());
        }
        let key = format!("ip:{}:{}", kind.as_str(), client_key(ip));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.windows
            .hit(&key, limit, window_ms, now_ms)
            .await
            .map_err(|e| {
                metrics::counter!(super::metrics::IP_RATE_LIMITED, "kind" => kind.as_str())
                    .increment(1);
                ApiError::TooManyRequests {
                    message: format!(
                        "too many {} requests from your address ({limit} {per}): retry later",
                        kind.as_str()
                    ),
                    retry_after_secs: e.retry_after_secs,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> IpLimiter {
        IpLimiter::new(
            IpLimits {
                auth_per_minute: 2,
                register_per_minute: 1,
                heartbeat_per_minute: 0,
                accounts_per_day: 3,
            },
            Arc::new(Windows::local()),
        )
    }

    #[tokio::test]
    async fn limits_per_address_and_kind_then_the_window_slides() {
        let l = limiter();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a, Kind::Auth, 0).await.is_ok());
        assert!(l.check(a, Kind::Auth, 1).await.is_ok());
        match l.check(a, Kind::Auth, 2).await {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 60),
            other => panic!("{other:?}"),
        }
        assert!(l.check(b, Kind::Auth, 2).await.is_ok(), "another address");
        assert!(
            l.check(a, Kind::NodeRegistration, 2).await.is_ok(),
            "another kind"
        );
        assert!(
            l.check(a, Kind::Auth, 60_000).await.is_ok(),
            "a minute later"
        );
        for t in 0..1000 {
            assert!(
                l.check(a, Kind::Heartbeat, t).await.is_ok(),
                "0 is unlimited"
            );
        }
    }

    #[tokio::test]
    async fn new_accounts_count_per_day() {
        let l = limiter();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for t in 0..3 {
            l.check(a, Kind::NewAccount, t * 3_600_000).await.unwrap();
        }
        assert!(l.check(a, Kind::NewAccount, 20 * 3_600_000).await.is_err());
        assert!(l.check(a, Kind::NewAccount, DAY_MS).await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_counts_by_slash_64() {
        let l = limiter();
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let two: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(l.check(one, Kind::NodeRegistration, 0).await.is_ok());
        assert!(l.check(two, Kind::NodeRegistration, 0).await.is_err());
    }
}
