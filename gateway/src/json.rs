//! The JSON tree execution merges subgraph answers into.
//!
//! Subgraph answers are parsed into this tree rather than `serde_json::Value` because almost
//! all of an answer is strings, and the gateway only ever copies them back out: here every
//! string and key is a slice of the answer's own bytes (a reference count, no allocation, no
//! copy), objects are small vectors kept in the subgraph's order (no tree to build, search or
//! free), and the tree is cheap to clone when one entity fills several places of a response.

use std::fmt;

use bytes::Bytes;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON string: UTF-8 text held in shared bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    pub fn new(text: &str) -> Self {
        Text(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A slice of `origin` when `text` lies inside it, else a copy.
    fn within(origin: &Bytes, text: &str) -> Self {
        let start = origin.as_ptr() as usize;
        let at = text.as_ptr() as usize;
        if at >= start && at + text.len() <= start + origin.len() {
            Text(origin.slice_ref(text.as_bytes()))
        } else {
            Text::new(text)
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text as `str`. Every `Text` is made from a `str`, so this never falls back; the
    /// check costs a pass over the bytes, which is why output is written from `as_bytes`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(Bytes::from(text.into_bytes()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(Text),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object: entries in the order the subgraph wrote them. Objects in GraphQL answers
/// have a handful of fields, where a scan beats hashing or a tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(Vec<(Text, Json)>);

impl Object {
    pub fn new() -> Self {
        Object(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| *k == *key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.0.iter_mut().find(|(k, _)| *k == *key).map(|(_, v)| v)
    }

    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let at = self.0.iter().position(|(k, _)| *k == *key)?;
        Some(self.0.remove(at).1)
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: Text, value: Json) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => *existing = value,
            None => self.0.push((key, value)),
        }
    }

    /// Merges `source` in: objects field by field, lists item by item, anything else replaced.
    pub fn merge(&mut self, source: Object) {
        for (key, value) in source.0 {
            match self.0.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => existing.merge(value),
                None => self.0.push((key, value)),
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Text, &Json)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Text, &mut Json)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Text> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl Json {
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// Deep merge; see [`Object::merge`].
    pub fn merge(&mut self, source: Json) {
        match (self, source) {
            (Json::Object(target), Json::Object(source)) => target.merge(source),
            (Json::Array(target), Json::Array(source)) if target.len() == source.len() => {
                for (t, s) in target.iter_mut().zip(source) {
                    t.merge(s);
                }
            }
            (target, source) => *target = source,
        }
    }
}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(b),
            serde_json::Value::Number(n) => Json::Number(n),
            serde_json::Value::String(s) => Json::String(Text::from(s)),
            serde_json::Value::Array(items) => {
                Json::Array(items.into_iter().map(Json::from).collect())
            }
            serde_json::Value::Object(map) => Json::Object(Object(
                map.into_iter()
                    .map(|(k, v)| (Text::from(k), Json::from(v)))
                    .collect(),
            )),
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        crate::json_text::write_json(&mut out, self);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Reads a JSON value, keeping strings as slices of `origin`.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'b> {
    pub(crate) origin: &'b Bytes,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json, E> {
        Ok(Json::String(Text::within(self.origin, v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(Text::within(self.origin, v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(Text::from(v)))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key_seed(KeySeed(self))? {
            let value = map.next_value_seed(self)?;
            entries.push((key, value));
        }
        Ok(Json::Object(Object(entries)))
    }
}

/// Reads an object key as a slice of the origin.
struct KeySeed<'b>(Seed<'b>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text, E> {
        Ok(Text::within(self.0.origin, v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text, E> {
        Ok(Text::within(self.0.origin, v))
    }

    fn visit_string<E>(self, v: String) -> Result<Text, E> {
        Ok(Text::from(v))
    }
}

/// Skips a value without building it.
pub(crate) fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses JSON text whose strings may stay slices of `origin`, as the subgraph client does
    /// for a response's `data`.
    fn parse(origin: &Bytes) -> Result<Json, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(origin);
        let value = Seed { origin }.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    fn as_str(value: &Json) -> Option<&str> {
        match value {
            Json::String(text) => Some(text.as_str()),
            _ => None,
        }
    }

    #[test]
    fn strings_are_slices_of_the_answer_and_escapes_are_decoded() {
        let origin =
            Bytes::from_static(br#"{"a":"plain","b\"":"esc\"aped","c":[1,2.5,true,null]}"#);
        let Json::Object(object) = parse(&origin).unwrap() else {
            panic!("object expected")
        };
        assert_eq!(object.get("a").and_then(as_str), Some("plain"));
        assert_eq!(object.get("b\"").and_then(as_str), Some("esc\"aped"));
        assert_eq!(
            object.get("c").map(ToString::to_string).as_deref(),
            Some("[1,2.5,true,null]")
        );
        // Key order is the answer's.
        let keys: Vec<&str> = object.keys().map(Text::as_str).collect();
        assert_eq!(keys, ["a", "b\"", "c"]);
    }

    #[test]
    fn merging_keeps_both_sides() {
        let mut target = Json::from(serde_json::json!({ "a": { "x": 1 }, "list": [{ "k": 1 }] }));
        target.merge(Json::from(
            serde_json::json!({ "a": { "y": 2 }, "list": [{ "v": 2 }] }),
        ));
        assert_eq!(
            target,
            Json::from(
                serde_json::json!({ "a": { "x": 1, "y": 2 }, "list": [{ "k": 1, "v": 2 }] })
            )
        );
    }

    #[test]
    fn trailing_text_is_an_error() {
        assert!(parse(&Bytes::from_static(b"{} x")).is_err());
    }
}
