//! # hubbub
//!
//! A real-time, WebSocket-first chat server. A client keeps one
//! authenticated WebSocket (`/ws`) and sends JSON frames over it for
//! everything; the server pushes events over the same socket.
//!
//! # Layout
//!
//! Arrows point from the depending module; nothing points back up:
//! `main -> server -> connection -> handlers -> { store, hub, auth }`,
//! `hub -> broker`, and everything -> `{ protocol, model, error, config }`.
//!
//! - [`server`]: accept loop, HTTP routing, upgrade, graceful shutdown.
//! - [`web`]: the browser client's static files, embedded at build time.
//! - [`http`]: the minimal HTTP/1.1 front (request head, plain responses, origin check).
//! - [`heartbeat`]: server pings on every socket and the rule that closes a silent peer.
//! - [`forwarded`]: the real client address behind trusted reverse proxies.
//! - [`connection`]: one socket's life: limits, parsing, replies, queued events;
//!   [`connection::pipeline`] runs its `message.send` requests side by side.
//! - [`handlers`]: one file per request kind; where store and hub meet.
//! - [`auth`]: passwords (bcrypt), access tokens (EdDSA JWT), refresh tokens, login throttling.
//! - [`hub`]: this node's sharded registry of live sockets; reaches users via the broker,
//!   stamps inbox positions, fills gaps, tracks presence.
//! - [`broker`]: moves bytes between nodes, keeps short per-channel history, presence records
//!   and leases ([`broker::open`] picks the in-process or the Redis backend).
//! - [`store`]: durable data behind the [`store::Store`] trait, the sum of its area traits
//!   (e.g. [`store::GroupStore`]); [`store::open`] picks SQLite or ScyllaDB.
//! - [`push`]: push notifications for offline users: intake, durable queue workers, Web Push, Matrix gateway.
//! - [`fanout`]: background fan-out of posts to followers (events, home-timeline copies).
//! - [`timeline`]: home-timeline rules (visibility, merging copied and read-time items).
//! - [`app`]: the shared state built at start.
//! - [`admin`]: `hubbub admin ...`, operator commands on the cluster's store and broker.
//! - [`redact`]: keeps deleted messages' text out of replayed inbox history (the hub's replay filter).
//! - [`conversation`]: who may see a conversation (membership, members): the one access check.
//! - [`protocol`]: wire types (serde only, no I/O).
//! - [`model`]: domain types and newtype ids.
//! - [`validate`]: field rules.
//! - [`emoji`]: the reaction emoji rule.
//! - [`ratelimit`]: token buckets.
//! - [`metrics`]: Prometheus counters and histograms, rendered at `GET /metrics`.
//! - [`metrics_listener`]: the separate `/metrics` address (`--metrics-listen`, loopback by default).
//! - [`snowflake`]: 64-bit time-ordered ids.
//! - [`error`]: typed errors and their one mapping to protocol codes.
//! - [`config`]: flags and `HUBBUB_*` variables.
//! - [`config_file`]: the TOML configuration file, `hubbub config check|example`.

pub mod admin;
pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod conversation;
pub mod emoji;
pub mod error;
pub mod fanout;
pub mod forwarded;
pub mod handlers;
pub mod heartbeat;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod metrics_listener;
pub mod model;
pub mod protocol;
pub mod push;
pub mod ratelimit;
pub mod redact;
pub mod server;
pub mod snowflake;
pub mod store;
pub mod timeline;
pub mod validate;
pub mod web;
