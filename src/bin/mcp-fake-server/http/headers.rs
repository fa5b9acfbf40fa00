//! The request metadata headers of the per-request generation (2026-07-28): checking
//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and the `Mcp-Param-{Name}` headers that
//! the `x-mcp-header` marks of a tool's `inputSchema` call for against the body; the tool
//! `header_echo` (marked arguments; answers the `Mcp-*` headers it got) and the tools of
//! `--http-bad-header-tools` (one invalid mark each, as the specification lists them).

use serde_json::{json, Map, Value};

use super::super::dispatch::Generation;
use super::super::state::Shared;
use super::super::tools::{arg, ok, tool_list, Call, ToolFn};
use super::super::wire::Outcome;
use super::super::Config;
use super::hub::request_headers;
use super::wire::{header_value, is_field_value, Request};

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const BAD_PREFIX: &str = "bad_header_";

/// The tools this module adds to `tools/list`: `header_echo`, and the bad ones with
/// `--http-bad-header-tools`.
pub(crate) fn http_tools(cfg: &Config) -> Vec<Value> {
    let mut tools = vec![json!({
        "name": "header_echo",
        "description": "Answers the JSON of the Mcp-* headers of its HTTP request ({} on stdio).",
        "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"},
            "flag": {"type": "boolean", "x-mcp-header": "Flag"},
            "nested": {"type": "object", "properties": {
                "zone": {"type": "string", "x-mcp-header": "Zone"}
            }}
        }},
        "annotations": {"readOnlyHint": true}
    })];
    if cfg.http.bad_header_tools {
        tools.extend(bad_tools());
    }
    tools
}

/// The invalid `x-mcp-header` cases: (name suffix, properties).
fn bad_cases() -> Vec<(&'static str, Value)> {
    let s = |mark: &str| json!({"a": {"type": "string", "x-mcp-header": mark}});
    vec![
        ("empty", s("")),
        (
            "object",
            json!({"a": {"type": "object", "x-mcp-header": "A"}}),
        ),
        (
            "array",
            json!({"a": {"type": "array", "items": {"type": "string"}, "x-mcp-header": "A"}}),
        ),
        (
            "number",
            json!({"a": {"type": "number", "x-mcp-header": "A"}}),
        ),
        (
            "duplicate",
            json!({"a": {"type": "string", "x-mcp-header": "Dup"},
                   "b": {"type": "string", "x-mcp-header": "dup"}}),
        ),
        ("space", s("Has Space")),
        ("colon", s("Has:Colon")),
        ("non_ascii", s("Régión")),
        (
            "items",
            json!({"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}}}),
        ),
        (
            "any_of",
            json!({"a": {"anyOf": [{"type": "string", "x-mcp-header": "Any"}, {"type": "integer"}]}}),
        ),
    ]
}

fn bad_tools() -> Vec<Value> {
    bad_cases()
        .into_iter()
        .map(|(case, properties)| {
            json!({
                "name": format!("{BAD_PREFIX}{case}"),
                "description": format!("Invalid x-mcp-header ({case}); echoes `text` or its arguments."),
                "inputSchema": {"type": "object", "properties": properties}
            })
        })
        .collect()
}

/// The function of one of these tools (none runs on a thread of its own).
pub(crate) fn find_http_tool(cfg: &Config, name: &str) -> Option<ToolFn> {
    if name == "header_echo" {
        return Some(tool_header_echo);
    }
    let case = name.strip_prefix(BAD_PREFIX)?;
    (cfg.http.bad_header_tools && bad_cases().iter().any(|(c, _)| *c == case))
        .then_some(tool_bad_header as ToolFn)
}

fn tool_header_echo(_: &Shared, _: &Call) -> Outcome {
    let headers = request_headers().unwrap_or_else(|| json!({}));
    Ok(Some(json!({
        "content": [{"type": "text", "text": headers.to_string()}],
        "structuredContent": headers
    })))
}

fn tool_bad_header(_: &Shared, call: &Call) -> Outcome {
    match arg(call, "text").and_then(Value::as_str) {
        Some(text) => ok(text),
        None => ok(&Value::Object(call.args.clone()).to_string()),
    }
}

/// The marks reachable from the root through `properties`: (mark, path of property names).
fn marks(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, sub) in properties {
        path.push(name.clone());
        if let Some(mark) = sub.get("x-mcp-header").and_then(Value::as_str) {
            out.push((mark.to_string(), path.clone()));
        }
        marks(sub, path, out);
        path.pop();
    }
}

/// The one value of a header; two of them are refused.
fn single<'a>(req: &'a Request, name: &str, label: &str) -> Result<Option<&'a str>, String> {
    match req.header_count(name) {
        0 | 1 => Ok(req.header(name)),
        _ => Err(format!("Header mismatch: {label} given more than once")),
    }
}

/// A header value checked for invalid characters and decoded (base64 sentinel).
fn decoded(raw: &str, label: &str) -> Result<String, String> {
    if !is_field_value(raw) {
        return Err(format!(
            "Header mismatch: {label} contains invalid characters"
        ));
    }
    header_value(raw).map_err(|e| format!("Header mismatch: {label}: {e}"))
}

/// Whether a decoded header value stands for this body value (numbers compare numerically).
fn same(body: &Value, header: &str) -> bool {
    match body {
        Value::String(s) => s == header,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        Value::Number(n) => match (n.as_i64(), header.parse::<i64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => header
                .parse::<f64>()
                .ok()
                .zip(n.as_f64())
                .is_some_and(|(a, b)| a == b),
        },
        other => serde_json::from_str::<Value>(header).ok().as_ref() == Some(other),
    }
}

/// Checks a per-request POST's metadata headers against its body. `Err`: the message of the
/// -32020 HeaderMismatch error.
pub(crate) fn check(
    req: &Request,
    method: &str,
    params: &Map<String, Value>,
    shared: &Shared,
) -> Result<(), String> {
    let body_version = params
        .get("_meta")
        .and_then(|m| m.get(META_PROTOCOL_VERSION));
    match (single(req, "mcp-protocol-version", "MCP-Protocol-Version")?, body_version) {
        (None, _) => return Err("Header mismatch: missing MCP-Protocol-Version header".into()),
        (Some(h), Some(Value::String(b))) if h == b => {}
        (Some(h), Some(b)) => {
            return Err(format!(
                "Header mismatch: MCP-Protocol-Version header value '{h}' does not match body value {b}"
            ))
        }
        (Some(h), None) => {
            return Err(format!(
                "Header mismatch: MCP-Protocol-Version header value '{h}' but the body has no _meta[\"{META_PROTOCOL_VERSION}\"]"
            ))
        }
    }
    match single(req, "mcp-method", "Mcp-Method")? {
        None => return Err("Header mismatch: missing Mcp-Method header".into()),
        Some(m) if m == method => {}
        Some(m) => {
            return Err(format!(
            "Header mismatch: Mcp-Method header value '{m}' does not match body value '{method}'"
        ))
        }
    }
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return Ok(()),
    };
    let body_name = params.get(field).and_then(Value::as_str);
    let raw = single(req, "mcp-name", "Mcp-Name")?
        .ok_or_else(|| "Header mismatch: missing Mcp-Name header".to_string())?;
    let name = decoded(raw, "Mcp-Name")?;
    if Some(name.as_str()) != body_name {
        let body = body_name.map_or("<none>".to_string(), |b| format!("'{b}'"));
        return Err(format!(
            "Header mismatch: Mcp-Name header value '{raw}' does not match body value {body} (params.{field})"
        ));
    }
    if method != "tools/call" || name.starts_with(BAD_PREFIX) {
        return Ok(());
    }
    let tools = tool_list(shared, Generation::Stateless);
    let wanted = Value::from(name);
    let Some(tool) = tools.iter().find(|t| t.get("name") == Some(&wanted)) else {
        return Ok(());
    };
    let mut found = Vec::new();
    if let Some(schema) = tool.get("inputSchema") {
        marks(schema, &mut Vec::new(), &mut found);
    }
    let args = params.get("arguments");
    for (mark, path) in found {
        let value = path
            .iter()
            .try_fold(args, |v, key| v.map(|v| v.get(key)))
            .flatten()
            .filter(|v| !v.is_null());
        let label = format!("Mcp-Param-{mark}");
        let at = path.join(".");
        match (value, single(req, &label.to_ascii_lowercase(), &label)?) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(format!(
                    "Header mismatch: {label} is present but arguments.{at} is absent or null"
                ))
            }
            (Some(_), None) => {
                return Err(format!(
                    "Header mismatch: missing {label} header for arguments.{at}"
                ))
            }
            (Some(v), Some(raw)) => {
                if !same(v, &decoded(raw, &label)?) {
                    return Err(format!(
                        "Header mismatch: {label} header value '{raw}' does not match body value {v}"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_through_properties_only() {
        let tools = http_tools(&Config::default());
        let mut found = Vec::new();
        marks(&tools[0]["inputSchema"], &mut Vec::new(), &mut found);
        found.sort();
        let names: Vec<String> = found
            .iter()
            .map(|(m, p)| format!("{m}={}", p.join(".")))
            .collect();
        assert_eq!(
            names,
            [
                "Count=count",
                "Flag=flag",
                "Region=region",
                "Zone=nested.zone"
            ]
        );
        let mut bad = Vec::new();
        marks(
            &json!({"properties": {"a": {"items": {"x-mcp-header": "I"}}}}),
            &mut Vec::new(),
            &mut bad,
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn values_compare_by_type() {
        assert!(same(&json!("us-west1"), "us-west1"));
        assert!(same(&json!(42), "42") && same(&json!(42), "42.0") && same(&json!(-7), "-7"));
        assert!(!same(&json!(42), "43") && !same(&json!(42), "x"));
        assert!(same(&json!(true), "true") && !same(&json!(true), "True"));
        assert!(same(&json!(1.5), "1.5"));
    }

    #[test]
    fn bad_tools_are_listed_only_with_the_flag() {
        let mut cfg = Config::default();
        assert_eq!(http_tools(&cfg).len(), 1);
        assert!(find_http_tool(&cfg, "bad_header_empty").is_none());
        cfg.http.bad_header_tools = true;
        assert_eq!(http_tools(&cfg).len(), 11);
        assert!(find_http_tool(&cfg, "bad_header_any_of").is_some());
        assert!(find_http_tool(&cfg, "bad_header_nope").is_none());
    }
}
