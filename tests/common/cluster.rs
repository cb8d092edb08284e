//! Real processes for the many-node tests: a `redis-server` on a free port
//! and `hubbub` nodes run from the built binary, sharing one data directory
//! (SQLite, the JWT key) and that Redis. With `HUBBUB_TEST_SCYLLA=host:port`
//! the nodes store in that CQL node instead (`--scylla`), in one keyspace
//! per data directory. Every wait has a timeout; children are killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Target, WAIT, free_port, http_get, scylla_keyspace_for, start_wait, test_scylla};

/// True when running under CI (`CI=true`): missing tools fail the tests.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A `redis-server` child process.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server, or returns `None` (with a loud message) when it
    /// is not installed. Under CI a missing redis-server fails the test.
    pub async fn start() -> Option<Redis> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            assert!(!in_ci(), "redis-server is not installed, and CI=true: .ci/run must install it");
            // Straight to stderr, past the test harness's output capture.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!! SKIPPING: redis-server is not installed; install it to run the many-node tests !!!!\n"
            );
            return None;
        }
        let mut r = Redis { port: free_port(), child: None, dir: tempfile::tempdir().expect("tempdir") };
        r.restart().await;
        Some(r)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port, empty (no persistence).
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if ping(self.port).await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server never answered PING");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends one inline command to Redis; returns the first reply line.
pub async fn redis_command(port: u16, command: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("connect to redis in time")
        .expect("connect to redis");
    s.write_all(format!("{command}\r\n").as_bytes()).await.expect("write");
    let mut line = String::new();
    tokio::time::timeout(WAIT, BufReader::new(s).read_line(&mut line)).await.expect("reply in time").expect("read");
    line.trim_end().to_owned()
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(("127.0.0.1", port))).await
    else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut buf)).await, Ok(Ok(_)) if &buf == b"+PONG\r\n")
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `hubbub` node running as its own process.
pub struct Node {
    pub addr: SocketAddr,
    child: Child,
}

/// The command line of a node.
pub fn node_command(dir: &Path, redis: &str, worker_id: u16, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubbub"));
    c.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--redis")
        .arg(redis)
        .arg("--worker-id")
        .arg(worker_id.to_string())
        .arg("--bcrypt-cost")
        .arg("4")
        .arg("--presence-ttl")
        .arg("3")
        .arg("--broker-timeout-ms")
        .arg("1000")
        .arg("--metrics-listen")
        .arg("off")
        .env("HUBBUB_LOG", "warn,hubbub=info")
        .env_remove("HUBBUB_SCYLLA")
        .stdin(Stdio::null());
    if let Some(nodes) = test_scylla() {
        c.arg("--scylla")
            .arg(nodes)
            .arg("--scylla-keyspace")
            .arg(scylla_keyspace_for(dir))
            .arg("--scylla-migrate")
            .arg("--scylla-request-timeout-ms")
            .arg("20000");
    }
    // The nodes' logs go to the terminal only when asked for.
    if std::env::var_os("HUBBUB_TEST_NODE_LOGS").is_some() {
        c.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    }
    c
}

impl Node {
    /// Starts a node and waits until it answers `/healthz`.
    pub async fn start(dir: &Path, redis: &str, worker_id: u16) -> Node {
        Self::start_with_args(dir, redis, worker_id, &[]).await
    }

    /// [`Node::start`] with extra command-line flags.
    pub async fn start_with_args(dir: &Path, redis: &str, worker_id: u16, extra: &[&str]) -> Node {
        let port = free_port();
        let child = node_command(dir, redis, worker_id, port).args(extra).spawn().expect("spawn hubbub");
        let mut node = Node { addr: SocketAddr::from(([127, 0, 0, 1], port)), child };
        let deadline = tokio::time::Instant::now() + start_wait();
        loop {
            if let Ok((200, _)) = http_get(node.addr, "/healthz", &[]).await {
                return node;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node with worker id {worker_id} exited at start: {status}");
            }
            assert!(tokio::time::Instant::now() < deadline, "node never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends the node a signal by name (`STOP`, `CONT`, ...): `STOP`
    /// freezes the whole process, as a node swapped out or paused by its
    /// host would be.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn kill(self) {
        drop(self);
    }

    /// Stops the node with SIGTERM (graceful) and waits for it.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(tokio::time::Instant::now() < deadline, "node did not stop in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Target for Node {
    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three nodes (worker ids 1-3) on one data directory (and on CQL one
/// keyspace) and one Redis.
pub struct Cluster {
    // Fields drop in order: the nodes go before Redis.
    pub nodes: Vec<Node>,
    pub redis: Redis,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Cluster {
    /// Stops the nodes, then drops the cluster's CQL keyspace (on CQL).
    fn drop(&mut self) {
        self.nodes.clear();
        super::drop_test_keyspace(&self.dir);
    }
}

impl Cluster {
    /// Starts Redis and three nodes, or `None` when redis-server is absent
    /// outside CI.
    pub async fn start() -> Option<Cluster> {
        Self::start_with_args(&[]).await
    }

    /// [`Cluster::start`] with extra command-line flags for every node.
    pub async fn start_with_args(extra: &[&str]) -> Option<Cluster> {
        let redis = Redis::start().await?;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        // All at once, as a deployment would: they race to create the
        // database and the JWT key, and must agree.
        let url = redis.url();
        let (a, b, c) = tokio::join!(
            Node::start_with_args(&dir, &url, 1, extra),
            Node::start_with_args(&dir, &url, 2, extra),
            Node::start_with_args(&dir, &url, 3, extra)
        );
        let nodes = vec![a, b, c];
        Some(Cluster { nodes, redis, dir, _tmp: tmp })
    }
}
