//! Ports for the child processes the tests start (redis-server, hubbub
//! nodes, metrics listeners).
//!
//! A port taken with `bind(0)` and released comes from the kernel's
//! ephemeral range, the same range every outgoing connection's local port
//! comes from. Between the release and the child's own bind, a connection
//! the box opens (a node to Cassandra, to Redis) can take it, and the child
//! fails with "address in use": CI saw nginx fail so, after the nodes had
//! opened their CQL pools. Ports below the ephemeral range are never handed
//! out by the kernel, so only another listener can hold one: we check that
//! by binding, and no two callers in this process get the same port.

use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out.
const LOW: u32 = 15_000;

/// The kernel's ephemeral range, `(first, last)`.
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<u32>().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32_768, 60_999))
}

/// A loopback port that is free now and outside the kernel's ephemeral
/// range, so nothing but another listener can take it before the caller's
/// child binds it. Panics when none is free (a test cannot go on).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (eph_lo, eph_hi) = ephemeral_range();
    // The window below the ephemeral range, or above it when that is small.
    let (lo, hi) = if eph_lo >= LOW + 2_000 { (LOW, eph_lo) } else { (eph_hi + 1, 65_536) };
    if hi <= lo + 100 {
        // No room outside the range: fall back to the kernel's choice.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        return l.local_addr().expect("addr").port();
    }
    let span = hi - lo;
    // Start where another test process (another binary) is unlikely to be.
    let _ = NEXT.compare_exchange(0, 1 + std::process::id() * 7_919 % span, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..span {
        let port = lo + NEXT.fetch_add(1, Ordering::SeqCst) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback port in {lo}..{hi}");
}
