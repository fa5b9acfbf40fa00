//! What a caller can say about one call or one batch: its deadline, progress callback,
//! cancel handle, `_meta`, and (through a pool) whose call it is.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::protocol::{CallToolResult, LogLevel, Progress};

type Waker = Box<dyn Fn() + Send + Sync>;

/// A way for another thread to cancel a call.
///
/// One handle may be given to several calls; [`cancel`](Self::cancel) ends all of them at
/// once (each with [`Error::Cancelled`], and the server is told with
/// `notifications/cancelled`), and calls started with an already cancelled handle fail
/// immediately.
///
/// ```
/// let cancel = mcp_pool::CancelHandle::new();
/// let for_other_thread = cancel.clone();
/// std::thread::spawn(move || for_other_thread.cancel());
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    inner: Arc<CancelInner>,
}

struct CancelInner {
    fired: AtomicBool,
    next: AtomicU64,
    wakers: Mutex<Vec<(u64, Waker)>>,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelHandle {
    /// A handle that has not fired.
    pub fn new() -> Self {
        CancelHandle {
            inner: Arc::new(CancelInner {
                fired: AtomicBool::new(false),
                next: AtomicU64::new(0),
                wakers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Cancels every call using this handle. Idempotent.
    pub fn cancel(&self) {
        let wakers = {
            let mut wakers = self.inner.wakers.lock();
            self.inner.fired.store(true, Ordering::Release);
            std::mem::take(&mut *wakers)
        };
        for (_, wake) in wakers {
            wake();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Runs `wake` when the handle fires (at once if it has), until the guard is dropped.
    pub(crate) fn on_cancel(&self, wake: impl Fn() + Send + Sync + 'static) -> CancelGuard {
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut wakers = self.inner.wakers.lock();
            if !self.inner.fired.load(Ordering::Acquire) {
                wakers.push((key, Box::new(wake)));
                return CancelGuard {
                    inner: self.inner.clone(),
                    key,
                };
            }
        }
        wake();
        CancelGuard {
            inner: self.inner.clone(),
            key,
        }
    }
}

impl Default for CancelHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes a waker from its cancel handle when the call it belongs to ends.
pub(crate) struct CancelGuard {
    inner: Arc<CancelInner>,
    key: u64,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.inner.wakers.lock().retain(|(k, _)| *k != self.key);
    }
}

/// A progress callback.
pub(crate) type ProgressFn<'a> = Box<dyn FnMut(&Progress) + 'a>;

/// Options of one call: deadline, progress callback, cancellation, `_meta`.
///
/// A call's timeout counts from when the call starts: through a [`Pool`](crate::Pool) it
/// covers waiting for a session (and a session's start) too, unless
/// [`start_timeout`](Self::start_timeout) bounds that wait on its own.
///
/// ```no_run
/// use std::time::Duration;
/// use mcp_pool::{CallOptions, CancelHandle, ServerConfig, Session};
///
/// let session = Session::start(ServerConfig::new("srv", "my-mcp-server"))?;
/// let cancel = CancelHandle::new();
/// let opts = CallOptions::new()
///     .timeout(Duration::from_secs(5))
///     .on_progress(|p| println!("{}/{:?}", p.progress, p.total))
///     .cancel_with(&cancel);
/// let result = session.call_tool_with("slow", serde_json::json!({}), opts)?;
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Default)]
pub struct CallOptions<'a> {
    pub(crate) timeout: Option<Duration>,
    pub(crate) progress: Option<ProgressFn<'a>>,
    pub(crate) cancel: Option<CancelHandle>,
    pub(crate) keep_deadline: bool,
    pub(crate) meta: Option<Map<String, Value>>,
    pub(crate) log_level: Option<LogLevel>,
    pub(crate) caller: Option<String>,
    pub(crate) start_timeout: Option<Duration>,
}

impl std::fmt::Debug for CallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("cancel", &self.cancel)
            .field("keep_deadline", &self.keep_deadline)
            .field("meta", &self.meta)
            .field("log_level", &self.log_level)
            .field("caller", &self.caller)
            .field("start_timeout", &self.start_timeout)
            .finish()
    }
}

impl<'a> CallOptions<'a> {
    /// No options: the server's request timeout, no progress, no cancel handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call's deadline, from when it starts (see
    /// [`start_timeout`](Self::start_timeout) for when that is). Defaults to the server's
    /// request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asks the server for progress reports and passes each to `f`, on the calling thread,
    /// in the order the server sent them, all before the call returns. Each report also
    /// pushes the deadline back by the timeout, up to the server's maximum request timeout
    /// (see [`keep_deadline`](Self::keep_deadline)).
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Progress reports do not push the deadline back. Defaults to `false`.
    pub fn keep_deadline(mut self, keep: bool) -> Self {
        self.keep_deadline = keep;
        self
    }

    /// Lets another thread cancel the call through `handle`.
    pub fn cancel_with(mut self, handle: &CancelHandle) -> Self {
        self.cancel = Some(handle.clone());
        self
    }

    /// Adds `_meta` entries to the request (for example a `traceparent`). Keys the library
    /// sets itself (the progress token, the per-request generation's envelope) win.
    pub fn meta(mut self, meta: Map<String, Value>) -> Self {
        self.meta = Some(meta);
        self
    }

    /// The log level of this call's server messages (per-request generation), over the
    /// session's ([`ServerConfig::log_level`](crate::ServerConfig::log_level)).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Whose call this is, for a pool server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller): the call goes only to a session
    /// started for this key (one is started when none has room), never to another key's.
    /// Any string works (a user id, a tenant id, a conversation id). A server with
    /// [`Sharing::Shared`](crate::Sharing::Shared) ignores it, and so does a call on a
    /// [`Session`](crate::Session). Defaults to none.
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("browser", "srv")).build()?;
    /// use mcp_pool::CallOptions;
    /// use serde_json::json;
    ///
    /// let page = pool.call_tool_with(
    ///     "browser",
    ///     "navigate",
    ///     json!({"url": "https://example.com"}),
    ///     CallOptions::new().caller("user-42"),
    /// )?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn caller(mut self, key: impl Into<String>) -> Self {
        self.caller = Some(key.into());
        self
    }

    /// Through a [`Pool`](crate::Pool): bounds waiting for a session (a session's start,
    /// or room on a busy one) on its own, so the [`timeout`](Self::timeout) counts only
    /// from when the call has its session. A server that takes 8 s to start and a 2 s call
    /// timeout then work together. The server's `queue_timeout` still bounds every wait
    /// for a session (a longer bound here is cut to it), and a retry on a fresh session is
    /// part of the call: it waits under the call's own deadline. Without it (the
    /// default) the timeout covers the wait too. A call on a [`Session`](crate::Session)
    /// has its session and ignores it.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// The caller's `_meta`, with this call's log level in it.
    pub(crate) fn meta_with_level(&self) -> Option<Map<String, Value>> {
        let mut meta = self.meta.clone();
        if let Some(level) = self.log_level {
            meta.get_or_insert_with(Map::new).insert(
                crate::protocol::META_LOG_LEVEL.into(),
                Value::String(level.as_str().into()),
            );
        }
        meta
    }
}

/// A callback for each finished call of a batch: its index and its result.
pub(crate) type ResultFn<'a> = Box<dyn FnMut(usize, &Result<CallToolResult, Error>) + 'a>;

/// Options of a batch: one deadline for all of its calls, cancellation, and a callback for
/// each finished call.
///
/// ```
/// use std::time::Duration;
/// use mcp_pool::BatchOptions;
///
/// let mut done = 0;
/// let opts = BatchOptions::new()
///     .timeout(Duration::from_secs(10))
///     .on_result(|_index, _result| done += 1);
/// ```
#[derive(Default)]
pub struct BatchOptions<'a> {
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel: Option<CancelHandle>,
    pub(crate) on_result: Option<ResultFn<'a>>,
    pub(crate) caller: Option<String>,
}

impl std::fmt::Debug for BatchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("timeout", &self.timeout)
            .field("cancel", &self.cancel)
            .field("on_result", &self.on_result.as_ref().map(|_| "callback"))
            .field("caller", &self.caller)
            .finish()
    }
}

impl<'a> BatchOptions<'a> {
    /// No options: the server's request timeout for the whole batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The deadline of the whole batch, from when it starts. Defaults to the server's
    /// request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Lets another thread cancel every call of the batch still waiting.
    pub fn cancel_with(mut self, handle: &CancelHandle) -> Self {
        self.cancel = Some(handle.clone());
        self
    }

    /// Calls `f` with each call's index and result as it finishes: in the calls' order over
    /// stdio (a result is told once those before it are known), in the order they finish
    /// over HTTP. Through a pool, a call sent again on another session (its session died
    /// before writing it, or the retry policy allows) is told when its retry ends. `f` may
    /// call the same session: over stdio it never runs while the batch's thread reads the
    /// server's output.
    pub fn on_result(mut self, f: impl FnMut(usize, &Result<CallToolResult, Error>) + 'a) -> Self {
        self.on_result = Some(Box::new(f));
        self
    }

    /// Whose batch this is, as [`CallOptions::caller`]: on a server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller) the batch runs only on sessions of
    /// this key. Defaults to none.
    pub fn caller(mut self, key: impl Into<String>) -> Self {
        self.caller = Some(key.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancel_wakes_every_registered_call_once() {
        let c = CancelHandle::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let guard = c.on_cancel(move || {
            w.fetch_add(1, Ordering::Relaxed);
        });
        let w = woken.clone();
        let gone = c.on_cancel(move || {
            w.fetch_add(100, Ordering::Relaxed);
        });
        drop(gone);
        assert!(!c.is_cancelled());
        c.clone().cancel();
        c.cancel();
        assert!(c.is_cancelled());
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        drop(guard);
        // Registering on a fired handle wakes at once.
        let w = woken.clone();
        let _late = c.on_cancel(move || {
            w.fetch_add(10, Ordering::Relaxed);
        });
        assert_eq!(woken.load(Ordering::Relaxed), 11);
    }
}
