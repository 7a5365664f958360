//! Downloading a `file_url` without letting a request reach inside the network it runs in.
//!
//! Every hop (the URL and each redirect) is checked on the addresses it resolves to: loopback,
//! private, link-local, unspecified, multicast and other non-global addresses are refused
//! unless the operator's allow-list ([`AllowList`], `DTC_FETCH_ALLOW`) names them, and the
//! connection is pinned to the checked addresses (a second lookup that answers differently
//! cannot be used). The URL parser reads `2130706433`, `0177.0.0.1` and `0x7f.1` as the IPv4
//! addresses they are, so those forms are checked like any other. Proxies from the environment
//! are not used: a proxy would resolve names where they cannot be checked.
//!
//! Failures say only "not allowed" or "unreachable" (and the HTTP status of a server that was
//! allowed and answered): a refused, a timed-out and a closed port read alike. Every fetch is
//! logged, without the URL's query (signed URLs carry credentials there).

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Addresses a fetch may reach although they are not public: networks (`10.0.0.0/8`, any
/// port) or single sockets (`127.0.0.1:9000`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<AllowEntry>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AllowEntry {
    Net(IpNet),
    Socket(SocketAddr),
}

impl AllowList {
    /// Also allow `socket` (the sandbox allows its simulator).
    pub fn with_socket(mut self, socket: SocketAddr) -> Self {
        self.0.push(AllowEntry::Socket(socket));
        self
    }

    fn allows(&self, addr: SocketAddr) -> bool {
        self.0.iter().any(|e| match e {
            AllowEntry::Net(net) => net.contains(&addr.ip()),
            AllowEntry::Socket(s) => *s == addr,
        })
    }
}

impl FromStr for AllowList {
    type Err = String;
    /// Comma- or space-separated CIDRs, IP addresses and `ip:port` sockets.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                if let Ok(net) = p.parse::<IpNet>() {
                    Ok(AllowEntry::Net(net))
                } else if let Ok(ip) = p.parse::<IpAddr>() {
                    Ok(AllowEntry::Net(IpNet::from(ip)))
                } else if let Ok(sock) = p.parse::<SocketAddr>() {
                    Ok(AllowEntry::Socket(sock))
                } else {
                    Err(format!(
                        "`{p}` is not a network (10.0.0.0/8), an address or an address:port"
                    ))
                }
            })
            .collect::<Result<_, _>>()
            .map(AllowList)
    }
}

impl<'de> Deserialize<'de> for AllowList {
    /// A string as in the environment, or a list of entries.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        let text = match Form::deserialize(d)? {
            Form::One(s) => s,
            Form::Many(v) => v.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `ip` is an address anyone on the internet could reach: not loopback, private,
/// link-local, unspecified, multicast, shared (CGNAT), documentation, benchmarking or reserved.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothes is judged as the IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_global_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            if s[0] == 0x2002 {
                return is_global_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Why a fetch failed, in the only words it may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("is not allowed: it is not an http(s) URL of a public address")]
    NotAllowed,
    #[error("is unreachable")]
    Unreachable,
    #[error("is unreachable: the server answered HTTP {0}")]
    Status(u16),
    #[error("is {0} bytes or more; at most {1} are taken")]
    TooBig(u64, usize),
    #[error("downloaded an empty file")]
    Empty,
}

/// How long a connection to a `file_url` host may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Downloads `file_url`s under an address policy.
#[derive(Clone, Debug)]
pub struct Fetcher {
    allow: Arc<AllowList>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(allow: AllowList, timeout: Duration) -> Self {
        Fetcher {
            allow: Arc::new(allow),
            timeout,
        }
    }

    /// The body at `url`, at most `max` bytes.
    pub async fn download(&self, url: &str, max: usize) -> Result<Vec<u8>, FetchError> {
        let started = std::time::Instant::now();
        let result = self.fetch(url, max).await;
        let shown = loggable(url);
        match &result {
            Ok(body) => {
                tracing::info!(url = %shown, bytes = body.len(), elapsed_ms = started.elapsed().as_millis() as u64, "file_url fetched")
            }
            Err(e) => tracing::warn!(url = %shown, outcome = %e, "file_url not fetched"),
        }
        metrics::counter!(
            "dtc_file_url_fetches_total",
            "outcome" => match &result {
                Ok(_) => "ok",
                Err(FetchError::NotAllowed) => "not_allowed",
                Err(_) => "failed",
            }
        )
        .increment(1);
        result
    }

    async fn fetch(&self, url: &str, max: usize) -> Result<Vec<u8>, FetchError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut url = Url::parse(url.trim()).map_err(|_| FetchError::NotAllowed)?;
        for _ in 0..=MAX_REDIRECTS {
            let (client, request_url) = self.pinned(&url).await?;
            let send = client.get(request_url).send();
            let mut resp = tokio::time::timeout_at(deadline, send)
                .await
                .map_err(|_| FetchError::Unreachable)?
                .map_err(|_| FetchError::Unreachable)?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or(FetchError::Status(resp.status().as_u16()))?;
                tracing::debug!(from = %loggable(url.as_str()), to = %loggable(next.as_str()), "file_url redirected");
                url = next;
                continue;
            }
            if !resp.status().is_success() {
                return Err(FetchError::Status(resp.status().as_u16()));
            }
            if let Some(len) = resp.content_length().filter(|&l| l > max as u64) {
                return Err(FetchError::TooBig(len, max));
            }
            let mut buf = Vec::new();
            loop {
                let chunk = tokio::time::timeout_at(deadline, resp.chunk())
                    .await
                    .map_err(|_| FetchError::Unreachable)?
                    .map_err(|_| FetchError::Unreachable)?;
                let Some(chunk) = chunk else { break };
                if buf.len() + chunk.len() > max {
                    return Err(FetchError::TooBig((buf.len() + chunk.len()) as u64, max));
                }
                buf.extend_from_slice(&chunk);
            }
            if buf.is_empty() {
                return Err(FetchError::Empty);
            }
            return Ok(buf);
        }
        Err(FetchError::Unreachable)
    }

    /// A client that can reach `url`'s host only at its checked addresses.
    async fn pinned(&self, url: &Url) -> Result<(reqwest::Client, Url), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::NotAllowed);
        }
        let port = url.port_or_known_default().ok_or(FetchError::NotAllowed)?;
        let builder = reqwest::Client::builder()
            .no_proxy()
            // A host that never answers is unreachable in seconds, not after the whole
            // download's time: the request that named it is waiting.
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // Names not pinned below resolve to nothing.
            .dns_resolver(Arc::new(NoLookups));
        let allowed = |addr: SocketAddr| is_global(addr.ip()) || self.allow.allows(addr);
        let builder = match url.host().ok_or(FetchError::NotAllowed)? {
            Host::Ipv4(ip) => check(allowed(SocketAddr::new(ip.into(), port)), builder)?,
            Host::Ipv6(ip) => check(allowed(SocketAddr::new(ip.into(), port)), builder)?,
            Host::Domain(name) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|_| FetchError::Unreachable)?
                    .collect();
                // Every address must pass: a name that also points inside is not fetched.
                if found.is_empty() {
                    return Err(FetchError::Unreachable);
                }
                if !found.iter().all(|a| allowed(*a)) {
                    return Err(FetchError::NotAllowed);
                }
                builder.resolve_to_addrs(name, &found)
            }
        };
        let client = builder.build().map_err(|_| FetchError::Unreachable)?;
        Ok((client, url.clone()))
    }
}

fn check(
    allowed: bool,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, FetchError> {
    if allowed {
        Ok(builder)
    } else {
        Err(FetchError::NotAllowed)
    }
}

/// A resolver that resolves nothing: every name a fetch may use is pinned beforehand.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            Err::<reqwest::dns::Addrs, _>("names are resolved and checked before a fetch".into())
        })
    }
}

/// `scheme://host:port/path`: no credentials, no query.
fn loggable(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_global() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_url_parser_reads_other_ipv4_forms_as_the_address() {
        for form in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            let u = Url::parse(form).unwrap();
            assert_eq!(u.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{form}");
        }
    }

    #[test]
    fn the_allow_list_reads_networks_addresses_and_sockets() {
        let list: AllowList = "10.0.0.0/8, 127.0.0.1:9000 ::1".parse().unwrap();
        assert!(list.allows("10.9.9.9:80".parse().unwrap()));
        assert!(list.allows("127.0.0.1:9000".parse().unwrap()));
        assert!(!list.allows("127.0.0.1:9001".parse().unwrap()));
        assert!(list.allows("[::1]:443".parse().unwrap()));
        assert!("example.com".parse::<AllowList>().is_err());
        assert_eq!("".parse::<AllowList>().unwrap(), AllowList::default());
    }

    #[tokio::test]
    async fn internal_urls_are_refused_before_any_connection() {
        let f = Fetcher::new(AllowList::default(), Duration::from_secs(2));
        for url in [
            "http://127.0.0.1:1/x",
            "http://localhost:1/x",
            "http://2130706433:1/",
            "http://0177.0.0.1:1/",
            "http://[::1]:1/",
            "http://[::ffff:127.0.0.1]:1/",
            "http://0.0.0.0:1/",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "http://user:pw@127.0.0.1:1/",
        ] {
            assert_eq!(
                f.download(url, 1024).await,
                Err(FetchError::NotAllowed),
                "{url}"
            );
        }
    }
}
