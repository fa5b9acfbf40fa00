//! Subscriptions of the per-request generation (`subscriptions/listen`): a long-lived
//! request whose stream brings the change notifications the client opted in to. It holds
//! no pool lease. Over stdio it holds no thread either: it is an entry of the pending table
//! that nobody waits on, and it ends with `notifications/cancelled`. Over HTTP its response
//! stream is read by a `mcp-stream` thread, and it ends by closing that stream. Either way
//! its notifications are handled like any other (the tool-list epoch, the handler's hooks),
//! and it also ends when the server ends it, or the session.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Generation;
use crate::error::{Error, Phase};
use crate::jsonrpc;

use super::handle::Session;
use super::pending::Event;
use super::shared::{Command, Shared};

/// Which change notifications a subscription asks for (`subscriptions/listen`'s
/// `notifications` filter), or the server agreed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenFilter {
    /// `notifications/tools/list_changed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tools_list_changed: bool,
    /// `notifications/prompts/list_changed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompts_list_changed: bool,
    /// `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resources_list_changed: bool,
    /// `notifications/resources/updated` for these resource URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_subscriptions: Vec<String>,
}

/// An open subscription. Its notifications reach the session's handler (and the pool's
/// tool-list cache). Dropping it, or [`cancel`](Self::cancel), ends it.
pub struct Subscription {
    shared: Arc<Shared>,
    id: u64,
    agreed: ListenFilter,
    events: Receiver<Event>,
    cancelled: bool,
    /// The server ended it (its end event was read off the channel).
    ended: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("server", &self.shared.name)
            .field("id", &self.id)
            .field("agreed", &self.agreed)
            .finish()
    }
}

impl Subscription {
    /// The subscription's id (the `subscriptions/listen` request's id, which every
    /// notification of the stream carries in `_meta`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What the server agreed to send (the acknowledged filter; types it does not
    /// support are left out).
    pub fn agreed(&self) -> &ListenFilter {
        &self.agreed
    }

    /// Whether the stream is still open: not ended by the server, nor by the session's end.
    pub fn is_active(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.events.try_iter().any(|e| matches!(e, Event::Done(_))) {
            self.ended.store(true, Ordering::Release);
        }
        !self.cancelled && !self.ended.load(Ordering::Acquire) && self.shared.lifecycle.is_ready()
    }

    /// Ends the subscription: the server is told with `notifications/cancelled` (over HTTP,
    /// by closing the subscription's stream).
    pub fn cancel(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        if self.shared.table.lock().abandon(self.id).is_some() {
            self.shared.submit(Command::Abandon {
                ids: vec![self.id],
                reason: "subscription cancelled by the client",
            });
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.end();
    }
}

impl Session {
    /// Opens a subscription (`subscriptions/listen`, per-request generation) and waits, at
    /// most the request timeout, for the server's acknowledgement.
    ///
    /// ```no_run
    /// # let session = mcp_pool::Session::start(mcp_pool::ServerConfig::new("s", "srv"))?;
    /// use mcp_pool::ListenFilter;
    /// let sub = session.listen(ListenFilter { tools_list_changed: true, ..Default::default() })?;
    /// assert!(sub.agreed().tools_list_changed);
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn listen(&self, filter: ListenFilter) -> Result<Subscription, Error> {
        let shared = self.shared();
        if shared.generation() != Some(Generation::PerRequest) {
            return Err(Error::Unsupported {
                method: "subscriptions/listen".into(),
                reason: "it belongs to the per-request generation (2026-07-28)".into(),
            });
        }
        let (id, events) = self.open_listen(&filter)?;
        let until = Instant::now() + shared.request_timeout;
        loop {
            match events.recv_deadline(until) {
                Ok(Event::Notice(params)) => {
                    let agreed = params
                        .get("notifications")
                        .cloned()
                        .map(serde_json::from_value)
                        .transpose()
                        .map_err(|e| {
                            Error::Protocol(format!(
                                "a subscription acknowledgement has the wrong shape: {e}"
                            ))
                        })?
                        .unwrap_or_default();
                    return Ok(Subscription {
                        shared: shared.clone(),
                        id,
                        agreed,
                        events,
                        cancelled: false,
                        ended: std::sync::atomic::AtomicBool::new(false),
                    });
                }
                Ok(Event::Done(outcome)) => {
                    return Err(outcome.err().unwrap_or_else(|| {
                        Error::Protocol(
                            "the server ended the subscription before acknowledging it".into(),
                        )
                    }))
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    if shared.table.lock().abandon(id).is_some() {
                        shared.submit(Command::Abandon {
                            ids: vec![id],
                            reason: "timed out",
                        });
                    }
                    return Err(Error::Timeout {
                        phase: Phase::Request,
                        after: shared.request_timeout,
                    });
                }
                Err(RecvTimeoutError::Disconnected) => return Err(shared.closed_error()),
            }
        }
    }

    /// Sends a `subscriptions/listen` request whose entry nobody waits on. Returns its id
    /// and the channel of its events (the acknowledgement, the end).
    fn open_listen(&self, filter: &ListenFilter) -> Result<(u64, Receiver<Event>), Error> {
        let shared = self.shared();
        if !shared.lifecycle.is_ready() {
            return Err(shared.closed_error());
        }
        let id = shared
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut meta = shared.envelope.get().cloned().unwrap_or_default();
        meta.remove(crate::protocol::META_LOG_LEVEL);
        let params = json!({ "notifications": filter, "_meta": meta });
        let line = jsonrpc::request_line(id, "subscriptions/listen", Some(&params));
        let (tx, rx) = unbounded();
        shared.table.lock().register(id, tx)?;
        shared.submit(Command::Write { id, line });
        Ok((id, rx))
    }

    /// Keeps a subscription to tool-list changes open on this session, without waiting
    /// for its acknowledgement (the pool's tool cache in the per-request generation). Once
    /// per session.
    pub(crate) fn follow_tool_changes(&self) {
        let shared = self.shared();
        if shared.generation() != Some(Generation::PerRequest) {
            return;
        }
        let mut open = shared.tool_listen.lock();
        if open.is_some() {
            return;
        }
        let filter = ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        };
        match self.open_listen(&filter) {
            Ok((id, events)) => *open = Some((id, events)),
            Err(e) => log::debug!("[{}] cannot follow tool-list changes: {e}", shared.name),
        }
    }

    /// `resources/subscribe` of the per-request generation: one subscription per URI.
    pub(crate) fn listen_resource(&self, uri: &str) -> Result<(), Error> {
        let filter = ListenFilter {
            resource_subscriptions: vec![uri.to_owned()],
            ..ListenFilter::default()
        };
        let sub = self.listen(filter)?;
        if let Some(old) = self
            .shared()
            .resource_listens
            .lock()
            .insert(uri.to_owned(), sub)
        {
            old.cancel();
        }
        Ok(())
    }

    /// Ends the subscription [`listen_resource`](Self::listen_resource) opened for `uri`.
    pub(crate) fn unlisten_resource(&self, uri: &str) -> Result<(), Error> {
        let sub = self.shared().resource_listens.lock().remove(uri);
        match sub {
            Some(sub) => {
                sub.cancel();
                Ok(())
            }
            None => Err(Error::InvalidArgument(format!("`{uri}` is not subscribed"))),
        }
    }
}

/// The tool-list subscription of a session, if open: its id and events.
pub(crate) type ToolListen = Mutex<Option<(u64, Receiver<Event>)>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_serializes_only_what_it_asks_for() {
        let f = ListenFilter {
            tools_list_changed: true,
            resource_subscriptions: vec!["file:///a".into()],
            ..ListenFilter::default()
        };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
        );
        let back: ListenFilter =
            serde_json::from_value(json!({"promptsListChanged": true})).unwrap();
        assert!(back.prompts_list_changed && !back.tools_list_changed);
        assert_eq!(
            serde_json::to_value(ListenFilter::default()).unwrap(),
            json!({})
        );
    }
}
