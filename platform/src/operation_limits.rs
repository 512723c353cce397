//! What one GraphQL document may ask of a service, decided before it is validated or run:
//! its size in tokens, its directives and aliases, its root fields, and its cost in objects.
//!
//! Two stages, both in [`OperationLimits`], an async-graphql extension on the `parse_query`
//! hook, so HTTP (POST and GET) and WebSocket operations go through the same checks:
//! - before parsing, the lexer the gateway uses too ([`crate::document_text`]) counts
//!   tokens, directives and aliases and stops at the first count over its limit;
//! - after parsing, before validation: distinct root fields per operation, then the cost.
//!
//! **Cost** mirrors the gateway's model (`gateway/src/pipeline/cost.rs`, after IBM's GraphQL
//! cost specification that Apollo's demand control also follows): every object, interface or
//! union a field returns costs 1 (a mutation's root field 10), scalars and enums nothing, and
//! a list multiplies the cost of one element by its expected size: its `first`/`last`
//! argument (a connection's `edges` and `nodes` inherit it), the number of
//! `representations` for `_entities`, a size the service declares for the field
//! ([`CostLimits::list_sizes`]), or the default list size. Fragments on different types are
//! alternatives: only the dearest counts. Counting fields (async-graphql's `complexity`) is
//! not enough: `tickets { purchase { tickets { … } } }` is a handful of fields and, on
//! ten-seat purchases, ten to the power of its depth objects.
//!
//! The estimate is computed with each fragment costed once per place it is spread into
//! (memoised), so a document of nested fragment spreads costs linear time to estimate even
//! when what it asks for is exponential; such a document is refused by its (saturated)
//! estimate.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Name, Positioned, Value, Variables};

use crate::document_text::TextLimits;

/// The limits on one document's text and shape. `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Lexical tokens (names, punctuators, numbers, strings; not commas, spaces or
    /// comments): `TOKEN_LIMIT_EXCEEDED`.
    pub max_tokens: usize,
    /// Directives (`@name`) in the whole document: `DIRECTIVE_LIMIT_EXCEEDED`.
    pub max_directives: usize,
    /// Aliases written in the document: `MAX_ALIASES_EXCEEDED`.
    pub max_aliases: usize,
    /// Distinct root fields (by response key) of one operation: `ROOT_FIELD_LIMIT_EXCEEDED`.
    pub max_root_fields: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            // The dashboard's largest documents, as the gateway sends them on (fragments
            // inlined), have a few hundred tokens; the CRM's calls to ticketing fewer than 50.
            // graphql-armor's 1,000 would leave too little room for a client's own queries.
            max_tokens: 5_000,
            // graphql-armor's default; the dashboard uses none.
            max_directives: 50,
            // The gateway's default (`--max-aliases`), so whatever the gateway accepts and
            // forwards still fits; the dashboard uses none.
            max_aliases: 64,
            // The dashboard asks for at most 2 per operation.
            max_root_fields: 20,
        }
    }
}

impl DocumentLimits {
    /// The limits the shared lexer checks before parsing.
    pub fn text(&self) -> TextLimits {
        TextLimits {
            max_tokens: self.max_tokens,
            max_directives: self.max_directives,
            max_aliases: self.max_aliases,
        }
    }
}

/// How an operation's cost is estimated, and the most it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostLimits {
    /// Operations estimated above this are refused with `COST_LIMIT_EXCEEDED`; `0` turns
    /// cost analysis off.
    pub max_cost: u64,
    /// The expected size of a list without a slicing argument or a declared size.
    pub default_list_size: u64,
    /// Expected sizes of particular list fields, by parent type and field name: what the
    /// service knows about its data (a purchase holds a handful of lines).
    pub list_sizes: HashMap<(String, String), u64>,
}

impl Default for CostLimits {
    fn default() -> Self {
        Self {
            // The gateway's default: the dashboard's heaviest fetches estimate a few
            // thousand; five nested `tickets { purchase { … } }` lists over 100,000.
            max_cost: 50_000,
            default_list_size: 10,
            list_sizes: HashMap::new(),
        }
    }
}

impl CostLimits {
    /// Declares the expected size of `Type.field`.
    pub fn with_list_size(mut self, type_name: &str, field: &str, size: u64) -> Self {
        self.list_sizes
            .insert((type_name.to_owned(), field.to_owned()), size);
        self
    }
}

/// The extension that enforces [`DocumentLimits`] and [`CostLimits`]: add it to a schema.
#[derive(Debug, Clone, Default)]
pub struct OperationLimits {
    pub document: DocumentLimits,
    pub cost: CostLimits,
}

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

/// A refusal with `extensions.code`, `extensions.limit` and whatever else applies.
fn refusal(code: &str, message: String, limit: u64) -> ServerError {
    let mut error = ServerError::new(message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code);
    extensions.set("limit", limit);
    error
}

#[async_trait::async_trait]
impl Extension for OperationLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<ExecutableDocument> {
        check_text(query, &self.document)?;
        let document = next.run(ctx, query, variables).await?;
        check_root_fields(&document, &self.document)?;
        if self.cost.max_cost > 0 {
            let estimated = estimate(&ctx.schema_env.registry, &document, variables, &self.cost);
            if estimated > self.cost.max_cost {
                return Err(cost_refusal(estimated, self.cost.max_cost));
            }
        }
        Ok(document)
    }
}

fn cost_refusal(estimated: u64, limit: u64) -> ServerError {
    let mut error = refusal(
        "COST_LIMIT_EXCEEDED",
        format!(
            "The operation's estimated cost is {estimated}, over the limit of {limit}: ask for \
             fewer objects (smaller `first`, fewer nested lists)."
        ),
        limit,
    );
    let mut cost = async_graphql::indexmap::IndexMap::new();
    cost.insert(Name::new("estimated"), Value::from(estimated));
    cost.insert(Name::new("limit"), Value::from(limit));
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("cost", Value::Object(cost));
    error
}

/// Counts tokens, directives and aliases in one pass over `query` (the lexer all three
/// servers share, [`crate::document_text`]), refusing as soon as one count exceeds its limit.
pub fn check_text(query: &str, limits: &DocumentLimits) -> Result<(), ServerError> {
    crate::document_text::check(query, &limits.text())
        .map(|_| ())
        .map_err(|refused| refusal(refused.code, refused.message, refused.limit))
}

fn operations(document: &ExecutableDocument) -> Vec<&Positioned<OperationDefinition>> {
    match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    }
}

/// Refuses an operation with more distinct root fields than the limit.
fn check_root_fields(
    document: &ExecutableDocument,
    limits: &DocumentLimits,
) -> Result<(), ServerError> {
    if limits.max_root_fields == 0 {
        return Ok(());
    }
    for operation in operations(document) {
        let mut keys = HashSet::new();
        let mut seen = HashSet::new();
        root_keys(
            document,
            &operation.node.selection_set.node,
            &mut keys,
            &mut seen,
        );
        if keys.len() > limits.max_root_fields {
            return Err(refusal(
                "ROOT_FIELD_LIMIT_EXCEEDED",
                format!(
                    "An operation may select at most {} root fields, this one selects {}.",
                    limits.max_root_fields,
                    keys.len()
                ),
                limits.max_root_fields as u64,
            ));
        }
    }
    Ok(())
}

fn root_keys<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut HashSet<&'a str>,
    seen: &mut HashSet<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                keys.insert(field.node.response_key().node.as_str());
            }
            Selection::InlineFragment(fragment) => {
                root_keys(document, &fragment.node.selection_set.node, keys, seen);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if seen.insert(name)
                    && let Some(fragment) = document.fragments.get(name)
                {
                    root_keys(document, &fragment.node.selection_set.node, keys, seen);
                }
            }
        }
    }
}

/// A mutation's root field does work (writes, events) beyond the object it returns.
const MUTATION_WEIGHT: u64 = 10;
/// Arguments that size the list a field returns (Relay connections and plain lists).
const SLICING_ARGUMENTS: [&str; 2] = ["first", "last"];
/// The lists of a connection that its page size applies to.
const SIZED_FIELDS: [&str; 2] = ["edges", "nodes"];

/// The estimated cost of the dearest operation in the document (only one of them runs, and
/// which one is not known here).
pub fn estimate(
    registry: &Registry,
    document: &ExecutableDocument,
    variables: &Variables,
    limits: &CostLimits,
) -> u64 {
    operations(document)
        .into_iter()
        .map(|operation| {
            let (root, weight) = match operation.node.ty {
                OperationType::Query => (Some(registry.query_type.as_str()), 1),
                OperationType::Mutation => (registry.mutation_type.as_deref(), MUTATION_WEIGHT),
                OperationType::Subscription => (registry.subscription_type.as_deref(), 1),
            };
            let Some(root) = root else { return 0 };
            let mut estimator = Estimator {
                registry,
                document,
                operation: &operation.node,
                variables,
                limits,
                fragments: HashMap::new(),
            };
            estimator.selection_set(root, &operation.node.selection_set.node, None, weight)
        })
        .max()
        .unwrap_or(0)
}

struct Estimator<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    limits: &'a CostLimits,
    /// Fragment costs by name and inherited page size; `None` while being computed (a cycle,
    /// which validation refuses later, costs nothing here).
    fragments: HashMap<(&'a str, Option<u64>, u64), Option<u64>>,
}

impl<'a> Estimator<'a> {
    /// Fields always add up; fragments on different types are alternatives. `weight` is
    /// what each object a field of this set returns counts (10 for a mutation's root).
    fn selection_set(
        &mut self,
        parent: &'a str,
        set: &'a SelectionSet,
        page_size: Option<u64>,
        weight: u64,
    ) -> u64 {
        let mut fields = 0u64;
        let mut by_type: HashMap<&'a str, u64> = HashMap::new();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let cost = self.field(parent, field, page_size, weight);
                    fields = fields.saturating_add(cost);
                }
                Selection::InlineFragment(fragment) => {
                    let on = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(parent, |c| c.node.on.node.as_str());
                    let cost = self.selection_set(
                        on,
                        &fragment.node.selection_set.node,
                        page_size,
                        weight,
                    );
                    add_alternative(&mut by_type, on, parent, &mut fields, cost);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    let on = fragment.node.type_condition.node.on.node.as_str();
                    let key = (name, page_size, weight);
                    let cost = match self.fragments.get(&key) {
                        Some(known) => known.unwrap_or(0),
                        None => {
                            self.fragments.insert(key, None);
                            let cost = self.selection_set(
                                on,
                                &fragment.node.selection_set.node,
                                page_size,
                                weight,
                            );
                            self.fragments.insert(key, Some(cost));
                            cost
                        }
                    };
                    add_alternative(&mut by_type, on, parent, &mut fields, cost);
                }
            }
        }
        fields.saturating_add(by_type.into_values().max().unwrap_or(0))
    }

    /// `page_size` is the slicing argument of the connection this field belongs to.
    fn field(
        &mut self,
        parent: &'a str,
        field: &'a Positioned<Field>,
        page_size: Option<u64>,
        weight: u64,
    ) -> u64 {
        let name = field.node.name.node.as_str();
        // `__typename` costs nothing; introspection is bounded by depth and can be turned off.
        if name.starts_with("__") {
            return 0;
        }
        let Some(meta_field) = self
            .registry
            .types
            .get(parent)
            .and_then(|ty| ty.field_by_name(name))
        else {
            // Not a field of the schema: validation refuses it.
            return 0;
        };
        let named = MetaTypeName::concrete_typename(&meta_field.ty);
        let composite = self
            .registry
            .types
            .get(named)
            .is_some_and(MetaType::is_composite);
        if !composite {
            return 0;
        }
        let is_list = MetaTypeName::create(&meta_field.ty).is_list();
        let slice = self.slicing_argument(field);
        let size = if is_list {
            slice
                .or_else(|| self.representations(field))
                .or_else(|| {
                    self.limits
                        .list_sizes
                        .get(&(parent.to_owned(), name.to_owned()))
                        .copied()
                })
                .or_else(|| page_size.filter(|_| SIZED_FIELDS.contains(&name)))
                .unwrap_or(self.limits.default_list_size)
        } else {
            1
        };
        // A connection's page size applies to its `edges` and `nodes`.
        let inner_page = if is_list { None } else { slice };
        let children = self.selection_set(named, &field.node.selection_set.node, inner_page, 1);
        size.saturating_mul(weight.saturating_add(children))
    }

    /// An argument's value with its variables filled in (given, or their defaults); `None`
    /// when a variable has neither.
    fn resolve(&self, field: &Positioned<Field>, argument: &str) -> Option<Value> {
        let (_, value) = field
            .node
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == argument)?;
        value
            .node
            .clone()
            .into_const_with(|name| self.variable(&name).ok_or(()))
            .ok()
    }

    fn variable(&self, name: &Name) -> Option<Value> {
        if let Some(value) = self.variables.get(name) {
            return Some(value.clone());
        }
        self.operation
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node == *name)
            .and_then(|d| d.node.default_value.as_ref())
            .map(|v| v.node.clone())
    }

    fn slicing_argument(&self, field: &Positioned<Field>) -> Option<u64> {
        SLICING_ARGUMENTS
            .iter()
            // Only a valid `Int`: validation refuses anything else with its own error
            // (`BAD_USER_INPUT`), which is the more useful answer.
            .filter_map(|argument| match self.resolve(field, argument)? {
                Value::Number(n) => n.as_i64().filter(|n| (0..=i64::from(i32::MAX)).contains(n)),
                _ => None,
            })
            .filter_map(|n| u64::try_from(n).ok())
            .max()
    }

    /// `_entities(representations: [...])` returns one entity per representation.
    fn representations(&self, field: &Positioned<Field>) -> Option<u64> {
        if field.node.name.node.as_str() != "_entities" {
            return None;
        }
        match self.resolve(field, "representations")? {
            Value::List(items) => Some(items.len() as u64),
            _ => None,
        }
    }
}

/// A fragment on the parent's own type (or without a type condition) always applies and adds
/// up like fields; fragments on other types are alternatives of which the dearest counts.
fn add_alternative<'a>(
    by_type: &mut HashMap<&'a str, u64>,
    on: &'a str,
    parent: &str,
    fields: &mut u64,
    cost: u64,
) {
    if on == parent {
        *fields = fields.saturating_add(cost);
    } else {
        let entry = by_type.entry(on).or_default();
        *entry = entry.saturating_add(cost);
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

    use super::*;

    #[derive(SimpleObject)]
    #[graphql(complex)]
    struct Purchase {
        id: i32,
        lines: Vec<String>,
    }

    #[async_graphql::ComplexObject]
    impl Purchase {
        async fn tickets(&self) -> Vec<Ticket> {
            Vec::new()
        }
    }

    #[derive(SimpleObject)]
    struct Ticket {
        id: i32,
        purchase: Option<Purchase>,
    }

    struct Query;

    #[Object]
    impl Query {
        async fn purchase(&self) -> Option<Purchase> {
            None
        }
        async fn purchases(
            &self,
            first: Option<i32>,
        ) -> async_graphql::connection::Connection<String, Purchase> {
            let _ = first;
            async_graphql::connection::Connection::new(false, false)
        }
        async fn name(&self) -> String {
            String::new()
        }
    }

    /// Records the estimate of every document it sees (the registry is reachable from an
    /// extension only).
    struct Probe {
        limits: CostLimits,
        estimated: Arc<std::sync::Mutex<Option<u64>>>,
    }

    impl ExtensionFactory for Probe {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Probe {
                limits: self.limits.clone(),
                estimated: Arc::clone(&self.estimated),
            })
        }
    }

    #[async_trait::async_trait]
    impl Extension for Probe {
        async fn parse_query(
            &self,
            ctx: &ExtensionContext<'_>,
            query: &str,
            variables: &Variables,
            next: NextParseQuery<'_>,
        ) -> async_graphql::ServerResult<ExecutableDocument> {
            let document = next.run(ctx, query, variables).await?;
            let cost = estimate(&ctx.schema_env.registry, &document, variables, &self.limits);
            *self.estimated.lock().expect("probe") = Some(cost);
            Ok(document)
        }
    }

    fn cost_of(query: &str, variables: serde_json::Value, limits: &CostLimits) -> u64 {
        let estimated = Arc::new(std::sync::Mutex::new(None));
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(Probe {
                limits: limits.clone(),
                estimated: Arc::clone(&estimated),
            })
            .finish();
        let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
        drop(futures_util::FutureExt::now_or_never(
            schema.execute(request),
        ));
        estimated.lock().expect("probe").expect("estimated")
    }

    #[test]
    fn lists_multiply_what_they_hold() {
        let limits = CostLimits::default();
        // purchase 1 + tickets 10 x (1 + purchase 1 + tickets 10 x 1) = 1 + 10 x 12
        assert_eq!(
            cost_of(
                "{ purchase { id lines tickets { id purchase { tickets { id } } } } }",
                serde_json::json!({}),
                &limits
            ),
            121
        );
        assert_eq!(
            cost_of(
                "{ purchase { __typename id lines } name }",
                serde_json::json!({}),
                &limits
            ),
            1
        );
        // A declared size replaces the default.
        let declared = CostLimits::default().with_list_size("Purchase", "tickets", 2);
        assert_eq!(
            cost_of(
                "{ purchase { tickets { id } } }",
                serde_json::json!({}),
                &declared
            ),
            3
        );
    }

    #[test]
    fn connections_size_their_nodes_and_edges_by_first() {
        let limits = CostLimits::default();
        // connection 1 + nodes 100 x (1 + tickets 10 x 1) + edges 100 x (1 + node 1)
        assert_eq!(
            cost_of(
                "query($n: Int) { purchases(first: $n) { nodes { tickets { id } } edges { node { id } } } }",
                serde_json::json!({ "n": 100 }),
                &limits
            ),
            1 + 100 * 11 + 100 * 2
        );
        // A variable's default counts when the variable is not given.
        assert_eq!(
            cost_of(
                "query($n: Int = 7) { purchases(first: $n) { nodes { id } } }",
                serde_json::json!({}),
                &limits
            ),
            1 + 7
        );
    }

    #[test]
    fn fragments_are_costed_once_and_nested_spreads_saturate_fast() {
        let limits = CostLimits::default();
        assert_eq!(
            cost_of(
                "{ purchase { ...P } } fragment P on Purchase { tickets { id } }",
                serde_json::json!({}),
                &limits
            ),
            11
        );
        // Ten levels of fragments, each spreading the next in two lists: about 20^10
        // objects, estimated at once (each fragment is costed once).
        let mut query = String::from("{ purchase { ...F0 } }");
        for level in 0..10 {
            query.push_str(&format!(
                " fragment F{level} on Purchase {{ tickets {{ purchase {{ ...F{n} }} }} a: tickets {{ purchase {{ ...F{n} }} }} }}",
                n = level + 1
            ));
        }
        query.push_str(" fragment F10 on Purchase { id }");
        let started = std::time::Instant::now();
        assert!(cost_of(&query, serde_json::json!({}), &limits) > 10u64.pow(13));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_lexer_stops_at_the_first_count_over_a_limit() {
        let limits = DocumentLimits::default();
        let directives = format!("{{ x {} }}", "@unknown ".repeat(5_000));
        let error = check_text(&directives, &limits).expect_err("refused");
        assert_eq!(
            error.extensions.as_ref().and_then(|e| e.get("code")),
            Some(&Value::from("DIRECTIVE_LIMIT_EXCEEDED"))
        );
        let tokens = format!("{{ {} }}", "x ".repeat(100_000));
        let error = check_text(&tokens, &limits).expect_err("refused");
        assert_eq!(
            error.extensions.as_ref().and_then(|e| e.get("code")),
            Some(&Value::from("TOKEN_LIMIT_EXCEEDED"))
        );
        let aliases: String = (0..65).map(|i| format!("a{i}: x ")).collect();
        let error = check_text(&format!("{{ {aliases} }}"), &limits).expect_err("refused");
        assert_eq!(
            error.extensions.as_ref().and_then(|e| e.get("code")),
            Some(&Value::from("MAX_ALIASES_EXCEEDED"))
        );
        // Unterminated strings and stray bytes end the pass; the parser reports them.
        assert!(check_text("{ x(a: \"unterminated", &limits).is_ok());
        assert!(check_text("{ é ☃ }", &limits).is_ok());
    }

    #[test]
    fn root_fields_are_counted_by_response_key_through_fragments() {
        let limits = DocumentLimits {
            max_root_fields: 2,
            ..DocumentLimits::default()
        };
        let ok = async_graphql::parser::parse_query("{ a b a ...F } fragment F on Query { b }")
            .expect("parses");
        assert!(check_root_fields(&ok, &limits).is_ok());
        let over = async_graphql::parser::parse_query("{ a ...F } fragment F on Query { b c }")
            .expect("parses");
        let error = check_root_fields(&over, &limits).expect_err("refused");
        assert_eq!(
            error.extensions.as_ref().and_then(|e| e.get("code")),
            Some(&Value::from("ROOT_FIELD_LIMIT_EXCEEDED"))
        );
    }
}
