//! Shaping: walks the client's normalised operation over the merged subgraph data and builds
//! exactly the response the client asked for: its field order and aliases, only the fragments
//! that match each object's runtime type, none of the planner's extra fields (keys,
//! `__typename`, `@requires` inputs), and nulls propagated per the non-null rules of the spec.

use apollo_compiler::Name;
use apollo_compiler::ast::Type;
use apollo_compiler::response::JsonMap;
use apollo_compiler::schema::ExtendedType;
use serde_json::Value;

use super::normalize::NormalizedOperation;
use super::selection::{Field, Selection, SelectionSet};
use crate::response::{GraphQLError, Shaped};
use crate::supergraph::Supergraph;

/// A null reached a non-null position and must replace the nearest nullable ancestor.
struct NullBubble;

/// A step of the response path, kept cheap (no allocation per field) because it is only
/// turned into JSON when an error needs it.
#[derive(Clone)]
enum Step {
    Key(Name),
    Index(usize),
}

fn json_path(path: &[Step]) -> Vec<Value> {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => Value::String(key.to_string()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}

struct Shaper<'a> {
    supergraph: &'a Supergraph,
    introspection: Option<&'a JsonMap>,
    /// Only report non-null violations when nothing else explains the null (a subgraph error
    /// already names the cause, and repeating it per field would drown it).
    report_nulls: bool,
    errors: Vec<GraphQLError>,
}

pub fn shape(
    supergraph: &Supergraph,
    operation: &NormalizedOperation,
    data: &mut Value,
    introspection: Option<&JsonMap>,
    errors: &mut Vec<GraphQLError>,
) -> Shaped {
    let mut shaper = Shaper {
        supergraph,
        introspection,
        report_nulls: errors.is_empty(),
        errors: Vec::new(),
    };
    let mut empty = serde_json::Map::new();
    let root = match data {
        Value::Object(root) => root,
        _ => &mut empty,
    };
    let mut path = Vec::new();
    let shaped = shaper
        .object(
            &operation.root_type,
            &[&operation.selection_set],
            root,
            &mut path,
            true,
        )
        .unwrap_or(Shaped::Null);
    errors.append(&mut shaper.errors);
    shaped
}

impl Shaper<'_> {
    fn object(
        &mut self,
        runtime_type: &str,
        selections: &[&SelectionSet],
        object: &mut serde_json::Map<String, Value>,
        path: &mut Vec<Step>,
        is_root: bool,
    ) -> Result<Shaped, NullBubble> {
        let mut grouped: Vec<(&Name, Vec<&Field>)> = Vec::new();
        for set in selections {
            self.collect_fields(runtime_type, set, &mut grouped);
        }
        let mut out = Vec::with_capacity(grouped.len());
        for (key, fields) in grouped {
            let field = fields[0];
            if field.name == "__typename" {
                out.push((
                    key.clone(),
                    Shaped::Leaf(Value::String(runtime_type.to_string())),
                ));
                continue;
            }
            if is_root && (field.name == "__schema" || field.name == "__type") {
                let value = self
                    .introspection
                    .and_then(|m| m.get(key.as_str()))
                    .map(|v| Shaped::Introspection(v.clone()))
                    .unwrap_or(Shaped::Null);
                out.push((key.clone(), value));
                continue;
            }
            path.push(Step::Key(key.clone()));
            let value = self.value(
                &field.ty,
                &fields,
                object.get_mut(key.as_str()),
                path,
                runtime_type,
            );
            path.pop();
            out.push((key.clone(), value?));
        }
        Ok(Shaped::Object(out))
    }

    /// Field collection (spec: CollectFields) for one runtime type: same response keys merge,
    /// fragments apply when their type condition covers the runtime type.
    fn collect_fields<'s>(
        &self,
        runtime_type: &str,
        set: &'s SelectionSet,
        out: &mut Vec<(&'s Name, Vec<&'s Field>)>,
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

    fn value(
        &mut self,
        ty: &Type,
        fields: &[&Field],
        value: Option<&mut Value>,
        path: &mut Vec<Step>,
        parent_type: &str,
    ) -> Result<Shaped, NullBubble> {
        match ty {
            Type::NonNullNamed(_) | Type::NonNullList(_) => {
                let shaped =
                    self.value(&ty.clone().nullable(), fields, value, path, parent_type)?;
                if shaped.is_null() {
                    if self.report_nulls {
                        self.report_nulls = false;
                        let mut error = GraphQLError::new(format!(
                            "Cannot return null for non-nullable field {parent_type}.{}",
                            fields[0].name
                        ));
                        error.path = Some(json_path(path));
                        self.errors.push(error);
                    }
                    return Err(NullBubble);
                }
                Ok(shaped)
            }
            Type::List(item_type) => match value {
                Some(Value::Array(items)) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter_mut().enumerate() {
                        path.push(Step::Index(i));
                        let shaped = self.value(item_type, fields, Some(item), path, parent_type);
                        path.pop();
                        match shaped {
                            Ok(shaped) => out.push(shaped),
                            Err(NullBubble) => return Ok(Shaped::Null),
                        }
                    }
                    Ok(Shaped::List(out))
                }
                _ => Ok(Shaped::Null),
            },
            Type::Named(name) => match value {
                None | Some(Value::Null) => Ok(Shaped::Null),
                Some(Value::Object(object)) if !self.is_leaf(name) => {
                    let declared = match object.get("__typename") {
                        Some(Value::String(t)) => t.as_str(),
                        _ => name.as_str(),
                    };
                    // The schema's own name: it outlives the object, whose leaves are moved out.
                    let supergraph = self.supergraph;
                    let Some((runtime_type, _)) = supergraph.api.types.get_key_value(declared)
                    else {
                        // An `@inaccessible` object type: clients cannot be shown it, so the
                        // position is null, as if the subgraph had returned nothing.
                        return Ok(Shaped::Null);
                    };
                    let selections: Vec<&SelectionSet> =
                        fields.iter().map(|f| &f.selection_set).collect();
                    Ok(self
                        .object(runtime_type.as_str(), &selections, object, path, false)
                        .unwrap_or(Shaped::Null))
                }
                Some(leaf) if self.is_leaf(name) => {
                    if self.hidden_enum_value(name, leaf) {
                        // An `@inaccessible` enum value must not reach clients: the field
                        // becomes null with an error, like any value the schema cannot return.
                        let mut error = GraphQLError::new(format!(
                            "Enum \"{name}\" cannot represent value: {leaf}"
                        ));
                        error.path = Some(json_path(path));
                        self.errors.push(error);
                        return Ok(Shaped::Null);
                    }
                    // Each position of the merged data is shaped once: move, don't copy.
                    Ok(Shaped::Leaf(std::mem::take(leaf)))
                }
                // A composite field answered with a scalar: the subgraph broke its contract.
                Some(_) => Ok(Shaped::Null),
            },
        }
    }

    fn hidden_enum_value(&self, type_name: &str, value: &Value) -> bool {
        match (self.supergraph.api.types.get(type_name), value) {
            (Some(ExtendedType::Enum(e)), Value::String(v)) => !e.values.contains_key(v.as_str()),
            _ => false,
        }
    }

    fn is_leaf(&self, type_name: &str) -> bool {
        !matches!(
            self.supergraph.schema.types.get(type_name),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_))
        )
    }
}
