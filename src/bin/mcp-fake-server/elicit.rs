//! Handshake-generation server requests of 2025-11-25: URL-mode elicitation
//! (`elicitation/create` with `mode: "url"`, the -32042 URL-elicitation-required error,
//! `notifications/elicitation/complete`), and a server request that the server cancels
//! itself (`ask_then_cancel`), watching for a late answer. In the per-request generation
//! these tools answer `isError` (it has no server requests, no -32042 and no completion
//! notification).

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{lock, LateWatch, Shared, Slot};
use super::tools::{arg, arg_str, ask_tool, bad_arg, error_result, ok, Call};
use super::wire::{Outcome, RpcError, URL_ELICITATION_REQUIRED};

const DEFAULT_ELICITATION_ID: &str = "fake-url-elicitation";
const CONNECT_URL: &str = "https://example.com/mcp-fake-server/connect";

fn handshake_only(call: &Call) -> Option<Outcome> {
    call.client.is_stateless().then(|| {
        let text = format!("{}: handshake generation only", call.tool);
        Ok(Some(error_result(&text)))
    })
}

/// `ElicitRequestURLParams` (2025-11-25) with `elicitationId` = argument `id`.
fn url_params(call: &Call) -> Result<Value, RpcError> {
    let id = match arg(call, "id") {
        None => DEFAULT_ELICITATION_ID,
        Some(v) => v.as_str().ok_or_else(|| bad_arg(call, "id", "a string"))?,
    };
    Ok(json!({
        "mode": "url",
        "elicitationId": id,
        "url": CONNECT_URL,
        "message": "Open the page to connect your account."
    }))
}

pub(super) fn tool_ask_url(shared: &Shared, call: &Call) -> Outcome {
    if let Some(refusal) = handshake_only(call) {
        return refusal;
    }
    let params = url_params(call)?;
    ask_tool(shared, call, "elicitation/create", params)
}

pub(super) fn tool_url_required(_: &Shared, call: &Call) -> Outcome {
    if let Some(refusal) = handshake_only(call) {
        return refusal;
    }
    let data = json!({"elicitations": [url_params(call)?]});
    let message = "This request requires more information.";
    Err(RpcError::new(URL_ELICITATION_REQUIRED, message).with_data(data))
}

pub(super) fn tool_elicitation_complete(shared: &Shared, call: &Call) -> Outcome {
    if let Some(refusal) = handshake_only(call) {
        return refusal;
    }
    let id = arg_str(call, "id")?;
    shared.notify(
        "notifications/elicitation/complete",
        json!({"elicitationId": id}),
    );
    ok("ok")
}

/// Sends `elicitation/create`, 100 ms later `notifications/cancelled` for it, then answers
/// `cancelled-ask` at once. Whether an answer came anyway is written to stderr when the
/// next request arrives or at EOF (`Shared::report_late_answers`).
pub(super) fn tool_ask_then_cancel(shared: &Shared, call: &Call) -> Outcome {
    if let Some(refusal) = handshake_only(call) {
        return refusal;
    }
    let slot = Arc::new(Slot::default());
    let params = json!({
        "mode": "form",
        "message": "name? (the server will cancel this request)",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
    });
    let id = shared.send_request(&slot, "elicitation/create", Some(params));
    lock(&shared.late_watch).push(LateWatch {
        id,
        early: false,
        late: false,
        ready: false,
    });
    // Cut short if the tool call itself is cancelled; the request is cancelled either way.
    let call_cancelled = !call
        .slot
        .sleep_until(Instant::now().checked_add(Duration::from_millis(100)));
    lock(&shared.pending).remove(&id);
    let early = slot.try_reply().is_some();
    shared.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "the server no longer needs the answer"}),
    );
    if let Some(watch) = lock(&shared.late_watch).iter_mut().find(|w| w.id == id) {
        watch.early = early;
        watch.ready = true;
    }
    match call_cancelled {
        true => Ok(None),
        false => ok("cancelled-ask"),
    }
}
