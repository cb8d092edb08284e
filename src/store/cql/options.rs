//! Connecting to ScyllaDB: options from the configuration, the session
//! (bounded in time so a missing or wrong server fails fast), migration.

use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;
use scylla::statement::{Consistency, SerialConsistency};

use super::{intake_cursor, schema};
use crate::config::Config;
use crate::error::StoreError;

/// Least time one schema statement of `migrate` may take.
const DDL_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the driver asks the nodes whether they agree on the schema
/// after a schema change (its default is 200 ms; one node agrees at once).
const SCHEMA_AGREEMENT_POLL: Duration = Duration::from_millis(20);

/// What the ScyllaDB store needs from the configuration.
#[derive(Clone, Debug)]
pub struct ScyllaOptions {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub replication_factor: u16,
    pub consistency: Consistency,
    /// Client-side timeout of every request, and of connecting.
    pub request_timeout: Duration,
}

impl ScyllaOptions {
    /// Defaults for `nodes` and `keyspace`: replication factor 1,
    /// LOCAL_QUORUM, 5 s per request.
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> ScyllaOptions {
        ScyllaOptions {
            nodes,
            keyspace: keyspace.into(),
            replication_factor: 1,
            consistency: Consistency::LocalQuorum,
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Options from the `--scylla*` flags; an error names the bad flag.
    pub fn from_config(c: &Config) -> Result<ScyllaOptions, StoreError> {
        if !schema::valid_keyspace(&c.scylla_keyspace) {
            return Err(StoreError::Backend(format!(
                "--scylla-keyspace {:?}: use 1-48 letters, digits or _, starting with a letter",
                c.scylla_keyspace
            )));
        }
        Ok(ScyllaOptions {
            nodes: c.scylla_nodes.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
            keyspace: c.scylla_keyspace.clone(),
            replication_factor: c.scylla_replication_factor,
            consistency: parse_consistency(&c.scylla_consistency).map_err(StoreError::Backend)?,
            request_timeout: Duration::from_millis(c.scylla_request_timeout_ms.max(1)),
        })
    }
}

/// Parses a consistency level name (case-insensitive).
pub fn parse_consistency(s: &str) -> Result<Consistency, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        other => return Err(format!("--scylla-consistency {other:?}: not a consistency level")),
    })
}

/// Opens a session, inside `keyspace` when given. Fails with
/// `Unavailable` (never hangs) when no node answers CQL in time.
pub async fn connect(o: &ScyllaOptions, keyspace: Option<&str>) -> Result<Session, StoreError> {
    if o.nodes.is_empty() {
        return Err(StoreError::Backend("--scylla: no contact points given".into()));
    }
    let profile = ExecutionProfile::builder()
        .consistency(o.consistency)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(o.request_timeout))
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&o.nodes)
        .connection_timeout(o.request_timeout)
        .hostname_resolution_timeout(Some(o.request_timeout))
        .default_execution_profile_handle(profile.into_handle())
        // The driver reads the schema metadata of every keyspace on the
        // cluster when it connects and again after each schema change; this
        // store needs only its own (replication, for token-aware routing).
        .keyspaces_to_fetch([o.keyspace.clone()])
        .schema_agreement_interval(SCHEMA_AGREEMENT_POLL);
    if let Some(ks) = keyspace {
        builder = builder.use_keyspace(ks, false);
    }
    let nodes = o.nodes.join(",");
    // The driver's own timeouts cover each connection; this one bounds the
    // whole handshake (a peer that accepts TCP but never speaks CQL).
    match tokio::time::timeout(o.request_timeout * 2, builder.build()).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot connect to ScyllaDB at {nodes}: {e}"))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to ScyllaDB at {nodes}: no CQL answer within {} ms",
            (o.request_timeout * 2).as_millis()
        ))),
    }
}

/// Creates the keyspace if missing and applies every `cql/` file in order.
pub async fn migrate(o: &ScyllaOptions) -> Result<(), StoreError> {
    let session = connect(o, None).await?;
    // Schema changes are slow (each waits for schema agreement): give each
    // statement at least DDL_TIMEOUT, whatever the request timeout is.
    let ddl = |cql: String| {
        let mut st = Statement::new(cql);
        st.set_request_timeout(Some(o.request_timeout.max(DDL_TIMEOUT)));
        st
    };
    session
        .query_unpaged(ddl(schema::create_keyspace(&o.keyspace, o.replication_factor)), ())
        .await
        .map_err(|e| StoreError::Backend(format!("creating keyspace {}: {e}", o.keyspace)))?;
    session
        .use_keyspace(&o.keyspace, false)
        .await
        .map_err(|e| StoreError::Backend(format!("using keyspace {}: {e}", o.keyspace)))?;
    // Read before the files are applied: a keyspace whose intake table
    // this run creates gets an intake floor (no entry can be older).
    let started_ms = crate::model::now_ms();
    let new_intake = intake_cursor::intake_table_missing(&session, &o.keyspace).await?;
    for (name, file) in schema::FILES {
        for st in schema::statements(file) {
            session.query_unpaged(ddl(st), ()).await.map_err(|e| StoreError::Backend(format!("{name}: {e}")))?;
        }
        tracing::info!(file = name, keyspace = %o.keyspace, "applied");
    }
    session.await_schema_agreement().await.map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))?;
    if new_intake {
        intake_cursor::write_floor(&session, intake_cursor::floor_for(started_ms)).await?;
    }
    Ok(())
}

/// Drops the keyspace (tests: one fresh keyspace per run).
pub async fn drop_keyspace(session: &Session, keyspace: &str) -> Result<(), StoreError> {
    if !schema::valid_keyspace(keyspace) {
        return Err(StoreError::Backend(format!("bad keyspace {keyspace:?}")));
    }
    let mut st = Statement::new(format!("DROP KEYSPACE IF EXISTS {keyspace}"));
    st.set_request_timeout(Some(DDL_TIMEOUT));
    session.query_unpaged(st, ()).await.map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_names_parse_case_insensitively() {
        assert_eq!(parse_consistency("LOCAL_QUORUM"), Ok(Consistency::LocalQuorum));
        assert_eq!(parse_consistency("one"), Ok(Consistency::One));
        assert!(parse_consistency("serial").is_err(), "serial is for LWT reads only");
        assert!(parse_consistency("any").is_err(), "ANY is write-only: not offered");
    }

    #[test]
    fn options_come_from_the_flags() {
        let mut c = Config::with_data_dir("/tmp/x");
        c.scylla_nodes = vec!["10.0.0.1:9042".into(), " 10.0.0.2:9042 ".into()];
        c.scylla_consistency = "quorum".into();
        let o = ScyllaOptions::from_config(&c).unwrap();
        assert_eq!(o.nodes, ["10.0.0.1:9042", "10.0.0.2:9042"]);
        assert_eq!((o.keyspace.as_str(), o.replication_factor, o.consistency), ("hubbub", 1, Consistency::Quorum));
        c.scylla_keyspace = "bad-name".into();
        assert!(ScyllaOptions::from_config(&c).is_err());
    }
}
