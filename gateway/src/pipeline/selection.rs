//! The selection tree the planner and the shaper work on.
//!
//! Client operations are normalised into it (fragments inlined, `@skip`/`@include` applied) and
//! subgraph operations are built from it, so both sides share one small, printable model that
//! does not depend on where a selection came from.

use std::fmt::{self, Write};

use apollo_compiler::ast::{Argument, Type, Value};
use apollo_compiler::{Name, Node};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SelectionSet {
    pub items: Vec<Selection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selection {
    Field(Field),
    Fragment(Fragment),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub alias: Option<Name>,
    pub name: Name,
    pub arguments: Vec<Node<Argument>>,
    /// The field's declared type, used when shaping (non-null propagation, lists).
    pub ty: Type,
    pub selection_set: SelectionSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fragment {
    pub type_condition: Name,
    pub selection_set: SelectionSet,
}

impl Field {
    pub fn response_key(&self) -> &Name {
        self.alias.as_ref().unwrap_or(&self.name)
    }

    /// The same field without its sub-selections, for the planner to fill in per subgraph.
    pub fn without_selections(&self) -> Field {
        Field {
            alias: self.alias.clone(),
            name: self.name.clone(),
            arguments: self.arguments.clone(),
            ty: self.ty.clone(),
            selection_set: SelectionSet::default(),
        }
    }

    pub fn typename(ty: Type) -> Field {
        Field {
            alias: None,
            name: Name::new_static_unchecked("__typename"),
            arguments: Vec::new(),
            ty,
            selection_set: SelectionSet::default(),
        }
    }

    fn same_field(&self, other: &Field) -> bool {
        self.response_key() == other.response_key()
            && self.name == other.name
            && self.arguments == other.arguments
    }
}

impl SelectionSet {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a selection, merging it with an existing selection of the same response key (or the
    /// same type condition) so that subgraph operations never repeat a field.
    pub fn add(&mut self, selection: Selection) {
        match selection {
            Selection::Field(field) => {
                for existing in &mut self.items {
                    if let Selection::Field(e) = existing
                        && e.same_field(&field)
                    {
                        e.selection_set.merge(field.selection_set);
                        return;
                    }
                }
                self.items.push(Selection::Field(field));
            }
            Selection::Fragment(fragment) => {
                for existing in &mut self.items {
                    if let Selection::Fragment(e) = existing
                        && e.type_condition == fragment.type_condition
                    {
                        e.selection_set.merge(fragment.selection_set);
                        return;
                    }
                }
                self.items.push(Selection::Fragment(fragment));
            }
        }
    }

    pub fn merge(&mut self, other: SelectionSet) {
        for item in other.items {
            self.add(item);
        }
    }

    pub fn has_field(&self, response_key: &str) -> bool {
        self.items
            .iter()
            .any(|s| matches!(s, Selection::Field(f) if f.response_key() == response_key))
    }

    /// Every variable referenced by an argument anywhere in this tree.
    pub fn collect_variables(&self, out: &mut Vec<Name>) {
        for item in &self.items {
            match item {
                Selection::Field(f) => {
                    for arg in &f.arguments {
                        collect_value_variables(&arg.value, out);
                    }
                    f.selection_set.collect_variables(out);
                }
                Selection::Fragment(fr) => fr.selection_set.collect_variables(out),
            }
        }
    }

    /// Prints the set as GraphQL, `{ ... }` included. The output is canonical for a given tree,
    /// which is what makes it usable as a plan cache key.
    pub fn write_to(&self, out: &mut String) {
        out.push('{');
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match item {
                Selection::Field(f) => {
                    if let Some(alias) = &f.alias {
                        out.push_str(alias);
                        out.push_str(": ");
                    }
                    out.push_str(&f.name);
                    if !f.arguments.is_empty() {
                        out.push('(');
                        for (j, arg) in f.arguments.iter().enumerate() {
                            if j > 0 {
                                out.push_str(", ");
                            }
                            // Writing into a String cannot fail.
                            let _ = write!(out, "{}: {}", arg.name, arg.value);
                        }
                        out.push(')');
                    }
                    if !f.selection_set.is_empty() {
                        out.push(' ');
                        f.selection_set.write_to(out);
                    }
                }
                Selection::Fragment(fr) => {
                    out.push_str("... on ");
                    out.push_str(&fr.type_condition);
                    out.push(' ');
                    fr.selection_set.write_to(out);
                }
            }
        }
        out.push('}');
    }
}

impl fmt::Display for SelectionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

fn collect_value_variables(value: &Value, out: &mut Vec<Name>) {
    match value {
        Value::Variable(name) if !out.contains(name) => out.push(name.clone()),
        Value::List(items) => items.iter().for_each(|v| collect_value_variables(v, out)),
        Value::Object(fields) => fields
            .iter()
            .for_each(|(_, v)| collect_value_variables(v, out)),
        _ => {}
    }
}
