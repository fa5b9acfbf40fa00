//! Tools: the `Tool` type and its tolerant reading (one bad optional field of one tool does
//! not fail the whole list), and the index a session or pool keeps of the listed tools:
//! which are safe to repeat, which need a task, and the compiled output-schema validators.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A tool the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Its name, used in [`call_tool`](crate::Session::call_tool).
    pub name: String,
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    #[serde(default)]
    pub input_schema: Value,
    /// The JSON Schema of its `structuredContent`, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Hints about its behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    /// How it may be run (task support, 2025-11-25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ToolExecution>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Tool {
    /// Whether the server says calling this tool twice is harmless: it is read-only or
    /// idempotent. These are hints from the server, not guarantees.
    pub fn safe_to_repeat(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true))
    }

    /// Whether the tool may, must or must not run as a task.
    pub fn task_support(&self) -> TaskSupport {
        self.execution
            .as_ref()
            .and_then(|e| e.task_support)
            .unwrap_or_default()
    }

    /// Reads a tool list entry, dropping optional fields of the wrong type (each named in
    /// the returned warnings). Fails only for an entry that is not an object or has no
    /// string `name`.
    pub(crate) fn lenient(value: Value) -> Result<(Tool, Vec<String>), String> {
        let Value::Object(mut map) = value else {
            return Err("a tool entry is not an object".into());
        };
        let name = match map.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err("a tool entry has no string `name`".into()),
        };
        let mut warnings = Vec::new();
        let field = |map: &mut Map<String, Value>, key: &str| -> Option<Value> {
            map.remove(key).filter(|v| !v.is_null())
        };
        let mut take = |key: &str, v: Option<Value>, want: &str, ok: fn(&Value) -> bool| match v {
            Some(v) if ok(&v) => Some(v),
            Some(v) => {
                warnings.push(format!(
                    "tool `{name}`: `{key}` dropped: expected {want}, not {}",
                    crate::jsonrpc::brief(&v)
                ));
                None
            }
            None => None,
        };
        let title = take(
            "title",
            field(&mut map, "title"),
            "a string",
            Value::is_string,
        );
        let description = take(
            "description",
            field(&mut map, "description"),
            "a string",
            Value::is_string,
        );
        let input_schema = take(
            "inputSchema",
            field(&mut map, "inputSchema"),
            "an object",
            Value::is_object,
        );
        let output_schema = take(
            "outputSchema",
            field(&mut map, "outputSchema"),
            "an object",
            Value::is_object,
        );
        let annotations = take(
            "annotations",
            field(&mut map, "annotations"),
            "an object",
            Value::is_object,
        );
        let execution = take(
            "execution",
            field(&mut map, "execution"),
            "an object",
            Value::is_object,
        );
        let annotations = annotations.map(|a| ToolAnnotations::lenient(a, &name, &mut warnings));
        let execution = execution.map(|e| ToolExecution::lenient(e, &name, &mut warnings));
        Ok((
            Tool {
                title: title.and_then(|v| v.as_str().map(str::to_owned)),
                description: description.and_then(|v| v.as_str().map(str::to_owned)),
                input_schema: input_schema.unwrap_or_default(),
                output_schema,
                annotations,
                execution,
                extra: map,
                name,
            },
            warnings,
        ))
    }
}

/// A tool's behaviour hints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may destroy data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Calling it again with the same arguments has no further effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world (the web, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ToolAnnotations {
    fn lenient(value: Value, tool: &str, warnings: &mut Vec<String>) -> ToolAnnotations {
        let Value::Object(mut map) = value else {
            return ToolAnnotations::default();
        };
        let mut hint = |key: &str| match map.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => {
                warnings.push(format!(
                    "tool `{tool}`: `annotations.{key}` dropped: expected true or false, not {}",
                    crate::jsonrpc::brief(&other)
                ));
                None
            }
        };
        let read_only_hint = hint("readOnlyHint");
        let destructive_hint = hint("destructiveHint");
        let idempotent_hint = hint("idempotentHint");
        let open_world_hint = hint("openWorldHint");
        let title = match map.remove("title") {
            Some(Value::String(t)) => Some(t),
            _ => None,
        };
        ToolAnnotations {
            title,
            read_only_hint,
            destructive_hint,
            idempotent_hint,
            open_world_hint,
            extra: map,
        }
    }
}

/// Whether a tool runs as a task (2025-11-25 `execution.taskSupport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// It does not (the default).
    #[default]
    Forbidden,
    /// It may.
    Optional,
    /// It must: a call without a task is refused by the server.
    Required,
}

/// How a tool may be run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ToolExecution {
    /// Whether it runs as a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_support: Option<TaskSupport>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ToolExecution {
    fn lenient(value: Value, tool: &str, warnings: &mut Vec<String>) -> ToolExecution {
        let Value::Object(mut map) = value else {
            return ToolExecution::default();
        };
        let task_support = match map.remove("taskSupport") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<TaskSupport>(v.clone()) {
                Ok(t) => Some(t),
                Err(_) => {
                    warnings.push(format!(
                        "tool `{tool}`: `execution.taskSupport` dropped: not one of forbidden, optional, required: {}",
                        crate::jsonrpc::brief(&v)
                    ));
                    None
                }
            },
        };
        ToolExecution {
            task_support,
            extra: map,
        }
    }
}

/// Reads a tool list: entries without a name are dropped, bad optional fields dropped;
/// each drop is logged.
pub(crate) fn read_tools(items: Value, method: &str) -> Vec<Tool> {
    let Value::Array(items) = items else {
        return Vec::new();
    };
    let mut tools = Vec::with_capacity(items.len());
    for item in items {
        match Tool::lenient(item) {
            Ok((tool, warnings)) => {
                for w in warnings {
                    log::warn!("{method}: {w}");
                }
                tools.push(tool);
            }
            Err(why) => log::warn!("{method}: an entry dropped: {why}"),
        }
    }
    tools
}

/// What a session (or pool) knows of the listed tools, by name.
#[derive(Default)]
pub(crate) struct ToolIndex {
    tools: HashMap<String, Facts>,
}

struct Facts {
    safe: bool,
    task: TaskSupport,
    /// The arguments mirrored into `Mcp-Param-*` headers (HTTP sessions only).
    headers: Vec<HeaderParam>,
    /// The compiled output schema; `Err` when it could not be compiled (not validated).
    output: Option<Result<Validator, String>>,
}

impl ToolIndex {
    /// Indexes a tool list, compiling each output schema once (when `validate`), and
    /// reading each input schema's `x-mcp-header` marks (when `headers`: HTTP sessions).
    pub(crate) fn new(tools: &[Tool], validate: bool, headers: bool) -> ToolIndex {
        let tools = tools
            .iter()
            .map(|t| {
                let output = t
                    .output_schema
                    .as_ref()
                    .filter(|_| validate)
                    .map(Validator::compile);
                if let Some(Err(why)) = &output {
                    log::warn!("tool `{}`: its output schema is not checked: {why}", t.name);
                }
                let facts = Facts {
                    safe: t.safe_to_repeat(),
                    task: t.task_support(),
                    headers: if headers {
                        header_params(&t.input_schema).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    output,
                };
                (t.name.clone(), facts)
            })
            .collect();
        ToolIndex { tools }
    }

    pub(crate) fn knows(&self, tool: &str) -> bool {
        self.tools.contains_key(tool)
    }

    /// Whether the annotations say it is safe to repeat (`false` when unknown).
    pub(crate) fn is_safe(&self, tool: &str) -> bool {
        self.tools.get(tool).is_some_and(|f| f.safe)
    }

    /// The arguments of `tool` mirrored into `Mcp-Param-*` headers.
    pub(crate) fn header_params(&self, tool: &str) -> &[HeaderParam] {
        self.tools.get(tool).map_or(&[], |f| f.headers.as_slice())
    }

    pub(crate) fn task_support(&self, tool: &str) -> TaskSupport {
        self.tools
            .get(tool)
            .map_or(TaskSupport::Forbidden, |f| f.task)
    }

    /// Checks a successful result's structured content against the tool's output schema.
    /// `Err` carries the validator's message.
    pub(crate) fn check_output(
        &self,
        tool: &str,
        structured: Option<&Value>,
    ) -> Result<(), String> {
        let Some(Some(Ok(validator))) = self.tools.get(tool).map(|f| f.output.as_ref()) else {
            return Ok(());
        };
        // `null` is no structured content, as the result reads it.
        match structured {
            None | Some(Value::Null) => Err(
                "the tool declares an output schema but the result has no `structuredContent`"
                    .into(),
            ),
            Some(v) => validator.check(v),
        }
    }
}

/// An argument a tool's input schema marks with `x-mcp-header`: mirrored into the HTTP
/// header `Mcp-Param-{name}` (2026-07-28, Streamable HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderParam {
    /// The mark: the header is `Mcp-Param-{name}`.
    pub name: String,
    /// The chain of `properties` keys from the schema root to the marked property.
    pub path: Vec<String>,
}

/// Keywords whose values are data, not schemas: a mark-shaped key inside one is not a mark.
const DATA_KEYWORDS: [&str; 5] = ["default", "const", "enum", "examples", "example"];

/// Reads the `x-mcp-header` marks of an input schema. `Err` says why the marks (and so the
/// tool definition) are invalid: a mark that is empty, not an RFC 9110 token, repeated
/// (ignoring case), on a property that is not a string, integer or boolean, or not
/// reachable from the root through `properties` alone.
pub(crate) fn header_params(schema: &Value) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    visit_marks(schema, Some(Vec::new()), &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for p in &found {
        if !seen.insert(p.name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header `{}` is used twice", p.name));
        }
    }
    Ok(found)
}

fn visit_marks(
    schema: &Value,
    path: Option<Vec<String>>,
    found: &mut Vec<HeaderParam>,
) -> Result<(), String> {
    let Value::Object(map) = schema else {
        if let Value::Array(items) = schema {
            for item in items {
                visit_marks(item, None, found)?;
            }
        }
        return Ok(());
    };
    for (key, value) in map {
        match key.as_str() {
            "x-mcp-header" => {
                let at = path.as_ref().filter(|p| !p.is_empty()).ok_or_else(|| {
                    "x-mcp-header is only allowed on properties reachable through `properties`"
                        .to_owned()
                })?;
                let name = value.as_str().ok_or("x-mcp-header must be a string")?;
                if name.is_empty() {
                    return Err(format!("x-mcp-header of `{}` is empty", at.join(".")));
                }
                if !name.bytes().all(is_tchar) {
                    return Err(format!(
                        "x-mcp-header `{}` is not an HTTP header name token",
                        name.escape_debug()
                    ));
                }
                let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(kind, "string" | "integer" | "boolean") {
                    return Err(format!(
                        "x-mcp-header `{name}` marks a property of type `{kind}`; only string, integer and boolean may be mirrored"
                    ));
                }
                found.push(HeaderParam {
                    name: name.to_owned(),
                    path: at.clone(),
                });
            }
            "properties" => {
                if let Value::Object(props) = value {
                    for (prop, sub) in props {
                        let next = path.as_ref().map(|p| {
                            let mut p = p.clone();
                            p.push(prop.clone());
                            p
                        });
                        visit_marks(sub, next, found)?;
                    }
                }
            }
            k if DATA_KEYWORDS.contains(&k) => {}
            _ => visit_marks(value, None, found)?,
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The largest output schema compiled (bigger ones are not checked).
const MAX_SCHEMA_BYTES: usize = 256 << 10;

/// A compiled JSON Schema (2020-12 unless its `$schema` says otherwise). No reference is
/// ever loaded from outside the schema itself: no network, no file.
pub(crate) struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("`{url}` is outside the schema; external references are not loaded").into())
    }
}

impl Validator {
    pub(crate) fn compile(schema: &Value) -> Result<Validator, String> {
        let size = schema.to_string().len();
        if size > MAX_SCHEMA_BYTES {
            return Err(format!(
                "the schema is {size} bytes, over {MAX_SCHEMA_BYTES}"
            ));
        }
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.use_loader(Box::new(NoLoader));
        let url = "mcp-pool:///output-schema.json";
        compiler
            .add_resource(url, schema.clone())
            .map_err(|e| e.to_string())?;
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(url, &mut schemas)
            .map_err(|e| e.to_string())?;
        Ok(Validator { schemas, index })
    }

    pub(crate) fn check(&self, value: &Value) -> Result<(), String> {
        self.schemas
            .validate(value, self.index)
            .map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_annotations_decide_repeat_safety() {
        let t: Tool = serde_json::from_value(json!({
            "name":"t","inputSchema":{"type":"object"},
            "annotations":{"readOnlyHint":true}
        }))
        .unwrap();
        assert!(t.safe_to_repeat());
        let t: Tool = serde_json::from_value(json!({"name":"t","inputSchema":{}})).unwrap();
        assert!(!t.safe_to_repeat());
        assert!(crate::protocol::is_read_only_method("tools/list"));
    }

    #[test]
    fn a_bad_optional_field_drops_only_that_field() {
        let (t, w) = Tool::lenient(json!({
            "name": "t", "description": 7, "inputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": "yes", "idempotentHint": true},
            "execution": {"taskSupport": "required"}, "x-custom": 1
        }))
        .unwrap();
        assert_eq!(t.description, None);
        let a = t.annotations.clone().unwrap();
        assert_eq!((a.read_only_hint, a.idempotent_hint), (None, Some(true)));
        assert!(t.safe_to_repeat());
        assert_eq!(t.task_support(), TaskSupport::Required);
        assert_eq!(t.extra["x-custom"], 1);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("`description` dropped"), "{w:?}");
        assert!(w[1].contains("`annotations.readOnlyHint` dropped"), "{w:?}");
        assert!(Tool::lenient(json!({"description": "no name"})).is_err());
        let list = read_tools(json!([{"name": "a"}, {"nope": 1}, 3]), "tools/list");
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn output_schemas_are_checked_without_loading_anything() {
        let tool = |schema: Value| Tool {
            output_schema: Some(schema),
            ..Tool::lenient(json!({"name": "t"})).unwrap().0
        };
        let index = ToolIndex::new(
            &[tool(
                json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
            )],
            true,
            false,
        );
        assert!(index.check_output("t", Some(&json!({"n": 3}))).is_ok());
        let e = index
            .check_output("t", Some(&json!({"n": "x"})))
            .unwrap_err();
        assert!(e.contains("n"), "{e}");
        assert!(index.check_output("t", None).is_err());
        let e = index.check_output("t", Some(&Value::Null)).unwrap_err();
        assert!(e.contains("no `structuredContent`"), "{e}");
        assert!(index.check_output("other", None).is_ok());
        // A reference outside the schema is not fetched: the schema is not used.
        let remote = ToolIndex::new(
            &[tool(json!({"$ref": "https://example.com/s.json"}))],
            true,
            false,
        );
        assert!(remote.check_output("t", Some(&json!(1))).is_ok());
        let off = ToolIndex::new(&[tool(json!({"type": "string"}))], false, false);
        assert!(off.check_output("t", Some(&json!(1))).is_ok());
    }

    #[test]
    fn header_marks_follow_the_spec_constraints() {
        let ok = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "Count"},
            "nested": {"type": "object", "properties": {"zone": {"type": "boolean", "x-mcp-header": "Zone"}}},
            "query": {"type": "string", "default": {"x-mcp-header": "NotAMark"}}
        }});
        let marks = header_params(&ok).unwrap();
        let got: Vec<(&str, String)> = marks
            .iter()
            .map(|m| (m.name.as_str(), m.path.join(".")))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Count", "n".to_owned()),
                ("Zone", "nested.zone".to_owned()),
                ("Region", "region".to_owned())
            ]
        );
        let bad = |prop: Value| {
            header_params(&json!({"type": "object", "properties": {"p": prop}})).unwrap_err()
        };
        assert!(bad(json!({"type": "string", "x-mcp-header": ""})).contains("empty"));
        assert!(bad(json!({"type": "object", "x-mcp-header": "P"})).contains("object"));
        assert!(bad(json!({"type": "number", "x-mcp-header": "P"})).contains("number"));
        assert!(bad(json!({"type": "string", "x-mcp-header": "a b"})).contains("token"));
        assert!(bad(json!({"type": "string", "x-mcp-header": "a:b"})).contains("token"));
        assert!(bad(json!({"type": "string", "x-mcp-header": "Région"})).contains("token"));
        assert!(
            bad(json!({"type": "array", "items": {"type": "string", "x-mcp-header": "P"}}))
                .contains("reachable")
        );
        assert!(
            bad(json!({"anyOf": [{"type": "string", "x-mcp-header": "P"}]})).contains("reachable")
        );
        let twice = json!({"type": "object", "properties": {
            "a": {"type": "string", "x-mcp-header": "MyField"},
            "b": {"type": "string", "x-mcp-header": "myfield"}
        }});
        assert!(header_params(&twice).unwrap_err().contains("twice"));
        assert_eq!(header_params(&json!({"type": "object"})).unwrap(), vec![]);
    }
}
