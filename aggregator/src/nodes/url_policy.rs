//! Which node URLs the aggregator will call: http/https only, never link-local or cloud
//! metadata addresses, loopback and private ranges only when the operator allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use url::{Host, Url};

/// Hostnames of cloud metadata services, refused whatever they resolve to.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressClass {
    Public,
    /// Loopback, RFC 1918, CGNAT, IPv6 unique-local: fine for a LAN or local run.
    Private,
    /// Link-local, metadata, unspecified, multicast, broadcast, documentation.
    Forbidden,
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        // Azure's wire server (metadata, extensions).
        || ip == Ipv4Addr::new(168, 63, 129, 16)
        || o[0] == 0
        // Benchmarking (198.18.0.0/15), IETF protocol assignments (192.0.0.0/24) and the
        // reserved 240.0.0.0/4: nothing a node should live on.
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || o[0] >= 240
    {
        AddressClass::Forbidden
    } else if ip.is_loopback() || ip.is_private() || (o[0] == 100 && (o[1] & 0xC0) == 64) {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address an IPv6 address reaches: IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn reached_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return Some(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return Some(v4(seg[1], seg[2]));
    }
    None
}

fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            // Mapped, NAT64 and 6to4 addresses reach IPv4 addresses: judge those.
            if let Some(v4) = reached_ipv4(v6) {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            // Local-use NAT64 (64:ff9b:1::/48) translates to anything, private ranges included.
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
                return AddressClass::Forbidden;
            }
            // Deprecated IPv4-compatible addresses (::a.b.c.d) have no business here.
            if seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return AddressClass::Forbidden;
            }
            if v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254)
            {
                AddressClass::Forbidden
            } else if v6.is_loopback() || (seg[0] & 0xfe00) == 0xfc00 {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
    }
}

/// Resolves node host names for the calls the aggregator makes, refusing any address the
/// policy refuses: a name checked at registration cannot later be pointed (DNS rebinding) at
/// a metadata service or, unless allowed, a private address.
pub struct PolicyResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| match classify(a.ip()) {
                    AddressClass::Public => true,
                    AddressClass::Private => allow_private,
                    AddressClass::Forbidden => false,
                })
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address a node may use").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Who runs a node in an open network (no operator accounts): its host, so one machine holds
/// one seat however many names it registers under. IPv6 hosts count by their /64, which one
/// subscriber usually holds whole; an IPv6 address that reaches an IPv4 one (mapped, NAT64,
/// 6to4) counts as that IPv4 host, so one machine cannot take several seats by spelling its
/// address several ways.
pub fn host_operator(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("host {v4}"),
        IpAddr::V6(v6) => match reached_ipv4(v6) {
            Some(v4) => format!("host {v4}"),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("host {prefix}/64")
            }
        },
    }
}

/// Whether `raw` is a URL that names its host by a DNS name (not an IP address).
pub fn names_host(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| matches!(u.host(), Some(Host::Domain(_))))
}

/// A node URL that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    /// Normalised: no trailing slash.
    pub url: String,
    /// The first address the host resolved to.
    pub address: IpAddr,
}

/// Checks a node URL; on success returns it normalised with the address it resolves to.
pub async fn check_node_url(raw: &str, allow_private: bool) -> Result<CheckedUrl, String> {
    if raw.len() > 255 {
        return Err("node url is longer than 255 characters".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("node url is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("node url must use http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("node url must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("node url must not have a query or fragment".into());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match url.host() {
        None => return Err("node url has no host".into()),
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if METADATA_HOSTS.contains(&name.as_str()) {
                return Err("node url points at a cloud metadata service".into());
            }
            let lookup = tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::lookup_host((name.as_str(), port)),
            )
            .await
            .map_err(|_| format!("resolving {name} timed out"))?
            .map_err(|e| format!("cannot resolve {name}: {e}"))?;
            let addrs: Vec<IpAddr> = lookup.map(|a| a.ip()).collect();
            if addrs.is_empty() {
                return Err(format!("{name} resolves to no address"));
            }
            addrs
        }
    };
    for &ip in &addresses {
        match classify(ip) {
            AddressClass::Forbidden => {
                return Err(format!(
                    "node url resolves to {ip}, a link-local, metadata or reserved address"
                ));
            }
            AddressClass::Private if !allow_private => {
                return Err(format!(
                    "node url resolves to {ip}, a loopback or private address \
                     (start the aggregator with --allow-private-node-urls to accept it)"
                ));
            }
            _ => {}
        }
    }
    let mut url = url;
    if let Some(Host::Ipv6(v6)) = url.host()
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        // One spelling per address: `[::ffff:a.b.c.d]` is `a.b.c.d` (so the URL stays unique).
        url.set_ip_host(IpAddr::V4(v4))
            .map_err(|()| "node url host cannot be an IP address".to_string())?;
    }
    Ok(CheckedUrl {
        url: url.as_str().trim_end_matches('/').to_string(),
        address: addresses[0],
    })
}

/// The HTTP client of node calls.
pub fn node_client(allow_private_node_urls: bool) -> anyhow::Result<reqwest::Client> {
    use anyhow::Context;
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        // A node must answer itself: a redirect could point the aggregator at an address
        // the node URL policy refuses (metadata services, internal hosts).
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(PolicyResolver {
            allow_private: allow_private_node_urls,
        }))
        .connect_timeout(std::time::Duration::from_secs(5))
        // Node calls go straight to the node: an HTTP(S)_PROXY in the environment would
        // see (and could alter) every vote.
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// Why a node's answer could not be read whole.
pub enum ReadError {
    /// It says or turns out to be longer than the bound.
    TooLarge,
    /// The connection broke off (or timed out) while it was read.
    Broken(reqwest::Error),
}

/// The body of a node's answer, read as it arrives and given up past `max` bytes (so a node
/// cannot make the aggregator hold more).
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Broken)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_are_read_up_to_their_bound() {
        let answer = |n: usize| reqwest::Response::from(axum::http::Response::new(vec![b'x'; n]));
        assert_eq!(
            read_capped(answer(10), 10).await.ok().map(|b| b.len()),
            Some(10)
        );
        assert_eq!(
            read_capped(answer(0), 10).await.ok().map(|b| b.len()),
            Some(0)
        );
        assert!(matches!(
            read_capped(answer(11), 10).await,
            Err(ReadError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn public_http_urls_pass() {
        let checked = check_node_url("http://8.8.8.8:8001/", false).await.unwrap();
        assert_eq!(checked.url, "http://8.8.8.8:8001");
        assert_eq!(checked.address, IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)));
        assert!(!names_host(&checked.url));
        assert!(names_host("http://node.example.com:8001"));
        assert!(
            check_node_url("https://[2001:4860::1]", false)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn metadata_and_link_local_are_always_refused() {
        for url in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]:80",
            "http://[::ffff:169.254.169.254]",
            "http://metadata.google.internal",
            "http://0.0.0.0:80",
            "http://100.100.100.200",
            "http://[fd00:ec2::254]",
            "http://[64:ff9b::a9fe:a9fe]",
            "http://[2002:a9fe:a9fe::1]",
            "http://[::a9fe:a9fe]",
            "http://198.18.0.1",
            "http://198.19.255.1",
            "http://192.0.0.8",
            "http://240.0.0.1",
            "http://[64:ff9b:1::a00:1]",
            "http://168.63.129.16",
        ] {
            assert!(check_node_url(url, true).await.is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn the_call_resolver_drops_refused_addresses() {
        use reqwest::dns::Resolve;
        let name = |h: &str| h.parse::<reqwest::dns::Name>().unwrap();
        let strict = PolicyResolver {
            allow_private: false,
        };
        assert!(strict.resolve(name("localhost")).await.is_err());
        let lenient = PolicyResolver {
            allow_private: true,
        };
        let addrs: Vec<_> = lenient.resolve(name("localhost")).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn hosts_count_by_address_or_ipv6_slash_64() {
        assert_eq!(host_operator("10.1.2.3".parse().unwrap()), "host 10.1.2.3");
        assert_eq!(
            host_operator("2001:db8:1:2:aaaa::1".parse().unwrap()),
            host_operator("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_eq!(
            host_operator("2001:db8:1:2::1".parse().unwrap()),
            "host 2001:db8:1:2::/64"
        );
        // One IPv4 host, however its address is spelled.
        for spelling in [
            "1.2.3.4",
            "::ffff:1.2.3.4",
            "64:ff9b::102:304",
            "2002:102:304:1::1",
            "2002:102:304:2::1",
        ] {
            assert_eq!(
                host_operator(spelling.parse().unwrap()),
                "host 1.2.3.4",
                "{spelling}"
            );
        }
    }

    #[tokio::test]
    async fn a_mapped_address_is_spelled_as_ipv4() {
        let checked = check_node_url("http://[::ffff:7f00:1]:18151/", true)
            .await
            .unwrap();
        assert_eq!(checked.url, "http://127.0.0.1:18151");
    }

    #[tokio::test]
    async fn private_needs_the_flag() {
        for url in [
            "http://127.0.0.1:8001",
            "http://10.1.2.3",
            "http://192.168.1.5",
            "http://[::1]:80",
            "http://localhost:8001",
        ] {
            assert!(check_node_url(url, false).await.is_err(), "{url}");
            assert!(check_node_url(url, true).await.is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn other_schemes_and_shapes_are_refused() {
        for url in [
            "ftp://8.8.8.8",
            "file:///etc/passwd",
            "http://user:pw@8.8.8.8",
            "not a url",
            "http://8.8.8.8/?x=1",
        ] {
            assert!(check_node_url(url, true).await.is_err(), "{url}");
        }
    }
}
