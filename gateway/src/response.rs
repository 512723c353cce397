//! The GraphQL response format: errors as the spec lays them out, and the shaped `data`.

use serde::Serialize;

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

/// The `data` of a response as JSON text, written by the shaper in the client's field order
/// (serde_json's map would sort the keys, and a tree would cost an allocation per object).
/// Only the shaper makes one, so the text is valid JSON by construction and is never re-parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// The buffer starts with the response's own opening, `{"data":`, so that a response without
/// errors is sent as this very buffer, closed with `}`: no second copy of a large response.
pub struct ResponseData(Vec<u8>);

const DATA_OPENING: &[u8] = b"{\"data\":";

impl ResponseData {
    /// A buffer for the shaper, the opening already written.
    pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
        let mut json = Vec::with_capacity(capacity.max(64));
        json.extend_from_slice(DATA_OPENING);
        json
    }

    /// Keeps just the opening; the shaper starts over (a null that reached the root).
    pub(crate) fn restart(json: &mut Vec<u8>) {
        json.truncate(DATA_OPENING.len());
    }

    /// Takes a buffer from [`ResponseData::buffer`] holding the data after the opening.
    pub(crate) fn from_shaper(json: Vec<u8>) -> Self {
        ResponseData(json)
    }

    /// The data as JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.get(DATA_OPENING.len()..).unwrap_or_default()
    }
}

/// A complete response. `data` is absent (not null) for request errors, per the spec.
#[derive(Debug, Clone)]
pub struct Response {
    pub errors: Vec<GraphQLError>,
    pub data: Option<ResponseData>,
}

impl Response {
    pub fn request_error(errors: Vec<GraphQLError>) -> Self {
        Response { errors, data: None }
    }

    /// Writes the response as JSON: `errors` (when there are any), then `data` (when present).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            if serde_json::to_writer(&mut *out, &self.errors).is_err() {
                // Errors are plain strings and JSON values; writing them to memory cannot fail.
                out.extend_from_slice(br#"[{"message":"Internal server error"}]"#);
            }
            if self.data.is_some() {
                out.push(b',');
            }
        }
        if let Some(data) = &self.data {
            out.extend_from_slice(b"\"data\":");
            out.extend_from_slice(data.as_bytes());
        }
        out.push(b'}');
    }

    pub fn to_json(&self) -> Vec<u8> {
        let size = self.data.as_ref().map_or(0, |d| d.0.len());
        let mut out = Vec::with_capacity(size + 64);
        self.write_json(&mut out);
        out
    }

    /// The response as JSON; without errors, the shaper's own buffer.
    pub fn into_json(self) -> Vec<u8> {
        match self.data {
            Some(ResponseData(mut json)) if self.errors.is_empty() => {
                json.push(b'}');
                json
            }
            _ => self.to_json(),
        }
    }

    pub fn to_json_string(&self) -> String {
        // Everything written is UTF-8: the shaper copies strings whole and escapes the rest.
        String::from_utf8(self.to_json())
            .unwrap_or_else(|_| r#"{"errors":[{"message":"Internal server error"}]}"#.to_string())
    }
}
