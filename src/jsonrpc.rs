//! JSON-RPC 2.0 envelopes and newline-delimited framing with a size cap.
//!
//! Outgoing messages are serialized by the caller's thread into complete lines; incoming lines
//! are split, cleaned (CRLF, blank lines, a byte-order mark) and parsed by the reader thread,
//! then classified by their keys (`id` / `method` / `result` / `error`).

use std::io::{self, BufRead};

use serde::Serialize;
use serde_json::{Map, Value};

/// The JSON-RPC error code for "method not found".
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
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
    fn from_value(v: &Value) -> RpcError {
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
    // Serializing these structs of strings, numbers and `Value`s cannot fail.
    serde_json::to_writer(&mut line, msg).expect("serializing a JSON-RPC envelope");
    line.push(b'\n');
    line
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

/// What [`LineReader::next_line`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    /// One non-blank line, without its terminator, BOM or trailing CR.
    Line(Vec<u8>),
    /// A line longer than the cap: the session must end.
    TooLong(usize),
    /// End of stream.
    Eof,
}

/// Splits a byte stream into lines, never holding more than `max` bytes of one line.
pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next non-blank line.
    pub(crate) fn next_line(&mut self) -> io::Result<Frame> {
        loop {
            self.buf.clear();
            let mut complete = false;
            while !complete {
                let available = match self.inner.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if available.is_empty() {
                    if self.buf.is_empty() {
                        return Ok(Frame::Eof);
                    }
                    break; // a last line without a newline
                }
                let (take, found) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                let content = if found { take - 1 } else { take };
                if self.buf.len() + content > self.max {
                    let seen = self.buf.len() + content;
                    self.inner.consume(take);
                    return Ok(Frame::TooLong(seen));
                }
                self.buf.extend_from_slice(&available[..content]);
                self.inner.consume(take);
                complete = found;
            }
            let mut line: &[u8] = &self.buf;
            if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = rest;
            }
            if let Some(rest) = line.strip_suffix(b"\r") {
                line = rest;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Frame::Line(line.to_vec()));
        }
    }
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

    fn lines(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = LineReader::new(io::BufReader::with_capacity(7, input), max);
        let mut out = Vec::new();
        loop {
            let f = r.next_line().unwrap();
            let eof = f == Frame::Eof;
            out.push(f);
            if eof {
                return out;
            }
        }
    }

    #[test]
    fn framing_tolerates_crlf_blank_lines_and_bom() {
        let got = lines(
            b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n\n  \n{\"b\":2}\n{\"c\":3}",
            100,
        );
        assert_eq!(
            got,
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(b"{\"b\":2}".to_vec()),
                Frame::Line(b"{\"c\":3}".to_vec()),
                Frame::Eof
            ]
        );
    }

    #[test]
    fn framing_caps_line_length() {
        let mut input = vec![b'x'; 50];
        input.push(b'\n');
        let got = lines(&input, 20);
        assert!(matches!(got[0], Frame::TooLong(n) if n > 20));
        // Exactly at the cap is fine.
        let got = lines(b"0123456789\n", 10);
        assert_eq!(got[0], Frame::Line(b"0123456789".to_vec()));
    }

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
