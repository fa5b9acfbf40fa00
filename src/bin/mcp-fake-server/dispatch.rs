//! Method dispatch: routing each line as request, notification or response; the two protocol
//! generations (handshake and per-request `2026-07-28`) and how `--generation` gates them;
//! `initialize`, `server/discover` and the other methods; `tools/call`, on the main loop or on
//! a thread of its own.

use serde_json::{json, Map, Value};
use std::process;
use std::sync::Arc;
use std::thread;

use super::catalog::{
    complete, paginate, prompt_get, prompt_list, resource_list, resource_read, template_list,
    uri_param,
};
use super::state::{lock, ActiveGuard, Shared, Slot};
use super::tools::{error_result, find_tool, tool_list, Call, ToolFn};
use super::wire::{
    invalid_params, method_not_found, Outcome, RpcError, INTERNAL_ERROR, INVALID_REQUEST,
    PARSE_ERROR, UNSUPPORTED_VERSION,
};
use super::GenerationMode;

const SERVER_NAME: &str = "mcp-fake-server";
const SERVER_VERSION: &str = "0.1.0";
const STATELESS_VERSION: &str = "2026-07-28";
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_HANDSHAKE_VERSION: &str = "2025-11-25";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
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

fn unsupported_version(requested: Option<&Value>) -> RpcError {
    let mut data = json!({ "supported": [STATELESS_VERSION] });
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

fn server_capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {"subscribe": true, "listChanged": true},
        "prompts": {"listChanged": true},
        "logging": {},
        "completions": {}
    })
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
        let slot = id
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|n| lock(&self.shared.pending).remove(&n));
        match (slot, id) {
            (Some(slot), Some(id)) => {
                obj.insert("id".into(), id);
                slot.deliver(Value::Object(obj));
            }
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
        let outcome = match self.gate(&req) {
            Ok(client) => self.dispatch(&req, client),
            Err(e) => Err(e),
        };
        self.shared.respond(&req.id, outcome);
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
        match self.generation {
            Some(Generation::Stateless) if method == "initialize" => Err(unsupported_version(None)),
            Some(Generation::Stateless) => stateless_ctx(&req.params),
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
                        Err(unsupported_version(None))
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
                        let ctx = stateless_ctx(&req.params)?;
                        self.generation = Some(Generation::Stateless);
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
        let result = match req.method.as_str() {
            "initialize" => self.initialize(p)?,
            "server/discover" => json!({
                "supportedVersions": [STATELESS_VERSION],
                "capabilities": server_capabilities(),
                "_meta": {META_SERVER_INFO: {"name": SERVER_NAME, "version": SERVER_VERSION}}
            }),
            "ping" if client.generation == Generation::Stateless => {
                return Err(method_not_found("ping"))
            }
            "ping" => json!({}),
            "tools/list" => paginate(cfg, p, "tools", tool_list(&shared))?,
            "tools/call" => return self.tools_call(req, client),
            "resources/list" => paginate(cfg, p, "resources", resource_list())?,
            "resources/templates/list" => paginate(cfg, p, "resourceTemplates", template_list())?,
            "resources/read" => resource_read(p)?,
            "resources/subscribe" => {
                lock(&shared.subscriptions).insert(uri_param(p)?.to_string());
                json!({})
            }
            "resources/unsubscribe" => {
                lock(&shared.subscriptions).remove(uri_param(p)?);
                json!({})
            }
            "prompts/list" => paginate(cfg, p, "prompts", prompt_list())?,
            "prompts/get" => prompt_get(p)?,
            "completion/complete" => complete(p)?,
            "logging/setLevel" => {
                let level = p.get("level").and_then(Value::as_str).unwrap_or("");
                let idx = LOG_LEVELS.iter().position(|l| *l == level);
                let idx = idx.ok_or_else(|| invalid_params(format!("bad level '{level}'")))?;
                *lock(&shared.log_level) = Some(idx);
                json!({})
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
        };
        Ok(json!({
            "protocolVersion": agreed,
            "capabilities": server_capabilities(),
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
        };
        match find_tool(&self.shared, name) {
            None => Ok(Some(error_result(&format!("unknown tool: {name}")))),
            Some((run, true)) => {
                self.spawn_call(name, run, call);
                Ok(None)
            }
            Some((run, false)) => run(&self.shared, &call),
        }
    }

    /// Runs a tool on its own thread; it answers unless cancelled meanwhile.
    fn spawn_call(&self, name: &str, run: ToolFn, call: Call) {
        let key = call.id.to_string();
        let id = call.id.clone();
        let previous = lock(&self.shared.inflight).insert(key.clone(), Arc::clone(&call.slot));
        if previous.is_some() {
            say!("fake-server: request id {key} reused while still in flight");
        }
        let guard = ActiveGuard::new(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("tool-{name}"))
            .spawn(move || {
                let shared = &guard.0;
                let outcome = run(shared, &call);
                {
                    let mut inflight = lock(&shared.inflight);
                    if inflight
                        .get(&key)
                        .is_some_and(|s| Arc::ptr_eq(s, &call.slot))
                    {
                        inflight.remove(&key);
                    }
                }
                if !call.slot.is_cancelled() {
                    shared.respond(&call.id, outcome);
                }
            });
        if let Err(e) = spawned {
            lock(&self.shared.inflight).remove(&id.to_string());
            let err = RpcError::new(INTERNAL_ERROR, format!("cannot spawn a thread: {e}"));
            self.shared.send_error(&id, err);
        }
    }
}

/// Validates the per-request envelope and builds the client context from it.
fn stateless_ctx(params: &Map<String, Value>) -> Result<ClientCtx, RpcError> {
    let m = meta(params);
    match m.and_then(|m| m.get(META_PROTOCOL_VERSION)) {
        None => Err(invalid_params(format!(
            "missing params._meta[\"{META_PROTOCOL_VERSION}\"] (required by {STATELESS_VERSION})"
        ))),
        Some(Value::String(v)) if v == STATELESS_VERSION => Ok(ClientCtx {
            generation: Generation::Stateless,
            protocol_version: STATELESS_VERSION.into(),
            capabilities: m
                .and_then(|m| m.get(META_CLIENT_CAPS))
                .cloned()
                .unwrap_or_else(|| json!({})),
            client_info: m
                .and_then(|m| m.get(META_CLIENT_INFO))
                .cloned()
                .unwrap_or(Value::Null),
        }),
        Some(other) => Err(unsupported_version(Some(other))),
    }
}
