//! Normalisation: turns a validated client operation into the planner's selection tree.
//!
//! Named fragments are inlined, `@skip`/`@include` are decided with the request's variables, and
//! fragments that always apply (same type as their parent object) are flattened. The printed
//! result is the plan cache key: two requests with the same normalised operation share a plan.

use std::cell::{Cell, RefCell};

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
    /// Everything the operation selects, deferred fragments included: what is planned.
    pub selection_set: SelectionSet,
    /// The query's active `@defer` fragments, when it has any: what its first response holds
    /// and what follows. The plan does not depend on it (it is planned whole), so it is not
    /// part of the cache key.
    pub deferred: Option<Box<Deferred>>,
}

/// A query split by its `@defer` fragments.
#[derive(Debug, Clone)]
pub struct Deferred {
    /// The selection without the deferred fragments: the first payload's shape.
    pub initial: SelectionSet,
    pub fragments: Vec<DeferredFragment>,
}

/// One `@defer` fragment, delivered later for every object at its path.
#[derive(Debug, Clone)]
pub struct DeferredFragment {
    pub label: Option<String>,
    /// Response keys from the root of `data` to the objects the fragment applies to; lists
    /// are walked through.
    pub path: Vec<Name>,
    /// The type of the selection set the fragment sits in (the objects' declared type).
    pub parent_type: Name,
    /// The fragment, as a selection on `parent_type` (its type condition kept).
    pub selection: SelectionSet,
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
    let normalizer = Normalizer::new(schema, document, variables, false);
    let selection_set = normalizer.selection_set(&operation.selection_set, 0);
    if normalizer.visited.get() > MAX_NORMALIZED_SELECTIONS {
        return Err(TooLarge);
    }
    // `@defer` is honoured in queries; a mutation's or subscription's fragments are simply
    // part of their result, as the directive allows. Without an active `@defer` met on the
    // way (the common case) there is no second pass.
    let deferred = if operation.operation_type == OperationType::Query && normalizer.saw_defer.get()
    {
        let splitter = Normalizer::new(schema, document, variables, true);
        let initial = splitter.selection_set(&operation.selection_set, 0);
        if splitter.visited.get() > MAX_NORMALIZED_SELECTIONS {
            return Err(TooLarge);
        }
        let fragments = splitter.deferred.into_inner();
        (!fragments.is_empty()).then(|| Box::new(Deferred { initial, fragments }))
    } else {
        None
    };
    Ok(NormalizedOperation {
        operation_type: operation.operation_type,
        root_type: operation.selection_set.ty.clone(),
        variables: operation.variables.clone(),
        selection_set,
        deferred,
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
    /// Whether active `@defer` fragments are set aside into `deferred` instead of inlined.
    split_defer: bool,
    /// Inside a deferred fragment: a `@defer` nested in it arrives with it.
    in_deferred: Cell<bool>,
    /// An active `@defer` was met.
    saw_defer: Cell<bool>,
    /// Response keys from the root to the selection set being normalised.
    path: RefCell<Vec<Name>>,
    deferred: RefCell<Vec<DeferredFragment>>,
}

/// Guards against fragment cycles; validation rejects them, this keeps a bug from recursing
/// without bound.
const MAX_FRAGMENT_NESTING: usize = 100;

impl<'a> Normalizer<'a> {
    fn new(
        schema: &'a Schema,
        document: &'a ExecutableDocument,
        variables: &'a JsonMap,
        split_defer: bool,
    ) -> Self {
        Normalizer {
            schema,
            document,
            variables,
            visited: Cell::new(0),
            split_defer,
            in_deferred: Cell::new(false),
            saw_defer: Cell::new(false),
            path: RefCell::new(Vec::new()),
            deferred: RefCell::new(Vec::new()),
        }
    }

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
                executable::Selection::Field(f) => {
                    let selection_set = if f.selection_set.selections.is_empty() {
                        SelectionSet::default()
                    } else {
                        self.path.borrow_mut().push(f.response_key().clone());
                        let nested = self.selection_set(&f.selection_set, depth + 1);
                        self.path.borrow_mut().pop();
                        nested
                    };
                    out.add(Selection::Field(Field {
                        alias: f.alias.clone(),
                        name: f.name.clone(),
                        arguments: f.arguments.clone(),
                        ty: f.definition.ty.clone(),
                        selection_set,
                    }))
                }
                executable::Selection::InlineFragment(fr) => {
                    let condition = fr.type_condition.as_ref().unwrap_or(&set.ty);
                    if !self.set_aside(&fr.directives, &set.ty, condition, &fr.selection_set, depth)
                    {
                        self.fragment_into(out, &set.ty, condition, &fr.selection_set, depth);
                    }
                }
                executable::Selection::FragmentSpread(spread) => {
                    if let Some(def) = self.document.fragments.get(&spread.fragment_name) {
                        let condition = def.type_condition();
                        if !self.set_aside(
                            &spread.directives,
                            &set.ty,
                            condition,
                            &def.selection_set,
                            depth,
                        ) {
                            self.fragment_into(out, &set.ty, condition, &def.selection_set, depth);
                        }
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

    /// When splitting, an active `@defer` fragment (outside another one) is recorded in
    /// `deferred` and left out of `out`; returns whether it was.
    fn set_aside(
        &self,
        directives: &executable::DirectiveList,
        parent: &Name,
        condition: &Name,
        set: &executable::SelectionSet,
        depth: usize,
    ) -> bool {
        let Some(defer) = directives.get("defer") else {
            return false;
        };
        if !self.condition(directives, "defer") {
            return false;
        }
        self.saw_defer.set(true);
        if !self.split_defer || self.in_deferred.get() {
            return false;
        }
        let label = defer
            .specified_argument_by_name("label")
            .and_then(|value| value.as_str().map(str::to_owned));
        self.in_deferred.set(true);
        let mut selection = SelectionSet::default();
        selection.add(Selection::Fragment(Fragment {
            type_condition: condition.clone(),
            selection_set: self.selection_set(set, depth + 1),
        }));
        self.in_deferred.set(false);
        self.deferred.borrow_mut().push(DeferredFragment {
            label,
            path: self.path.borrow().clone(),
            parent_type: parent.clone(),
            selection,
        });
        true
    }

    /// The value of a directive's `if:` argument (`@skip`, `@include`, `@defer`); validation
    /// has checked its type.
    fn condition(&self, directives: &executable::DirectiveList, name: &str) -> bool {
        let value = directives
            .get(name)
            .and_then(|d| d.specified_argument_by_name("if"));
        let default = name != "skip";
        match value.map(|v| v.as_ref()) {
            Some(Value::Boolean(b)) => *b,
            Some(Value::Variable(var)) => self
                .variables
                .get(var.as_str())
                .and_then(|v| v.as_bool())
                .unwrap_or(default),
            _ => default,
        }
    }

    /// Decides `@skip(if:)` and `@include(if:)`.
    fn included(&self, directives: &executable::DirectiveList) -> bool {
        let skipped = directives.has("skip") && self.condition(directives, "skip");
        let included = !directives.has("include") || self.condition(directives, "include");
        !skipped && included
    }
}
