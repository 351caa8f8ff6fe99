//! Where the reference server may POST push notifications. A push
//! Subscribe names any URL, so a server shared on a network could be made
//! to reach the cloud metadata service or other link-local hosts on the
//! subscriber's behalf (server-side request forgery). By default those
//! addresses are refused; an allow list states exactly where notifications
//! may go instead.
//!
//! Names are checked after resolution (a resolver that drops refused
//! addresses), literal addresses before the POST; the server's client
//! follows no redirects and uses no proxy, so neither can route around it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The push destination policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushDestinations {
    /// `None`: everything but the default refusals; `Some`: only these.
    allow: Option<Vec<IpNet>>,
}

/// A network in an allow list that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("push_allow `{0}` is not a network like 10.0.0.0/8 or an address like 192.0.2.7")]
pub struct BadNetwork(pub String);

/// Addresses of cloud metadata services outside the link-local ranges.
const METADATA: [IpAddr; 3] = [
    // Alibaba Cloud's metadata service.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Azure's platform endpoint (wire server).
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    // AWS's instance metadata service over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

impl PushDestinations {
    /// Only the listed networks (a bare address is a network of one).
    pub fn allow_only<S: AsRef<str>>(networks: &[S]) -> Result<Self, BadNetwork> {
        let nets = networks
            .iter()
            .map(|n| {
                let text = n.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadNetwork(text.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PushDestinations { allow: Some(nets) })
    }

    /// Whether a notification may be POSTed to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match &self.allow {
            Some(nets) => nets.iter().any(|n| n.contains(&ip)),
            None => !refused_by_default(ip),
        }
    }

    /// Whether a URL that names an address literally may be POSTed to
    /// (a URL with a host name is judged when the name is resolved).
    pub fn allows_literal(&self, url: &str) -> bool {
        literal_address(url).is_none_or(|ip| self.allows(ip))
    }

    /// The policy in a few words, for logs and the `serve` banner.
    pub fn describe(&self) -> String {
        match &self.allow {
            None => "anywhere but link-local, metadata, multicast and unspecified addresses".into(),
            Some(nets) if nets.is_empty() => "nowhere".into(),
            Some(nets) => {
                let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
                format!("only {}", list.join(", "))
            }
        }
    }

    /// A resolver for the server's HTTP client that keeps only allowed
    /// addresses of a name.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            policy: self.clone(),
        })
    }
}

/// The IP address a URL names literally, if it does.
fn literal_address(url: &str) -> Option<IpAddr> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn refused_by_default(ip: IpAddr) -> bool {
    if METADATA.contains(&ip) || ip.is_unspecified() || ip.is_multicast() {
        return true;
    }
    match ip {
        // 169.254.0.0/16 holds 169.254.169.254, the metadata address of
        // AWS, Azure, GCP and OpenStack.
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Resolves names for push POSTs, keeping only allowed addresses.
pub struct GuardedResolver {
    policy: PushDestinations,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if kept.is_empty() {
                tracing::warn!(%host, ?found, "push destination refused by the push policy");
                return Err(format!(
                    "push destination {host} resolves only to refused addresses ({})",
                    policy.describe()
                )
                .into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn by_default_metadata_and_link_local_are_refused() {
        let p = PushDestinations::default();
        for bad in [
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "168.63.129.16",
            "fd00:ec2::254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "::ffff:169.254.169.254",
        ] {
            assert!(!p.allows(ip(bad)), "{bad}");
        }
        for good in ["127.0.0.1", "::1", "10.0.0.5", "192.0.2.7", "2001:db8::1"] {
            assert!(p.allows(ip(good)), "{good}");
        }
    }

    #[test]
    fn an_allow_list_states_exactly_where() {
        let p = PushDestinations::allow_only(&["10.0.0.0/8", "192.0.2.7", "169.254.7.0/24"])
            .expect("valid");
        assert!(p.allows(ip("10.200.1.1")));
        assert!(p.allows(ip("192.0.2.7")));
        assert!(!p.allows(ip("192.0.2.8")));
        assert!(!p.allows(ip("127.0.0.1")));
        // Listing a link-local network on purpose allows it.
        assert!(p.allows(ip("169.254.7.9")));
        assert!(p.describe().contains("10.0.0.0/8"));
        assert!(p.allows_literal("http://10.1.1.1:8080/push"));
        assert!(p.allows_literal("http://listener.example/push"));
        assert!(!p.allows_literal("http://127.0.0.1/push"));
        let d = PushDestinations::default();
        assert!(!d.allows_literal("http://169.254.169.254/latest/meta-data/"));
        assert!(!d.allows_literal("http://[fe80::1]:80/x"));
        assert!(d.allows_literal("http://[::1]:80/x"));
        let e = PushDestinations::allow_only(&["10.0.0.0/40"]).expect_err("bad prefix");
        assert!(e.to_string().contains("10.0.0.0/40"));
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let refuse_loopback = PushDestinations::allow_only(&["192.0.2.0/24"]).expect("valid");
        let name: Name = "localhost".parse().expect("a name");
        let err = refuse_loopback
            .resolver()
            .resolve(name)
            .await
            .err()
            .expect("localhost is refused");
        assert!(err.to_string().contains("refused"), "{err}");
        let name: Name = "localhost".parse().expect("a name");
        let addrs: Vec<SocketAddr> = PushDestinations::default()
            .resolver()
            .resolve(name)
            .await
            .expect("localhost is allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
