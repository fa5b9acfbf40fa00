//! What the server offers besides tools: five resources and a template, the `greet` prompt,
//! argument completion, and the pagination shared by every `*/list` method (`--page-size`,
//! `--cursor-loop`).

use serde_json::{json, Map, Value};

use super::wire::{invalid_params, RpcError, RESOURCE_NOT_FOUND};
use super::Config;

const RESOURCE_COUNT: usize = 5;
const NAMES: [&str; 4] = ["Alice", "Bob", "Carol", "Dave"];

/// Cuts `items` into pages of `--page-size`; cursors are `page-K`, K counted from 1.
pub(super) fn paginate(
    cfg: &Config,
    params: &Map<String, Value>,
    key: &str,
    items: Vec<Value>,
) -> Result<Value, RpcError> {
    let size = if cfg.page_size == 0 {
        items.len().max(1)
    } else {
        cfg.page_size
    };
    let pages = items.len().div_ceil(size).max(1);
    let page = match params.get("cursor") {
        None | Some(Value::Null) => 1,
        Some(c) => c
            .as_str()
            .and_then(|c| c.strip_prefix("page-"))
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|k| (1..=pages).contains(k))
            .ok_or_else(|| invalid_params(format!("invalid cursor {c}")))?,
    };
    let start = (page - 1) * size;
    let slice: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut result = Map::new();
    result.insert(key.into(), Value::Array(slice));
    if page < pages {
        result.insert("nextCursor".into(), format!("page-{}", page + 1).into());
    } else if cfg.cursor_loop {
        result.insert("nextCursor".into(), "page-1".into());
    }
    Ok(Value::Object(result))
}

pub(super) fn resource_list() -> Vec<Value> {
    (0..RESOURCE_COUNT)
        .map(|n| {
            json!({
                "uri": format!("fake://r/{n}"),
                "name": format!("r{n}"),
                "description": format!("Fake resource {n}"),
                "mimeType": "text/plain"
            })
        })
        .collect()
}

pub(super) fn template_list() -> Vec<Value> {
    vec![json!({
        "uriTemplate": "fake://r/{n}",
        "name": "r",
        "description": "Fake resources by number",
        "mimeType": "text/plain"
    })]
}

pub(super) fn uri_param(p: &Map<String, Value>) -> Result<&str, RpcError> {
    p.get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("uri must be a string"))
}

pub(super) fn resource_read(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let uri = uri_param(p)?;
    let n = uri
        .strip_prefix("fake://r/")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < RESOURCE_COUNT)
        .ok_or_else(|| {
            RpcError::new(RESOURCE_NOT_FOUND, "resource not found").with_data(json!({"uri": uri}))
        })?;
    Ok(json!({"contents": [{
        "uri": uri, "mimeType": "text/plain", "text": format!("resource {n}")
    }]}))
}

pub(super) fn prompt_list() -> Vec<Value> {
    vec![json!({
        "name": "greet",
        "description": "Greets someone",
        "arguments": [{"name": "name", "description": "Who to greet", "required": true}]
    })]
}

pub(super) fn prompt_get(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "greet" {
        return Err(invalid_params(format!("unknown prompt '{name}'")));
    }
    let who = p
        .get("arguments")
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("prompt greet: argument 'name' is required"))?;
    Ok(json!({
        "description": "A greeting",
        "messages": [{"role": "user", "content": {"type": "text", "text": format!("Hello {who}")}}]
    }))
}

pub(super) fn complete(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let reference = p
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_params("completion/complete: ref must be an object"))?;
    let value = p
        .get("argument")
        .and_then(|a| a.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("completion/complete: argument.value must be a string"))?;
    let kind = reference.get("type").and_then(Value::as_str);
    let candidates: Vec<String> = match kind {
        Some("ref/prompt") => NAMES.iter().map(|s| s.to_string()).collect(),
        Some("ref/resource") => (0..RESOURCE_COUNT).map(|n| n.to_string()).collect(),
        _ => Vec::new(),
    };
    let needle = value.to_lowercase();
    let values: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.to_lowercase().starts_with(&needle))
        .collect();
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}
