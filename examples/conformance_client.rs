//! A client for the official MCP conformance suite (`@modelcontextprotocol/conformance`),
//! doing each client scenario through mcp-pool's public API only.
//!
//! The suite runs it as `conformance_client URL` with `MCP_CONFORMANCE_SCENARIO` set, plus
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (suite 0.2: the wire the mock speaks; absent under
//! 0.1, which speaks the handshake generation) and, for some scenarios,
//! `MCP_CONFORMANCE_CONTEXT` (JSON). It prints what it does on stderr and exits 0 when the
//! scenario's calls succeeded. `tests/conformance.rs` runs every non-auth scenario of both
//! pinned suite versions against it.
//!
//! ```sh
//! .ci/install-conformance
//! cargo build --example conformance_client
//! MCP_CONFORMANCE_SCENARIO=tools_call target/debug/examples/conformance_client http://localhost:3000/mcp
//! ```

use std::process::ExitCode;

use mcp_pool::{
    ClientHandler, Error, Generation, HandlerError, HandlerSupport, ServerConfig, ServerRequest,
    Session,
};
use serde_json::{json, Map, Value};

/// Accepts every form elicitation: with each field's schema default (SEP-1034), or, in
/// the multi round-trip scenario, with `confirmed: true`.
struct Accept {
    confirm: bool,
}

impl ClientHandler for Accept {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            elicitation_form: true,
            sampling: true,
            roots: true,
            ..HandlerSupport::default()
        }
    }

    fn elicitation(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        if self.confirm {
            return Ok(json!({"action": "accept", "content": {"confirmed": true}}));
        }
        let mut content = Map::new();
        let properties = request
            .params()
            .pointer("/requestedSchema/properties")
            .and_then(Value::as_object);
        for (name, schema) in properties.into_iter().flatten() {
            if let Some(default) = schema.get("default") {
                content.insert(name.clone(), default.clone());
            }
        }
        Ok(json!({"action": "accept", "content": content}))
    }

    fn sampling(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(json!({"role": "assistant", "content": {"type": "text", "text": ""}, "model": "stub"}))
    }

    fn roots(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(json!({"roots": []}))
    }
}

/// Placeholder values for a tool's required arguments.
fn stub_arguments(schema: &Value) -> Value {
    let mut args = Map::new();
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let kind = schema
            .pointer(&format!("/properties/{name}/type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match kind {
            "integer" | "number" => json!(1),
            "boolean" => json!(false),
            "object" => json!({}),
            "array" => json!([]),
            _ => json!("us-west1"),
        };
        args.insert(name.to_owned(), value);
    }
    Value::Object(args)
}

fn run(scenario: &str, url: &str, wire: Option<&str>) -> Result<(), Error> {
    // The 2025 wires speak the handshake generation only: no `server/discover` probe
    // (their mocks check every message against that version's schema).
    let generation = match wire {
        Some("2026-07-28") => Generation::PerRequest,
        _ => Generation::Handshake,
    };
    let confirm = scenario == "sep-2322-client-request-state";
    let config = ServerConfig::http("conformance", url)
        .generation(generation)
        .client_info("mcp-pool-conformance-client", env!("CARGO_PKG_VERSION"))
        .handler(Accept { confirm });
    let session = Session::start(config)?;
    eprintln!(
        "connected: {} {} ({:?})",
        session.details().server_info.name,
        session.details().protocol_version,
        session.details().generation
    );
    let outcome = scenario_calls(scenario, &session);
    session.close();
    outcome
}

fn scenario_calls(scenario: &str, session: &Session) -> Result<(), Error> {
    // A server that declares no tools is not asked for them (the call would be refused
    // locally with `Error::Unsupported`).
    let tools = if session.details().has_capability("tools") {
        session.list_tools()?
    } else {
        Default::default()
    };
    eprintln!(
        "tools: {:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    match scenario {
        "initialize" | "request-metadata" | "json-schema-ref-no-deref" => {}
        s if s.starts_with("sep-2640-") => {}
        "tools_call" => {
            let r = session.call_tool("add_numbers", json!({"a": 5, "b": 3}))?;
            eprintln!("add_numbers: {}", r.text());
        }
        "sse-retry" => {
            let r = session.call_tool("test_reconnection", json!({}))?;
            eprintln!("test_reconnection: {}", r.text());
        }
        "elicitation-sep1034-client-defaults" => {
            let r = session.call_tool("test_client_elicitation_defaults", json!({}))?;
            eprintln!("elicitation defaults: {}", r.text());
        }
        "json-schema-2020-12-preservation" => {
            let focal = tools
                .iter()
                .find(|t| t.name == "json_schema_2020_12_tool")
                .ok_or_else(|| Error::Protocol("json_schema_2020_12_tool is not listed".into()))?;
            let r = session.call_tool("json_schema_echo", json!({"schema": focal.input_schema}))?;
            eprintln!("echo: {}", r.text());
        }
        "http-standard-headers" => {
            for tool in tools.iter() {
                session.call_tool(&tool.name, stub_arguments(&tool.input_schema))?;
            }
            for resource in session.list_resources()? {
                session.read_resource(&resource.uri)?;
            }
            for prompt in session.list_prompts()? {
                session.get_prompt(&prompt.name, json!({}))?;
            }
        }
        "http-custom-headers" => {
            let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
                .ok()
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or(Value::Null);
            let calls = context.get("toolCalls").and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
                let arguments = call.get("arguments").cloned().unwrap_or(json!({}));
                session.call_tool(name, arguments)?;
            }
        }
        "http-invalid-tool-headers" => {
            // The invalid tools were dropped from the list; call what is left.
            for tool in tools.iter() {
                if let Err(e) = session.call_tool(&tool.name, stub_arguments(&tool.input_schema)) {
                    eprintln!("{}: {e}", tool.name);
                }
            }
        }
        "sep-2322-client-request-state" => {
            for tool in [
                "test_mrtr_echo_state",
                "test_mrtr_unrelated",
                "test_mrtr_no_state",
            ] {
                let r = session.call_tool(tool, json!({}))?;
                eprintln!("{tool}: {}", r.text());
            }
            // A result without `resultType` is complete (never retried); this one also
            // lacks the `content` a tool result requires, which the client reports.
            match session.call_tool("test_mrtr_no_result_type", json!({})) {
                Ok(r) => eprintln!("test_mrtr_no_result_type: {}", r.text()),
                Err(e) => eprintln!("test_mrtr_no_result_type: {e}"),
            }
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown conformance scenario `{other}`"
            )))
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("mcp_pool=info"))
        .target(env_logger::Target::Stderr)
        .init();
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let wire = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").ok();
    let Some(url) = std::env::args().nth(1).filter(|_| !scenario.is_empty()) else {
        eprintln!("usage: MCP_CONFORMANCE_SCENARIO=<name> conformance_client <server-url>");
        return ExitCode::from(2);
    };
    let url = std::env::args().next_back().unwrap_or(url);
    eprintln!("scenario {scenario}, wire {wire:?}, url {url}");
    match run(&scenario, &url, wire.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failed ({}): {e}", e.kind());
            ExitCode::FAILURE
        }
    }
}
