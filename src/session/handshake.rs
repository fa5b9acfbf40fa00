//! Agreeing on a protocol generation and version: a pure decision (answers in, next step
//! out) and the thin driver that runs it on the worker thread.
//!
//! `server/discover` (with the per-request `_meta` envelope) and `initialize` go out
//! together. A server fixes a connection's generation at its first request, so the
//! `initialize` behind the probe costs a per-request server only an error answer, and a
//! server of the handshake generation that ignores the probe answers `initialize` without
//! making us wait for the probe. When both have answered, `server/discover` is looked at
//! first.

use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use serde_json::{json, Map, Value};

use crate::config::{Generation, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::handler::client_capabilities;
use crate::jsonrpc::{self, RpcError};
use crate::protocol::{self, Implementation, ServerDetails};

use super::pending::Event;
use super::worker::Worker;

/// Ids of the start-up requests (callers' ids start higher).
pub(crate) const DISCOVER_ID: u64 = 1;
pub(crate) const INITIALIZE_ID: u64 = 2;
/// The id `server/discover` is sent again under after an unsupported-version answer that
/// lists our version.
pub(crate) const DISCOVER_AGAIN_ID: u64 = 3;
/// The id of the `logging/setLevel` sent right after the handshake (handshake generation,
/// when the configuration sets a level).
pub(crate) const SET_LEVEL_ID: u64 = 4;

/// What the server answered to one start-up request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Result(Value),
    Error(RpcError),
}

/// What the driver does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Wait for more answers, until the start deadline or this instant if earlier.
    Wait(Option<Instant>),
    /// Send `server/discover` again (once): the server refused our version while listing
    /// it as supported.
    DiscoverAgain,
    /// The per-request generation, with these details.
    PerRequest(ServerDetails),
    /// The handshake generation: send `notifications/initialized`, then go.
    Initialized(ServerDetails),
    /// The start failed, for this reason.
    Fail(String),
    /// Nothing decisive came in time.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// Not sent (the generation is pinned).
    Off,
    Waiting,
    Failed(String),
}

/// The decision, fed the answers as they come.
#[derive(Debug)]
pub(crate) struct Decision {
    discover: Probe,
    initialize: Probe,
    discover_timeout: Duration,
    until: Option<Instant>,
    discovered_again: bool,
}

impl Decision {
    pub(crate) fn new(generation: Generation, discover_timeout: Duration) -> Decision {
        let on = |send: bool| if send { Probe::Waiting } else { Probe::Off };
        Decision {
            discover: on(generation != Generation::Handshake),
            initialize: on(generation != Generation::PerRequest),
            discover_timeout,
            until: None,
            discovered_again: false,
        }
    }

    pub(crate) fn sends_discover(&self) -> bool {
        self.discover == Probe::Waiting
    }

    pub(crate) fn sends_initialize(&self) -> bool {
        self.initialize == Probe::Waiting
    }

    pub(crate) fn discover_answered(&mut self, answer: Answer) -> Step {
        match answer {
            Answer::Result(result) => match discovered(&result) {
                Some(details) => return Step::PerRequest(details),
                None => {
                    self.discover = Probe::Failed(format!(
                        "no version this client speaks in {}",
                        jsonrpc::brief(&result)
                    ))
                }
            },
            Answer::Error(e) if e.code == protocol::UNSUPPORTED_VERSION => {
                let supported = protocol::supported_versions(e.data.as_ref());
                if supported.iter().any(|v| v == protocol::PER_REQUEST_VERSION) {
                    if !self.discovered_again {
                        self.discovered_again = true;
                        return Step::DiscoverAgain;
                    }
                    self.discover = Probe::Failed(format!(
                        "refused protocol version {} twice while listing it as supported: {}",
                        protocol::PER_REQUEST_VERSION,
                        describe(&e)
                    ));
                    return self.next();
                }
                let handshake_too = supported
                    .iter()
                    .any(|v| protocol::HANDSHAKE_VERSIONS.contains(&v.as_str()));
                if !handshake_too && !supported.is_empty() {
                    // A modern server that speaks none of our versions: do not fall back.
                    return Step::Fail(format!(
                        "the server supports protocol versions {} only; this client speaks {} and {}",
                        supported.join(", "),
                        protocol::PER_REQUEST_VERSION,
                        protocol::HANDSHAKE_VERSIONS.join(", ")
                    ));
                }
                self.discover = Probe::Failed(describe(&e));
            }
            Answer::Error(e) => self.discover = Probe::Failed(describe(&e)),
        }
        self.next()
    }

    pub(crate) fn initialize_answered(&mut self, answer: Answer, now: Instant) -> Step {
        match answer {
            Answer::Result(result) => match initialized(&result) {
                Ok(details) => return Step::Initialized(details),
                Err(why) => return Step::Fail(why),
            },
            Answer::Error(e) => {
                self.initialize = Probe::Failed(describe(&e));
                // A per-request server locked by the probe refuses `initialize`; its answer
                // to the probe is due soon, but not worth the whole start timeout.
                if self.discover == Probe::Waiting {
                    self.until = Some(now + self.discover_timeout);
                }
            }
        }
        self.next()
    }

    /// The wait ended without a decisive answer.
    pub(crate) fn deadline_passed(&self) -> Step {
        match (&self.initialize, self.until) {
            (Probe::Failed(e), Some(_)) => Step::Fail(format!("initialize failed: {e}")),
            _ => Step::TimedOut,
        }
    }

    fn next(&self) -> Step {
        let done = |p: &Probe| !matches!(p, Probe::Waiting);
        if done(&self.discover) && done(&self.initialize) {
            let mut why = Vec::new();
            if let Probe::Failed(e) = &self.initialize {
                why.push(format!("initialize failed: {e}"));
            }
            if let Probe::Failed(e) = &self.discover {
                why.push(format!("server/discover failed: {e}"));
            }
            return Step::Fail(why.join("; "));
        }
        Step::Wait(self.until)
    }
}

/// "message (code, data)" of a JSON-RPC error.
fn describe(e: &RpcError) -> String {
    match &e.data {
        Some(d) => format!("{} ({}, {})", e.message, e.code, jsonrpc::brief(d)),
        None => format!("{} ({})", e.message, e.code),
    }
}

/// Reads a `server/discover` result. `None` when it offers no version this client speaks,
/// or has no `supportedVersions` at all.
fn discovered(result: &Value) -> Option<ServerDetails> {
    let versions = result.get("supportedVersions")?.as_array()?;
    if !versions
        .iter()
        .any(|v| v.as_str() == Some(protocol::PER_REQUEST_VERSION))
    {
        return None;
    }
    let info: Implementation = result
        .get("_meta")
        .and_then(|m| m.get(protocol::META_SERVER_INFO))
        .or_else(|| result.get("serverInfo"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Some(ServerDetails {
        generation: Generation::PerRequest,
        protocol_version: protocol::PER_REQUEST_VERSION.to_owned(),
        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
        server_info: info,
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Reads an `initialize` result; the error says why it cannot be used.
fn initialized(result: &Value) -> Result<ServerDetails, String> {
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !protocol::HANDSHAKE_VERSIONS.contains(&version) {
        return Err(format!(
            "server chose protocol version {version:?}, which this client does not speak (it speaks {})",
            protocol::HANDSHAKE_VERSIONS.join(", ")
        ));
    }
    Ok(ServerDetails {
        generation: Generation::Handshake,
        protocol_version: version.to_owned(),
        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
        server_info: result
            .get("serverInfo")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The `_meta` envelope every request of the per-request generation carries.
pub(crate) fn envelope(config: &ServerConfig) -> Map<String, Value> {
    let caps = client_capabilities(config.handler.supports(), true, config.tasks);
    let mut envelope = Map::new();
    envelope.insert(
        protocol::META_VERSION.into(),
        json!(protocol::PER_REQUEST_VERSION),
    );
    envelope.insert(protocol::META_CLIENT_CAPS.into(), caps);
    envelope.insert(
        protocol::META_CLIENT_INFO.into(),
        json!({ "name": config.client_name, "version": config.client_version }),
    );
    envelope
}

/// The params of the `logging/setLevel` a handshake-generation session starts with, when
/// the configuration sets a level and the server declares `logging`.
pub(crate) fn set_level_params(config: &ServerConfig, details: &ServerDetails) -> Option<Value> {
    let level = config.log_level?;
    details
        .has_capability("logging")
        .then(|| json!({ "level": level.as_str() }))
}

/// A start-up request's event as the handshake decision reads it (over stdio and HTTP).
pub(crate) fn answer_of(event: Event) -> Option<Answer> {
    match event {
        Event::Done(Ok(v)) => Some(Answer::Result(v)),
        Event::Done(Err(Error::Server {
            code,
            message,
            data,
        })) => Some(Answer::Error(RpcError {
            code,
            message,
            data,
        })),
        Event::Done(Err(other)) => Some(Answer::Error(RpcError {
            code: 0,
            message: other.to_string(),
            data: None,
        })),
        _ => None,
    }
}

impl Worker {
    /// Runs the start-up exchange. On success the session's details (and envelope) are set;
    /// on failure returns the error for the starter and the reason the session ends.
    pub(crate) fn handshake(&mut self, config: &ServerConfig) -> Result<(), (Error, CloseReason)> {
        let deadline = self.shared.started + config.start_timeout;
        let mut decision = Decision::new(config.generation, config.discover_timeout);
        let envelope = envelope(config);
        let mut discover = decision.sends_discover().then(|| {
            self.start_request(
                DISCOVER_ID,
                "server/discover",
                &json!({ "_meta": envelope }),
            )
        });
        let initialize = decision.sends_initialize().then(|| {
            let params = json!({
                "protocolVersion": protocol::LATEST_HANDSHAKE_VERSION,
                "capabilities": client_capabilities(config.handler.supports(), false, config.tasks),
                "clientInfo": { "name": config.client_name, "version": config.client_version },
            });
            self.start_request(INITIALIZE_ID, "initialize", &params)
        });
        let outcome = loop {
            let until = match decision.until {
                Some(u) => u.min(deadline),
                None => deadline,
            };
            if let Some(reason) = self.turn(Some(until)) {
                let reason = self.settle(reason);
                let why = match &reason {
                    CloseReason::Closed => "the start was abandoned".to_owned(),
                    // A process that died starting may lack a variable it was not passed.
                    other => match &self.process {
                        Some(_) => format!(
                            "{other} during the handshake{}",
                            super::process::withheld_note(config)
                        ),
                        None => format!("{other} during the handshake"),
                    },
                };
                break Err((self.handshake_error(why), reason));
            }
            let mut step = Step::Wait(None);
            if let Some(answer) = discover
                .as_ref()
                .and_then(|rx| rx.try_recv().ok())
                .and_then(answer_of)
            {
                step = decision.discover_answered(answer);
            }
            if matches!(step, Step::Wait(_)) {
                if let Some(answer) = initialize
                    .as_ref()
                    .and_then(|rx| rx.try_recv().ok())
                    .and_then(answer_of)
                {
                    step = decision.initialize_answered(answer, Instant::now());
                }
            }
            if matches!(step, Step::Wait(_)) && Instant::now() >= until {
                step = decision.deadline_passed();
            }
            match step {
                Step::Wait(_) => continue,
                Step::DiscoverAgain => {
                    discover = Some(self.start_request(
                        DISCOVER_AGAIN_ID,
                        "server/discover",
                        &json!({ "_meta": envelope }),
                    ));
                    continue;
                }
                Step::PerRequest(details) => {
                    let _ = self.shared.envelope.set(envelope);
                    let _ = self.shared.details.set(details);
                    break Ok(());
                }
                Step::Initialized(details) => {
                    let line = jsonrpc::notification_line("notifications/initialized", None);
                    let _ = self.outbox.push(&line, None);
                    if let Some(params) = set_level_params(config, &details) {
                        // Its answer is not waited for: the requests that follow are read
                        // after it, in order.
                        let _ = self.start_request(SET_LEVEL_ID, "logging/setLevel", &params);
                    }
                    // The handshake is not done before this is written.
                    if let Some(reason) = self.flush() {
                        let e = self.handshake_error(reason.to_string());
                        break Err((e, reason));
                    }
                    let _ = self.shared.details.set(details);
                    break Ok(());
                }
                Step::Fail(why) => {
                    let e = self.handshake_error(why);
                    let reason = CloseReason::Broken(e.to_string());
                    break Err((e, reason));
                }
                Step::TimedOut => {
                    log::warn!(
                        "[{}] no handshake within {:?}; stderr: {}",
                        self.name(),
                        config.start_timeout,
                        self.drain.text().trim_end()
                    );
                    let e = Error::Timeout {
                        phase: Phase::Handshake,
                        after: config.start_timeout,
                    };
                    break Err((e, CloseReason::Broken("no handshake in time".into())));
                }
            }
        };
        // Late answers to the start-up requests are dropped.
        let mut table = self.shared.table.lock();
        for id in [DISCOVER_ID, INITIALIZE_ID, DISCOVER_AGAIN_ID] {
            table.abandon(id);
        }
        outcome
    }

    /// Registers a start-up request (without taking the read token: the worker reads
    /// during the start) and queues it.
    fn start_request(&mut self, id: u64, method: &str, params: &Value) -> Receiver<Event> {
        let (tx, rx) = unbounded();
        self.shared.table.lock().register_quiet(id, tx);
        let line = jsonrpc::request_line(id, method, Some(params));
        let _ = self.outbox.push(&line, Some(id));
        rx
    }

    fn handshake_error(&self, reason: String) -> Error {
        Error::Handshake {
            reason,
            stderr_tail: self.drain.text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i64, data: Option<Value>) -> Answer {
        Answer::Error(RpcError {
            code,
            message: "no".into(),
            data,
        })
    }

    fn init_result(version: &str) -> Answer {
        Answer::Result(
            json!({"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": {"name": "s", "version": "1"}}),
        )
    }

    #[test]
    fn a_discover_result_with_our_version_wins() {
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        assert!(d.sends_discover() && d.sends_initialize());
        let step = d.discover_answered(Answer::Result(json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}
        })));
        let Step::PerRequest(details) = step else {
            panic!("{step:?}")
        };
        assert_eq!(details.server_info.name, "s");
        assert!(details.has_capability("tools"));
    }

    #[test]
    fn an_initialize_answer_decides_without_waiting_for_the_probe() {
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step = d.initialize_answered(init_result("2025-06-18"), Instant::now());
        assert!(matches!(step, Step::Initialized(ref det) if det.protocol_version == "2025-06-18"));
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step = d.initialize_answered(init_result("2099-01-01"), Instant::now());
        assert!(
            matches!(step, Step::Fail(ref why) if why.contains("2099-01-01")),
            "{step:?}"
        );
    }

    #[test]
    fn a_refused_initialize_waits_a_short_while_for_the_probe() {
        let now = Instant::now();
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step = d.initialize_answered(rpc(-32022, None), now);
        assert_eq!(step, Step::Wait(Some(now + Duration::from_secs(1))));
        assert!(
            matches!(d.deadline_passed(), Step::Fail(ref why) if why.starts_with("initialize failed"))
        );
        // The probe answering an error too ends it at once, naming both.
        let step = d.discover_answered(rpc(-32601, None));
        assert!(
            matches!(step, Step::Fail(ref why) if why.contains("initialize failed") && why.contains("server/discover failed")),
            "{step:?}"
        );
    }

    #[test]
    fn a_discover_error_falls_back_to_initialize() {
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        assert_eq!(d.discover_answered(rpc(-32601, None)), Step::Wait(None));
        assert_eq!(d.deadline_passed(), Step::TimedOut);
        let step = d.initialize_answered(init_result("2025-11-25"), Instant::now());
        assert!(matches!(step, Step::Initialized(_)));
        // A result without our version is a failed probe, not a decision.
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step =
            d.discover_answered(Answer::Result(json!({"supportedVersions": ["2099-01-01"]})));
        assert_eq!(step, Step::Wait(None));
    }

    #[test]
    fn an_unsupported_version_with_only_modern_versions_does_not_fall_back() {
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step = d.discover_answered(rpc(-32022, Some(json!({"supported": ["2027-01-01"]}))));
        assert!(
            matches!(step, Step::Fail(ref why) if why.contains("2027-01-01")),
            "{step:?}"
        );
        // One that also speaks a handshake version: its answer to `initialize` decides.
        let mut d = Decision::new(Generation::Auto, Duration::from_secs(1));
        let step = d.discover_answered(rpc(
            -32022,
            Some(json!({"supported": ["2027-01-01", "2025-11-25"]})),
        ));
        assert_eq!(step, Step::Wait(None));
    }

    #[test]
    fn a_refusal_that_lists_our_version_sends_discover_once_more() {
        let mut d = Decision::new(Generation::PerRequest, Duration::from_secs(1));
        let refusal = || rpc(-32022, Some(json!({"supported": ["2026-07-28"]})));
        assert_eq!(d.discover_answered(refusal()), Step::DiscoverAgain);
        let step = d.discover_answered(refusal());
        assert!(
            matches!(step, Step::Fail(ref why) if why.contains("twice")),
            "{step:?}"
        );
    }

    #[test]
    fn pinned_generations_send_one_request() {
        let d = Decision::new(Generation::Handshake, Duration::from_secs(1));
        assert!(!d.sends_discover() && d.sends_initialize());
        let mut d = Decision::new(Generation::PerRequest, Duration::from_secs(1));
        assert!(d.sends_discover() && !d.sends_initialize());
        let step = d.discover_answered(rpc(-32601, None));
        assert!(
            matches!(step, Step::Fail(ref why) if why.contains("server/discover failed")),
            "{step:?}"
        );
    }
}
