//! Tasks: a request the server runs in the background, polled until it ends. Two shapes:
//! the 2025-11-25 one (a task-augmented request, `tasks/get`, `tasks/result`,
//! `tasks/list`, `tasks/cancel`, `notifications/tasks/status`) and the 2026 tasks
//! extension (`resultType: "task"` from any request, `tasks/get` with `pollIntervalMs`,
//! `tasks/update` for input, `tasks/cancel`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The name of the tasks extension in `extensions` capabilities (2026).
pub(crate) const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// It runs.
    Working,
    /// It waits for input from the client.
    InputRequired,
    /// It finished: its result is ready.
    Completed,
    /// It failed with a JSON-RPC error.
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl TaskStatus {
    /// Whether the task has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// A task as the server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id, given by the server.
    pub task_id: String,
    /// Where it is.
    pub status: TaskStatus,
    /// A message about its state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When it was created (ISO 8601), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    /// How long the server keeps it, in milliseconds (2026: `ttlMs`; 2025-11-25: `ttl`).
    #[serde(default, alias = "ttl", skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// How often the server suggests polling, in milliseconds (2026: `pollIntervalMs`;
    /// 2025-11-25: `pollInterval`).
    #[serde(
        default,
        alias = "pollInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll_interval_ms: Option<u64>,
    /// Everything else the server sent (in 2026: `inputRequests`, `result`, `error` by
    /// status).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_shapes_read() {
        let t: Task = serde_json::from_value(json!({
            "taskId": "t1", "status": "input_required", "createdAt": "2026-01-01T00:00:00Z",
            "ttlMs": 60000, "pollIntervalMs": 500, "inputRequests": {"a": {}}
        }))
        .unwrap();
        assert_eq!(t.status, TaskStatus::InputRequired);
        assert_eq!((t.ttl_ms, t.poll_interval_ms), (Some(60000), Some(500)));
        assert!(t.extra.contains_key("inputRequests"));
        let t: Task = serde_json::from_value(json!({
            "taskId": "t2", "status": "completed", "ttl": 1000, "pollInterval": 100
        }))
        .unwrap();
        assert!(t.status.is_terminal());
        assert_eq!((t.ttl_ms, t.poll_interval_ms), (Some(1000), Some(100)));
    }
}
