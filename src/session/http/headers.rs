//! The request metadata headers of Streamable HTTP (2026-07-28): `Mcp-Method`, `Mcp-Name`
//! and the `Mcp-Param-*` mirrors of the arguments a tool's input schema marks with
//! `x-mcp-header`, each value encoded by the specification's rules.

use serde_json::{Map, Value};

use crate::protocol::ToolIndex;

/// The largest integer a header may mirror (JavaScript's safe range).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The metadata headers of a request of the per-request generation.
pub(crate) fn request_headers(
    method: &str,
    params: Option<&Map<String, Value>>,
    tools: Option<&ToolIndex>,
) -> Vec<(String, String)> {
    let mut headers = vec![("Mcp-Method".to_owned(), header_text(method))];
    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(value) = name_field
        .and_then(|f| params.and_then(|p| p.get(f)))
        .and_then(Value::as_str)
    {
        headers.push(("Mcp-Name".to_owned(), header_text(value)));
    }
    if method == "tools/call" {
        let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
        let arguments = params.and_then(|p| p.get("arguments"));
        if let (Some(tool), Some(index), Some(arguments)) = (tool, tools, arguments) {
            for mark in index.header_params(tool) {
                let value = mark.path.iter().try_fold(arguments, |v, key| v.get(key));
                if let Some(text) = value.and_then(param_text) {
                    headers.push((format!("Mcp-Param-{}", mark.name), text));
                }
            }
        }
    }
    headers
}

/// A mirrored argument's header value: strings encoded, integers in decimal, booleans in
/// lowercase; nothing for null (or a value no header can carry).
fn param_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(header_text(s)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|i| i.abs() <= MAX_SAFE_INTEGER) {
                Some(i.to_string())
            } else {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64)
                    .map(|f| (f as i64).to_string())
            }
        }
        _ => None,
    }
}

/// A text as a header value: as it is when every character is visible ASCII or an inner
/// space, else the Base64 sentinel `=?base64?…?=` of its UTF-8 (also for a plain value that
/// looks like the sentinel).
pub(crate) fn header_text(s: &str) -> String {
    let visible = s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = s.starts_with(' ') || s.ends_with(' ');
    let sentinel = s.starts_with("=?base64?") && s.ends_with("?=");
    if visible && !padded && !sentinel {
        s.to_owned()
    } else {
        format!("=?base64?{}?=", base64(s.as_bytes()))
    }
}

/// Standard Base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Tool;
    use serde_json::json;

    #[test]
    fn values_are_encoded_as_the_spec_shows() {
        assert_eq!(header_text("us-west1"), "us-west1");
        assert_eq!(
            header_text("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(header_text(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_text("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            header_text("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
        assert_eq!(header_text("tab\there"), "=?base64?dGFiCWhlcmU=?=");
        assert_eq!(header_text("inner space"), "inner space");
        assert_eq!(header_text(""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(param_text(&json!(42)), Some("42".into()));
        assert_eq!(param_text(&json!(-7)), Some("-7".into()));
        assert_eq!(param_text(&json!(42.0)), Some("42".into()));
        assert_eq!(param_text(&json!(true)), Some("true".into()));
        assert_eq!(param_text(&json!(null)), None);
        assert_eq!(param_text(&json!(1.5)), None);
    }

    #[test]
    fn marked_arguments_are_mirrored() {
        let tool: Tool = serde_json::from_value(json!({
            "name": "execute_sql",
            "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
                "query": {"type": "string"}
            }}
        }))
        .unwrap();
        let index = ToolIndex::new(&[tool], false, true);
        let params = json!({"name": "execute_sql", "arguments": {"region": "us-west1", "opts": {"dry": false}, "query": "SELECT 1"}});
        let headers = request_headers("tools/call", params.as_object(), Some(&index));
        assert_eq!(
            headers,
            vec![
                ("Mcp-Method".to_owned(), "tools/call".to_owned()),
                ("Mcp-Name".to_owned(), "execute_sql".to_owned()),
                ("Mcp-Param-Dry".to_owned(), "false".to_owned()),
                ("Mcp-Param-Region".to_owned(), "us-west1".to_owned()),
            ]
        );
        let params = json!({"name": "execute_sql", "arguments": {"region": null}});
        assert_eq!(
            request_headers("tools/call", params.as_object(), Some(&index)).len(),
            2
        );
        let read = json!({"uri": "file:///path/to/file%20name.txt"});
        assert_eq!(
            request_headers("resources/read", read.as_object(), None)[1].1,
            "file:///path/to/file%20name.txt"
        );
    }
}
