//! Method dispatch: routing each line as request, notification or response; the two protocol
//! generations (handshake and per-request `2026-07-28`) and how `--generation` gates them;
//! `initialize`, `server/discover` and the other methods (the caching hints of the
//! per-request generation, `--supported-versions`, `--strict-per-request`); `tools/call`, on
//! the main loop or on a thread of its own; other requests that answer from a thread.

use serde_json::{json, Map, Value};
use std::process;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use super::catalog::{
    complete, paginate, prompt_get, prompt_list, resource_list, resource_read, template_list,
    uri_param,
};
use super::listen;
use super::mrtr::{self, MRTR_PROMPT, MRTR_URI};
use super::state::{lock, ActiveGuard, Shared, Slot};
use super::tasks::{self, TASKS_EXTENSION};
use super::tools::{error_result, find_tool, tool_list, Call, ToolFn};
use super::wire::{
    invalid_params, method_not_found, Outcome, RpcError, INTERNAL_ERROR, INVALID_REQUEST,
    PARSE_ERROR, UNSUPPORTED_VERSION,
};
use super::{Config, GenerationMode};

const SERVER_NAME: &str = "mcp-fake-server";
const SERVER_VERSION: &str = "0.1.0";
pub(super) const STATELESS_VERSION: &str = "2026-07-28";
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_HANDSHAKE_VERSION: &str = "2025-11-25";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub(super) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn unsupported_version(cfg: &Config, requested: Option<&Value>) -> RpcError {
    let mut data = json!({ "supported": cfg.supported_versions() });
    if let (Some(r), Some(obj)) = (requested, data.as_object_mut()) {
        obj.insert("requested".into(), r.clone());
    }
    RpcError::new(UNSUPPORTED_VERSION, "unsupported protocol version").with_data(data)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Generation {
    Handshake,
    Stateless,
}

/// The client as seen by one request (session data or the request's `_meta` envelope).
#[derive(Clone)]
pub(super) struct ClientCtx {
    pub(super) generation: Generation,
    pub(super) protocol_version: Value,
    pub(super) capabilities: Value,
    pub(super) client_info: Value,
    /// Index in `LOG_LEVELS` of `_meta["io.modelcontextprotocol/logLevel"]` (per-request
    /// generation only).
    pub(super) log_level: Option<usize>,
}

impl ClientCtx {
    pub(super) fn is_stateless(&self) -> bool {
        self.generation == Generation::Stateless
    }

    /// Whether the client declared the 2026 tasks extension (`capabilities.extensions`).
    pub(super) fn has_tasks_extension(&self) -> bool {
        self.capabilities
            .get("extensions")
            .and_then(|e| e.get(TASKS_EXTENSION))
            .is_some()
    }
}

struct Request {
    id: Value,
    method: String,
    params: Map<String, Value>,
}

pub(super) struct Server {
    shared: Arc<Shared>,
    generation: Option<Generation>,
    initialized: bool,
    handshake_client: ClientCtx,
}

/// The server's capabilities. The handshake generation adds the 2025-11-25 `tasks`
/// capability; the per-request one the 2026 tasks extension.
fn server_capabilities(generation: Generation) -> Value {
    let mut caps = json!({
        "tools": {"listChanged": true},
        "resources": {"subscribe": true, "listChanged": true},
        "prompts": {"listChanged": true},
        "logging": {},
        "completions": {}
    });
    let (key, value) = match generation {
        Generation::Handshake => (
            "tasks",
            json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
        ),
        Generation::Stateless => ("extensions", json!({ TASKS_EXTENSION: {} })),
    };
    if let Some(obj) = caps.as_object_mut() {
        obj.insert(key.into(), value);
    }
    caps
}

/// Adds the caching hints (`ttlMs`, `cacheScope`) of the per-request generation to a result
/// that is not `input_required`.
fn cacheable(cfg: &Config, client: &ClientCtx, mut result: Value, scope: &str) -> Value {
    if !client.is_stateless() {
        return result;
    }
    if let Some(obj) = result.as_object_mut() {
        if obj.get("resultType").and_then(Value::as_str) != Some("input_required") {
            obj.insert("ttlMs".into(), cfg.ttl_ms().into());
            obj.insert("cacheScope".into(), scope.into());
        }
    }
    result
}

fn meta(params: &Map<String, Value>) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

impl Server {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Server {
            shared,
            generation: None,
            initialized: false,
            handshake_client: ClientCtx {
                generation: Generation::Handshake,
                protocol_version: Value::Null,
                capabilities: json!({}),
                client_info: Value::Null,
                log_level: None,
            },
        }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Parses and validates one line, then routes it as request, notification or response.
    pub(super) fn handle_line(&mut self, bytes: &[u8]) {
        let shared = Arc::clone(&self.shared);
        let message: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcError::new(PARSE_ERROR, format!("parse error: {e}"));
                return shared.send_error(&Value::Null, err);
            }
        };
        let Value::Object(mut obj) = message else {
            let err = RpcError::new(INVALID_REQUEST, "expected a JSON object (no batches)");
            return shared.send_error(&Value::Null, err);
        };
        let id = obj.remove("id");
        let valid_id = match &id {
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        let reply_id = match &id {
            Some(v) if valid_id => v.clone(),
            _ => Value::Null,
        };
        let invalid = |msg: &str| shared.send_error(&reply_id, RpcError::new(INVALID_REQUEST, msg));
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("jsonrpc must be \"2.0\"");
        }
        match obj.remove("method") {
            Some(Value::String(method)) => {
                let params = match obj.remove("params") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m,
                    Some(_) if id.is_none() => {
                        return say!("fake-server: notification {method} with non-object params")
                    }
                    Some(_) => {
                        let err = invalid_params("params must be an object");
                        return shared.send_error(&reply_id, err);
                    }
                };
                match id {
                    None => self.handle_notification(&method, &params),
                    Some(id) if valid_id => self.handle_request(Request { id, method, params }),
                    Some(_) => invalid("id must be a string or an integer"),
                }
            }
            Some(_) => invalid("method must be a string"),
            None if obj.contains_key("result") || obj.contains_key("error") => {
                self.handle_response(id, obj)
            }
            None => invalid("not a request, notification or response"),
        }
    }

    fn handle_response(&self, id: Option<Value>, mut obj: Map<String, Value>) {
        let number = id.as_ref().and_then(Value::as_u64);
        let slot = number.and_then(|n| lock(&self.shared.pending).remove(&n));
        match (slot, id) {
            (Some(slot), Some(id)) => {
                obj.insert("id".into(), id);
                slot.deliver(Value::Object(obj));
            }
            (None, _) if number.is_some_and(|n| self.shared.late_answer(n)) => {}
            (_, id) => say!(
                "fake-server: response to unknown request id {}",
                id.unwrap_or(Value::Null)
            ),
        }
    }

    fn handle_notification(&mut self, method: &str, params: &Map<String, Value>) {
        if self.shared.cfg.verbose {
            say!("fake-server: notification {method}");
        }
        match method {
            "notifications/initialized" => {
                if self.generation == Some(Generation::Handshake) {
                    self.initialized = true;
                } else {
                    say!("fake-server: notifications/initialized outside a handshake; ignored");
                }
            }
            "notifications/cancelled" => {
                let Some(rid) = params.get("requestId") else {
                    return say!("fake-server: notifications/cancelled without requestId");
                };
                let key = rid.to_string();
                let slot = lock(&self.shared.inflight).get(&key).cloned();
                match slot {
                    Some(slot) => {
                        slot.cancel();
                        say!("cancelled {key}");
                    }
                    None if listen::cancel(&self.shared, rid) => say!("cancelled {key}"),
                    None if self.shared.cfg.verbose => {
                        say!("fake-server: cancel for a request not in flight: {key}")
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn handle_request(&mut self, req: Request) {
        let cfg = &self.shared.cfg;
        if cfg.verbose {
            say!("fake-server: request {} {}", req.id, req.method);
        }
        self.shared.report_late_answers();
        if req.method == "initialize" || req.method == "server/discover" {
            if req.method == "server/discover" && cfg.discover_silent {
                return;
            }
            if let Some(code) = cfg.exit_during_handshake {
                say!("dying in handshake");
                process::exit(code);
            }
            if cfg.hang_handshake {
                return;
            }
        }
        if let Some(refusal) = self.refusal(&req) {
            return self.shared.send_error(&req.id, refusal);
        }
        let outcome = match self.gate(&req) {
            Ok(client) => self.dispatch(&req, client),
            Err(e) => Err(e),
        };
        self.shared.respond(&req.id, outcome);
    }

    /// `--refuse-first` / `refuse_next`: -32022 for an enveloped request while refusals are
    /// left (before the generation rules, so nothing is locked); -32602 for one that reuses
    /// the id of a refused request.
    fn refusal(&self, req: &Request) -> Option<RpcError> {
        let version = meta(&req.params).and_then(|m| m.get(META_PROTOCOL_VERSION))?;
        let key = req.id.to_string();
        if lock(&self.shared.refused_ids).contains(&key) {
            return Some(invalid_params(format!(
                "the request reuses refused request id {key}; a retry needs a new id"
            )));
        }
        let left = &self.shared.refusals_left;
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()?;
        lock(&self.shared.refused_ids).insert(key.clone());
        say!("refused {key}");
        Some(unsupported_version(&self.shared.cfg, Some(version)))
    }

    /// Applies the generation rules; may lock the connection's generation.
    fn gate(&mut self, req: &Request) -> Result<ClientCtx, RpcError> {
        let method = req.method.as_str();
        let enveloped = meta(&req.params).is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION));
        let not_initialized = || {
            RpcError::new(
                INVALID_REQUEST,
                "not initialized: send initialize then notifications/initialized first",
            )
        };
        let cfg = &self.shared.cfg;
        match self.generation {
            Some(Generation::Stateless) if method == "initialize" => {
                Err(unsupported_version(cfg, None))
            }
            Some(Generation::Stateless) => stateless_ctx(cfg, &req.params),
            Some(Generation::Handshake) => match method {
                "server/discover" => Err(method_not_found(method)),
                "initialize" => Err(RpcError::new(INVALID_REQUEST, "already initialized")),
                "ping" => Ok(self.handshake_client.clone()),
                _ if !self.initialized => Err(not_initialized()),
                _ => Ok(self.handshake_client.clone()),
            },
            None => {
                let mode = self.shared.cfg.generation;
                match method {
                    "initialize" if mode == GenerationMode::Stateless => {
                        Err(unsupported_version(cfg, None))
                    }
                    "initialize" => Ok(self.handshake_client.clone()),
                    "server/discover" if mode == GenerationMode::Handshake => {
                        Err(method_not_found(method))
                    }
                    "server/discover" if !enveloped && mode == GenerationMode::Both => {
                        Err(method_not_found(method))
                    }
                    "ping" if !enveloped && mode != GenerationMode::Stateless => {
                        Ok(self.handshake_client.clone())
                    }
                    _ if mode == GenerationMode::Handshake
                        || (!enveloped && mode == GenerationMode::Both) =>
                    {
                        Err(not_initialized())
                    }
                    _ => {
                        let ctx = stateless_ctx(cfg, &req.params)?;
                        self.generation = Some(Generation::Stateless);
                        self.shared.stateless.store(true, Ordering::SeqCst);
                        if self.shared.cfg.verbose {
                            say!("fake-server: connection locked to {STATELESS_VERSION}");
                        }
                        Ok(ctx)
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, req: &Request, client: ClientCtx) -> Outcome {
        let p = &req.params;
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.cfg;
        let stateless = client.is_stateless();
        let named = |key: &str, value: &str| p.get(key).and_then(Value::as_str) == Some(value);
        let result = match req.method.as_str() {
            "initialize" => self.initialize(p)?,
            "server/discover" => {
                let result = json!({
                    "supportedVersions": cfg.supported_versions(),
                    "capabilities": server_capabilities(Generation::Stateless),
                    "_meta": {META_SERVER_INFO: {"name": SERVER_NAME, "version": SERVER_VERSION}}
                });
                cacheable(cfg, &client, result, "public")
            }
            "ping" if stateless => return Err(method_not_found("ping")),
            "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe"
                if stateless && cfg.strict_per_request =>
            {
                return Err(method_not_found(&req.method))
            }
            "ping" => json!({}),
            "subscriptions/listen" if stateless => {
                return listen::open(&shared, &req.id, p, &client)
            }
            "tools/list" => {
                let tools = tool_list(&shared, client.generation);
                cacheable(cfg, &client, paginate(cfg, p, "tools", tools)?, "public")
            }
            "tools/call" => return self.tools_call(req, client),
            "resources/list" => {
                let page = paginate(cfg, p, "resources", resource_list())?;
                cacheable(cfg, &client, page, "public")
            }
            "resources/templates/list" => {
                let page = paginate(cfg, p, "resourceTemplates", template_list())?;
                cacheable(cfg, &client, page, "public")
            }
            "resources/read" if stateless && named("uri", MRTR_URI) => {
                let result = mrtr::resource_read(&shared, &req.id, p, &client)?;
                cacheable(cfg, &client, result, "private")
            }
            "resources/read" => cacheable(cfg, &client, resource_read(p)?, "private"),
            "resources/subscribe" => {
                lock(&shared.subscriptions).insert(uri_param(p)?.to_string());
                json!({})
            }
            "resources/unsubscribe" => {
                lock(&shared.subscriptions).remove(uri_param(p)?);
                json!({})
            }
            "prompts/list" => {
                let page = paginate(cfg, p, "prompts", prompt_list())?;
                cacheable(cfg, &client, page, "public")
            }
            "prompts/get" if stateless && named("name", MRTR_PROMPT) => {
                mrtr::prompt_get(&shared, &req.id, p, &client)?
            }
            "prompts/get" => prompt_get(p)?,
            "completion/complete" => complete(p)?,
            "logging/setLevel" => {
                let level = p.get("level").and_then(Value::as_str).unwrap_or("");
                let idx = LOG_LEVELS.iter().position(|l| *l == level);
                let idx = idx.ok_or_else(|| invalid_params(format!("bad level '{level}'")))?;
                *lock(&shared.log_level) = Some(idx);
                json!({})
            }
            "tasks/result" if !stateless => {
                // Blocks until the task ends: answered from a thread (cancellable).
                let task = tasks::find(&shared, p)?;
                let slot = Arc::new(Slot::default());
                let waiter = Arc::clone(&slot);
                let wait = move |shared: &Shared| tasks::wait_result(shared, &task, &waiter);
                self.spawn_with(&req.id, "tasks-result", slot, wait);
                return Ok(None);
            }
            "tasks/get" | "tasks/list" | "tasks/cancel" | "tasks/update" => {
                tasks::request(&shared, &req.method, p, &client)?
            }
            other => return Err(method_not_found(other)),
        };
        Ok(Some(result))
    }

    fn initialize(&mut self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let offered = p
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_params("initialize: protocolVersion must be a string"))?;
        let capabilities = match p.get("capabilities") {
            None | Some(Value::Null) => json!({}),
            Some(c @ Value::Object(_)) => c.clone(),
            Some(_) => return Err(invalid_params("initialize: capabilities must be an object")),
        };
        let agreed = if HANDSHAKE_VERSIONS.contains(&offered) {
            offered
        } else {
            LATEST_HANDSHAKE_VERSION
        };
        self.generation = Some(Generation::Handshake);
        self.handshake_client = ClientCtx {
            generation: Generation::Handshake,
            protocol_version: agreed.into(),
            capabilities,
            client_info: p.get("clientInfo").cloned().unwrap_or(Value::Null),
            log_level: None,
        };
        Ok(json!({
            "protocolVersion": agreed,
            "capabilities": server_capabilities(Generation::Handshake),
            "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
            "instructions": "Fake MCP server for mcp-pool tests. Tools are documented in \
                             src/bin/mcp-fake-server/main.rs."
        }))
    }

    fn tools_call(&self, req: &Request, client: ClientCtx) -> Outcome {
        let p = &req.params;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_params("tools/call: name must be a string"))?;
        let args = match p.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid_params("tools/call: arguments must be an object")),
        };
        self.shared.record(name, &args);
        let call = Call {
            id: req.id.clone(),
            tool: name.to_string(),
            args,
            progress_token: meta(p).and_then(|m| m.get("progressToken")).cloned(),
            client,
            slot: Arc::new(Slot::default()),
            input_responses: p.get("inputResponses").cloned(),
            request_state: p.get("requestState").cloned(),
            meta: p.get("_meta").cloned(),
        };
        match find_tool(&self.shared, name) {
            None => Ok(Some(error_result(&format!("unknown tool: {name}")))),
            Some((run, threaded)) => {
                if let Some(outcome) = tasks::intercept(&self.shared, &call, p.get("task")) {
                    return outcome;
                }
                if !threaded {
                    return run(&self.shared, &call);
                }
                self.spawn_call(name, run, call);
                Ok(None)
            }
        }
    }

    /// Runs a tool on its own thread; it answers unless cancelled meanwhile.
    fn spawn_call(&self, name: &str, run: ToolFn, call: Call) {
        let (id, slot) = (call.id.clone(), Arc::clone(&call.slot));
        self.spawn_with(&id, name, slot, move |shared| run(shared, &call));
    }

    /// Answers request `id` from a thread of its own with what `work` returns, unless
    /// `notifications/cancelled` (which cancels `slot`) comes first.
    fn spawn_with<F>(&self, id: &Value, name: &str, slot: Arc<Slot>, work: F)
    where
        F: FnOnce(&Shared) -> Outcome + Send + 'static,
    {
        let key = id.to_string();
        let id = id.clone();
        let previous = lock(&self.shared.inflight).insert(key.clone(), Arc::clone(&slot));
        if previous.is_some() {
            say!("fake-server: request id {key} reused while still in flight");
        }
        let guard = ActiveGuard::new(&self.shared);
        let reply_id = id.clone();
        // HTTP mode: what the thread sends goes to the stream of the request it serves.
        let route = super::http::current_route();
        let spawned = thread::Builder::new()
            .name(format!("tool-{name}"))
            .spawn(move || {
                super::http::set_route(route);
                let shared = &guard.0;
                let outcome = work(shared);
                {
                    let mut inflight = lock(&shared.inflight);
                    if inflight.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                        inflight.remove(&key);
                    }
                }
                if !slot.is_cancelled() {
                    shared.respond(&reply_id, outcome);
                }
            });
        if let Err(e) = spawned {
            lock(&self.shared.inflight).remove(&id.to_string());
            let err = RpcError::new(INTERNAL_ERROR, format!("cannot spawn a thread: {e}"));
            self.shared.send_error(&id, err);
        }
    }
}

/// Validates the per-request envelope (version in `--supported-versions`, a known
/// `logLevel` if any) and builds the client context from it.
fn stateless_ctx(cfg: &Config, params: &Map<String, Value>) -> Result<ClientCtx, RpcError> {
    let m = meta(params);
    let version = match m.and_then(|m| m.get(META_PROTOCOL_VERSION)) {
        None => {
            return Err(invalid_params(format!(
            "missing params._meta[\"{META_PROTOCOL_VERSION}\"] (required by {STATELESS_VERSION})"
        )))
        }
        Some(Value::String(v)) if cfg.supported_versions().contains(v) => v.clone(),
        Some(other) => return Err(unsupported_version(cfg, Some(other))),
    };
    let log_level = match m.and_then(|m| m.get(META_LOG_LEVEL)) {
        None => None,
        Some(level) => {
            let index = level
                .as_str()
                .and_then(|l| LOG_LEVELS.iter().position(|known| *known == l));
            Some(index.ok_or_else(|| {
                invalid_params(format!("invalid _meta[\"{META_LOG_LEVEL}\"]: {level}"))
            })?)
        }
    };
    Ok(ClientCtx {
        generation: Generation::Stateless,
        protocol_version: version.into(),
        capabilities: m
            .and_then(|m| m.get(META_CLIENT_CAPS))
            .cloned()
            .unwrap_or_else(|| json!({})),
        client_info: m
            .and_then(|m| m.get(META_CLIENT_INFO))
            .cloned()
            .unwrap_or(Value::Null),
        log_level,
    })
}
