//! The GraphQL response format: errors as the spec lays them out, and the shaped `data` tree.
//!
//! `data` is kept as our own ordered tree instead of `serde_json::Value` because serde_json's map
//! sorts keys unless the workspace-wide `preserve_order` feature is on, and the spec requires the
//! response to follow the order of the client's selection set.

use apollo_compiler::response::JsonValue;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

/// A GraphQL error as serialised in a response.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphQLError {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl GraphQLError {
    pub fn new(message: impl Into<String>) -> Self {
        GraphQLError {
            message: message.into(),
            locations: Vec::new(),
            path: None,
            extensions: serde_json::Map::new(),
        }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.extensions
            .insert("code".into(), serde_json::Value::String(code.into()));
        self
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.into(), value);
        self
    }

    /// Converts an apollo-compiler error (parse, validation, variable coercion, introspection).
    pub fn from_compiler(error: apollo_compiler::response::GraphQLError) -> Self {
        let path = if error.path.is_empty() {
            None
        } else {
            Some(
                error
                    .path
                    .iter()
                    .map(|segment| match segment {
                        apollo_compiler::response::ResponseDataPathSegment::Field(name) => {
                            serde_json::Value::String(name.to_string())
                        }
                        apollo_compiler::response::ResponseDataPathSegment::ListIndex(i) => {
                            serde_json::Value::from(*i)
                        }
                    })
                    .collect(),
            )
        };
        GraphQLError {
            message: error.message,
            locations: error
                .locations
                .iter()
                .map(|l| Location {
                    line: l.line,
                    column: l.column,
                })
                .collect(),
            path,
            extensions: serde_json::Map::new(),
        }
    }
}

/// The `data` of a response, in the exact order and shape the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped {
    Null,
    /// A leaf value copied from a subgraph response.
    Leaf(serde_json::Value),
    /// A value produced by apollo-compiler's introspection executor, already shaped.
    Introspection(JsonValue),
    List(Vec<Shaped>),
    /// Response keys are the operation's own names: cheap to clone, never re-allocated.
    Object(Vec<(apollo_compiler::Name, Shaped)>),
}

impl Shaped {
    pub fn is_null(&self) -> bool {
        matches!(self, Shaped::Null)
    }

    /// Looks up a key of an object; used by tests and by callers inspecting results.
    pub fn get(&self, key: &str) -> Option<&Shaped> {
        match self {
            Shaped::Object(fields) => fields
                .iter()
                .find(|(k, _)| k.as_str() == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Serialize for Shaped {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shaped::Null => serializer.serialize_unit(),
            Shaped::Leaf(value) => value.serialize(serializer),
            Shaped::Introspection(value) => value.serialize(serializer),
            Shaped::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Shaped::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key.as_str(), value)?;
                }
                map.end()
            }
        }
    }
}

/// A complete response. `data` is absent (not null) for request errors, per the spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Response {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GraphQLError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Shaped>,
}

impl Response {
    pub fn request_error(errors: Vec<GraphQLError>) -> Self {
        Response { errors, data: None }
    }
}
