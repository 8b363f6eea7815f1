//! Network settings against slow and abusive clients: connection caps, header and request
//! timeouts, per-address rate limits, and which proxies' `X-Forwarded-For` is believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use clap::Args;

use super::ip_limit::IpLimits;

#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` names the client.
    /// From anyone else the header is ignored and the peer address is the client.
    #[arg(long, env = "HERO_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Most open client connections; more are closed at once.
    #[arg(long, env = "HERO_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,
    /// Most open connections from one address (IPv6: one /64); more are closed at once.
    #[arg(long, env = "HERO_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Longest a client may take to send a request's headers, or to idle between requests,
    /// or to read nothing of an answer before the connection is closed (milliseconds).
    #[arg(long, env = "HERO_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Longest one request may take, body included (milliseconds); 408 after that.
    #[arg(long, env = "HERO_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Sign-ins (guest, device, wallet, Google, nonces) and refreshes per minute from one address
    /// (0: no limit).
    #[arg(long, env = "HERO_IP_LIMIT_AUTH_PER_MINUTE", default_value_t = 30)]
    pub ip_limit_auth_per_minute: u32,
    /// Node registrations per minute from one address (0: no limit).
    #[arg(long, env = "HERO_IP_LIMIT_REGISTER_PER_MINUTE", default_value_t = 20)]
    pub ip_limit_register_per_minute: u32,
    /// Node heartbeats per minute from one address (0: no limit).
    #[arg(
        long,
        env = "HERO_IP_LIMIT_HEARTBEAT_PER_MINUTE",
        default_value_t = 1200
    )]
    pub ip_limit_heartbeat_per_minute: u32,
    /// New accounts per day from one address: guests, and first sign-ins with a wallet or a
    /// Google account (0: no limit). Accounts are free to make, so this is what keeps one person
    /// from making an army of them.
    #[arg(long, env = "HERO_IP_LIMIT_ACCOUNTS_PER_DAY", default_value_t = 20)]
    pub ip_limit_accounts_per_day: u32,
    /// An origin a browser frontend is served from (e.g. https://play.example.com), allowed to
    /// call the API from its pages (CORS). Repeatable or comma-separated; without any, browsers
    /// refuse cross-origin calls. `*` is refused: list the origins.
    #[arg(long = "cors-origin", env = "HERO_CORS_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
}

/// An allowed CORS origin: `scheme://host[:port]`, nothing else.
fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Err("list each origin instead of '*'".into());
    }
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not an origin: {e}"))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !s.ends_with('/');
    if !plain {
        return Err(format!(
            "{s:?} is not an origin: give scheme://host[:port] with no path, e.g. https://play.example.com"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    hero_serve::parse_cidr(s)
}

impl NetArgs {
    pub fn ip_limits(&self) -> IpLimits {
        IpLimits {
            auth_per_minute: self.ip_limit_auth_per_minute,
            register_per_minute: self.ip_limit_register_per_minute,
            heartbeat_per_minute: self.ip_limit_heartbeat_per_minute,
            accounts_per_day: self.ip_limit_accounts_per_day,
        }
    }

    pub fn serve_limits(&self) -> hero_serve::Limits {
        hero_serve::Limits {
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            header_read_timeout: std::time::Duration::from_millis(
                self.header_read_timeout_ms.max(100),
            ),
        }
    }
}

/// The client's address: the peer, or what a trusted proxy says in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    std::sync::Arc<NetArgs>: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let net: std::sync::Arc<NetArgs> = axum::extract::FromRef::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(ClientIp(hero_serve::client_ip(
            peer,
            &parts.headers,
            &net.trusted_proxy,
        )))
    }
}
