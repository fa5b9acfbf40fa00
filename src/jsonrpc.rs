//! JSON-RPC 2.0 envelopes: outgoing messages serialized into complete lines (by the
//! caller's thread), incoming ones classified by their keys (`id` / `method` / `result` /
//! `error`). The framing of the server's output is in `session/inbound.rs`.

use serde::Serialize;
use serde_json::{Map, Value};

/// The JSON-RPC error code for "invalid request".
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// The JSON-RPC error code for "method not found".
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// The JSON-RPC error code for "invalid params".
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// The JSON-RPC error code for "internal error".
pub(crate) const INTERNAL_ERROR: i64 = -32603;

/// A JSON-RPC error object, as sent or received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub(crate) fn from_value(v: &Value) -> RpcError {
        RpcError {
            code: v
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or(INTERNAL_ERROR),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_owned(),
            data: v.get("data").cloned(),
        }
    }
}

/// One message from the server, classified by its keys.
#[derive(Debug)]
pub(crate) enum Message {
    /// A request from the server to the client: it expects an answer with the same id.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification: no answer.
    Notification { method: String, params: Value },
    /// An answer to one of our requests.
    Response {
        id: Value,
        outcome: Result<Value, RpcError>,
    },
}

impl Message {
    /// Classifies one parsed JSON value. Arrays (JSON-RPC batches, allowed by the 2025-03-26
    /// revision) yield one message per element.
    pub(crate) fn classify(value: Value, out: &mut Vec<Result<Message, String>>) {
        match value {
            Value::Array(items) => {
                for item in items {
                    if item.is_array() {
                        out.push(Err("nested JSON-RPC batch".into()));
                    } else {
                        Message::classify(item, out);
                    }
                }
            }
            Value::Object(map) => out.push(Message::from_object(map)),
            other => out.push(Err(format!("not a JSON-RPC message: {}", brief(&other)))),
        }
    }

    fn from_object(mut map: Map<String, Value>) -> Result<Message, String> {
        let id = map.remove("id");
        if let Some(method) = map.remove("method") {
            let Value::String(method) = method else {
                return Err("`method` is not a string".into());
            };
            let params = map.remove("params").unwrap_or(Value::Null);
            return Ok(match id {
                Some(id) if !id.is_null() => Message::Request { id, method, params },
                _ => Message::Notification { method, params },
            });
        }
        let Some(id) = id else {
            return Err("message has neither `method` nor `id`".into());
        };
        if let Some(error) = map.get("error").filter(|e| !e.is_null()) {
            return Ok(Message::Response {
                id,
                outcome: Err(RpcError::from_value(error)),
            });
        }
        match map.remove("result") {
            Some(result) => Ok(Message::Response {
                id,
                outcome: Ok(result),
            }),
            None => Err("response has neither `result` nor `error`".into()),
        }
    }
}

/// Reads an id we issued (always a non-negative integer) back from a response.
pub(crate) fn our_id(id: &Value) -> Option<u64> {
    match id {
        Value::Number(n) => n.as_u64(),
        // Some servers echo ids as strings; accept the digits we sent.
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[derive(Serialize)]
struct OutRequest<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

#[derive(Serialize)]
struct OutNotification<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

#[derive(Serialize)]
struct OutErrorObject<'a> {
    code: i64,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

#[derive(Serialize)]
struct OutResponse<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<OutErrorObject<'a>>,
}

fn line_of<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut line = Vec::with_capacity(128);
    write_line(&mut line, msg);
    line
}

/// Appends `msg` as one line, newline included.
fn write_line<T: Serialize>(out: &mut Vec<u8>, msg: &T) {
    // Serializing these structs of strings, numbers and `Value`s cannot fail.
    serde_json::to_writer(&mut *out, msg).expect("serializing a JSON-RPC envelope");
    out.push(b'\n');
}

/// Request params with `_meta` entries added, serialized without copying the params
/// (which may be large): a tool call's name and arguments, the params' own entries, then
/// `_meta` merged from the params' `_meta`, the caller's extra entries and the library's
/// (later ones win).
pub(crate) struct WithMeta<'a> {
    /// A tool call's `name` and `arguments` (`null` arguments are sent as `{}`), from
    /// where they are.
    pub tool: Option<(&'a str, &'a Value)>,
    pub params: Option<&'a Map<String, Value>>,
    pub meta: &'a Map<String, Value>,
}

impl Serialize for WithMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if let Some((name, arguments)) = self.tool {
            map.serialize_entry("name", name)?;
            match arguments {
                Value::Null => map.serialize_entry("arguments", &Map::new())?,
                arguments => map.serialize_entry("arguments", arguments)?,
            }
        }
        for (k, v) in self.params.into_iter().flatten() {
            if k != "_meta" {
                map.serialize_entry(k, v)?;
            }
        }
        if !self.meta.is_empty() {
            map.serialize_entry("_meta", &self.meta)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct OutRequestWithMeta<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a WithMeta<'a>,
}

/// A request line whose params get `_meta` entries, newline included.
pub(crate) fn request_line_with_meta(id: u64, method: &str, params: &WithMeta<'_>) -> Vec<u8> {
    line_of(&OutRequestWithMeta {
        jsonrpc: "2.0",
        id,
        method,
        params,
    })
}

/// [`request_line_with_meta`], appended to `out`.
pub(crate) fn write_request_with_meta(
    out: &mut Vec<u8>,
    id: u64,
    method: &str,
    params: &WithMeta<'_>,
) {
    write_line(
        out,
        &OutRequestWithMeta {
            jsonrpc: "2.0",
            id,
            method,
            params,
        },
    );
}

/// A request line, newline included.
pub(crate) fn request_line(id: u64, method: &str, params: Option<&Value>) -> Vec<u8> {
    line_of(&OutRequest {
        jsonrpc: "2.0",
        id,
        method,
        params,
    })
}

/// A notification line, newline included.
pub(crate) fn notification_line(method: &str, params: Option<&Value>) -> Vec<u8> {
    line_of(&OutNotification {
        jsonrpc: "2.0",
        method,
        params,
    })
}

/// A response line to a server's request, newline included.
pub(crate) fn response_line(id: &Value, outcome: &Result<Value, RpcError>) -> Vec<u8> {
    let (result, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (
            None,
            Some(OutErrorObject {
                code: e.code,
                message: &e.message,
                data: e.data.as_ref(),
            }),
        ),
    };
    line_of(&OutResponse {
        jsonrpc: "2.0",
        id,
        result,
        error,
    })
}

/// A short, bounded rendering of a value or line for logs and errors.
pub(crate) fn brief(v: &impl std::fmt::Display) -> String {
    let s = v.to_string();
    if s.len() <= 120 {
        return s;
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classify_by_keys() {
        let mut out = Vec::new();
        Message::classify(
            json!([
                {"jsonrpc":"2.0","id":1,"result":{}},
                {"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"nope"}},
                {"jsonrpc":"2.0","id":0,"method":"roots/list"},
                {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}},
                {"jsonrpc":"2.0"},
                7
            ]),
            &mut out,
        );
        assert!(matches!(
            &out[0],
            Ok(Message::Response { outcome: Ok(_), .. })
        ));
        assert!(
            matches!(&out[1], Ok(Message::Response { outcome: Err(e), .. }) if e.code == METHOD_NOT_FOUND)
        );
        assert!(matches!(&out[2], Ok(Message::Request { method, .. }) if method == "roots/list"));
        assert!(matches!(&out[3], Ok(Message::Notification { .. })));
        assert!(out[4].is_err());
        assert!(out[5].is_err());
    }

    #[test]
    fn meta_is_merged_without_touching_the_params() {
        let params =
            json!({"name": "t", "arguments": {"a": 1}, "_meta": {"mine": 1, "progressToken": "x"}});
        let mut meta = params["_meta"].as_object().unwrap().clone();
        meta.insert("progressToken".into(), json!(7));
        let with = WithMeta {
            tool: None,
            params: params.as_object(),
            meta: &meta,
        };
        let line = request_line_with_meta(7, "tools/call", &with);
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v["params"],
            json!({"name": "t", "arguments": {"a": 1}, "_meta": {"mine": 1, "progressToken": 7}})
        );
        let bare = WithMeta {
            tool: None,
            params: None,
            meta: &Map::new(),
        };
        let v: Value = serde_json::from_slice(&request_line_with_meta(1, "ping", &bare)).unwrap();
        assert_eq!(v["params"], json!({}));
    }

    #[test]
    fn envelopes_serialize_as_single_lines() {
        let line = request_line(7, "tools/call", Some(&json!({"name":"a\nb"})));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"a\\nb\"}}\n"
        );
        let line = response_line(
            &json!(0),
            &Err(RpcError {
                code: METHOD_NOT_FOUND,
                message: "x".into(),
                data: None,
            }),
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"jsonrpc\":\"2.0\",\"id\":0,\"error\":{\"code\":-32601,\"message\":\"x\"}}\n"
        );
        assert_eq!(our_id(&json!("12")), Some(12));
        assert_eq!(our_id(&json!(-1)), None);
    }
}
