//! Shaping: walks the client's normalised operation over the merged subgraph data and writes
//! exactly the response the client asked for as JSON text: its field order and aliases, only
//! the fragments that match each object's runtime type, none of the planner's extra fields
//! (keys, `__typename`, `@requires` inputs), and nulls propagated per the non-null rules of the
//! spec.
//!
//! The response is written straight into one buffer rather than built as a tree and then
//! serialised: a large response has thousands of objects, and a tree costs an allocation per
//! object and a second walk. A null that bubbles up to a nullable ancestor truncates the
//! buffer back to where that ancestor began and writes `null` there instead.

use std::rc::Rc;

use apollo_compiler::Name;
use apollo_compiler::ast::Type;
use apollo_compiler::response::JsonMap;
use apollo_compiler::schema::ExtendedType;
use serde_json::Value;

use super::normalize::NormalizedOperation;
use super::selection::{Field, Selection, SelectionSet};
use crate::json::{Json, Object};
use crate::json_text;
use crate::response::{GraphQLError, ResponseData};
use crate::supergraph::Supergraph;

/// A null reached a non-null position and must replace the nearest nullable ancestor.
struct NullBubble;

/// A step of the response path, kept cheap (no allocation per field) because it is only
/// turned into JSON when an error needs it.
#[derive(Clone)]
pub enum Step<'a> {
    Key(&'a Name),
    Index(usize),
}

fn json_path(path: &[Step<'_>]) -> Vec<Value> {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => Value::String(key.to_string()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}

/// The fields one selection set yields for one runtime type, grouped by response key
/// (CollectFields in the spec), with what each key needs from the schema. The same selection
/// set is shaped once per object of the response, so all of this is worked out once per
/// request and type and then reused.
type FieldGroups<'a> = Rc<Vec<FieldGroup<'a>>>;

struct FieldGroup<'a> {
    key: &'a Name,
    fields: Vec<&'a Field>,
    kind: FieldKind<'a>,
}

enum FieldKind<'a> {
    Typename,
    /// `__schema` / `__type` at the root: answered by the introspection executor.
    Introspection,
    /// A scalar or enum; for an enum, its values clients may see.
    Leaf(Option<&'a apollo_compiler::schema::EnumType>),
    Composite,
}

struct Shaper<'a> {
    supergraph: &'a Supergraph,
    introspection: Option<&'a JsonMap>,
    /// Only report non-null violations when nothing else explains the null (a subgraph error
    /// already names the cause, and repeating it per field would drown it).
    report_nulls: bool,
    errors: Vec<GraphQLError>,
    /// Keyed by the selection set's address and the runtime type's name in the schema: both
    /// live as long as the shaping does, so addresses identify them. A request has a few dozen
    /// (selection set, type) pairs at most, so a list beats hashing.
    groups: Vec<((usize, usize), FieldGroups<'a>)>,
    out: Vec<u8>,
}

/// Shapes `data` into the client's response and returns its `data` as JSON text.
pub fn shape<'a>(
    supergraph: &'a Supergraph,
    operation: &'a NormalizedOperation,
    data: &Json,
    introspection: Option<&'a JsonMap>,
    errors: &mut Vec<GraphQLError>,
    size_hint: usize,
) -> ResponseData {
    shape_selection(
        supergraph,
        operation.root_type.as_str(),
        &operation.selection_set,
        data,
        introspection,
        errors,
        size_hint,
    )
}

/// Shapes `data` by `selection` on the operation's root type: [`shape`] for a selection
/// other than the whole operation's (the first payload of a query with `@defer`).
pub fn shape_selection<'a>(
    supergraph: &'a Supergraph,
    root_type: &'a str,
    selection: &'a SelectionSet,
    data: &Json,
    introspection: Option<&'a JsonMap>,
    errors: &mut Vec<GraphQLError>,
    size_hint: usize,
) -> ResponseData {
    let mut shaper = Shaper {
        supergraph,
        introspection,
        report_nulls: errors.is_empty(),
        errors: Vec::new(),
        groups: Vec::new(),
        out: ResponseData::buffer(size_hint),
    };
    let empty = Object::new();
    let root = match data {
        Json::Object(root) => root,
        _ => &empty,
    };
    let mut path = Vec::new();
    let shaped = shaper.object(root_type, &[selection], root, &mut path, true);
    if shaped.is_err() {
        ResponseData::restart(&mut shaper.out);
        shaper.out.extend_from_slice(b"null");
    }
    errors.append(&mut shaper.errors);
    ResponseData::from_shaper(shaper.out)
}

/// Shapes a deferred fragment's `selection` on the object at `path`: the `data` of one
/// incremental payload, as JSON text. `None` when a non-null field in it came back null:
/// the payload then has no data, only its errors.
pub fn shape_deferred<'a>(
    supergraph: &'a Supergraph,
    declared_type: &str,
    selection: &'a SelectionSet,
    object: &Object,
    mut path: Vec<Step<'a>>,
    report_nulls: bool,
    errors: &mut Vec<GraphQLError>,
) -> Option<Vec<u8>> {
    let runtime = match object.get("__typename") {
        Some(Json::String(t)) => t.as_str(),
        _ => declared_type,
    };
    // The schema's own name: its address is stable, which the grouping cache uses.
    let (runtime_type, _) = supergraph.api.types.get_key_value(runtime)?;
    let mut shaper = Shaper {
        supergraph,
        introspection: None,
        report_nulls,
        errors: Vec::new(),
        groups: Vec::new(),
        out: Vec::with_capacity(256),
    };
    let shaped = shaper.object(
        runtime_type.as_str(),
        &[selection],
        object,
        &mut path,
        false,
    );
    errors.append(&mut shaper.errors);
    shaped.ok().map(|()| shaper.out)
}

impl<'a> Shaper<'a> {
    fn write_key(&mut self, key: &str) {
        // Response keys are GraphQL names ([_A-Za-z][_0-9A-Za-z]*): nothing to escape.
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn write_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        if serde_json::to_writer(&mut self.out, value).is_err() {
            // Serialising a JSON value into memory cannot fail; stay valid if it ever does.
            self.out.extend_from_slice(b"null");
        }
    }

    fn field_groups(
        &mut self,
        runtime_type: &'a str,
        selections: &[&'a SelectionSet],
        is_root: bool,
    ) -> FieldGroups<'a> {
        let key = match selections {
            [only] => Some((
                *only as *const SelectionSet as usize,
                runtime_type.as_ptr() as usize,
            )),
            // Several fields merged under one response key: rare, not worth a cache entry.
            _ => None,
        };
        if let Some(key) = key
            && let Some((_, found)) = self.groups.iter().find(|(k, _)| *k == key)
        {
            return Rc::clone(found);
        }
        let mut grouped: Vec<(&'a Name, Vec<&'a Field>)> = Vec::new();
        for set in selections {
            self.collect_fields(runtime_type, set, &mut grouped);
        }
        let grouped: FieldGroups<'a> = Rc::new(
            grouped
                .into_iter()
                .map(|(key, fields)| {
                    let field = fields[0];
                    let kind = if field.name == "__typename" {
                        FieldKind::Typename
                    } else if is_root && (field.name == "__schema" || field.name == "__type") {
                        FieldKind::Introspection
                    } else {
                        self.kind_of(field.ty.inner_named_type())
                    };
                    FieldGroup { key, fields, kind }
                })
                .collect(),
        );
        if let Some(key) = key {
            self.groups.push((key, Rc::clone(&grouped)));
        }
        grouped
    }

    fn kind_of(&self, type_name: &str) -> FieldKind<'a> {
        let supergraph = self.supergraph;
        match supergraph.schema.types.get(type_name) {
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                FieldKind::Composite
            }
            _ => match supergraph.api.types.get(type_name) {
                Some(ExtendedType::Enum(e)) => FieldKind::Leaf(Some(e)),
                _ => FieldKind::Leaf(None),
            },
        }
    }

    fn object(
        &mut self,
        runtime_type: &'a str,
        selections: &[&'a SelectionSet],
        object: &Object,
        path: &mut Vec<Step<'a>>,
        is_root: bool,
    ) -> Result<(), NullBubble> {
        let grouped = self.field_groups(runtime_type, selections, is_root);
        self.out.push(b'{');
        for (i, group) in grouped.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let key = group.key;
            self.write_key(key);
            match group.kind {
                FieldKind::Typename => {
                    json_text::write_str(&mut self.out, runtime_type);
                    continue;
                }
                FieldKind::Introspection => {
                    match self.introspection.and_then(|m| m.get(key.as_str())) {
                        Some(value) => self.write_json(value),
                        None => self.out.extend_from_slice(b"null"),
                    }
                    continue;
                }
                FieldKind::Leaf(_) | FieldKind::Composite => {}
            }
            path.push(Step::Key(key));
            let shaped = self.value(
                &group.fields[0].ty,
                group,
                object.get(key.as_str()),
                path,
                runtime_type,
            );
            path.pop();
            shaped?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Field collection (spec: CollectFields) for one runtime type: same response keys merge,
    /// fragments apply when their type condition covers the runtime type.
    fn collect_fields(
        &self,
        runtime_type: &str,
        set: &'a SelectionSet,
        out: &mut Vec<(&'a Name, Vec<&'a Field>)>,
    ) {
        for item in &set.items {
            match item {
                Selection::Field(field) => {
                    let key = field.response_key();
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(field),
                        None => out.push((key, vec![field])),
                    }
                }
                Selection::Fragment(fragment) => {
                    if self
                        .supergraph
                        .is_subtype(&fragment.type_condition, runtime_type)
                    {
                        self.collect_fields(runtime_type, &fragment.selection_set, out);
                    }
                }
            }
        }
    }

    /// Writes one value; `Ok(true)` when it wrote `null`.
    fn value(
        &mut self,
        ty: &Type,
        group: &FieldGroup<'a>,
        value: Option<&Json>,
        path: &mut Vec<Step<'a>>,
        parent_type: &str,
    ) -> Result<bool, NullBubble> {
        match ty {
            Type::NonNullNamed(name) => {
                let wrote_null = self.named(name, group, value, path)?;
                self.non_null(wrote_null, &group.fields, path, parent_type)
            }
            Type::NonNullList(item_type) => {
                let wrote_null = self.list(item_type, group, value, path, parent_type)?;
                self.non_null(wrote_null, &group.fields, path, parent_type)
            }
            Type::List(item_type) => self.list(item_type, group, value, path, parent_type),
            Type::Named(name) => self.named(name, group, value, path),
        }
    }

    fn non_null(
        &mut self,
        wrote_null: bool,
        fields: &[&Field],
        path: &[Step<'_>],
        parent_type: &str,
    ) -> Result<bool, NullBubble> {
        if !wrote_null {
            return Ok(false);
        }
        if self.report_nulls {
            self.report_nulls = false;
            let mut error = GraphQLError::new(format!(
                "Cannot return null for non-nullable field {parent_type}.{}",
                fields[0].name
            ));
            error.path = Some(json_path(path));
            self.errors.push(error);
        }
        Err(NullBubble)
    }

    fn list(
        &mut self,
        item_type: &Type,
        group: &FieldGroup<'a>,
        value: Option<&Json>,
        path: &mut Vec<Step<'a>>,
        parent_type: &str,
    ) -> Result<bool, NullBubble> {
        let Some(Json::Array(items)) = value else {
            self.out.extend_from_slice(b"null");
            return Ok(true);
        };
        let start = self.out.len();
        self.out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            path.push(Step::Index(i));
            let shaped = self.value(item_type, group, Some(item), path, parent_type);
            path.pop();
            if shaped.is_err() {
                // A non-null item was null: the whole (nullable) list becomes null.
                self.out.truncate(start);
                self.out.extend_from_slice(b"null");
                return Ok(true);
            }
        }
        self.out.push(b']');
        Ok(false)
    }

    fn named(
        &mut self,
        name: &Name,
        group: &FieldGroup<'a>,
        value: Option<&Json>,
        path: &mut Vec<Step<'a>>,
    ) -> Result<bool, NullBubble> {
        let leaf = matches!(group.kind, FieldKind::Leaf(_));
        match value {
            None | Some(Json::Null) => {
                self.out.extend_from_slice(b"null");
                Ok(true)
            }
            Some(Json::Object(object)) if !leaf => {
                let declared = match object.get("__typename") {
                    Some(Json::String(t)) => t.as_str(),
                    _ => name.as_str(),
                };
                // The schema's own name: its address is stable, which the grouping cache uses.
                let supergraph = self.supergraph;
                let Some((runtime_type, _)) = supergraph.api.types.get_key_value(declared) else {
                    // An `@inaccessible` object type: clients cannot be shown it, so the
                    // position is null, as if the subgraph had returned nothing.
                    self.out.extend_from_slice(b"null");
                    return Ok(true);
                };
                let start = self.out.len();
                let shaped = match group.fields.as_slice() {
                    [field] => self.object(
                        runtime_type.as_str(),
                        &[&field.selection_set],
                        object,
                        path,
                        false,
                    ),
                    fields => {
                        let selections: Vec<&'a SelectionSet> =
                            fields.iter().map(|f| &f.selection_set).collect();
                        self.object(runtime_type.as_str(), &selections, object, path, false)
                    }
                };
                match shaped {
                    Ok(()) => Ok(false),
                    Err(NullBubble) => {
                        self.out.truncate(start);
                        self.out.extend_from_slice(b"null");
                        Ok(true)
                    }
                }
            }
            Some(value) if leaf => {
                if let FieldKind::Leaf(Some(enum_type)) = group.kind
                    && let Json::String(v) = value
                    && !enum_type.values.contains_key(v.as_str())
                {
                    // An `@inaccessible` enum value must not reach clients: the field
                    // becomes null with an error, like any value the schema cannot return.
                    let mut error = GraphQLError::new(format!(
                        "Enum \"{name}\" cannot represent value: {value}"
                    ));
                    error.path = Some(json_path(path));
                    self.errors.push(error);
                    self.out.extend_from_slice(b"null");
                    return Ok(true);
                }
                json_text::write_json(&mut self.out, value);
                Ok(false)
            }
            // A composite field answered with a scalar: the subgraph broke its contract.
            Some(_) => {
                self.out.extend_from_slice(b"null");
                Ok(true)
            }
        }
    }
}
