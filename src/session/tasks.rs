//! Tasks the caller handles itself (2025-11-25): a task-augmented `tools/call` returns a
//! [`TaskHandle`] to wait on, ask about, or cancel. (A tool whose `taskSupport` is
//! `required` needs none of this: `call_tool` runs it as a task and waits for its result;
//! and the per-request generation's tasks are followed by every call on its own.)

use serde_json::{json, Value};

use crate::config::Generation;
use crate::error::Error;
use crate::protocol::{Call, CallToolResult, Task};

use super::handle::Session;
use super::options::CallOptions;

/// A task the server runs for a call. Cheap to clone; it holds the session.
#[derive(Debug, Clone)]
pub struct TaskHandle {
    session: Session,
    task: Task,
}

impl TaskHandle {
    /// The task's id.
    pub fn id(&self) -> &str {
        &self.task.task_id
    }

    /// The task as the server reported it when it was created.
    pub fn created(&self) -> &Task {
        &self.task
    }

    /// The task's latest state the server announced (`notifications/tasks/status`), if
    /// it announced any.
    pub fn latest(&self) -> Option<Task> {
        self.session.shared().tasks.lock().get(self.id()).cloned()
    }

    /// Asks the server for the task's state (`tasks/get`).
    pub fn status(&self) -> Result<Task, Error> {
        let value = self
            .session
            .request("tasks/get", Some(json!({ "taskId": self.id() })))?;
        read(value, "tasks/get")
    }

    /// Waits for the task's result (`tasks/result`), within the options' deadline (and
    /// with their progress callback and cancel handle). A task that fails gives its error.
    pub fn wait(&self, options: CallOptions<'_>) -> Result<CallToolResult, Error> {
        let value = self.session.request_with(
            "tasks/result",
            Some(json!({ "taskId": self.id() })),
            options,
        )?;
        serde_json::from_value(value)
            .map_err(|e| Error::Protocol(format!("`tasks/result` result has the wrong shape: {e}")))
    }

    /// Asks the server to cancel the task (`tasks/cancel`); returns its state after.
    pub fn cancel(&self) -> Result<Task, Error> {
        let value = self
            .session
            .request("tasks/cancel", Some(json!({ "taskId": self.id() })))?;
        read(value, "tasks/cancel")
    }
}

fn read(value: Value, method: &str) -> Result<Task, Error> {
    // A task result is the task itself, or (in some servers) the task under `task`.
    let value = match value.get("task") {
        Some(task) if task.is_object() => task.clone(),
        _ => value,
    };
    serde_json::from_value(value)
        .map_err(|e| Error::Protocol(format!("`{method}` result has the wrong shape: {e}")))
}

impl Session {
    /// Calls a tool as a task (a task-augmented `tools/call`, 2025-11-25), returning at
    /// once with the task; [`TaskHandle::wait`] gets its result. The server must declare
    /// task support for tool calls.
    ///
    /// ```no_run
    /// # let session = mcp_pool::Session::start(mcp_pool::ServerConfig::new("s", "srv"))?;
    /// let task = session.call_tool_as_task("research", serde_json::json!({"topic": "x"}))?;
    /// println!("task {} is {:?}", task.id(), task.created().status);
    /// let result = task.wait(mcp_pool::CallOptions::new())?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn call_tool_as_task(&self, name: &str, arguments: Value) -> Result<TaskHandle, Error> {
        let details = self.details();
        let takes = details
            .capabilities
            .pointer("/tasks/requests/tools/call")
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false));
        if details.generation != Generation::Handshake || !takes {
            return Err(Error::Unsupported {
                method: "tools/call".into(),
                reason: "the server does not take task-augmented tool calls (2025-11-25 `tasks.requests.tools.call`)".into(),
            });
        }
        let mut params = Call::call_tool(name, arguments)?
            .params
            .unwrap_or_else(|| json!({}));
        params["task"] = json!({});
        let created = self.request("tools/call", Some(params))?;
        let task = read(created, "tools/call")?;
        Ok(TaskHandle {
            session: self.clone(),
            task,
        })
    }

    /// Lists the server's tasks (`tasks/list`, every page).
    pub fn list_tasks(&self) -> Result<Vec<Task>, Error> {
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let page = self.request("tasks/list", params)?;
            let list = page.get("tasks").cloned().ok_or_else(|| {
                Error::Protocol("`tasks/list` result has no `tasks` array".into())
            })?;
            let list: Vec<Task> = serde_json::from_value(list).map_err(|e| {
                Error::Protocol(format!("`tasks/list` result has the wrong shape: {e}"))
            })?;
            tasks.extend(list);
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if cursor.as_deref() != Some(next) => cursor = Some(next.to_owned()),
                Some(_) => return Err(Error::Protocol("`tasks/list` pagination loops".into())),
                None => return Ok(tasks),
            }
        }
    }
}
