//! Requests the server makes to other hosts (webhook deliveries, and every later outbound
//! request), and the guard they all pass: only `http`/`https` URLs without credentials in them,
//! no redirects, and no loopback, private, link-local, shared or unspecified target, checked on
//! every address the name resolves to, at each new connection (so a name that later resolves
//! inward is refused too). `allow_local = true` (`allow_local_webhooks`) lifts the address rule
//! for registries whose receivers live on the same network.
//!
//! May call: nothing else in the crate.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether an address is inside the server's own network rather than out on the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(100, 64, 0, 0), 10).expect("valid net");
            let this_network = v4.octets()[0] == 0;
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || shared.contains(&v4)
                || this_network
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let unique_local = ipnet::Ipv6Net::new("fc00::".parse().expect("valid"), 7).expect("valid net");
            let link_local = ipnet::Ipv6Net::new("fe80::".parse().expect("valid"), 10).expect("valid net");
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || unique_local.contains(&v6)
                || link_local.contains(&v6)
        }
    }
}

/// Checks a URL the server is asked to send to: the scheme, no user info, and (unless
/// `allow_local`) a host that is not an internal address or a `localhost` name. Names are
/// checked again when they resolve ([`client`]).
pub fn check_url(url: &str, allow_local: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("only http and https URLs are allowed, not `{}:`", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    let host = parsed.host().ok_or("the URL has no host")?;
    if !allow_local {
        let internal = match host {
            url::Host::Ipv4(ip) => is_internal(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_internal(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if internal {
            return Err(format!(
                "`{host}` is a loopback, private or link-local address (set allow_local_webhooks = true to allow it)"
            ));
        }
    }
    Ok(parsed)
}

/// Resolves names and drops internal addresses; a name with only internal addresses fails.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| !is_internal(a.ip())).collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("`{host}` resolves only to internal addresses ({addrs:?}); refused").into();
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for outbound requests: no redirects followed, a time limit, and (unless
/// `allow_local`) the address guard on every connection. Callers still pass each URL through
/// [`check_url`] first, because an address literal is never resolved.
pub fn client(allow_local: bool, timeout: Duration) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if !allow_local {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build().expect("the outbound HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_targets_and_odd_urls() {
        for bad in [
            "http://127.0.0.1:9000/hook",
            "http://127.1/hook",
            "http://0.0.0.0/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://user:pass@example.com/",
            "file:///etc/passwd",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} should be refused");
        }
        assert!(check_url("https://hooks.example.com/sluice", false).is_ok());
        assert!(check_url("http://93.184.215.14/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok(), "allowed when the operator says so");
        assert!(check_url("http://user:pass@127.0.0.1/", true).is_err(), "credentials never");
        assert!(check_url("file:///etc/passwd", true).is_err(), "schemes never");
    }
}
