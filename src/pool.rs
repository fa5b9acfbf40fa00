//! The pool: named servers, each with a set of sessions; calls with safe retry, batches,
//! direct mode, the tool-list cache, statistics and closing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::{deadline_after, PoolSettings, RetryPolicy, ServerConfig};
use crate::error::Error;
use crate::protocol::{is_read_only_method, CallToolResult, Tool, ToolCall};
use crate::reaper;
use crate::session::{CallOptions, Session};
use crate::slot::{Core, Slot};
use crate::stats::{Counters, PoolStats};

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
#[derive(Debug, Default)]
pub struct PoolBuilder {
    servers: Vec<(ServerConfig, Option<PoolSettings>)>,
    defaults: PoolSettings,
    max_children: Option<usize>,
    eager: bool,
    /// Warnings from loading a configuration file (see `config_file.rs`).
    pub(crate) warnings: Vec<String>,
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

    /// The most child processes live at once across all servers. Defaults to no limit.
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

    /// Validates the configuration and starts the reaper (and warm sessions).
    pub fn build(self) -> Result<Pool, Error> {
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
            slots.insert(config.name.clone(), Arc::new(Slot::new(config, settings)));
        }
        if self.max_children == Some(0) {
            return Err(Error::Config("max children must be at least 1".into()));
        }
        let (wake_tx, wake_rx) = bounded(1);
        let pool = Pool {
            inner: Arc::new(PoolInner {
                core: Arc::new(Core::new(self.max_children, wake_tx)),
                slots,
                reaper: Mutex::new(None),
                closing: Mutex::new(()),
            }),
        };
        if self.eager {
            // Before the reaper runs, so it does not start the same warm sessions again.
            for slot in pool.inner.slots.values() {
                if let Err(e) = slot.warm_now(&pool.inner.core) {
                    pool.close();
                    return Err(e);
                }
            }
        }
        let handle =
            reaper::spawn(Arc::downgrade(&pool.inner), wake_rx).map_err(|source| Error::Spawn {
                command: "the pool's reaper thread".into(),
                source,
            });
        match handle {
            Ok(handle) => *pool.inner.reaper.lock() = Some(handle),
            Err(e) => {
                pool.close();
                return Err(e);
            }
        }
        Ok(pool)
    }
}

/// A pool of MCP sessions over many named servers.
///
/// Cheap to clone (`Arc` inside), `Send` and `Sync`: share it between threads. Sessions start
/// on first use, are reused across calls, and are closed when idle or old; a crashed server
/// is replaced on next use. Dropping the last handle closes everything in the background;
/// [`close`](Self::close) does it and waits.
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
        let mut names: Vec<&String> = self.inner.slots.keys().collect();
        names.sort();
        f.debug_struct("Pool")
            .field("servers", &names)
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}

pub(crate) struct PoolInner {
    core: Arc<Core>,
    slots: HashMap<String, Arc<Slot>>,
    reaper: Mutex<Option<JoinHandle<()>>>,
    closing: Mutex<()>,
}

impl PoolInner {
    pub(crate) fn is_closed(&self) -> bool {
        self.core.closed.load(Ordering::Acquire)
    }

    /// One reaper pass over every server; the earliest next deadline.
    pub(crate) fn reap(&self, now: Instant) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|slot| slot.reap(&self.core, now))
            .min()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // The last handle is gone: close in the background, never blocking the dropper.
        if !self.core.closed.swap(true, Ordering::AcqRel) {
            for slot in self.slots.values() {
                slot.drain(&self.core);
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
        if self.inner.is_closed() {
            return Err(Error::PoolClosed);
        }
        self.inner
            .slots
            .get(server)
            .ok_or_else(|| Error::UnknownServer(server.to_owned()))
    }

    /// Calls a tool on a server.
    pub fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.call_tool_with(server, tool, arguments, CallOptions::new())
    }

    /// Calls a tool with per-call options (deadline, progress, cancel).
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
        let slot = self.slot(server)?;
        self.run(slot, "tools/call", Some(tool), options, |session, opts| {
            session.call_tool_with(tool, arguments.clone(), opts)
        })
    }

    /// Calls a tool in direct mode whatever the server's settings: spawn, call, close.
    pub fn call_tool_direct(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        let slot = self.slot(server)?;
        self.direct(slot, CallOptions::new(), |session, opts| {
            session.call_tool_with(tool, arguments, opts)
        })
    }

    /// Direct mode: a session of its own for this one call, started here and closed in the
    /// background afterwards (never pooled, never retried).
    fn direct<T>(
        &self,
        slot: &Arc<Slot>,
        options: CallOptions<'_>,
        call: impl FnOnce(&Session, CallOptions<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        Counters::add(&slot.counters.calls);
        Counters::add(&slot.counters.direct_calls);
        let start = Instant::now();
        let result = slot.start_direct(&self.inner.core).and_then(|session| {
            let result = call(&session, options);
            slot.end_direct(&self.inner.core, session);
            result
        });
        self.finish(slot, start, &result);
        result
    }

    /// Lists a server's tools, from the cache when it is still valid.
    pub fn list_tools(&self, server: &str) -> Result<Arc<Vec<Tool>>, Error> {
        let slot = self.slot(server)?;
        // (A direct server has no live session, so nothing is cached and `run` goes direct.)
        if let Some(tools) = slot.cached_tools() {
            Counters::add(&slot.counters.list_cache_hits);
            return Ok(tools);
        }
        self.run(
            slot,
            "tools/list",
            None,
            CallOptions::new(),
            |session, opts| {
                let epoch = session.tools_epoch();
                let tools = session.list_all("tools/list", "tools", opts)?;
                Ok(slot.cache_tools(session, epoch, tools))
            },
        )
    }

    /// Sends any request to a server (retried on a fresh session only when the method is
    /// read-only or the request was never written).
    pub fn request(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, Error> {
        self.request_with(server, method, params, CallOptions::new())
    }

    /// [`request`](Self::request) with per-call options (deadline, progress, cancel).
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// use std::time::Duration;
    /// use mcp_pool::CallOptions;
    /// let page = pool.request_with(
    ///     "s",
    ///     "resources/list",
    ///     None,
    ///     CallOptions::new().timeout(Duration::from_secs(2)),
    /// )?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn request_with(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        let slot = self.slot(server)?;
        self.run(slot, method, None, options, |session, opts| {
            session.request_with(method, params.clone(), opts)
        })
    }

    /// Reads a resource of a server.
    pub fn read_resource(&self, server: &str, uri: &str) -> Result<Value, Error> {
        let slot = self.slot(server)?;
        self.run(
            slot,
            "resources/read",
            None,
            CallOptions::new(),
            |s, opts| {
                s.request_with(
                    "resources/read",
                    Some(serde_json::json!({ "uri": uri })),
                    opts,
                )
            },
        )
    }

    /// Gets a prompt of a server.
    pub fn get_prompt(
        &self,
        server: &str,
        name: &str,
        arguments: Value,
    ) -> Result<crate::protocol::GetPromptResult, Error> {
        let slot = self.slot(server)?;
        self.run(slot, "prompts/get", None, CallOptions::new(), |s, opts| {
            s.get_prompt_with(name, arguments.clone(), opts)
        })
    }

    /// Lists a server's resources (every page).
    pub fn list_resources(&self, server: &str) -> Result<Vec<Value>, Error> {
        let slot = self.slot(server)?;
        self.run(
            slot,
            "resources/list",
            None,
            CallOptions::new(),
            |s, opts| s.list_all("resources/list", "resources", opts),
        )
    }

    /// Lists a server's resource templates (every page).
    pub fn list_resource_templates(&self, server: &str) -> Result<Vec<Value>, Error> {
        let slot = self.slot(server)?;
        self.run(
            slot,
            "resources/templates/list",
            None,
            CallOptions::new(),
            |s, opts| s.list_all("resources/templates/list", "resourceTemplates", opts),
        )
    }

    /// Lists a server's prompts (every page).
    pub fn list_prompts(&self, server: &str) -> Result<Vec<Value>, Error> {
        let slot = self.slot(server)?;
        self.run(slot, "prompts/list", None, CallOptions::new(), |s, opts| {
            s.list_all("prompts/list", "prompts", opts)
        })
    }

    /// Asks a server for completions (`completion/complete`).
    pub fn complete(
        &self,
        server: &str,
        reference: Value,
        argument: Value,
    ) -> Result<Value, Error> {
        let slot = self.slot(server)?;
        self.run(
            slot,
            "completion/complete",
            None,
            CallOptions::new(),
            |s, opts| s.complete_with(reference.clone(), argument.clone(), opts),
        )
    }

    /// Pings a server through a pooled session.
    pub fn ping(&self, server: &str) -> Result<Duration, Error> {
        let slot = self.slot(server)?;
        self.run(slot, "ping", None, CallOptions::new(), |s, opts| {
            s.ping_with(opts)
        })
    }

    /// A live session of the server, for direct use (subscriptions, say). It stays in the
    /// pool: the reaper may
    /// close it when idle or old, after which calls on it fail with `SessionClosed`.
    pub fn session(&self, server: &str) -> Result<Session, Error> {
        let slot = self.slot(server)?;
        let deadline = Instant::now() + slot.config.start_timeout;
        let lease = slot.acquire(&self.inner.core, deadline)?;
        Ok(lease.session.clone())
    }

    /// Runs one call with the retry policy: at most one retry, on a fresh session.
    fn run<T>(
        &self,
        slot: &Arc<Slot>,
        method: &str,
        tool: Option<&str>,
        options: CallOptions<'_>,
        mut call: impl FnMut(&Session, CallOptions<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if slot.settings.direct {
            return self.direct(slot, options, call);
        }
        let core = &self.inner.core;
        Counters::add(&slot.counters.calls);
        let start = Instant::now();
        let CallOptions {
            timeout,
            mut progress,
            cancel,
            keep_deadline,
        } = options;
        let timeout = timeout.unwrap_or(slot.config.request_timeout);
        let deadline = deadline_after(start, timeout);
        let mut first = true;
        let result = loop {
            let lease = match slot.acquire(core, deadline) {
                Ok(lease) => lease,
                Err(e) => break Err(e),
            };
            if first {
                Counters::add(if lease.hit {
                    &slot.counters.hits
                } else {
                    &slot.counters.misses
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut opts = CallOptions::new()
                .timeout(left.max(Duration::from_millis(1)))
                .keep_deadline(keep_deadline);
            if let Some(f) = progress.as_mut() {
                opts = opts.on_progress(|p| f(p));
            }
            if let Some(c) = &cancel {
                opts = opts.cancel_with(c);
            }
            let result = call(&lease.session, opts);
            drop(lease);
            match result {
                Err(e) if first && self.may_retry(slot, &e, method, tool, deadline) => {
                    log::info!(
                        "[{}] retrying {method} on a fresh session after: {e}",
                        slot.name
                    );
                    Counters::add(&slot.counters.retries);
                    first = false;
                }
                other => break other,
            }
        };
        self.finish(slot, start, &result);
        result
    }

    fn finish<T>(&self, slot: &Slot, start: Instant, result: &Result<T, Error>) {
        slot.counters.latency.lock().record(start.elapsed());
        if let Err(e) = result {
            slot.counters.error(e.kind());
        }
    }

    /// Whether a failed call may run again on a fresh session without risk of running a
    /// tool twice (under the server's retry policy).
    fn may_retry(
        &self,
        slot: &Arc<Slot>,
        error: &Error,
        method: &str,
        tool: Option<&str>,
        deadline: Instant,
    ) -> bool {
        if Instant::now() >= deadline {
            return false;
        }
        match (slot.settings.retry, error) {
            (RetryPolicy::Never, _) => false,
            // Never written: it cannot have run.
            (_, Error::SessionClosed { .. }) => true,
            (RetryPolicy::Always, Error::OutcomeUnknown { .. }) => true,
            (RetryPolicy::Safe, Error::OutcomeUnknown { .. }) => {
                is_read_only_method(method)
                    || tool.is_some_and(|t| self.tool_is_safe(slot, t, deadline))
            }
            _ => false,
        }
    }

    /// Whether the server's annotations say a tool is read-only or idempotent. Fetches the
    /// tool list (a read-only request) when it is not cached; that fetch is not counted as a
    /// call in the statistics.
    fn tool_is_safe(&self, slot: &Arc<Slot>, tool: &str, deadline: Instant) -> bool {
        let tools = match slot.cached_tools() {
            Some(tools) => tools,
            None => {
                let fetched = slot.acquire(&self.inner.core, deadline).and_then(|lease| {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let epoch = lease.session.tools_epoch();
                    let tools = lease.session.list_all(
                        "tools/list",
                        "tools",
                        CallOptions::new().timeout(left),
                    )?;
                    Ok(slot.cache_tools(&lease.session, epoch, tools))
                });
                match fetched {
                    Ok(tools) => tools,
                    Err(e) => {
                        log::debug!(
                            "[{}] cannot learn whether `{tool}` is safe to repeat: {e}",
                            slot.name
                        );
                        return false;
                    }
                }
            }
        };
        tools.iter().any(|t| t.name == tool && t.safe_to_repeat())
    }

    /// Calls many tools on one session without waiting between them; one result per call,
    /// in order. See [`batch_with`](Self::batch_with).
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// use mcp_pool::ToolCall;
    /// use serde_json::json;
    ///
    /// let calls = vec![
    ///     ToolCall::new("echo", json!({"text": "a"})),
    ///     ToolCall::new("echo", json!({"text": "b"})),
    /// ];
    /// for (call, result) in calls.iter().zip(pool.batch("s", &calls)) {
    ///     match result {
    ///         Ok(r) => println!("{}: {}", call.tool, r.text()),
    ///         Err(e) => eprintln!("{}: {e}", call.tool),
    ///     }
    /// }
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn batch(&self, server: &str, calls: &[ToolCall]) -> Vec<Result<CallToolResult, Error>> {
        self.batch_with(server, calls, None, |_, _| {})
    }

    /// [`batch`](Self::batch) with a deadline for the whole batch (defaults to the server's
    /// request timeout) and a progress callback `(finished, total)`. If the session dies
    /// mid-batch, calls that were never written go to a fresh session and written ones follow
    /// the retry policy.
    pub fn batch_with(
        &self,
        server: &str,
        calls: &[ToolCall],
        timeout: Option<Duration>,
        mut on_progress: impl FnMut(usize, usize),
    ) -> Vec<Result<CallToolResult, Error>> {
        let total = calls.len();
        let slot = match self.slot(server) {
            Ok(slot) => slot,
            Err(e) => return calls.iter().map(|_| Err(e.duplicate())).collect(),
        };
        if slot.settings.direct {
            // One session of its own for the whole batch; each call counted as a call.
            let start = Instant::now();
            let mut done = 0;
            let results = match slot.start_direct(&self.inner.core) {
                Ok(session) => {
                    let results = session.call_tools(calls, timeout, |_, _| {
                        slot.counters.latency.lock().record(start.elapsed());
                        done += 1;
                        on_progress(done, total);
                    });
                    slot.end_direct(&self.inner.core, session);
                    results
                }
                Err(e) => calls.iter().map(|_| Err(e.duplicate())).collect(),
            };
            for r in &results {
                Counters::add(&slot.counters.calls);
                Counters::add(&slot.counters.direct_calls);
                if let Err(e) = r {
                    slot.counters.error(e.kind());
                }
            }
            if done < total {
                on_progress(total, total);
            }
            return results;
        }
        let start = Instant::now();
        let deadline = deadline_after(start, timeout.unwrap_or(slot.config.request_timeout));
        let core = &self.inner.core;
        let mut results: Vec<Option<Result<CallToolResult, Error>>> =
            (0..total).map(|_| None).collect();
        let mut todo: Vec<usize> = (0..total).collect();
        let mut done = 0;
        for attempt in 0..2 {
            if todo.is_empty() {
                break;
            }
            let lease = match slot.acquire(core, deadline) {
                Ok(lease) => lease,
                Err(e) => {
                    for &i in &todo {
                        results[i] = Some(Err(e.duplicate()));
                    }
                    break;
                }
            };
            if attempt == 0 {
                for _ in 0..total {
                    Counters::add(&slot.counters.calls);
                    Counters::add(if lease.hit {
                        &slot.counters.hits
                    } else {
                        &slot.counters.misses
                    });
                }
            }
            let batch: Vec<ToolCall> = todo.iter().map(|&i| calls[i].clone()).collect();
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            // Each result as it comes: a call to be retried is not finished yet.
            let mut retry = Vec::with_capacity(batch.len());
            let outcomes = lease.session.call_tools(&batch, Some(left), |k, outcome| {
                let again = attempt == 0
                    && outcome.as_ref().err().is_some_and(|e| {
                        self.may_retry(slot, e, "tools/call", Some(&batch[k].tool), deadline)
                    });
                retry.push(again);
                if !again {
                    // Each call's own latency: from the batch's start to its answer.
                    slot.counters.latency.lock().record(start.elapsed());
                    done += 1;
                    on_progress(done, total);
                }
            });
            drop(lease);
            let mut again = Vec::new();
            for ((&i, outcome), retry) in todo.iter().zip(outcomes).zip(retry) {
                if retry {
                    Counters::add(&slot.counters.retries);
                    again.push(i);
                }
                results[i] = Some(outcome);
            }
            todo = again;
        }
        let results: Vec<Result<CallToolResult, Error>> = results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::PoolClosed)))
            .collect();
        for r in &results {
            if let Err(e) = r {
                slot.counters.error(e.kind());
            }
        }
        if done < total {
            // Calls that never reached a session (no session could be had).
            let mut latency = slot.counters.latency.lock();
            for _ in done..total {
                latency.record(start.elapsed());
            }
            drop(latency);
            on_progress(total, total);
        }
        results
    }

    /// Runs calls to several servers: each server's calls as one batch, the servers in
    /// parallel. Returns one result per call, in the order given.
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
                    let handle = scope.spawn(move || self.batch(server, &group));
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
    /// let s = &stats.servers["s"];
    /// println!("{} calls, {} hits, {} spawns, p99 {:?} ms", s.calls, s.hits, s.spawns, s.latency_ms.p99);
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

    /// Child processes live now, across all servers.
    pub fn live_children(&self) -> usize {
        self.inner.core.children()
    }

    /// Closes every session (through the kill ladder) and waits for them, within a bounded
    /// time: each server's close grace twice, or its start timeout when a session is
    /// starting. Later calls fail with [`Error::PoolClosed`]. Idempotent.
    pub fn close(&self) {
        let inner = &self.inner;
        // A second closer waits for the first to finish.
        let _closing = inner.closing.lock();
        inner.core.closed.store(true, Ordering::Release);
        inner.core.stop_reaper();
        for slot in inner.slots.values() {
            slot.drain(&inner.core);
        }
        for slot in inner.slots.values() {
            slot.wait_for_starts(
                Instant::now() + slot.config.start_timeout + Duration::from_secs(1),
            );
        }
        // Each is already closing on its own worker; wait for all of them, those the reaper
        // or a crash took out earlier included.
        for session in inner.core.take_retired() {
            session.close();
        }
        if let Some(reaper) = inner.reaper.lock().take() {
            let _ = reaper.join();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Pool>();
    let _: Option<Weak<PoolInner>> = None;
}
