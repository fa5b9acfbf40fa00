//! Results the client reads into types: a tool call's result, its content items (an unknown
//! kind of item is kept as raw JSON, not a failure), a prompt, and a batch's tool call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The result of `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    /// The unstructured content items (required by the protocol: a result without them is
    /// a protocol error, not an empty success).
    pub content: Vec<Content>,
    /// The structured result, when the tool has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// `true` when the tool itself failed (a tool error, not a protocol error).
    #[serde(default)]
    pub is_error: bool,
    /// The result's `_meta`, if any.
    #[serde(default, rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
