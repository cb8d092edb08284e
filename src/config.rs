//! Configuration: command-line flags, each also settable through a
//! `HUBBUB_*` environment variable or a key of the configuration file
//! (`--config`, see [`crate::config_file`]). Defaults run a working single node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod edge;
pub use edge::EdgeConfig;

/// The `hubbub` command line.
#[derive(Debug, Parser)]
#[command(name = "hubbub", version, about = "A real-time, WebSocket-first chat server")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags for serving (the default when no subcommand is given).
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands. Without one, `hubbub` serves.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Config),
    /// Apply the storage schema and exit (ScyllaDB: the `cql/` files in
    /// order; SQLite: its migrations). Safe to run repeatedly.
    Migrate(Config),
    /// Operator commands (reports, bans, account deletion). They open the
    /// same store and broker as the nodes (same flags and `HUBBUB_*`
    /// variables: `--data-dir`, `--scylla`, `--redis`), so they act on a
    /// running cluster. Each prints what it did; bad input exits non-zero.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Configuration files: `check` one, or print the commented `example`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Access-token signing keys in the data directory: `list`, `rotate`,
    /// `retire` (README "Signing-key rotation").
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `hubbub keys ...`: they act on the data directory's keys (`--data-dir`);
/// running nodes pick the change up within `--jwt-keys-reload-secs` or on SIGHUP.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keys with their state (pending, signing, verifying, expired).
    List {
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Add a new signing key. Nodes verify with it at once and sign with it
    /// after `--jwt-key-activation-secs`; the old key keeps verifying until
    /// every token it signed has expired.
    Rotate {
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Stop accepting tokens signed by key KID (renames its file to
    /// `*.retired`). Refused while tokens it signed may be live, unless `--force`
    /// (those users then refresh or log in again).
    Retire {
        /// The key id (from `hubbub keys list` or the JWKS).
        kid: String,
        /// Retire even though tokens it signed may still be live.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: Box<Config>,
    },
}

impl KeysCommand {
    /// The configuration the command runs with.
    pub fn config(&self) -> &Config {
        match self {
            KeysCommand::List { config } | KeysCommand::Rotate { config } | KeysCommand::Retire { config, .. } => {
                config
            }
        }
    }
}

/// `hubbub config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (FILE, else `--config`/`HUBBUB_CONFIG`)
    /// together with the flags and environment, and print every effective
    /// setting and where it came from (passwords in URLs redacted).
    /// Exits non-zero, naming the problem, on a bad file.
    Check {
        /// The file to check.
        file: Option<PathBuf>,
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Print a configuration file with every setting, its help and its
    /// default, commented out (`deploy/hubbub.example.toml`).
    Example,
}

/// `hubbub admin ...`. The store and broker flags follow the subcommand
/// (`hubbub admin ban bob --redis redis://...`).
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List reports, newest first.
    Reports {
        /// Only reports not resolved yet.
        #[arg(long)]
        open: bool,
        /// Most reports to print.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[command(flatten)]
        config: Config,
    },
    /// Act on one report.
    #[command(subcommand)]
    Report(AdminReport),
    /// Ban a user: refuse their logins, revoke every session and refresh
    /// token, and close every socket of theirs on every node (close code
    /// 4501; needs `--redis` to reach running nodes).
    Ban {
        username: String,
        /// Why (kept with the ban, printed by the command).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        config: Config,
    },
    /// Lift a ban (the user logs in again).
    Unban {
        username: String,
        #[command(flatten)]
        config: Config,
    },
    /// Delete a user's account as `account.delete` does, and close their sockets.
    DeleteUser {
        username: String,
        #[command(flatten)]
        config: Config,
    },
}

/// `hubbub admin report ...`.
#[derive(Debug, Subcommand)]
pub enum AdminReport {
    /// Mark a report resolved.
    Resolve {
        /// The report's id (from `hubbub admin reports`).
        id: i64,
        /// What was done (kept with the report).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        config: Config,
    },
}

impl AdminCommand {
    /// The store and broker configuration the command runs with.
    pub fn config(&self) -> &Config {
        match self {
            AdminCommand::Reports { config, .. }
            | AdminCommand::Ban { config, .. }
            | AdminCommand::Unban { config, .. }
            | AdminCommand::DeleteUser { config, .. }
            | AdminCommand::Report(AdminReport::Resolve { config, .. }) => config,
        }
    }
}

impl Cli {
    /// The serving configuration, whichever way it was given.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c) | Command::Migrate(c)) => c,
            Some(Command::Admin(a)) => a.config().clone(),
            Some(Command::Config(ConfigCommand::Check { config, .. })) => *config,
            Some(Command::Keys(k)) => k.config().clone(),
            Some(Command::Config(ConfigCommand::Example)) | None => self.config,
        }
    }

    /// True when the command line asks for `hubbub migrate`.
    pub fn is_migrate(&self) -> bool {
        matches!(self.command, Some(Command::Migrate(_)))
    }
}

/// When SQLite writes are answered (`--sync`; store/sqlite/engine.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Every commit's WAL is fsynced before it is answered (as SQLite's
    /// `synchronous=FULL`, with the fsync on its own thread).
    Full,
    /// `synchronous=NORMAL`: commits reach the OS (survive a process crash);
    /// the WAL is fsynced at checkpoints only.
    Normal,
}

/// Everything a node needs to serve. Every limit a client can run into is
/// here and in protocol.md.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// A TOML configuration file. Its keys are the long flag names with `_`
    /// for `-`; flags and `HUBBUB_*` variables override it.
    #[arg(long = "config", env = "HUBBUB_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "HUBBUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and generated keys (created if missing).
    #[arg(long, env = "HUBBUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Browser origins allowed to open /ws (comma-separated, e.g.
    /// `https://chat.example.com`). `*` allows any. Requests without an
    /// Origin header (websocat, mobile apps) and same-host origins are
    /// always allowed.
    #[arg(long, env = "HUBBUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// The host names (with `:port` when not the scheme's default) under
    /// which browsers reach this server, comma-separated, e.g.
    /// `chat.example.com`. When set, only an Origin naming one of these
    /// counts as same-host; the request's Host header (which DNS rebinding
    /// controls) is no longer trusted for that. Empty: the Host header.
    #[arg(long, env = "HUBBUB_PUBLIC_HOSTS", value_delimiter = ',')]
    pub public_hosts: Vec<String>,

    /// PKCS#8 PEM file with the Ed25519 key that signs access tokens. When
    /// absent, a key is generated on first start into the data directory.
    #[arg(long, env = "HUBBUB_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "HUBBUB_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Lifetime of refresh tokens (a session), in seconds.
    #[arg(long, env = "HUBBUB_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl: u64,

    /// Milliseconds after a refresh token was replaced during which it may
    /// still be presented (the client lost the reply); later, presenting it
    /// revokes the whole session.
    #[arg(long, env = "HUBBUB_REFRESH_REUSE_GRACE_MS", default_value_t = 10_000)]
    pub refresh_reuse_grace_ms: u64,

    /// bcrypt cost factor (4-31).
    #[arg(long, env = "HUBBUB_BCRYPT_COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Seconds an unauthenticated socket may stay open.
    #[arg(long, env = "HUBBUB_AUTH_TIMEOUT", default_value_t = 10)]
    pub auth_timeout: u64,

    /// Largest WebSocket message accepted, in bytes (larger: close 1009).
    #[arg(long, env = "HUBBUB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest reply page, in bytes: `message.sync`, `message.history` and
    /// `timeline.*` pages stop adding items before passing it (one item is
    /// always sent), and their cursor continues after the last item sent.
    #[arg(long, env = "HUBBUB_MAX_REPLY_BYTES", default_value_t = 256 * 1024)]
    pub max_reply_bytes: usize,

    /// Longest direct message text, in characters.
    #[arg(long, env = "HUBBUB_MAX_MESSAGE_CHARS", default_value_t = 4000)]
    pub max_message_chars: usize,

    /// Most members a group may have (its owner included).
    #[arg(long, env = "HUBBUB_MAX_GROUP_MEMBERS", default_value_t = 1000)]
    pub max_group_members: usize,

    /// Groups one user may create per hour (per node; a burst of this many,
    /// then refilling evenly over the hour).
    #[arg(long, env = "HUBBUB_GROUPS_PER_HOUR", default_value_t = 20)]
    pub groups_per_hour: u32,

    /// Most users one user may block (`user.block` answers `limit_exceeded` past it).
    #[arg(long, env = "HUBBUB_MAX_BLOCKS", default_value_t = 1000)]
    pub max_blocks: usize,

    /// Reports one user may file per hour (across nodes; a burst of this
    /// many, then refilling evenly over the hour).
    #[arg(long, env = "HUBBUB_REPORTS_PER_HOUR", default_value_t = 20)]
    pub reports_per_hour: u32,

    /// Longest group title, in characters.
    #[arg(long, env = "HUBBUB_MAX_GROUP_TITLE_CHARS", default_value_t = 100)]
    pub max_group_title_chars: usize,

    /// Longest group topic, in characters.
    #[arg(long, env = "HUBBUB_MAX_GROUP_TOPIC_CHARS", default_value_t = 500)]
    pub max_group_topic_chars: usize,

    /// SQLite's `synchronous` for the WAL (README, "Durability: --sync"):
    /// `full` (default) fsyncs the WAL at every commit, before any reply:
    /// neither a process crash nor a power loss loses an acknowledged
    /// write. `normal` fsyncs only at checkpoints: a process crash still
    /// loses nothing acknowledged, a power loss (or kernel crash) may lose
    /// the last acknowledged writes not yet checkpointed.
    #[arg(long, env = "HUBBUB_SYNC", value_enum, default_value_t = SyncMode::Full)]
    pub sync: SyncMode,

    /// Sustained requests per second allowed per socket.
    #[arg(long, env = "HUBBUB_RATE_PER_SEC", default_value_t = 50.0)]
    pub rate_per_sec: f64,

    /// Burst of requests allowed per socket above the sustained rate.
    #[arg(long, env = "HUBBUB_RATE_BURST", default_value_t = 100.0)]
    pub rate_burst: f64,

    /// Failed logins allowed per username before throttling (refills one per 30 s).
    #[arg(long, env = "HUBBUB_LOGIN_FAILURES_PER_USER", default_value_t = 10)]
    pub login_failures_per_user: u32,

    /// Failed logins allowed per source address before throttling (refills one per 3 s).
    #[arg(long, env = "HUBBUB_LOGIN_FAILURES_PER_ADDR", default_value_t = 50)]
    pub login_failures_per_addr: u32,

    /// Failed logins allowed per (username, source address) before that
    /// address is throttled for that account (refills one per 60 s).
    #[arg(long, env = "HUBBUB_LOGIN_FAILURES_PER_USER_ADDR", default_value_t = 5)]
    pub login_failures_per_user_addr: u32,

    /// Accounts that may be registered per source address (IPv6: per /64)
    /// per hour.
    #[arg(long, env = "HUBBUB_REGISTER_PER_ADDR", default_value_t = 10)]
    pub register_per_addr: u32,

    /// Accounts that may be registered per minute on this node, from all
    /// addresses together.
    #[arg(long, env = "HUBBUB_REGISTER_GLOBAL_PER_MIN", default_value_t = 120)]
    pub register_global_per_min: u32,

    /// bcrypt hashes running at once (0: one per CPU).
    #[arg(long, env = "HUBBUB_BCRYPT_THREADS", default_value_t = 0)]
    pub bcrypt_threads: usize,

    /// bcrypt jobs that may wait for a thread; more are refused with `rate_limited`.
    #[arg(long, env = "HUBBUB_BCRYPT_QUEUE", default_value_t = 16)]
    pub bcrypt_queue: usize,

    /// bcrypt jobs admitted (running or waiting) per source address and per account.
    #[arg(long, env = "HUBBUB_BCRYPT_PER_KEY", default_value_t = 2)]
    pub bcrypt_per_key: usize,

    /// Sustained writes per second per user, across all of the user's
    /// sockets on every node (message.send, post.*, follow.*, group.*,
    /// user.block, report.create...): a token bucket in the broker (Redis
    /// with --redis), failing open to a per-node bucket when Redis is slow.
    #[arg(long, env = "HUBBUB_USER_WRITES_PER_SEC", default_value_t = 20.0)]
    pub user_writes_per_sec: f64,

    /// Burst of writes per user above the sustained rate.
    #[arg(long, env = "HUBBUB_USER_WRITES_BURST", default_value_t = 100.0)]
    pub user_writes_burst: f64,

    /// Unauthenticated WebSocket sockets allowed at once per source address
    /// (IPv6: per /64).
    #[arg(long, env = "HUBBUB_MAX_UNAUTH_PER_ADDR", default_value_t = 64)]
    pub max_unauth_per_addr: usize,

    /// Outbound frames queued per socket before it is closed as a slow consumer.
    #[arg(long, env = "HUBBUB_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,

    /// Seconds a write to a socket may take before the socket is dropped.
    #[arg(long, env = "HUBBUB_WRITE_TIMEOUT", default_value_t = 10)]
    pub write_timeout: u64,

    /// Open sockets allowed per user.
    #[arg(long, env = "HUBBUB_MAX_SOCKETS_PER_USER", default_value_t = 16)]
    pub max_sockets_per_user: usize,

    /// Open connections allowed on this node.
    #[arg(long, env = "HUBBUB_MAX_CONNECTIONS", default_value_t = 200_000)]
    pub max_connections: usize,

    /// Snowflake worker id of this node (0-1023); must differ between nodes.
    #[arg(long, env = "HUBBUB_WORKER_ID", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1023))]
    pub worker_id: u16,

    /// Milliseconds a storage call may take before it fails as `unavailable`.
    #[arg(long, env = "HUBBUB_STORE_TIMEOUT_MS", default_value_t = 5000)]
    pub store_timeout_ms: u64,

    /// How far back (ms) `message.sync` cursors stay, to catch writes that
    /// committed out of id order. Must exceed the store's commit bound on
    /// message ids (`store::MESSAGE_MAX_AGE_MS`, 5000), which start-up
    /// enforces: a smaller value could let sync skip a late message.
    #[arg(long, env = "HUBBUB_SYNC_HORIZON_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(5_001..))]
    pub sync_horizon_ms: u64,

    /// Authors with fewer followers than this have their posts copied into
    /// followers' home timelines on write; others are merged at read time.
    #[arg(long, env = "HUBBUB_FANOUT_THRESHOLD", default_value_t = 1000)]
    pub fanout_threshold: u64,

    /// Home timelines reach back this many days.
    #[arg(long, env = "HUBBUB_HOME_TIMELINE_DAYS", default_value_t = 30)]
    pub home_timeline_days: u64,

    /// Most users one user may follow.
    #[arg(long, env = "HUBBUB_MAX_FOLLOWING", default_value_t = 5000)]
    pub max_following: u64,
    /// Redis URLs (`redis://host:port`, comma-separated) for running many
    /// nodes. Empty: the in-process broker (one node). Several: channels and
    /// keys are spread over them by a consistent hash.
    #[arg(long, env = "HUBBUB_REDIS", value_delimiter = ',')]
    pub redis: Vec<String>,

    /// Events kept per user inbox for resume (a Redis stream or an in-memory ring).
    #[arg(long, env = "HUBBUB_HISTORY_SIZE", default_value_t = 256)]
    pub history_size: usize,

    /// Seconds an inbox's history lives after its last event.
    #[arg(long, env = "HUBBUB_HISTORY_TTL", default_value_t = 24 * 3600)]
    pub history_ttl: u64,

    /// Milliseconds any single broker (Redis) call may take.
    #[arg(long, env = "HUBBUB_BROKER_TIMEOUT_MS", default_value_t = 2000)]
    pub broker_timeout_ms: u64,

    /// Seconds a node's presence record lives without a refresh (refreshed
    /// every third of it); also the worker-id lease's lifetime.
    #[arg(long, env = "HUBBUB_PRESENCE_TTL", default_value_t = 30)]
    pub presence_ttl: u64,

    /// ScyllaDB (or Cassandra 4+) contact points, `host:port[,host:port...]`.
    /// When given, the ScyllaDB store is used instead of SQLite.
    #[arg(long = "scylla", env = "HUBBUB_SCYLLA", value_delimiter = ',')]
    pub scylla_nodes: Vec<String>,

    /// Keyspace of the ScyllaDB store (letters, digits, `_`; created by migrate).
    #[arg(long, env = "HUBBUB_SCYLLA_KEYSPACE", default_value = "hubbub")]
    pub scylla_keyspace: String,

    /// Replication factor, in every datacenter, of the keyspace migrate
    /// creates (NetworkTopologyStrategy).
    #[arg(long, env = "HUBBUB_SCYLLA_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub scylla_replication_factor: u16,

    /// Consistency level of ScyllaDB reads and writes: one, two, three,
    /// quorum, all, local_quorum, each_quorum, local_one.
    #[arg(long, env = "HUBBUB_SCYLLA_CONSISTENCY", default_value = "local_quorum")]
    pub scylla_consistency: String,

    /// Milliseconds one ScyllaDB request may take (client-side timeout),
    /// also the time allowed to connect at start.
    #[arg(long, env = "HUBBUB_SCYLLA_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub scylla_request_timeout_ms: u64,

    /// Apply the ScyllaDB schema (`hubbub migrate`) at start-up.
    #[arg(long, env = "HUBBUB_SCYLLA_MIGRATE")]
    pub scylla_migrate: bool,

    /// Seconds to wait for sockets and storage to finish at shutdown.
    #[arg(long, env = "HUBBUB_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Log lines as `text` (human-readable; colours only on a terminal) or
    /// `json` (one object per line). Filter with `HUBBUB_LOG` (e.g. `info,hubbub=debug`).
    #[arg(long, env = "HUBBUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Address of the Prometheus `/metrics` listener, kept apart from the
    /// public listener so metrics are not served to the world; `off`
    /// disables it. Expose it beyond loopback only on a private network.
    #[arg(long, env = "HUBBUB_METRICS_LISTEN", default_value = "127.0.0.1:9464",
          value_parser = parse_metrics_listen)]
    pub metrics_listen: MetricsListen,

    /// Seconds between checks of the data directory's signing keys (a
    /// rotation is picked up within this; SIGHUP checks at once).
    #[arg(long, env = "HUBBUB_JWT_KEYS_RELOAD_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub jwt_keys_reload_secs: u64,

    /// Seconds after `hubbub keys rotate` before nodes sign with the new
    /// key (they verify with it at once): longer than the reload interval,
    /// so every node knows a key before any token it signed reaches them.
    #[arg(long, env = "HUBBUB_JWT_KEY_ACTIVATION_SECS", default_value_t = 60)]
    pub jwt_key_activation_secs: u64,

    /// Push notifications (issue 16).
    #[command(flatten)]
    pub push: PushConfig,

    /// Heartbeats and reverse proxies (issue 17).
    #[command(flatten)]
    pub edge: EdgeConfig,
}

/// Push notification flags: devices, the outbound queue, Web Push and the
/// Matrix push gateway. README "Push notifications" explains them.
#[derive(Debug, Clone, clap::Args)]
pub struct PushConfig {
    /// Push devices a user may register.
    #[arg(long, env = "HUBBUB_PUSH_MAX_DEVICES", default_value_t = 10)]
    pub push_max_devices: usize,

    /// Notifications queued per device at most; more are dropped (counted).
    #[arg(long, env = "HUBBUB_PUSH_MAX_PENDING", default_value_t = 100)]
    pub push_max_pending: usize,

    /// Seconds after which an undeliverable notification is given up.
    #[arg(long, env = "HUBBUB_PUSH_GIVE_UP_SECS", default_value_t = 24 * 3600)]
    pub push_give_up_secs: u64,

    /// First retry delay (ms); doubles per attempt, with jitter.
    #[arg(long, env = "HUBBUB_PUSH_RETRY_BASE_MS", default_value_t = 2000)]
    pub push_retry_base_ms: u64,

    /// Longest retry delay (ms).
    #[arg(long, env = "HUBBUB_PUSH_RETRY_MAX_MS", default_value_t = 600_000)]
    pub push_retry_max_ms: u64,

    /// How long a worker holds a claimed notification before another node
    /// may take it over (ms); longer than the HTTP timeout.
    #[arg(long, env = "HUBBUB_PUSH_LEASE_MS", default_value_t = 60_000)]
    pub push_lease_ms: u64,

    /// How often a worker looks for due notifications (ms); an idle worker
    /// slows down to 5 times this (a notification queued on the same node
    /// wakes it at once).
    #[arg(long, env = "HUBBUB_PUSH_POLL_MS", default_value_t = 1000)]
    pub push_poll_ms: u64,

    /// Notifications sent at once per node.
    #[arg(long, env = "HUBBUB_PUSH_CONCURRENCY", default_value_t = 16)]
    pub push_concurrency: usize,

    /// Timeout of one HTTP request to a push service or gateway (ms).
    #[arg(long, env = "HUBBUB_PUSH_HTTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub push_http_timeout_ms: u64,

    /// Web Push `TTL` header: seconds a push service keeps an undelivered notification.
    #[arg(long, env = "HUBBUB_PUSH_TTL", default_value_t = 24 * 3600)]
    pub push_ttl: u64,

    /// Accept `http://` endpoints and gateway URLs on loopback addresses
    /// (tests and development only; https is required otherwise).
    #[arg(long, env = "HUBBUB_PUSH_ALLOW_HTTP")]
    pub push_allow_http: bool,

    /// The Matrix push gateway (e.g. Sygnal) base URL; `gateway` devices
    /// need it. Notifications go to `{url}/_matrix/push/v1/notify`.
    #[arg(long, env = "HUBBUB_PUSH_GATEWAY_URL")]
    pub push_gateway_url: Option<String>,

    /// VAPID private key (PKCS#8 PEM, P-256). Default: generated on first
    /// start as `vapid-p256.pem` in the data directory. Every node must use
    /// the same key (a shared data directory, or this flag).
    #[arg(long, env = "HUBBUB_VAPID_PRIVATE_KEY")]
    pub vapid_private_key: Option<PathBuf>,

    /// VAPID `sub` claim: a contact for push services.
    #[arg(long, env = "HUBBUB_VAPID_SUBJECT", default_value = "mailto:admin@localhost")]
    pub vapid_subject: String,

    /// Most intake entries (stored messages that may need notifications)
    /// one intake pass turns into jobs with one store call.
    #[arg(long, env = "HUBBUB_PUSH_INTAKE", default_value_t = 512)]
    pub push_intake: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `/metrics` listener's address; `None` when turned `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

fn parse_metrics_listen(s: &str) -> Result<MetricsListen, String> {
    match s {
        "off" | "" => Ok(MetricsListen(None)),
        a => a
            .parse()
            .map(|a| MetricsListen(Some(a)))
            .map_err(|e| format!("{e} (an address like 127.0.0.1:9464, or off)")),
    }
}

impl Config {
    /// Defaults with the given data directory (for tests and embedding),
    /// and no `/metrics` listener (embedded servers pick their own).
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Config {
        let mut c = Cli::parse_from(["hubbub"]).into_config();
        c.data_dir = dir.into();
        c.metrics_listen = MetricsListen(None);
        c
    }

    /// [`Self::bcrypt_threads`], with 0 meaning the number of CPUs.
    pub fn bcrypt_threads_or_cpus(&self) -> usize {
        match self.bcrypt_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// [`Self::store_timeout_ms`] as a duration.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }
}
