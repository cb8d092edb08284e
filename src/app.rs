//! The node's shared state: configuration, store, hub, auth and id minting,
//! built once at start and handed to every connection, plus the node's
//! background tasks (hub workers, the worker-id lease) and their shutdown.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::broker::{self, Broker, random_hex};
use crate::config::Config;
use crate::error::{BrokerError, Error};
use crate::fanout::{self, FanoutQueue};
use crate::hub::{Hub, HubOptions};
use crate::model::UserId;
use crate::push::{Push, StoreMutes};
use crate::ratelimit::{KeyedBuckets, SharedUserBudget, UserBudget};
use crate::snowflake::Generator;
use crate::store::{self, Store};

/// Everything a request handler may use.
pub struct App {
    /// The node's configuration.
    pub config: Config,
    /// Durable data.
    pub store: Arc<dyn Store>,
    /// Live sockets here, users everywhere.
    pub hub: Arc<Hub>,
    /// Passwords and tokens.
    pub auth: Auth,
    /// Each user's write budget, shared by the user's sockets on every node.
    pub user_writes: Box<dyn UserBudget>,
    /// Snowflake ids with this node's (leased) worker id.
    pub ids: Generator,
    /// Groups each user may still create (`--groups-per-hour`, per node).
    pub group_creates: KeyedBuckets<UserId>,
    /// Reports each user may still file (`--reports-per-hour`), shared by
    /// every node like `user_writes`.
    pub reports: Box<dyn UserBudget>,
    /// Posts waiting for fan-out to followers.
    pub fanout: FanoutQueue,
    /// Push notifications for users with no live socket.
    pub push: Arc<Push>,
    /// The fan-out worker's receiver, taken once by the server.
    pub fanout_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<fanout::Job>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The file holding the data directory's id.
const DATA_ID_FILE: &str = "data-dir-id";

/// The name of the lease on a snowflake worker id.
fn worker_lease(id: u16) -> String {
    format!("worker:{id}")
}

impl App {
    /// Opens the store and broker the configuration names, leases the
    /// worker id (refusing to start if another node holds it), prepares
    /// auth, and starts the background tasks.
    pub async fn build(config: Config) -> Result<Arc<App>, Error> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", config.data_dir.display())))?;
        let store = store::open(&config).await?;
        let options = HubOptions {
            max_per_user: config.max_sockets_per_user,
            recover_limit: (config.outbound_queue / 2).clamp(1, config.history_size.max(1)),
            presence_ttl: Duration::from_secs(config.presence_ttl.max(1)),
        };
        let hub = Arc::new(Hub::new(options, |sink| broker::open(&config, sink)).await?);
        hub.set_replay_filter(Arc::new(crate::redact::RedactDeleted::new(store.clone())));
        check_shared_data(&config, &hub).await?;
        let lease_ttl = Duration::from_secs(config.presence_ttl.max(3));
        let lease = worker_lease(config.worker_id);
        if !hub.broker().lease(&lease, hub.node_id(), lease_ttl).await? {
            hub.broker().close().await;
            return Err(BrokerError::LeaseHeld(format!(
                "snowflake worker id {} is already leased by another running node; give each node its own --worker-id",
                config.worker_id
            ))
            .into());
        }
        let auth = Auth::new(&config, store.clone()).await?;
        let ids = Generator::new(config.worker_id);
        let (fanout, rx) = FanoutQueue::new();
        let fanout_rx = std::sync::Mutex::new(Some(rx));
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = hub.spawn_tasks(stop_rx.clone()).await;
        let push = Arc::new(Push::new(&config, Arc::new(StoreMutes(store.clone())))?);
        tasks.extend(push.spawn(store.clone(), hub.broker().clone(), hub.node_id().to_owned(), stop_rx.clone()));
        let reload = Duration::from_secs(config.jwt_keys_reload_secs);
        tasks.push(tokio::spawn(auth.keyring().clone().run_reloads(reload, stop_rx.clone())));
        let renew = renew_lease(hub.broker().clone(), lease, hub.node_id().to_owned(), lease_ttl, stop_rx);
        tasks.push(tokio::spawn(renew));
        let user_writes =
            Box::new(SharedUserBudget::new(hub.broker().clone(), config.user_writes_burst, config.user_writes_per_sec));
        let per_hour = f64::from(config.groups_per_hour);
        let group_creates = KeyedBuckets::new(per_hour, per_hour / 3600.0);
        let reports_per_hour = f64::from(config.reports_per_hour);
        let reports =
            Box::new(SharedUserBudget::named(hub.broker().clone(), "r", reports_per_hour, reports_per_hour / 3600.0));
        Ok(Arc::new(App {
            config,
            store,
            hub,
            auth,
            user_writes,
            ids,
            group_creates,
            reports,
            fanout,
            push,
            fanout_rx,
            stop,
            tasks: Mutex::new(tasks),
        }))
    }

    /// Stops the background tasks, gives the worker-id lease back, and
    /// closes the broker. Call after every socket has ended.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        let broker = self.hub.broker();
        if let Err(e) = broker.release(&worker_lease(self.config.worker_id), self.hub.node_id()).await {
            tracing::warn!(error = %e, "could not release the worker-id lease (it expires by itself)");
        }
        broker.close().await;
    }
}

/// The id of this data directory, created on first use (atomically, so
/// nodes starting together on one directory agree on it).
fn data_dir_id(dir: &Path) -> Result<String, Error> {
    let path = dir.join(DATA_ID_FILE);
    let io = |e: std::io::Error| Error::Internal(format!("{}: {e}", path.display()));
    if !path.exists() {
        let tmp = dir.join(format!(".{DATA_ID_FILE}.{}", random_hex(8)));
        std::fs::write(&tmp, random_hex(16)).map_err(io)?;
        // hard_link fails if another node created the file first; theirs wins.
        let _ = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(std::fs::read_to_string(&path).map_err(io)?.trim().to_owned())
}

/// The SQLite store lives in one data directory: every node of a cluster
/// must use the same one, or their data would silently split. The first
/// node claims the broker for its data directory's id; a node with another
/// data directory refuses to start.
async fn check_shared_data(config: &Config, hub: &Hub) -> Result<(), Error> {
    let id = data_dir_id(&config.data_dir)?;
    let forever = Duration::from_secs(10 * 365 * 24 * 3600);
    if hub.broker().lease("data-dir", &id, forever).await? {
        return Ok(());
    }
    hub.broker().close().await;
    Err(BrokerError::LeaseHeld(format!(
        "the Redis broker already serves nodes that use another data directory; with SQLite every node must \
         share one data directory ({} here), or their data would silently split",
        config.data_dir.display()
    ))
    .into())
}

/// Renews the worker-id lease every third of its lifetime. Losing it to
/// another node is logged loudly: ids may collide until one of them stops.
async fn renew_lease(
    broker: Arc<dyn Broker>,
    name: String,
    node: String,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ttl / 3) => {}
            _ = stop.changed() => return,
        }
        match broker.lease(&name, &node, ttl).await {
            Ok(true) => {}
            Ok(false) => tracing::error!(lease = name, "another node took this node's worker id: ids may collide"),
            Err(e) => tracing::warn!(error = %e, lease = name, "worker-id lease not renewed"),
        }
    }
}
