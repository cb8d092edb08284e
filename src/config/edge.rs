//! Flags for running at the network edge: behind reverse proxies
//! (trusted client-address headers) and across idle-dropping networks
//! (server heartbeats). README "Deploying" explains them together.

use crate::forwarded::{AddressHeader, Cidr};

/// Heartbeat and reverse-proxy flags (flattened into [`super::Config`]).
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeConfig {
    /// Seconds between WebSocket pings the server sends on every socket
    /// (0: none). Keep it well under the proxy's idle timeout (nginx's
    /// `proxy_read_timeout`, 60 s by default). Clients learn it from the
    /// `ping_interval` field of auth replies.
    #[arg(long, env = "HUBBUB_PING_INTERVAL", default_value_t = 25)]
    pub ping_interval: u64,

    /// Pings in a row a peer may leave unanswered (no frame at all from it)
    /// before the socket is closed with 4004; so a dead peer is closed at
    /// most (this + 1) x `--ping-interval` after its last frame.
    #[arg(long, env = "HUBBUB_PING_MISSES", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub ping_misses: u32,

    /// Reverse proxies (addresses or CIDR blocks, comma-separated, e.g.
    /// `127.0.0.1/32,10.0.0.0/8`) whose client-address header is believed.
    /// From any other peer the header is ignored. Default: none.
    #[arg(long, env = "HUBBUB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// Which header trusted proxies set: `x-forwarded-for` or `forwarded`
    /// (RFC 7239). Only this one is read, so a client cannot slip a forged
    /// copy of the other past a proxy that passes it through.
    #[arg(long, env = "HUBBUB_CLIENT_ADDRESS_HEADER", default_value = "x-forwarded-for")]
    pub client_address_header: AddressHeader,
}

impl EdgeConfig {
    /// The ping interval, `None` when heartbeats are off.
    pub fn ping_every(&self) -> Option<std::time::Duration> {
        (self.ping_interval > 0).then(|| std::time::Duration::from_secs(self.ping_interval))
    }
}
