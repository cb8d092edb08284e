//! The machine side: file descriptor limits, a process's resident memory,
//! and the server's `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Raises this process's open-file limit as far as allowed (the hard limit
/// too, when running with the privilege to). Returns the soft limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_max < wanted {
            let more = libc::rlimit { rlim_cur: wanted, rlim_max: wanted };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &more) == 0 {
                return wanted;
            }
        }
        let soft = libc::rlimit { rlim_cur: lim.rlim_max.min(wanted.max(lim.rlim_cur)), rlim_max: lim.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 { soft.rlim_cur } else { lim.rlim_cur }
    }
}

/// Resident set size of process `pid` in bytes (Linux `/proc`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The conventional /metrics address of a node listening on `target`: the
/// same host, port + 1000 (`loadtest/scripts/server.sh`).
pub fn metrics_addr_of(target: SocketAddr) -> SocketAddr {
    SocketAddr::new(target.ip(), target.port().wrapping_add(1000))
}

/// Fetches `GET /metrics` and returns each unlabelled-or-labelled series
/// (histogram buckets left out) with its value.
pub async fn fetch_metrics(addr: SocketAddr) -> Result<BTreeMap<String, f64>, String> {
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: loadtest\r\n\r\n").await.map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let status = text.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("GET /metrics answered {status}"));
        }
        Ok(parse_metrics(text.split_once("\r\n\r\n").map_or("", |(_, b)| b)))
    };
    tokio::time::timeout(Duration::from_secs(5), work).await.map_err(|_| "GET /metrics timed out".to_string())?
}

/// Parses Prometheus text: `name{labels} value` lines, skipping comments and buckets.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The change of every series between two scrapes (new series count from 0),
/// leaving out those that did not change.
pub fn metrics_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t  1234 kB\n"), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_bytes(std::process::id()).unwrap_or(0) > 0);
    }

    #[test]
    fn metrics_parse_and_diff() {
        let a =
            parse_metrics("# HELP x\nhubbub_sockets_open 3\nhubbub_x_bucket{le=\"1\"} 2\nhubbub_e{code=\"a b\"} 1\n");
        assert_eq!(a.get("hubbub_sockets_open"), Some(&3.0));
        assert_eq!(a.get("hubbub_e{code=\"a b\"}"), Some(&1.0));
        assert_eq!(a.len(), 2);
        let b = parse_metrics("hubbub_sockets_open 5\nhubbub_e{code=\"a b\"} 1\nhubbub_new 2\n");
        let d = metrics_delta(&a, &b);
        assert_eq!(d.get("hubbub_sockets_open"), Some(&2.0));
        assert_eq!(d.get("hubbub_new"), Some(&2.0));
        assert!(!d.contains_key("hubbub_e{code=\"a b\"}"));
    }
}
