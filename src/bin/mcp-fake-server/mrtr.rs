//! Multi round-trip requests (`2026-07-28`, per-request generation only): the
//! `InputRequiredResult` answers of the `mrtr_*` tools, the `mrtr_prompt` prompt and the
//! `fake://mrtr` resource; the checks on a retry (`inputResponses`, the byte-exact
//! `requestState`, a new request id); the opaque `requestState` encoding; the client
//! capabilities an input request needs (-32021 without them).

use serde_json::{json, Map, Value};

use super::dispatch::ClientCtx;
use super::state::{lock, Shared};
use super::tools::{arg_bool, arg_u64, error_result, ok, text_result, Call};
use super::wire::{invalid_params, missing_capability, Outcome, RpcError};

pub(super) const MRTR_PROMPT: &str = "mrtr_prompt";
pub(super) const MRTR_URI: &str = "fake://mrtr";
const CONSENT_URL: &str = "https://example.com/mcp-fake-server/consent";

/// Raw bytes before the JSON of a `requestState`; in base64 they are `++//`.
const STATE_MAGIC: [u8; 3] = [0xFB, 0xEF, 0xFF];
/// After the base64 text of a `requestState`: non-ASCII, one character outside the BMP.
const STATE_SUFFIX: &str = ".é🔒";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The input requests the server can make, and the client capability each needs.
#[derive(Clone, Copy)]
enum Need {
    Form,
    Url,
    Sampling,
    Roots,
}

/// -32021 unless the request's client capabilities cover every need. An `elicitation`
/// object with neither `form` nor `url` means form mode only.
fn require(caps: &Value, needs: &[Need]) -> Result<(), RpcError> {
    let elicitation = caps.get("elicitation").filter(|e| e.is_object());
    let mut missing = Map::new();
    for need in needs {
        let (has, key, mode) = match need {
            Need::Form => (
                elicitation.is_some_and(|e| e.get("form").is_some() || e.get("url").is_none()),
                "elicitation",
                Some("form"),
            ),
            Need::Url => (
                elicitation.is_some_and(|e| e.get("url").is_some()),
                "elicitation",
                Some("url"),
            ),
            Need::Sampling => (caps.get("sampling").is_some(), "sampling", None),
            Need::Roots => (caps.get("roots").is_some(), "roots", None),
        };
        if has {
            continue;
        }
        let entry = missing.entry(key).or_insert_with(|| json!({}));
        if let (Some(mode), Some(obj)) = (mode, entry.as_object_mut()) {
            obj.insert(mode.into(), json!({}));
        }
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(missing_capability(Value::Object(missing))),
    }
}

/// -32021 unless the client declared form-mode elicitation.
pub(super) fn require_form(caps: &Value) -> Result<(), RpcError> {
    require(caps, &[Need::Form])
}

fn form(message: &str, field: &str) -> Value {
    json!({"method": "elicitation/create", "params": {
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object", "properties": {field: {"type": "string"}}, "required": [field]
        }
    }})
}

fn url_elicitation() -> Value {
    json!({"method": "elicitation/create", "params": {
        "mode": "url", "message": "Open the page to continue.", "url": CONSENT_URL
    }})
}

fn sampling() -> Value {
    json!({"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "Say something."}}],
        "maxTokens": 10
    }})
}

fn roots() -> Value {
    json!({"method": "roots/list"})
}

/// `{key: value}`.
fn one(key: String, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key, value);
    Value::Object(map)
}

fn response<'a>(responses: &'a Map<String, Value>, key: &str) -> Result<&'a Value, RpcError> {
    responses
        .get(key)
        .filter(|v| v.is_object())
        .ok_or_else(|| invalid_params(format!("missing inputResponses.{key} (an object)")))
}

fn action<'a>(response: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    match response.get("action").and_then(Value::as_str) {
        Some(a @ ("accept" | "decline" | "cancel")) => Ok(a),
        _ => Err(invalid_params(format!(
            "inputResponses.{key}.action must be \"accept\", \"decline\" or \"cancel\""
        ))),
    }
}

/// An elicitation result for the `name` form: `hello NAME`, `declined` or `cancelled`.
pub(super) fn greeting(response: &Value, key: &str) -> Result<String, RpcError> {
    match action(response, key)? {
        "accept" => response
            .get("content")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(|name| format!("hello {name}"))
            .ok_or_else(|| {
                invalid_params(format!(
                    "inputResponses.{key}.content.name must be a string"
                ))
            }),
        "decline" => Ok("declined".into()),
        _ => Ok("cancelled".into()),
    }
}

/// The first text block of a sampling result.
fn sampled_text(response: &Value, key: &str) -> Result<String, RpcError> {
    let blocks: Vec<&Value> = match response.get("content") {
        Some(Value::Array(blocks)) => blocks.iter().collect(),
        Some(block) => vec![block],
        None => Vec::new(),
    };
    blocks
        .iter()
        .find(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| invalid_params(format!("inputResponses.{key} has no text content")))
}

fn roots_list<'a>(response: &'a Value, key: &str) -> Result<&'a Value, RpcError> {
    response
        .get("roots")
        .filter(|r| r.is_array())
        .ok_or_else(|| invalid_params(format!("inputResponses.{key}.roots must be an array")))
}

// ---------------------------------------------------------------------------------------------
// The opaque requestState
// ---------------------------------------------------------------------------------------------

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (at(0) << 16) | (at(1) << 8) | at(2);
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63])),
                false => out.push('='),
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for quad in text.chunks(4) {
        let (mut n, mut pad) = (0u32, 0usize);
        for (i, &c) in quad.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => BASE64.iter().position(|&b| b == c)? as u32,
            };
            n = (n << 6) | v;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pad]);
    }
    Some(out)
}

/// FNV-1a of the JSON text of the arguments (object keys are sorted, so it is canonical).
fn digest(args: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in args.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What a `requestState` carries: the request it belongs to, the round, and the id of the
/// request that was answered with it.
struct State {
    method: String,
    name: String,
    digest: String,
    round: u64,
    issued_to: String,
}

impl State {
    /// base64 (`+`, `/`, `=` padding) of magic bytes and the JSON, then `STATE_SUFFIX`.
    fn encode(&self) -> String {
        let body = json!({
            "v": 1, "m": self.method, "n": self.name, "a": self.digest, "r": self.round,
            "i": self.issued_to
        });
        let mut bytes = STATE_MAGIC.to_vec();
        bytes.extend_from_slice(body.to_string().as_bytes());
        while bytes.len() % 3 != 1 {
            bytes.push(b' ');
        }
        format!("{}{STATE_SUFFIX}", base64(&bytes))
    }

    fn decode(text: &str) -> Option<State> {
        let bytes = unbase64(text.strip_suffix(STATE_SUFFIX)?)?;
        let body: Value = serde_json::from_slice(bytes.strip_prefix(&STATE_MAGIC)?).ok()?;
        let field = |key: &str| body.get(key).and_then(Value::as_str).map(String::from);
        Some(State {
            method: field("m")?,
            name: field("n")?,
            digest: field("a")?,
            round: body.get("r").and_then(Value::as_u64)?,
            issued_to: field("i")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One request of an exchange
// ---------------------------------------------------------------------------------------------

/// A `tools/call`, `prompts/get` or `resources/read` that may be a step of an exchange.
struct Exchange<'a> {
    method: &'a str,
    name: &'a str,
    digest: String,
    id: &'a Value,
    input_responses: Option<&'a Value>,
    request_state: Option<&'a Value>,
    capabilities: &'a Value,
}

enum Step {
    /// Neither `inputResponses` nor `requestState`: a fresh request.
    First,
    /// A retry: the round its `requestState` is for (1 without state) and its responses.
    Retry {
        round: u64,
        responses: Map<String, Value>,
    },
}

impl<'a> Exchange<'a> {
    fn of_call(call: &'a Call) -> Self {
        Exchange {
            method: "tools/call",
            name: &call.tool,
            digest: digest(&Value::Object(call.args.clone())),
            id: &call.id,
            input_responses: call.input_responses.as_ref(),
            request_state: call.request_state.as_ref(),
            capabilities: &call.client.capabilities,
        }
    }

    fn of_request(
        method: &'a str,
        name: &'a str,
        args: &Value,
        id: &'a Value,
        params: &'a Map<String, Value>,
        client: &'a ClientCtx,
    ) -> Self {
        Exchange {
            method,
            name,
            digest: digest(args),
            id,
            input_responses: params.get("inputResponses"),
            request_state: params.get("requestState"),
            capabilities: &client.capabilities,
        }
    }

    /// Classifies the request; -32602 for a retry that breaks a rule. `stateful`: the
    /// `input_required` answers of this exchange carry a `requestState`.
    fn step(&self, shared: &Shared, stateful: bool) -> Result<Step, RpcError> {
        let responses = match self.input_responses {
            None => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => return Err(invalid_params("inputResponses must be an object")),
        };
        let state = match self.request_state {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(invalid_params("requestState must be a string")),
        };
        if responses.is_none() && state.is_none() {
            return Ok(Step::First);
        }
        let id = self.id.to_string();
        if lock(&shared.mrtr_ids).contains(&id) {
            return Err(invalid_params(format!(
                "the retry reuses request id {id}, which was answered with input_required; \
                 a retry needs a new id"
            )));
        }
        let round = match (stateful, state) {
            (false, Some(_)) => {
                return Err(invalid_params(
                    "unexpected requestState: the input_required result carried none",
                ))
            }
            (false, None) => 1,
            (true, None) => {
                return Err(invalid_params(
                    "missing requestState: the input_required result carried one",
                ))
            }
            (true, Some(text)) => self.check_state(text)?,
        };
        Ok(Step::Retry {
            round,
            responses: responses.unwrap_or_default(),
        })
    }

    fn check_state(&self, text: &str) -> Result<u64, RpcError> {
        let modified = || {
            invalid_params(
                "requestState mismatch: it was modified (it must be echoed byte for byte)",
            )
        };
        let state = State::decode(text).ok_or_else(modified)?;
        if state.method != self.method || state.name != self.name {
            return Err(invalid_params(format!(
                "requestState mismatch: it belongs to another request ({} {})",
                state.method, state.name
            )));
        }
        if state.digest != self.digest {
            return Err(invalid_params(
                "requestState mismatch: it was issued for other arguments",
            ));
        }
        if state.encode() != text {
            return Err(modified());
        }
        Ok(state.round)
    }

    /// An `InputRequiredResult`; `round`: carry a `requestState` for that round.
    fn input_required(
        &self,
        shared: &Shared,
        requests: Option<Value>,
        round: Option<u64>,
    ) -> Value {
        lock(&shared.mrtr_ids).insert(self.id.to_string());
        let mut result = Map::new();
        result.insert("resultType".into(), "input_required".into());
        if let Some(requests) = requests {
            result.insert("inputRequests".into(), requests);
        }
        if let Some(round) = round {
            let state = State {
                method: self.method.into(),
                name: self.name.into(),
                digest: self.digest.clone(),
                round,
                issued_to: self.id.to_string(),
            };
            result.insert("requestState".into(), state.encode().into());
        }
        Value::Object(result)
    }

    /// An exchange of one round: `requests` first, then `finish` with the responses.
    fn one_round<F>(
        &self,
        shared: &Shared,
        stateful: bool,
        needs: &[Need],
        requests: Value,
        finish: F,
    ) -> Result<Value, RpcError>
    where
        F: FnOnce(&Map<String, Value>) -> Result<Value, RpcError>,
    {
        match self.step(shared, stateful)? {
            Step::First => {
                require(self.capabilities, needs)?;
                Ok(self.input_required(shared, Some(requests), stateful.then_some(1)))
            }
            Step::Retry {
                round: 1,
                responses,
            } => finish(&responses),
            Step::Retry { round, .. } => Err(invalid_params(format!(
                "requestState mismatch: it is for round {round} of a one-round exchange"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tools, the prompt and the resource
// ---------------------------------------------------------------------------------------------

/// The `mrtr_*` tools answer `isError` in the handshake generation.
fn handshake_refusal(call: &Call) -> Option<Outcome> {
    (!call.client.is_stateless()).then(|| {
        let text = format!("{}: per-request generation (2026-07-28) only", call.tool);
        Ok(Some(error_result(&text)))
    })
}

/// A one-round tool whose result is a text.
fn one_round_tool<F>(
    shared: &Shared,
    call: &Call,
    stateful: bool,
    needs: &[Need],
    requests: Value,
    finish: F,
) -> Outcome
where
    F: FnOnce(&Map<String, Value>) -> Result<String, RpcError>,
{
    if let Some(refusal) = handshake_refusal(call) {
        return refusal;
    }
    let exchange = Exchange::of_call(call);
    let result = exchange.one_round(shared, stateful, needs, requests, |responses| {
        finish(responses).map(|text| text_result(&text))
    })?;
    Ok(Some(result))
}

pub(super) fn tool_mrtr_elicit(shared: &Shared, call: &Call) -> Outcome {
    let stateful = arg_bool(call, "with_state", true)?;
    let requests = json!({"name": form("What is your name?", "name")});
    one_round_tool(shared, call, stateful, &[Need::Form], requests, |r| {
        greeting(response(r, "name")?, "name")
    })
}

pub(super) fn tool_mrtr_sampling(shared: &Shared, call: &Call) -> Outcome {
    let requests = json!({"sample": sampling()});
    one_round_tool(shared, call, true, &[Need::Sampling], requests, |r| {
        sampled_text(response(r, "sample")?, "sample")
    })
}

pub(super) fn tool_mrtr_roots(shared: &Shared, call: &Call) -> Outcome {
    let requests = json!({"roots": roots()});
    one_round_tool(shared, call, true, &[Need::Roots], requests, |r| {
        let answer = response(r, "roots")?;
        roots_list(answer, "roots")?;
        Ok(answer.to_string())
    })
}

pub(super) fn tool_mrtr_multi(shared: &Shared, call: &Call) -> Outcome {
    let requests = json!({
        "name": form("What is your name?", "name"), "sample": sampling(), "roots": roots()
    });
    let needs = [Need::Form, Need::Sampling, Need::Roots];
    one_round_tool(shared, call, true, &needs, requests, |r| {
        let value = json!({
            "elicitation": greeting(response(r, "name")?, "name")?,
            "sampling": sampled_text(response(r, "sample")?, "sample")?,
            "roots": roots_list(response(r, "roots")?, "roots")?
        });
        Ok(value.to_string())
    })
}

pub(super) fn tool_mrtr_many(shared: &Shared, call: &Call) -> Outcome {
    let count = arg_u64(call, "count", None)?;
    let requests: Map<String, Value> = (0..count)
        .map(|i| (format!("roots_{i}"), roots()))
        .collect();
    one_round_tool(
        shared,
        call,
        true,
        &[Need::Roots],
        Value::Object(requests),
        |r| {
            for i in 0..count {
                roots_list(response(r, &format!("roots_{i}"))?, "roots")?;
            }
            Ok(format!("{count} answered"))
        },
    )
}

pub(super) fn tool_mrtr_url(shared: &Shared, call: &Call) -> Outcome {
    let requests = json!({"consent": url_elicitation()});
    one_round_tool(shared, call, true, &[Need::Url], requests, |r| {
        action(response(r, "consent")?, "consent").map(String::from)
    })
}

/// Several rounds: round K asks `KEY_K` (`None`: a `requestState` only); the retry for the
/// last of `rounds` rounds completes with `done`.
fn rounds_tool(
    shared: &Shared,
    call: &Call,
    rounds: Option<u64>,
    key: Option<&str>,
    done: &str,
) -> Outcome {
    if let Some(refusal) = handshake_refusal(call) {
        return refusal;
    }
    let exchange = Exchange::of_call(call);
    let ask = |round: u64| -> Result<Value, RpcError> {
        let requests = match key {
            Some(key) => {
                require(exchange.capabilities, &[Need::Form])?;
                let message = format!("Round {round}: anything to add?");
                Some(one(format!("{key}_{round}"), form(&message, "answer")))
            }
            None => None,
        };
        Ok(exchange.input_required(shared, requests, Some(round)))
    };
    let next = match exchange.step(shared, true)? {
        Step::First if rounds == Some(0) => return ok(done),
        Step::First => 1,
        Step::Retry { round, responses } => {
            if round == 0 || rounds.is_some_and(|n| round > n) {
                return Err(invalid_params(format!(
                    "requestState mismatch: round {round} is out of range"
                )));
            }
            if let Some(key) = key {
                let key = format!("{key}_{round}");
                action(response(&responses, &key)?, &key)?;
            }
            if let (Some(token), Some(total)) = (&call.progress_token, rounds) {
                // Progress across rounds: each request of the exchange has its own token.
                shared.notify(
                    "notifications/progress",
                    json!({"progressToken": token, "progress": round, "total": total,
                           "message": format!("round {round} answered")}),
                );
            }
            if rounds == Some(round) {
                return ok(done);
            }
            round + 1
        }
    };
    Ok(Some(ask(next)?))
}

pub(super) fn tool_mrtr_rounds(shared: &Shared, call: &Call) -> Outcome {
    let rounds = arg_u64(call, "rounds", None)?;
    let done = format!("rounds {rounds}");
    rounds_tool(shared, call, Some(rounds), Some("round"), &done)
}

pub(super) fn tool_mrtr_state_only(shared: &Shared, call: &Call) -> Outcome {
    let rounds = arg_u64(call, "rounds", Some(1))?;
    let done = format!("state only {rounds}");
    rounds_tool(shared, call, Some(rounds), None, &done)
}

pub(super) fn tool_mrtr_forever(shared: &Shared, call: &Call) -> Outcome {
    rounds_tool(shared, call, None, Some("again"), "never")
}

/// `prompts/get` of `mrtr_prompt` (per-request generation): one form elicitation, then a
/// user message `hello NAME`.
pub(super) fn prompt_get(
    shared: &Shared,
    id: &Value,
    params: &Map<String, Value>,
    client: &ClientCtx,
) -> Result<Value, RpcError> {
    let args = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let exchange = Exchange::of_request("prompts/get", MRTR_PROMPT, &args, id, params, client);
    let requests = json!({"name": form("Who is the prompt for?", "name")});
    exchange.one_round(shared, true, &[Need::Form], requests, |r| {
        let text = greeting(response(r, "name")?, "name")?;
        Ok(json!({
            "description": "A prompt that needed an elicitation",
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}]
        }))
    })
}

/// `resources/read` of `fake://mrtr` (per-request generation): one form elicitation, then
/// the text `hello NAME`.
pub(super) fn resource_read(
    shared: &Shared,
    id: &Value,
    params: &Map<String, Value>,
    client: &ClientCtx,
) -> Result<Value, RpcError> {
    let args = json!({});
    let exchange = Exchange::of_request("resources/read", MRTR_URI, &args, id, params, client);
    let requests = json!({"name": form("Who is reading?", "name")});
    exchange.one_round(shared, true, &[Need::Form], requests, |r| {
        let text = greeting(response(r, "name")?, "name")?;
        Ok(json!({"contents": [{"uri": MRTR_URI, "mimeType": "text/plain", "text": text}]}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_the_state_has_odd_characters() {
        for n in 0..10 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(unbase64(&base64(&bytes)).unwrap(), bytes);
        }
        let state = State {
            method: "tools/call".into(),
            name: "mrtr_elicit".into(),
            digest: digest(&json!({})),
            round: 1,
            issued_to: "7".into(),
        };
        let text = state.encode();
        assert!(text.starts_with("++//") && text.contains("==") && text.ends_with(STATE_SUFFIX));
        let back = State::decode(&text).unwrap();
        assert_eq!((back.round, back.issued_to.as_str()), (1, "7"));
        assert_eq!(back.encode(), text);
    }
}
