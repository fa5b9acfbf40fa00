//! Named servers, each with a set of sessions: the public [`Pool`] and its builder.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | [`Pool`], [`PoolBuilder`]: building, the call methods (one-liners over `call.rs`), stats, closing |
//! | `call.rs` | one call with its deadline and the retry policy; direct mode; batches |
//! | `slot.rs` | one server's session set and all of its bookkeeping, under one lock |
//! | `health.rs` | restarts' back-off and the "failing" state, as a state machine |
//! | `reaper.rs` | when a session is closed or pinged (a pure verdict), and the reaper thread |
//! | `core.rs` | what every server shares: the closed flag, the child cap, sessions closing |
//! | `stats.rs` | the counters and the serializable snapshot |

mod call;
mod core;
mod health;
mod reaper;
mod slot;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::{PoolSettings, ServerConfig};
use crate::error::Error;
use crate::protocol::{
    Call, CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate,
    Tool, ToolCall,
};
use crate::session::{self, BatchOptions, CallOptions, Session};

use self::core::Core;
use self::reaper::Pass;
use self::slot::{Connector, Slot};
pub use self::stats::{Percentiles, PoolStats, ServerStats};

/// Builds a [`Pool`].
///
/// ```no_run
/// use mcp_pool::{Pool, PoolSettings, ServerConfig};
///
/// let pool = Pool::builder()
///     .server(ServerConfig::new("files", "npx").args(["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]))
///     .server_with(ServerConfig::new("search", "search-mcp"), PoolSettings::new().max_sessions(4))
///     .max_children(16)
///     .build()?;
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Default)]
pub struct PoolBuilder {
    servers: Vec<(ServerConfig, Option<PoolSettings>)>,
    defaults: PoolSettings,
    max_children: Option<usize>,
    eager: bool,
    connector: Option<Connector>,
    /// What loading a configuration file found besides servers: warnings, servers left
    /// out (see `config/file.rs`). Kept by the pool.
    pub(crate) loaded: crate::config::Loaded,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("servers", &self.servers)
            .field("defaults", &self.defaults)
            .field("max_children", &self.max_children)
            .field("warm_eagerly", &self.eager)
            .field("loaded", &self.loaded)
            .finish()
    }
}

impl PoolBuilder {
    /// Adds a server with the default settings (see [`defaults`](Self::defaults)).
    pub fn server(mut self, config: ServerConfig) -> Self {
        self.servers.push((config, None));
        self
    }

    /// Adds a server with its own settings.
    pub fn server_with(mut self, config: ServerConfig, settings: PoolSettings) -> Self {
        self.servers.push((config, Some(settings)));
        self
    }

    /// Settings for servers added without their own. Defaults to [`PoolSettings::default`].
    pub fn defaults(mut self, settings: PoolSettings) -> Self {
        self.defaults = settings;
        self
    }

    /// The most child processes live at once across all servers (those starting and those
    /// still being shut down count too). Defaults to no limit.
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// Start each server's warm minimum (`min_sessions`) inside [`build`](Self::build) and
    /// fail if one cannot start, instead of starting them in the background. Defaults to
    /// `false`.
    pub fn warm_eagerly(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }

    /// The servers added so far, for settings the C ABI adds to a loaded configuration
    /// (a handler, a token provider).
    pub(crate) fn servers_mut(&mut self) -> impl Iterator<Item = &mut ServerConfig> {
        self.servers.iter_mut().map(|(config, _)| config)
    }

    /// Connects sessions some other way than by spawning the configured command (tests).
    #[cfg(test)]
    #[allow(dead_code)]
    pub(crate) fn connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Validates the configuration and starts the reaper (and warm sessions).
    pub fn build(self) -> Result<Pool, Error> {
        if self.max_children == Some(0) {
            return Err(Error::Config("max children must be at least 1".into()));
        }
        let (wake_tx, wake_rx) = bounded(1);
        let core = Arc::new(Core::new(self.max_children, wake_tx));
        let connector = self
            .connector
            .unwrap_or_else(|| Arc::new(session::spawn_process));
        let mut slots = HashMap::new();
        for (config, settings) in self.servers {
            let settings = settings.unwrap_or_else(|| self.defaults.clone());
            config.validate()?;
            settings.validate(&config.name)?;
            if slots.contains_key(&config.name) {
                return Err(Error::Config(format!(
                    "server `{}` is configured twice",
                    config.name
                )));
            }
            let slot = Slot::new(config, settings, core.clone(), connector.clone());
            slots.insert(slot.name.clone(), Arc::new(slot));
        }
        let pool = Pool {
            inner: Arc::new(PoolInner {
                core,
                slots,
                reaper: Mutex::new(None),
                closing: Mutex::new(()),
                loaded: self.loaded,
            }),
        };
        if self.eager {
            // Before the reaper runs, so it does not start the same warm sessions again.
            for slot in pool.inner.slots.values() {
                if let Err(e) = slot.warm_now() {
                    pool.close();
                    return Err(e);
                }
            }
        }
        let weak = Arc::downgrade(&pool.inner);
        let pass = move |now: Instant| {
            let Some(pool) = weak.upgrade() else {
                return Pass::Stop;
            };
            if pool.core.is_closed() {
                return Pass::Stop;
            }
            Pass::Sleep(pool.slots.values().filter_map(|s| s.reap(now)).min())
        };
        match reaper::spawn(pass, wake_rx) {
            Ok(handle) => *pool.inner.reaper.lock() = Some(handle),
            Err(e) => {
                pool.close();
                return Err(Error::spawn("the pool's reaper thread", e));
            }
        }
        Ok(pool)
    }
}

/// A pool of MCP sessions over many named servers.
///
/// Cheap to clone (`Arc` inside), `Send` and `Sync`: share it between threads. Sessions start
/// on first use, are reused across calls, and are closed when idle or old; a crashed server
/// is replaced on next use, and a server that stops answering (a call timed out and a
/// health probe got no answer) is replaced too. Dropping the last handle closes everything
/// in the background; [`close`](Self::close) does it and waits.
///
/// Every call's timeout counts from when the call starts, so it covers waiting for a
/// session and for a session's start.
///
/// ```no_run
/// use mcp_pool::{Pool, ServerConfig};
/// use serde_json::json;
///
/// let pool = Pool::builder()
///     .server(ServerConfig::new("everything", "npx").args(["-y", "@modelcontextprotocol/server-everything"]))
///     .build()?;
/// let result = pool.call_tool("everything", "echo", json!({"message": "hi"}))?;
/// println!("{}", result.text());
/// println!("{}", pool.stats().to_json());
/// pool.close();
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("servers", &self.servers())
            .field("closed", &self.is_closed())
            .finish()
    }
}

struct PoolInner {
    core: Arc<Core>,
    slots: HashMap<String, Arc<Slot>>,
    /// The configuration's warnings and the servers it left out.
    loaded: crate::config::Loaded,
    reaper: Mutex<Option<JoinHandle<()>>>,
    closing: Mutex<()>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // The last handle is gone: close in the background, never blocking the dropper.
        if self.core.close() {
            for slot in self.slots.values() {
                slot.drain();
            }
        }
        self.core.stop_reaper();
    }
}

impl Pool {
    /// A builder.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The configured server names, sorted.
    pub fn servers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.slots.keys().cloned().collect();
        names.sort();
        names
    }

    fn slot(&self, server: &str) -> Result<&Arc<Slot>, Error> {
        if self.is_closed() {
            return Err(Error::PoolClosed);
        }
        self.inner
            .slots
            .get(server)
            .ok_or_else(|| self.inner.loaded.missing(server))
    }

    /// What loading the configuration found besides servers (`config/file.rs`).
    pub(crate) fn loaded(&self) -> &crate::config::Loaded {
        &self.inner.loaded
    }

    fn run<T>(&self, server: &str, call: &Call<T>, options: CallOptions<'_>) -> Result<T, Error> {
        call::run(self.slot(server)?, call, options, false)
    }

    /// Calls a tool on a server.
    pub fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.run(
            server,
            &Call::call_tool(tool, arguments)?,
            CallOptions::new(),
        )
    }

    /// Calls a tool for caller `key`: on a server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller) only on a session of that key (so
    /// what one caller's calls leave in the server is never seen by another's); a shared
    /// server ignores the key. The same as [`call_tool_with`](Self::call_tool_with) with
    /// [`CallOptions::caller`]; every other call kind takes the key that way.
    ///
    /// ```no_run
    /// use mcp_pool::{Pool, PoolSettings, ServerConfig, Sharing};
    /// use serde_json::json;
    ///
    /// let pool = Pool::builder()
    ///     .server_with(
    ///         ServerConfig::new("browser", "npx").args(["-y", "@playwright/mcp"]),
    ///         PoolSettings::new().sharing(Sharing::PerCaller),
    ///     )
    ///     .build()?;
    /// pool.call_tool_as("alice", "browser", "browser_navigate", json!({"url": "https://example.com"}))?;
    /// // Bob gets a browser of his own, not Alice's page.
    /// pool.call_tool_as("bob", "browser", "browser_snapshot", json!({}))?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn call_tool_as(
        &self,
        key: &str,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.run(
            server,
            &Call::call_tool(tool, arguments)?,
            CallOptions::new().caller(key),
        )
    }

    /// Calls a tool with per-call options (deadline, progress, cancel, `_meta`, caller
    /// key).
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// use std::time::Duration;
    /// use mcp_pool::{CallOptions, CancelHandle};
    ///
    /// let cancel = CancelHandle::new();
    /// let result = pool.call_tool_with(
    ///     "s",
    ///     "long_job",
    ///     serde_json::json!({}),
    ///     CallOptions::new()
    ///         .timeout(Duration::from_secs(30))
    ///         .on_progress(|p| eprintln!("{} of {:?}", p.progress, p.total))
    ///         .cancel_with(&cancel),
    /// )?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn call_tool_with(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<CallToolResult, Error> {
        self.run(server, &Call::call_tool(tool, arguments)?, options)
    }

    /// Calls a tool in direct mode whatever the server's settings: spawn, call, close.
    pub fn call_tool_direct(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.call_tool_direct_with(server, tool, arguments, CallOptions::new())
    }

    /// [`call_tool_direct`](Self::call_tool_direct) with per-call options; the timeout
    /// covers the start.
    pub fn call_tool_direct_with(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<CallToolResult, Error> {
        call::run(
            self.slot(server)?,
            &Call::call_tool(tool, arguments)?,
            options,
            true,
        )
    }

    /// Lists a server's tools, from the cache when it is still valid.
    pub fn list_tools(&self, server: &str) -> Result<Arc<Vec<Tool>>, Error> {
        self.list_tools_with(server, CallOptions::new())
    }

    /// [`list_tools`](Self::list_tools) with per-call options. On a per-caller server the
    /// cache is kept per caller key: one caller's list is never another's.
    pub fn list_tools_with(
        &self,
        server: &str,
        options: CallOptions<'_>,
    ) -> Result<Arc<Vec<Tool>>, Error> {
        call::list_tools(self.slot(server)?, options)
    }

    /// Sends any request to a server (retried on another session only when the method is
    /// read-only or the request was never written).
    pub fn request(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, Error> {
        self.run(server, &Call::raw(method, params)?, CallOptions::new())
    }

    /// [`request`](Self::request) with per-call options.
    pub fn request_with(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        self.run(server, &Call::raw(method, params)?, options)
    }

    /// Sends a notification to a server, on one of its sessions (on a per-caller server,
    /// send it on [`session_for`](Self::session_for) instead).
    pub fn notify(&self, server: &str, method: &str, params: Option<Value>) -> Result<(), Error> {
        self.session(server)?.notify(method, params)
    }

    /// Reads a resource of a server.
    pub fn read_resource(&self, server: &str, uri: &str) -> Result<ReadResourceResult, Error> {
        self.run(server, &Call::read_resource(uri), CallOptions::new())
    }

    /// [`read_resource`](Self::read_resource) with per-call options.
    pub fn read_resource_with(
        &self,
        server: &str,
        uri: &str,
        options: CallOptions<'_>,
    ) -> Result<ReadResourceResult, Error> {
        self.run(server, &Call::read_resource(uri), options)
    }

    /// Gets a prompt of a server.
    pub fn get_prompt(
        &self,
        server: &str,
        name: &str,
        arguments: Value,
    ) -> Result<GetPromptResult, Error> {
        self.run(
            server,
            &Call::get_prompt(name, arguments)?,
            CallOptions::new(),
        )
    }

    /// [`get_prompt`](Self::get_prompt) with per-call options.
    pub fn get_prompt_with(
        &self,
        server: &str,
        name: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<GetPromptResult, Error> {
        self.run(server, &Call::get_prompt(name, arguments)?, options)
    }

    /// Lists a server's resources (every page).
    pub fn list_resources(&self, server: &str) -> Result<Vec<Resource>, Error> {
        self.run(server, &Call::list_resources(), CallOptions::new())
    }

    /// [`list_resources`](Self::list_resources) with per-call options.
    pub fn list_resources_with(
        &self,
        server: &str,
        options: CallOptions<'_>,
    ) -> Result<Vec<Resource>, Error> {
        self.run(server, &Call::list_resources(), options)
    }

    /// Lists a server's resource templates (every page).
    pub fn list_resource_templates(&self, server: &str) -> Result<Vec<ResourceTemplate>, Error> {
        self.run(server, &Call::list_resource_templates(), CallOptions::new())
    }

    /// [`list_resource_templates`](Self::list_resource_templates) with per-call options.
    pub fn list_resource_templates_with(
        &self,
        server: &str,
        options: CallOptions<'_>,
    ) -> Result<Vec<ResourceTemplate>, Error> {
        self.run(server, &Call::list_resource_templates(), options)
    }

    /// Lists a server's prompts (every page).
    pub fn list_prompts(&self, server: &str) -> Result<Vec<Prompt>, Error> {
        self.run(server, &Call::list_prompts(), CallOptions::new())
    }

    /// [`list_prompts`](Self::list_prompts) with per-call options.
    pub fn list_prompts_with(
        &self,
        server: &str,
        options: CallOptions<'_>,
    ) -> Result<Vec<Prompt>, Error> {
        self.run(server, &Call::list_prompts(), options)
    }

    /// Asks a server for completions (`completion/complete`); returns the `completion`
    /// object.
    pub fn complete(
        &self,
        server: &str,
        reference: Value,
        argument: Value,
    ) -> Result<Value, Error> {
        self.run(
            server,
            &Call::complete(reference, argument),
            CallOptions::new(),
        )
    }

    /// [`complete`](Self::complete) with per-call options.
    pub fn complete_with(
        &self,
        server: &str,
        reference: Value,
        argument: Value,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        self.run(server, &Call::complete(reference, argument), options)
    }

    /// Pings a server through a pooled session; returns the round-trip time.
    pub fn ping(&self, server: &str) -> Result<Duration, Error> {
        self.ping_with(server, CallOptions::new())
    }

    /// [`ping`](Self::ping) with per-call options.
    pub fn ping_with(&self, server: &str, options: CallOptions<'_>) -> Result<Duration, Error> {
        let start = Instant::now();
        self.run(server, &Call::ping(), options)?;
        Ok(start.elapsed())
    }

    /// A live session of the server, for direct use (subscriptions, say). It stays in the
    /// pool: the reaper may close it when idle or old, after which calls on it fail with
    /// `SessionClosed`. A server with [`Sharing::PerCaller`](crate::Sharing::PerCaller)
    /// needs [`session_for`](Self::session_for).
    pub fn session(&self, server: &str) -> Result<Session, Error> {
        call::session(self.slot(server)?, None)
    }

    /// A live session of the server serving caller `key`, for direct use, as
    /// [`session`](Self::session): on a server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller) a session of that key only
    /// (started if it has none); a shared server ignores the key.
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// let alice = pool.session_for("s", "alice")?;
    /// alice.notify("notifications/roots/list_changed", None)?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn session_for(&self, server: &str, key: &str) -> Result<Session, Error> {
        call::session(self.slot(server)?, Some(key))
    }

    /// Calls many tools of a server on one session without waiting between them. Returns
    /// one result per call, in order; one failure does not sink the others. The options
    /// give the whole batch one deadline (defaults to the server's request timeout), a
    /// cancel handle, a callback for each finished call and the caller key
    /// ([`BatchOptions::caller`]: the batch runs on that key's sessions of a per-caller
    /// server). If the session dies mid-batch, calls never written go to another session
    /// and written ones follow the retry policy. Fails as a whole only for an unknown
    /// server, a closed pool, or a per-caller server given no caller key.
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// use mcp_pool::{BatchOptions, ToolCall};
    /// use serde_json::json;
    ///
    /// let calls = vec![
    ///     ToolCall::new("echo", json!({"text": "a"})),
    ///     ToolCall::new("echo", json!({"text": "b"})),
    /// ];
    /// for (call, result) in calls.iter().zip(pool.batch("s", &calls, BatchOptions::new())?) {
    ///     match result {
    ///         Ok(r) => println!("{}: {}", call.tool, r.text()),
    ///         Err(e) => eprintln!("{}: {e}", call.tool),
    ///     }
    /// }
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn batch(
        &self,
        server: &str,
        calls: &[ToolCall],
        options: BatchOptions<'_>,
    ) -> Result<Vec<Result<CallToolResult, Error>>, Error> {
        call::batch(self.slot(server)?, calls, options)
    }

    /// Runs calls to several servers: each server's calls as one batch, the servers in
    /// parallel. Returns one result per call, in the order given; a pool-level failure of
    /// one server (unknown, say) is each of its calls' result. The batches carry no caller
    /// key: a per-caller server's calls fail (use [`batch`](Self::batch) with
    /// [`BatchOptions::caller`]).
    pub fn batch_many(&self, calls: &[(String, ToolCall)]) -> Vec<Result<CallToolResult, Error>> {
        let mut by_server: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (server, _)) in calls.iter().enumerate() {
            by_server.entry(server.as_str()).or_default().push(i);
        }
        let mut results: Vec<Option<Result<CallToolResult, Error>>> =
            (0..calls.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = by_server
                .into_iter()
                .map(|(server, indices)| {
                    let group: Vec<ToolCall> =
                        indices.iter().map(|&i| calls[i].1.clone()).collect();
                    let handle = scope.spawn(move || {
                        self.batch(server, &group, BatchOptions::new())
                            .unwrap_or_else(|e| group.iter().map(|_| Err(e.clone())).collect())
                    });
                    (indices, handle)
                })
                .collect();
            for (indices, handle) in handles {
                let outcomes = handle.join().unwrap_or_else(|_| {
                    indices
                        .iter()
                        .map(|_| Err(Error::Protocol("a batch thread panicked".into())))
                        .collect()
                });
                for (i, outcome) in indices.into_iter().zip(outcomes) {
                    results[i] = Some(outcome);
                }
            }
        });
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::PoolClosed)))
            .collect()
    }

    /// A snapshot of the statistics, per server and in total.
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// let stats = pool.stats();
    /// if let Some(s) = stats.server("s") {
    ///     println!("{} calls, {} hits, {} spawns, p99 {:?} ms", s.calls, s.hits, s.spawns, s.latency_ms.p99);
    /// }
    /// println!("{}", stats.to_json());
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        let servers = self
            .inner
            .slots
            .values()
            .map(|slot| (slot.name.clone(), slot.counters.snapshot(slot.gauges())))
            .collect();
        PoolStats::from_servers(servers)
    }

    /// Child processes live now (or starting, or still being shut down), across all servers.
    pub fn live_children(&self) -> usize {
        self.inner.core.children()
    }

    /// Closes every session (through the kill ladder) and abandons every start, then waits
    /// for them within a bounded time (each server's close grace twice, and a second).
    /// Later calls fail with [`Error::PoolClosed`]. Idempotent.
    pub fn close(&self) {
        let inner = &self.inner;
        // A second closer waits for the first to finish.
        let _closing = inner.closing.lock();
        inner.core.close();
        inner.core.stop_reaper();
        let grace = inner
            .slots
            .values()
            .map(|s| s.config.close_grace)
            .max()
            .unwrap_or_default();
        let until = Instant::now() + grace * 2 + Duration::from_secs(1);
        let starts: Vec<_> = inner.slots.values().flat_map(|slot| slot.drain()).collect();
        for start in starts {
            start.join(Some(until));
        }
        inner.core.join_closing(until);
        if let Some(reaper) = inner.reaper.lock().take() {
            let _ = reaper.join();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.core.is_closed()
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Pool>();
}
