//! The node's shared state: configuration, store, hub, auth and id minting,
//! built once at start and handed to every connection.

use std::sync::Arc;

use crate::auth::Auth;
use crate::broker;
use crate::config::Config;
use crate::error::Error;
use crate::fanout::{self, FanoutQueue};
use crate::hub::Hub;
use crate::snowflake::Generator;
use crate::store::{self, Store};

/// Everything a request handler may use.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    pub auth: Auth,
    pub ids: Generator,
    pub fanout: FanoutQueue,
    /// The fan-out worker's receiver, taken once by the server.
    pub fanout_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<fanout::Job>>>,
}

impl App {
    /// Opens the store and broker the configuration names and prepares auth.
    pub async fn build(config: Config) -> Result<Arc<App>, Error> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", config.data_dir.display())))?;
        let store = store::open(&config).await?;
        let hub = Hub::new(config.max_sockets_per_user, |sink| broker::open(&config, sink)).await?;
        let auth = Auth::new(&config, store.clone()).await?;
        let ids = Generator::new(config.worker_id);
        let (fanout, rx) = FanoutQueue::new();
        let fanout_rx = std::sync::Mutex::new(Some(rx));
        Ok(Arc::new(App { config, store, hub, auth, ids, fanout, fanout_rx }))
    }
}
