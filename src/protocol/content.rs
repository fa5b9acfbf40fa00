//! Results the client reads into types: a tool call's result, its content items (an unknown
//! kind of item is kept as raw JSON, not a failure), a prompt, a batch's tool call, and the
//! resources, resource templates and prompts a server lists (optional fields of the wrong
//! type dropped, unknown fields kept).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::protocol::kind_of;

/// The result of `tools/call`.
///
/// Read from its JSON by taking the parts out of it (see [`TryFrom<Value>`] below): a
/// derived `Deserialize` would copy every content item once more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", try_from = "Value")]
pub struct CallToolResult {
    /// The unstructured content items (required by the protocol: a result without them is
    /// a protocol error, not an empty success).
    pub content: Vec<Content>,
    /// The structured result, when the tool has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// `true` when the tool itself failed (a tool error, not a protocol error).
    pub is_error: bool,
    /// The result's `_meta`, if any.
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl TryFrom<Value> for CallToolResult {
    type Error = String;

    /// `content` is required, `isError` a boolean when present; `null` reads as absent;
    /// other fields are ignored.
    fn try_from(value: Value) -> Result<CallToolResult, String> {
        let Value::Object(mut map) = value else {
            return Err(format!("the result is {}, not an object", kind_of(&value)));
        };
        let content = match map.remove("content") {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(Content::try_from)
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) => return Err("missing field `content`".into()),
            Some(other) => return Err(format!("`content` is {}, not an array", kind_of(&other))),
        };
        let is_error = match map.remove("isError") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => return Err(format!("`isError` is {}, not a boolean", kind_of(&other))),
        };
        let present = |v: Option<Value>| v.filter(|v| !v.is_null());
        Ok(CallToolResult {
            content,
            structured_content: present(map.remove("structuredContent")),
            is_error,
            meta: present(map.remove("_meta")),
        })
    }
}

impl CallToolResult {
    /// The text of all text content items, joined by newlines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for text in self.content.iter().filter_map(Content::as_text) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(text);
        }
        out
    }

    /// The result as `Ok`, or, when the tool reported a failure (`isError`), an
    /// [`Error::Tool`] carrying the tool's text (and the result), so a failed tool can end
    /// a chain of `?`.
    ///
    /// ```no_run
    /// # let pool = mcp_pool::Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
    /// use serde_json::json;
    ///
    /// let text = pool.call_tool("s", "read_file", json!({"path": "a.txt"}))?.into_result()?.text();
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn into_result(self) -> Result<CallToolResult, Error> {
        if !self.is_error {
            return Ok(self);
        }
        Err(Error::Tool {
            message: self.text(),
            result: Box::new(self),
        })
    }

    /// The structured result read into `T`: the `structuredContent`, or, from a server that
    /// sends none (structured output came with protocol version 2025-06-18, and such
    /// servers also send it as JSON text), the text items parsed as JSON. A result with
    /// `isError` is an [`Error::Tool`] (as [`into_result`](Self::into_result)); a result
    /// with no structured content, or one that does not fit `T`, an [`Error::Protocol`]
    /// saying why. (When the tool declares an output schema, the pool has already checked
    /// `structuredContent` against it.)
    ///
    /// ```
    /// use mcp_pool::CallToolResult;
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize)]
    /// struct Weather {
    ///     temperature: f64,
    /// }
    ///
    /// let result: CallToolResult = serde_json::from_value(serde_json::json!({
    ///     "content": [{"type": "text", "text": "{\"temperature\": 21.5}"}],
    ///     "structuredContent": {"temperature": 21.5}
    /// }))?;
    /// let weather: Weather = result.structured()?;
    /// assert_eq!(weather.temperature, 21.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn structured<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if self.is_error {
            return Err(Error::Tool {
                message: self.text(),
                result: Box::new(self.clone()),
            });
        }
        let wrong = |e: serde_json::Error, place: &str| {
            Error::Protocol(format!(
                "the tool result's {place} is not a `{}`: {e}",
                std::any::type_name::<T>()
            ))
        };
        if let Some(value) = &self.structured_content {
            return T::deserialize(value).map_err(|e| wrong(e, "`structuredContent`"));
        }
        let text = self.text();
        if text.trim().is_empty() {
            return Err(Error::Protocol(
                "the tool result has no `structuredContent` (and no JSON text)".into(),
            ));
        }
        serde_json::from_str(&text).map_err(|e| wrong(e, "text (it has no `structuredContent`)"))
    }
}

/// One content item of a tool result or prompt message.
///
/// A kind this crate does not know (a newer protocol's, or a server's own) is kept as
/// [`Content::Other`] with its JSON as sent, so one unknown item does not fail a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
#[non_exhaustive]
pub enum Content {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Any other fields (annotations, `_meta`).
        extra: Map<String, Value>,
    },
    /// An image, base64 encoded.
    Image {
        /// Base64 data.
        data: String,
        /// Its MIME type.
        mime_type: String,
        /// Any other fields.
        extra: Map<String, Value>,
    },
    /// Audio, base64 encoded.
    Audio {
        /// Base64 data.
        data: String,
        /// Its MIME type.
        mime_type: String,
        /// Any other fields.
        extra: Map<String, Value>,
    },
    /// A link to a resource.
    ResourceLink {
        /// The resource's URI.
        uri: String,
        /// Any other fields (name, mimeType, ...).
        extra: Map<String, Value>,
    },
    /// An embedded resource.
    Resource {
        /// The resource contents (`uri` with `text` or `blob`).
        resource: Value,
        /// Any other fields.
        extra: Map<String, Value>,
    },
    /// An item of a kind this crate does not know, as sent (with its `type`).
    Other(Value),
}

impl Content {
    /// The text of a text item.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The item's `type`, e.g. `"text"` (for [`Content::Other`], the type it was sent with).
    pub fn kind(&self) -> &str {
        match self {
            Content::Text { .. } => "text",
            Content::Image { .. } => "image",
            Content::Audio { .. } => "audio",
            Content::ResourceLink { .. } => "resource_link",
            Content::Resource { .. } => "resource",
            Content::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

/// Takes a required string field out of a content item.
fn string(map: &mut Map<String, Value>, key: &str, kind: &str) -> Result<String, String> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{key}` of a {kind} content item is not a string")),
        None => Err(format!("a {kind} content item has no `{key}`")),
    }
}

impl TryFrom<Value> for Content {
    type Error = String;

    fn try_from(value: Value) -> Result<Content, String> {
        let Value::Object(mut map) = value else {
            return Err("a content item is not an object".into());
        };
        let kind = match map.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err("a content item has no `type`".into()),
        };
        let known = ["text", "image", "audio", "resource_link", "resource"];
        if !known.contains(&kind.as_str()) {
            map.insert("type".into(), Value::String(kind));
            return Ok(Content::Other(Value::Object(map)));
        }
        map.remove("type");
        Ok(match kind.as_str() {
            "text" => Content::Text {
                text: string(&mut map, "text", "text")?,
                extra: map,
            },
            "image" | "audio" => {
                let data = string(&mut map, "data", &kind)?;
                let mime_type = string(&mut map, "mimeType", &kind)?;
                if kind == "image" {
                    Content::Image {
                        data,
                        mime_type,
                        extra: map,
                    }
                } else {
                    Content::Audio {
                        data,
                        mime_type,
                        extra: map,
                    }
                }
            }
            "resource_link" => Content::ResourceLink {
                uri: string(&mut map, "uri", "resource_link")?,
                extra: map,
            },
            _ => Content::Resource {
                resource: map
                    .remove("resource")
                    .ok_or("a resource content item has no `resource`")?,
                extra: map,
            },
        })
    }
}

impl From<Content> for Value {
    fn from(content: Content) -> Value {
        let (kind, mut map) = match content {
            Content::Other(v) => return v,
            Content::Text { text, mut extra } => {
                extra.insert("text".into(), Value::String(text));
                ("text", extra)
            }
            Content::Image {
                data,
                mime_type,
                mut extra,
            } => {
                extra.insert("data".into(), Value::String(data));
                extra.insert("mimeType".into(), Value::String(mime_type));
                ("image", extra)
            }
            Content::Audio {
                data,
                mime_type,
                mut extra,
            } => {
                extra.insert("data".into(), Value::String(data));
                extra.insert("mimeType".into(), Value::String(mime_type));
                ("audio", extra)
            }
            Content::ResourceLink { uri, mut extra } => {
                extra.insert("uri".into(), Value::String(uri));
                ("resource_link", extra)
            }
            Content::Resource {
                resource,
                mut extra,
            } => {
                extra.insert("resource".into(), resource);
                ("resource", extra)
            }
        };
        map.insert("type".into(), Value::String(kind.into()));
        Value::Object(map)
    }
}

/// One tool call of a batch: `{"tool": NAME, "arguments": {...}}` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments (an object; `null` or absent means none).
    #[serde(default)]
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `tool` with `arguments`.
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            tool: tool.into(),
            arguments,
        }
    }
}

/// The result of `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetPromptResult {
    /// A description of the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The messages: each has `role` and `content` (required by the protocol).
    pub messages: Vec<PromptMessage>,
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The content.
    pub content: Content,
}

/// An optional field read leniently: a value of the wrong type is dropped (`None`), so one
/// odd field does not fail a whole list.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// A list read leniently: entries that do not fit are dropped, and a value that is not a
/// list is an empty one.
fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(match value {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A resource the server offers (`resources/list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Its URI, to read it with [`Pool::read_resource`](crate::Pool::read_resource).
    pub uri: String,
    /// Its name (empty when the server gave none).
    #[serde(default)]
    pub name: String,
    /// A display title.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// What it is.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// Its MIME type.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<String>,
    /// Its size in bytes, when the server knows it.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// Any other fields (`annotations`, `icons`, `_meta`, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A resource template the server offers (`resources/templates/list`): URIs it can read
/// by filling in an RFC 6570 template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// The URI template, e.g. `file:///{path}`.
    pub uri_template: String,
    /// Its name (empty when the server gave none).
    #[serde(default)]
    pub name: String,
    /// A display title.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// What it is.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// The MIME type of the resources it names.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<String>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The result of `resources/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResourceResult {
    /// The contents (required by the protocol: a result without them is a protocol error).
    pub contents: Vec<ResourceContents>,
    /// The result's `_meta`, if any.
    #[serde(default, rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ReadResourceResult {
    /// The text of all text contents, joined by newlines.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .contents
            .iter()
            .filter_map(|c| c.text.as_deref())
            .collect();
        texts.join("\n")
    }
}

/// One item of a resource's contents: text, or a blob (base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    /// The URI of what this item holds.
    pub uri: String,
    /// Its MIME type.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<String>,
    /// The text, for text contents.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub text: Option<String>,
    /// The base64 data, for binary contents.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub blob: Option<String>,
    /// Any other fields (`_meta`, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A prompt the server offers (`prompts/list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// Its name, to get it with [`Pool::get_prompt`](crate::Pool::get_prompt).
    pub name: String,
    /// A display title.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// What it is for.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// The arguments it takes.
    #[serde(
        default,
        deserialize_with = "lenient_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arguments: Vec<PromptArgument>,
    /// Any other fields (`icons`, `_meta`, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One argument of a [`Prompt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptArgument {
    /// Its name, the key in [`Pool::get_prompt`](crate::Pool::get_prompt)'s arguments.
    pub name: String,
    /// A display title.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// What it is.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// Whether it must be given.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub required: Option<bool>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_and_prompts_read_leniently_and_round_trip() {
        let r: Resource = serde_json::from_value(json!({
            "uri": "file:///a", "name": "a", "mimeType": "text/plain", "size": "big",
            "annotations": {"priority": 1}
        }))
        .unwrap();
        assert_eq!(
            (r.uri.as_str(), r.mime_type.as_deref()),
            ("file:///a", Some("text/plain"))
        );
        assert_eq!(r.size, None, "a size of the wrong type is dropped");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"uri": "file:///a", "name": "a", "mimeType": "text/plain", "annotations": {"priority": 1}})
        );
        assert!(serde_json::from_value::<Resource>(json!({"name": "no uri"})).is_err());
        let t: ResourceTemplate =
            serde_json::from_value(json!({"uriTemplate": "fake://r/{n}", "name": "r"})).unwrap();
        assert_eq!(t.uri_template, "fake://r/{n}");
        let p: Prompt = serde_json::from_value(json!({
            "name": "greet",
            "arguments": [{"name": "name", "required": true}, {"required": true}]
        }))
        .unwrap();
        assert_eq!(
            p.arguments.len(),
            1,
            "an argument without a name is dropped"
        );
        assert_eq!(p.arguments[0].required, Some(true));
        let read: ReadResourceResult = serde_json::from_value(json!({
            "contents": [
                {"uri": "fake://r/1", "mimeType": "text/plain", "text": "one"},
                {"uri": "fake://r/1#b", "blob": "AA=="},
                {"uri": "fake://r/1#c", "text": "two"}
            ]
        }))
        .unwrap();
        assert_eq!(read.text(), "one\ntwo");
        assert_eq!(read.contents[1].blob.as_deref(), Some("AA=="));
        assert!(serde_json::from_value::<ReadResourceResult>(json!({})).is_err());
    }

    #[test]
    fn call_result_parses_every_content_kind() {
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [
                {"type":"text","text":"a"},
                {"type":"image","data":"AA==","mimeType":"image/png"},
                {"type":"resource_link","uri":"file:///x","name":"x"},
                {"type":"resource","resource":{"uri":"file:///y","text":"y"}},
                {"type":"text","text":"b","annotations":{"priority":1}}
            ],
            "structuredContent": {"sum": 3},
            "isError": false
        }))
        .unwrap();
        assert_eq!(r.text(), "a\nb");
        assert_eq!(r.structured_content, Some(json!({"sum": 3})));
        assert!(matches!(&r.content[2], Content::ResourceLink { uri, .. } if uri == "file:///x"));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["content"][1]["mimeType"], "image/png");
        assert_eq!(back["content"][4]["annotations"]["priority"], 1);
    }

    #[test]
    fn into_result_turns_is_error_into_a_tool_error() {
        let ok: CallToolResult =
            serde_json::from_value(json!({"content": [{"type": "text", "text": "fine"}]})).unwrap();
        assert_eq!(ok.clone().into_result().unwrap(), ok);
        let failed: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "no such file"}, {"type": "text", "text": "a.txt"}],
            "isError": true
        }))
        .unwrap();
        let e = failed.clone().into_result().unwrap_err();
        assert_eq!(e.to_string(), "the tool failed: no such file\na.txt");
        assert_eq!(e.kind(), crate::ErrorKind::Tool);
        let Error::Tool { result, .. } = e else {
            unreachable!()
        };
        assert_eq!(*result, failed);
    }

    #[test]
    fn structured_reads_the_structured_content_or_the_json_text() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Sum {
            sum: i64,
        }
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "not json"}],
            "structuredContent": {"sum": 3}
        }))
        .unwrap();
        assert_eq!(r.structured::<Sum>().unwrap(), Sum { sum: 3 });
        // An older server: the JSON is in the text.
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "{\"sum\": 4}"}]
        }))
        .unwrap();
        assert_eq!(r.structured::<Sum>().unwrap(), Sum { sum: 4 });
        let e = r.structured::<Vec<u8>>().unwrap_err();
        assert!(
            matches!(&e, Error::Protocol(m) if m.contains("is not a `alloc::vec::Vec<u8>`")),
            "{e}"
        );
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [], "structuredContent": {"total": 1}
        }))
        .unwrap();
        let e = r.structured::<Sum>().unwrap_err();
        assert!(
            matches!(&e, Error::Protocol(m) if m.contains("`structuredContent`") && m.contains("sum")),
            "{e}"
        );
        let r: CallToolResult = serde_json::from_value(json!({"content": []})).unwrap();
        let e = r.structured::<Sum>().unwrap_err();
        assert!(
            matches!(&e, Error::Protocol(m) if m.contains("no `structuredContent`")),
            "{e}"
        );
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "boom"}], "isError": true
        }))
        .unwrap();
        assert!(
            matches!(r.structured::<Sum>(), Err(Error::Tool { message, .. }) if message == "boom")
        );
    }

    #[test]
    fn an_unknown_kind_is_kept_as_sent_and_a_missing_content_is_an_error() {
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "hologram", "data": [1, 2]}, {"type": "text", "text": "t"}]
        }))
        .unwrap();
        assert_eq!(r.content[0].kind(), "hologram");
        assert_eq!(
            serde_json::to_value(&r.content[0]).unwrap(),
            json!({"type": "hologram", "data": [1, 2]})
        );
        assert_eq!(r.text(), "t");
        let e = serde_json::from_value::<CallToolResult>(json!({"isError": false})).unwrap_err();
        assert!(e.to_string().contains("content"), "{e}");
        let e = serde_json::from_value::<Content>(json!({"type": "text"})).unwrap_err();
        assert!(e.to_string().contains("no `text`"), "{e}");
    }

    #[test]
    fn a_call_result_reads_nulls_as_absent_and_refuses_wrong_types() {
        let r: CallToolResult = serde_json::from_str(
            r#"{"content":[],"structuredContent":null,"isError":null,"_meta":null,"other":1}"#,
        )
        .unwrap();
        assert_eq!(r, CallToolResult::default());
        for (bad, says) in [
            (
                json!({"content": {}}),
                "`content` is an object, not an array",
            ),
            (json!({"content": null}), "missing field `content`"),
            (
                json!({"content": [], "isError": "yes"}),
                "`isError` is a string",
            ),
            (json!({"content": [1]}), "not an object"),
            (json!([]), "the result is an array"),
        ] {
            let e = crate::protocol::tool_result(bad, "tools/call").unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
            assert!(
                e.to_string()
                    .contains("`tools/call` result has the wrong shape"),
                "{e}"
            );
        }
    }
}
