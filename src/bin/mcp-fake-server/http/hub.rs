//! The hub of one session (or of all per-request traffic): the SSE streams and their
//! events, and where each message the server emits goes. A session's `Shared` writes
//! through `Hub::route` instead of stdout. Responses go to the stream of the request they
//! answer; messages tagged with a listen stream's subscription id to that stream; other
//! messages to the stream of the request being served on the emitting thread (a thread-local
//! route, inherited by tool threads), else (handshake generation) to the standalone GET
//! stream, buffered until one is open. In the handshake generation the messages tied to no
//! request (list changes, resource updates, task status, elicitation completion) always go
//! to the standalone stream. Server requests are never sent in the per-request
//! generation: the tool gets a JSON-RPC error instead.
//!
//! Event ids are `STREAM-SEQ` (STREAM unique in the process, SEQ in the hub), so an id
//! names its stream for `Last-Event-ID`.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::super::state::{lock, Shared};

thread_local! {
    static ROUTE: Cell<u64> = const { Cell::new(0) };
    static HEADERS: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// The stream of the request served on this thread (0: none).
pub(crate) fn current_route() -> u64 {
    ROUTE.with(Cell::get)
}

/// Sets this thread's route (tool threads inherit the one of the request they serve).
pub(crate) fn set_route(key: u64) {
    ROUTE.with(|r| r.set(key));
}

/// Runs `f` with this thread's route and request headers set, then clears them.
pub(crate) fn with_request<T>(route: u64, headers: Option<Value>, f: impl FnOnce() -> T) -> T {
    set_route(route);
    HEADERS.with(|h| *h.borrow_mut() = headers);
    let out = f();
    set_route(0);
    HEADERS.with(|h| *h.borrow_mut() = None);
    out
}

/// The `Mcp-*` headers of the HTTP request served on this thread (`header_echo`).
pub(crate) fn request_headers() -> Option<Value> {
    HEADERS.with(|h| h.borrow().clone())
}

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);
static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);

/// Closed streams a handshake session keeps for `Last-Event-ID` replays.
const KEEP_CLOSED: usize = 64;
/// Events the standalone stream keeps once written (for replays).
const KEEP_STANDALONE: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// 2025-11-25 Streamable HTTP: a session with a standalone GET stream and replays.
    Handshake,
    /// 2026-07-28: one hub for every request; no server requests, no replays.
    Stateless,
    /// 2024-11-05 HTTP+SSE: everything on the one SSE stream.
    Legacy,
}

/// One SSE event (or, for JSON answers, the one message).
#[derive(Clone, Debug)]
pub(crate) struct Event {
    /// `None` on legacy streams.
    pub(crate) id: Option<String>,
    pub(crate) data: Arc<Vec<u8>>,
    pub(crate) priming: bool,
    pub(crate) retry: Option<u64>,
    /// The response to the stream's own request.
    pub(crate) is_final: bool,
    /// Its JSON-RPC error code, if it is an error response.
    pub(crate) error_code: Option<i64>,
}

struct Stream {
    /// JSON text of the id of the request it answers (`None`: the standalone stream).
    request: Option<String>,
    events: Vec<Event>,
    /// Events before this index have been written (or replayed past).
    sent: usize,
    /// The final message is queued: the stream ends once everything is written.
    done: bool,
    /// Ended: written out, or given up.
    closed: bool,
    /// The token of the connection writing it (0: none).
    writer: u64,
    /// `--http-stall-sse`: nothing after the priming event is ever written.
    stalled: bool,
}

impl Stream {
    fn new(request: Option<String>, stalled: bool) -> Self {
        Stream {
            request,
            events: Vec::new(),
            sent: 0,
            done: false,
            closed: false,
            writer: 0,
            stalled,
        }
    }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    streams: HashMap<u64, Stream>,
    /// Request id (JSON text) → its stream, until the response is queued.
    by_request: HashMap<String, u64>,
    standalone: Option<u64>,
    closed_order: VecDeque<u64>,
    ended: bool,
}

pub(crate) struct Hub {
    pub(crate) kind: Kind,
    verbose: bool,
    st: Mutex<State>,
    cv: Condvar,
    shared: OnceLock<Weak<Shared>>,
}

/// What `Hub::take` found.
pub(crate) enum Take {
    Events(Vec<Event>),
    /// Everything, the final message included, is written: the stream has ended.
    Finished,
    /// Nothing new within the wait.
    Idle,
    /// The session ended, or the stream is gone.
    Ended,
    /// Another connection took the stream over (a `Last-Event-ID` resume).
    Replaced,
}

/// A `Last-Event-ID` that names no event this session still has.
pub(crate) struct UnknownEvent;

/// The parts of an outgoing message that decide where it goes.
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<Value>,
}

enum Message {
    Response {
        key: String,
        code: Option<i64>,
    },
    Request {
        id: Value,
    },
    Notification {
        subscription: Option<String>,
        ends: bool,
        /// A message about no request in particular.
        unrelated: bool,
    },
    Other,
}

/// Notifications that concern no request in particular.
const UNRELATED: [&str; 6] = [
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "notifications/tasks/status",
    "notifications/elicitation/complete",
];

fn classify(body: &[u8]) -> Message {
    let Ok(p) = serde_json::from_slice::<Peek>(body) else {
        return Message::Other;
    };
    match (p.method, p.id) {
        (Some(Value::String(_)), Some(id)) => Message::Request { id },
        (Some(Value::String(method)), None) => {
            let params = p.params.unwrap_or(Value::Null);
            let sub = params
                .get("_meta")
                .and_then(|m| m.get(super::super::listen::META_SUBSCRIPTION_ID));
            let ends = method == "notifications/cancelled"
                && sub.is_some()
                && params.get("requestId") == sub;
            Message::Notification {
                subscription: sub.map(Value::to_string),
                ends,
                unrelated: UNRELATED.contains(&method.as_str()),
            }
        }
        (None, id) if p.result.is_some() || p.error.is_some() => Message::Response {
            key: id.unwrap_or(Value::Null).to_string(),
            code: p
                .error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_i64),
        },
        _ => Message::Other,
    }
}

impl Hub {
    pub(crate) fn new(kind: Kind, verbose: bool) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            kind,
            verbose,
            st: Mutex::new(State::default()),
            cv: Condvar::new(),
            shared: OnceLock::new(),
        });
        if kind != Kind::Stateless {
            let key = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
            let mut st = lock(&hub.st);
            st.streams.insert(key, Stream::new(None, false));
            st.standalone = Some(key);
        }
        hub
    }

    /// The session state whose server requests are refused (per-request generation).
    pub(crate) fn bind(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }

    fn event(&self, st: &mut State, key: u64, data: Arc<Vec<u8>>) -> Event {
        st.next_seq += 1;
        Event {
            id: (self.kind != Kind::Legacy).then(|| format!("{key}-{}", st.next_seq)),
            data,
            priming: false,
            retry: None,
            is_final: false,
            error_code: None,
        }
    }

    /// A stream for the request whose id has JSON text `request`. Its priming event is
    /// reserved first, so that ids follow the order of the events.
    pub(crate) fn open_request(&self, request: String, stalled: bool) -> u64 {
        let key = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&self.st);
        let mut priming = self.event(&mut st, key, Arc::new(Vec::new()));
        priming.priming = true;
        let mut stream = Stream::new(Some(request.clone()), stalled);
        stream.events.push(priming);
        st.by_request.insert(request, key);
        st.streams.insert(key, stream);
        key
    }

    /// Where everything the session's server writes arrives.
    pub(crate) fn route(&self, body: &[u8]) {
        let message = classify(body);
        if let (Kind::Stateless, Message::Request { id }) = (self.kind, &message) {
            return self.refuse_server_request(id);
        }
        let data = Arc::new(body.to_vec());
        let mut st = lock(&self.st);
        if st.ended {
            return;
        }
        let route = current_route();
        let pending =
            |st: &State, key: u64| st.streams.get(&key).is_some_and(|s| !s.done && !s.closed);
        let open = |st: &State, key: u64| st.streams.get(&key).is_some_and(|s| !s.closed);
        let (target, is_final, code) = match (self.kind, message) {
            (Kind::Legacy, _) => (st.standalone, false, None),
            (_, Message::Response { key, code }) => match st.by_request.remove(&key) {
                Some(s) => (Some(s), true, code),
                None if key == "null" && pending(&st, route) => (Some(route), true, code),
                None if open(&st, route) => (Some(route), false, code),
                None => {
                    say!("fake-server: dropped a response to {key}: no open stream for it");
                    return;
                }
            },
            (
                _,
                Message::Notification {
                    subscription: Some(sub),
                    ends,
                    ..
                },
            ) => match st.by_request.get(&sub).copied() {
                Some(s) if ends => {
                    st.by_request.remove(&sub);
                    (Some(s), true, None)
                }
                Some(s) => (Some(s), false, None),
                None => (None, false, None),
            },
            (
                Kind::Handshake,
                Message::Notification {
                    unrelated: true, ..
                },
            ) => (st.standalone, false, None),
            (_, Message::Other) if open(&st, route) => (Some(route), false, None),
            _ if pending(&st, route) => (Some(route), false, None),
            (Kind::Handshake, _) => (st.standalone, false, None),
            _ => (None, false, None),
        };
        let Some(key) = target.filter(|k| st.streams.contains_key(k)) else {
            if self.verbose {
                say!(
                    "fake-server: dropped a message with no stream: {}",
                    String::from_utf8_lossy(&data[..data.len().min(200)])
                );
            }
            return;
        };
        let mut event = self.event(&mut st, key, data);
        event.is_final = is_final;
        event.error_code = code;
        let standalone = st.standalone == Some(key);
        if let Some(s) = st.streams.get_mut(&key) {
            if s.closed {
                return;
            }
            s.events.push(event);
            s.done |= is_final;
            if standalone && s.events.len() > 2 * KEEP_STANDALONE && s.sent > KEEP_STANDALONE {
                let cut = s.sent - KEEP_STANDALONE / 4;
                s.events.drain(..cut);
                s.sent -= cut;
            }
        }
        drop(st);
        self.cv.notify_all();
    }

    /// Per-request generation: a server request is not sent; the tool waiting for it gets a
    /// JSON-RPC error at once.
    fn refuse_server_request(&self, id: &Value) {
        let shared = self.shared.get().and_then(Weak::upgrade);
        let slot = match (shared.as_ref(), id.as_u64()) {
            (Some(shared), Some(n)) => lock(&shared.pending).remove(&n),
            _ => None,
        };
        say!("fake-server: server request {id} not sent: none in the per-request generation");
        if let Some(slot) = slot {
            slot.deliver(json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32601,
                "message": "server-to-client requests do not exist in the per-request generation"
            }}));
        }
    }

    /// The first unwritten event of a stream, waiting up to `wait`.
    pub(crate) fn first(&self, key: u64, wait: Duration) -> Option<Event> {
        let mut st = lock(&self.st);
        for round in 0..2 {
            let s = st.streams.get(&key)?;
            if let Some(e) = s.events[s.sent.min(s.events.len())..]
                .iter()
                .find(|e| !e.priming)
            {
                return Some(e.clone());
            }
            if round == 0 && !wait.is_zero() && !st.ended {
                st = match self.cv.wait_timeout(st, wait) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
        }
        None
    }

    /// Takes the final message of a stream answered as JSON; the stream ends.
    pub(crate) fn take_final(&self, key: u64) -> Option<Event> {
        let mut st = lock(&self.st);
        let event = st
            .streams
            .get(&key)?
            .events
            .iter()
            .find(|e| e.is_final)
            .cloned();
        self.forget(&mut st, key);
        event
    }

    /// The priming event (id, empty data) at the point the stream is being written from
    /// (the one reserved for it, or a new one), counted as written.
    pub(crate) fn prime(&self, key: u64, retry: Option<u64>) -> Option<Event> {
        let mut st = lock(&self.st);
        let s = st.streams.get(&key)?;
        let at = s.sent.min(s.events.len());
        if !s.events.get(at).is_some_and(|e| e.priming) {
            let mut event = self.event(&mut st, key, Arc::new(Vec::new()));
            event.priming = true;
            st.streams.get_mut(&key)?.events.insert(at, event);
        }
        let s = st.streams.get_mut(&key)?;
        s.events[at].retry = retry;
        s.sent = at + 1;
        Some(s.events[at].clone())
    }

    /// New events of a stream for the connection holding `writer` (priming events
    /// skipped), waiting up to `wait`.
    pub(crate) fn take(&self, key: u64, writer: u64, wait: Duration) -> Take {
        let mut st = lock(&self.st);
        for round in 0..2 {
            if st.ended {
                return Take::Ended;
            }
            let Some(s) = st.streams.get_mut(&key) else {
                return Take::Ended;
            };
            if s.writer != writer {
                return Take::Replaced;
            }
            if !s.stalled && s.sent < s.events.len() {
                let events: Vec<Event> = s.events[s.sent..]
                    .iter()
                    .filter(|e| !e.priming)
                    .cloned()
                    .collect();
                s.sent = s.events.len();
                if !events.is_empty() {
                    return Take::Events(events);
                }
            }
            if s.done && !s.stalled {
                s.closed = true;
                s.writer = 0;
                self.retire(&mut st, key);
                return Take::Finished;
            }
            if round == 0 {
                st = match self.cv.wait_timeout(st, wait) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
        }
        Take::Idle
    }

    /// A closed stream: kept for replays (handshake, a bounded number) or forgotten.
    fn retire(&self, st: &mut State, key: u64) {
        if self.kind != Kind::Handshake || st.standalone == Some(key) {
            if self.kind == Kind::Stateless {
                self.forget(st, key);
            }
            return;
        }
        st.closed_order.push_back(key);
        while st.closed_order.len() > KEEP_CLOSED {
            if let Some(old) = st.closed_order.pop_front() {
                st.streams.remove(&old);
            }
        }
    }

    fn forget(&self, st: &mut State, key: u64) {
        if let Some(s) = st.streams.remove(&key) {
            if let Some(request) = s.request {
                if st.by_request.get(&request) == Some(&key) {
                    st.by_request.remove(&request);
                }
            }
        }
    }

    /// Marks a stream as written by a new connection; its token, or `None` if another
    /// connection writes it.
    pub(crate) fn attach(&self, key: u64) -> Option<u64> {
        let mut st = lock(&self.st);
        let s = st.streams.get_mut(&key).filter(|s| s.writer == 0)?;
        s.writer = NEXT_WRITER.fetch_add(1, Ordering::Relaxed);
        Some(s.writer)
    }

    /// The connection holding `writer` is gone; the stream stays for a replay.
    pub(crate) fn detach(&self, key: u64, writer: u64) {
        if let Some(s) = lock(&self.st).streams.get_mut(&key) {
            if s.writer == writer {
                s.writer = 0;
            }
        }
    }

    /// Whether a stream has ended without its final message (the client cancelled it).
    pub(crate) fn is_done(&self, key: u64) -> bool {
        lock(&self.st).streams.get(&key).is_some_and(|s| s.done)
    }

    /// Drops a stream and whatever comes for it later. Returns the JSON text of its request's
    /// id if that request was still unanswered.
    pub(crate) fn drop_stream(&self, key: u64) -> Option<String> {
        let mut st = lock(&self.st);
        let unanswered = st
            .streams
            .get(&key)
            .filter(|s| !s.done)
            .and_then(|s| s.request.clone());
        self.forget(&mut st, key);
        unanswered
    }

    /// Ends the stream of a request without a response (the client cancelled it).
    pub(crate) fn end_request(&self, request: &str) {
        let mut st = lock(&self.st);
        if let Some(key) = st.by_request.remove(request) {
            if let Some(s) = st.streams.get_mut(&key) {
                s.done = true;
            }
        }
        drop(st);
        self.cv.notify_all();
    }

    /// The standalone stream, attached: (key, writer token); `None` if a connection already
    /// writes it.
    pub(crate) fn attach_standalone(&self) -> Option<(u64, u64)> {
        let key = lock(&self.st).standalone?;
        Some((key, self.attach(key)?))
    }

    /// Resumes the stream that event `last` belongs to, after that event: (key, writer
    /// token). A connection still writing it is replaced (its client has reconnected).
    pub(crate) fn resume(&self, last: &str) -> Result<(u64, u64), UnknownEvent> {
        let key: u64 = last
            .split_once('-')
            .and_then(|(k, _)| k.parse().ok())
            .ok_or(UnknownEvent)?;
        let mut st = lock(&self.st);
        let s = st.streams.get_mut(&key).ok_or(UnknownEvent)?;
        let at = s
            .events
            .iter()
            .position(|e| e.id.as_deref() == Some(last))
            .ok_or(UnknownEvent)?;
        if s.writer != 0 {
            say!("fake-server: Last-Event-ID {last} takes its stream over from another connection");
        }
        let writer = NEXT_WRITER.fetch_add(1, Ordering::Relaxed);
        s.writer = writer;
        s.sent = at + 1;
        if s.closed {
            // Replays what followed, then ends again.
            s.closed = false;
            s.done = true;
            st.closed_order.retain(|k| *k != key);
        }
        drop(st);
        self.cv.notify_all();
        Ok((key, writer))
    }

    /// The session is over: every stream ends.
    pub(crate) fn end(&self) {
        lock(&self.st).ended = true;
        self.cv.notify_all();
    }

    pub(crate) fn is_ended(&self) -> bool {
        lock(&self.st).ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(take: Take) -> Vec<String> {
        match take {
            Take::Events(e) => e
                .iter()
                .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                .collect(),
            Take::Finished => vec!["<finished>".into()],
            Take::Idle => vec!["<idle>".into()],
            Take::Ended => vec!["<ended>".into()],
            Take::Replaced => vec!["<replaced>".into()],
        }
    }

    const NO_WAIT: Duration = Duration::from_millis(1);

    #[test]
    fn responses_notifications_and_the_standalone_stream() {
        let hub = Hub::new(Kind::Handshake, false);
        let a = hub.open_request("1".into(), false);
        with_request(a, None, || {
            hub.route(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#);
            hub.route(br#"{"jsonrpc":"2.0","id":0,"method":"roots/list"}"#);
            // A list change goes to the standalone stream even while a request is served.
            hub.route(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
        });
        // Not on a request's thread: the standalone stream.
        hub.route(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#);
        let first = hub.first(a, NO_WAIT).unwrap();
        assert!(!first.is_final);
        hub.route(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#);
        let w = hub.attach(a).unwrap();
        assert!(hub.attach(a).is_none());
        let primed = hub.prime(a, Some(300)).unwrap();
        assert_eq!(
            primed.id.as_deref(),
            Some(format!("{a}-1").as_str()),
            "reserved first"
        );
        let got = events(hub.take(a, w, NO_WAIT));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].contains("-32601"));
        assert_eq!(events(hub.take(a, w, NO_WAIT)), ["<finished>"]);
        let (standalone, sw) = hub.attach_standalone().unwrap();
        assert!(
            hub.attach_standalone().is_none(),
            "one GET stream at a time"
        );
        let got = events(hub.take(standalone, sw, NO_WAIT));
        assert!(
            got[0].contains("list_changed") && got[1].contains("message"),
            "{got:?}"
        );
        // A replay of the closed stream after its priming event.
        hub.detach(standalone, sw);
        let (again, w2) = hub.resume(primed.id.as_deref().unwrap()).ok().unwrap();
        assert_eq!(again, a);
        assert_eq!(events(hub.take(a, w2, NO_WAIT)).len(), 3);
        assert_eq!(events(hub.take(a, w2, NO_WAIT)), ["<finished>"]);
        assert!(hub.resume("999999-1").is_err());
        assert!(hub.resume("garbage").is_err());
    }

    #[test]
    fn a_cut_stream_is_resumed_with_its_response() {
        let hub = Hub::new(Kind::Handshake, false);
        let a = hub.open_request("\"x\"".into(), false);
        let w = hub.attach(a).unwrap();
        let primed = hub.prime(a, Some(300)).unwrap();
        assert_eq!(primed.retry, Some(300));
        with_request(a, None, || {
            hub.route(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#);
        });
        // The old connection has not noticed its client left: the resume takes over.
        let (key, w2) = hub.resume(primed.id.as_deref().unwrap()).ok().unwrap();
        assert!(matches!(hub.take(key, w, NO_WAIT), Take::Replaced));
        hub.detach(key, w);
        assert!(events(hub.take(key, w2, NO_WAIT))[0].contains("\"result\""));
        assert_eq!(events(hub.take(key, w2, NO_WAIT)), ["<finished>"]);
    }

    #[test]
    fn listen_streams_and_dropped_streams() {
        let hub = Hub::new(Kind::Stateless, false);
        let listen = hub.open_request("7".into(), false);
        let call = hub.open_request("8".into(), false);
        with_request(call, None, || {
            // Tagged for the listen stream, though emitted while serving request 8.
            hub.route(
                br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":7}}}"#,
            );
            hub.route(br#"{"jsonrpc":"2.0","id":8,"result":{}}"#);
        });
        assert!(hub.first(call, NO_WAIT).unwrap().is_final);
        assert!(!hub.first(listen, NO_WAIT).unwrap().is_final);
        hub.route(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"_meta":{"io.modelcontextprotocol/subscriptionId":7}}}"#,
        );
        let w = hub.attach(listen).unwrap();
        assert_eq!(events(hub.take(listen, w, NO_WAIT)).len(), 2);
        assert_eq!(events(hub.take(listen, w, NO_WAIT)), ["<finished>"]);
        // A dropped stream's request is unanswered; its late response goes nowhere.
        let gone = hub.open_request("9".into(), false);
        assert_eq!(hub.drop_stream(gone).as_deref(), Some("9"));
        hub.route(br#"{"jsonrpc":"2.0","id":9,"result":{}}"#);
        assert!(matches!(hub.take(gone, 0, NO_WAIT), Take::Ended));
        // A request ended by a cancel has no final message.
        let cancelled = hub.open_request("10".into(), false);
        hub.end_request("10");
        assert!(hub.is_done(cancelled) && hub.first(cancelled, NO_WAIT).is_none());
    }

    #[test]
    fn stalled_streams_write_nothing() {
        let hub = Hub::new(Kind::Handshake, false);
        let a = hub.open_request("1".into(), true);
        hub.route(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let w = hub.attach(a).unwrap();
        assert!(hub.prime(a, None).is_some());
        assert!(matches!(hub.take(a, w, NO_WAIT), Take::Idle));
        hub.end();
        assert!(matches!(hub.take(a, w, NO_WAIT), Take::Ended));
    }
}
