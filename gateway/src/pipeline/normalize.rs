//! Normalisation: turns a validated client operation into the planner's selection tree.
//!
//! Named fragments are inlined, `@skip`/`@include` are decided with the request's variables, and
//! fragments that always apply (same type as their parent object) are flattened. The printed
//! result is the plan cache key: two requests with the same normalised operation share a plan.

use std::cell::Cell;

use apollo_compiler::ast::{OperationType, Value, VariableDefinition};
use apollo_compiler::executable::{self, ExecutableDocument, Operation};
use apollo_compiler::response::JsonMap;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node, Schema};

use super::selection::{Field, Fragment, Selection, SelectionSet};

#[derive(Debug, Clone)]
pub struct NormalizedOperation {
    pub operation_type: OperationType,
    pub root_type: Name,
    pub variables: Vec<Node<VariableDefinition>>,
    pub selection_set: SelectionSet,
}

impl NormalizedOperation {
    /// A canonical text of the operation; equal keys mean equal plans.
    pub fn cache_key(&self) -> String {
        let mut key = String::with_capacity(256);
        key.push_str(self.operation_type.name());
        for var in &self.variables {
            key.push_str(" $");
            key.push_str(&var.name);
            key.push(':');
            key.push_str(&var.ty.to_string());
        }
        key.push(' ');
        self.selection_set.write_to(&mut key);
        key
    }
}

/// Inlining fragments can multiply work: a fragment spread twice per level, nested thirty
/// levels deep, is a billion selections. Normalisation stops at this many visited selections.
pub const MAX_NORMALIZED_SELECTIONS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
#[error("the operation expands to more than {MAX_NORMALIZED_SELECTIONS} selections")]
pub struct TooLarge;

pub fn normalize(
    schema: &Schema,
    document: &ExecutableDocument,
    operation: &Operation,
    variables: &JsonMap,
) -> Result<NormalizedOperation, TooLarge> {
    let normalizer = Normalizer {
        schema,
        document,
        variables,
        visited: Cell::new(0),
    };
    let selection_set = normalizer.selection_set(&operation.selection_set, 0);
    if normalizer.visited.get() > MAX_NORMALIZED_SELECTIONS {
        return Err(TooLarge);
    }
    Ok(NormalizedOperation {
        operation_type: operation.operation_type,
        root_type: operation.selection_set.ty.clone(),
        variables: operation.variables.clone(),
        selection_set,
    })
}

/// Converts a field set (`@key`, `@requires`, `@provides`) parsed by apollo-compiler.
pub fn from_field_set(set: &executable::SelectionSet) -> SelectionSet {
    let mut out = SelectionSet::default();
    for selection in &set.selections {
        match selection {
            executable::Selection::Field(f) => out.add(Selection::Field(Field {
                alias: f.alias.clone(),
                name: f.name.clone(),
                arguments: f.arguments.clone(),
                ty: f.definition.ty.clone(),
                selection_set: from_field_set(&f.selection_set),
            })),
            executable::Selection::InlineFragment(fr) => out.add(Selection::Fragment(Fragment {
                type_condition: fr.type_condition.clone().unwrap_or_else(|| set.ty.clone()),
                selection_set: from_field_set(&fr.selection_set),
            })),
            // Field sets cannot contain fragment spreads.
            executable::Selection::FragmentSpread(_) => {}
        }
    }
    out
}

struct Normalizer<'a> {
    schema: &'a Schema,
    document: &'a ExecutableDocument,
    variables: &'a JsonMap,
    visited: Cell<usize>,
}

/// Guards against fragment cycles; validation rejects them, this keeps a bug from recursing
/// without bound.
const MAX_FRAGMENT_NESTING: usize = 100;

impl Normalizer<'_> {
    fn selection_set(&self, set: &executable::SelectionSet, depth: usize) -> SelectionSet {
        let mut out = SelectionSet::default();
        self.collect_into(&mut out, set, depth);
        out
    }

    fn collect_into(&self, out: &mut SelectionSet, set: &executable::SelectionSet, depth: usize) {
        if depth > MAX_FRAGMENT_NESTING {
            return;
        }
        for selection in &set.selections {
            let visited = self.visited.get() + 1;
            self.visited.set(visited);
            if visited > MAX_NORMALIZED_SELECTIONS {
                return;
            }
            if !self.included(selection.directives()) {
                continue;
            }
            match selection {
                executable::Selection::Field(f) => out.add(Selection::Field(Field {
                    alias: f.alias.clone(),
                    name: f.name.clone(),
                    arguments: f.arguments.clone(),
                    ty: f.definition.ty.clone(),
                    selection_set: self.selection_set(&f.selection_set, depth + 1),
                })),
                executable::Selection::InlineFragment(fr) => {
                    let condition = fr.type_condition.as_ref().unwrap_or(&set.ty);
                    self.fragment_into(out, &set.ty, condition, &fr.selection_set, depth);
                }
                executable::Selection::FragmentSpread(spread) => {
                    if let Some(def) = self.document.fragments.get(&spread.fragment_name) {
                        let condition = def.type_condition();
                        self.fragment_into(out, &set.ty, condition, &def.selection_set, depth);
                    }
                }
            }
        }
    }

    fn fragment_into(
        &self,
        out: &mut SelectionSet,
        parent: &Name,
        condition: &Name,
        set: &executable::SelectionSet,
        depth: usize,
    ) {
        let parent_is_object =
            matches!(self.schema.types.get(parent), Some(ExtendedType::Object(_)));
        if condition == parent || (parent_is_object && self.schema.is_subtype(condition, parent)) {
            // Always applies: no need to keep the type condition.
            self.collect_into(out, set, depth + 1);
        } else {
            out.add(Selection::Fragment(Fragment {
                type_condition: condition.clone(),
                selection_set: self.selection_set(set, depth + 1),
            }));
        }
    }

    /// Decides `@skip(if:)` and `@include(if:)`; validation has checked the argument types.
    fn included(&self, directives: &executable::DirectiveList) -> bool {
        let condition = |name: &str| -> Option<bool> {
            let value = directives.get(name)?.specified_argument_by_name("if")?;
            match value.as_ref() {
                Value::Boolean(b) => Some(*b),
                Value::Variable(var) => self.variables.get(var.as_str()).and_then(|v| v.as_bool()),
                _ => None,
            }
        };
        let skipped = condition("skip").unwrap_or(false);
        let included = condition("include").unwrap_or(true);
        !skipped && included
    }
}
