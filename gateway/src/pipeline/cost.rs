//! Cost analysis: what an operation may make the subgraphs produce, estimated before it is
//! planned, so that one request cannot ask for a million objects.
//!
//! Counting fields is not enough: `purchase { tickets { purchase { tickets { … } } } }` is a
//! handful of fields and, on a ten-seat purchase, ten to the power of its depth objects. The
//! estimate follows IBM's GraphQL cost specification, which Apollo's demand control also
//! follows: every object, interface or union a field returns costs 1 (a mutation's root field
//! 10), scalars and enums cost nothing, and a list field multiplies the cost of one element
//! by its expected size:
//! - its `first` or `last` argument when it has one (a connection's page size, which its
//!   `edges` and `nodes` lists inherit);
//! - else a size configured for that field (`--list-size Type.field=N`);
//! - else the default list size (`--default-list-size`).
//!
//! Fragments on different types are alternatives, so only the dearest type counts. An
//! operation whose estimate exceeds the limit is refused with `COST_LIMIT_EXCEEDED` and the
//! estimate in `extensions.cost`, before any subgraph sees it.

use std::collections::HashMap;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::response::JsonMap;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Schema};
use serde_json::json;

use super::normalize::NormalizedOperation;
use super::selection::{Field, Selection, SelectionSet};
use crate::response::GraphQLError;

/// A mutation's root field does work (writes, events) beyond the object it returns.
const MUTATION_WEIGHT: u64 = 10;
/// Arguments that size the list a field returns (Relay connections and plain lists).
const SLICING_ARGUMENTS: [&str; 2] = ["first", "last"];
/// The lists of a connection that its page size applies to.
const SIZED_FIELDS: [&str; 2] = ["edges", "nodes"];

#[derive(Debug, Clone)]
pub struct CostLimits {
    /// Operations estimated above this are refused.
    pub max_cost: u64,
    /// The expected size of a list without a slicing argument or a configured size.
    pub default_list_size: u64,
    /// Expected sizes of particular list fields, by parent type and field name.
    pub list_sizes: HashMap<(String, String), u64>,
}

impl Default for CostLimits {
    fn default() -> Self {
        CostLimits {
            max_cost: 50_000,
            default_list_size: 10,
            list_sizes: HashMap::new(),
        }
    }
}

/// The operation's estimated cost.
pub fn estimate(
    schema: &Schema,
    operation: &NormalizedOperation,
    variables: &JsonMap,
    limits: &CostLimits,
) -> u64 {
    let estimator = Estimator {
        schema,
        variables,
        limits,
    };
    let root_weight = match operation.operation_type {
        OperationType::Mutation => MUTATION_WEIGHT,
        _ => 1,
    };
    operation
        .selection_set
        .items
        .iter()
        .map(|item| match item {
            Selection::Field(field) => {
                estimator.field(&operation.root_type, field, None, root_weight)
            }
            Selection::Fragment(fragment) => {
                estimator.selection_set(&fragment.type_condition, &fragment.selection_set, None)
            }
        })
        .fold(0, u64::saturating_add)
}

/// Refuses an operation whose estimate is over the limit.
pub fn check(
    schema: &Schema,
    operation: &NormalizedOperation,
    variables: &JsonMap,
    limits: &CostLimits,
) -> Result<(), GraphQLError> {
    let cost = estimate(schema, operation, variables, limits);
    if cost <= limits.max_cost {
        return Ok(());
    }
    Err(GraphQLError::new(format!(
        "The operation's estimated cost is {cost}, over the limit of {}: ask for fewer \
         objects (smaller `first`, fewer nested lists).",
        limits.max_cost
    ))
    .with_code("COST_LIMIT_EXCEEDED")
    .with_extension(
        "cost",
        json!({ "estimated": cost, "limit": limits.max_cost }),
    ))
}

struct Estimator<'a> {
    schema: &'a Schema,
    variables: &'a JsonMap,
    limits: &'a CostLimits,
}

impl Estimator<'_> {
    /// Fields always add up; fragments on different types are alternatives.
    fn selection_set(&self, parent: &Name, set: &SelectionSet, page_size: Option<u64>) -> u64 {
        let mut fields = 0u64;
        let mut by_type: HashMap<&Name, u64> = HashMap::new();
        for item in &set.items {
            match item {
                Selection::Field(field) => {
                    fields = fields.saturating_add(self.field(parent, field, page_size, 1));
                }
                Selection::Fragment(fragment) => {
                    let cost = self.selection_set(
                        &fragment.type_condition,
                        &fragment.selection_set,
                        page_size,
                    );
                    let entry = by_type.entry(&fragment.type_condition).or_default();
                    *entry = entry.saturating_add(cost);
                }
            }
        }
        fields.saturating_add(by_type.into_values().max().unwrap_or(0))
    }

    /// `page_size` is the slicing argument of the connection this field belongs to.
    fn field(&self, parent: &Name, field: &Field, page_size: Option<u64>, weight: u64) -> u64 {
        // `__typename` costs nothing; introspection has its own depth limit.
        if field.name.starts_with("__") {
            return 0;
        }
        let named = field.ty.inner_named_type();
        let composite = matches!(
            self.schema.types.get(named),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_))
        );
        if !composite {
            return 0;
        }
        let slice = self.slicing_argument(field);
        let size = if field.ty.is_list() {
            slice
                .or_else(|| {
                    self.limits
                        .list_sizes
                        .get(&(parent.to_string(), field.name.to_string()))
                        .copied()
                })
                .or_else(|| page_size.filter(|_| SIZED_FIELDS.contains(&field.name.as_str())))
                .unwrap_or(self.limits.default_list_size)
        } else {
            1
        };
        // A connection's page size applies to its `edges` and `nodes`.
        let inner_page = if field.ty.is_list() { None } else { slice };
        let children = self.selection_set(named, &field.selection_set, inner_page);
        size.saturating_mul(weight.saturating_add(children))
    }

    fn slicing_argument(&self, field: &Field) -> Option<u64> {
        field
            .arguments
            .iter()
            .filter(|argument| SLICING_ARGUMENTS.contains(&argument.name.as_str()))
            .filter_map(|argument| match argument.value.as_ref() {
                Value::Int(n) => n.try_to_i32().ok().and_then(|n| u64::try_from(n).ok()),
                Value::Variable(name) => self.variables.get(name.as_str())?.as_u64(),
                _ => None,
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use apollo_compiler::ExecutableDocument;

    use super::*;
    use crate::pipeline::normalize::normalize;

    const SCHEMA: &str = r#"
        type Query {
            purchase(id: ID!): Purchase
            purchases(first: Int, last: Int): PurchaseConnection!
            events: [Event!]!
        }
        type Mutation { buy(seats: Int!): Purchase }
        type PurchaseConnection { nodes: [Purchase!]! edges: [PurchaseEdge!]! total: Int! }
        type PurchaseEdge { node: Purchase! cursor: String! }
        type Purchase { id: ID! tickets: [Ticket!]! lines: [String!]! }
        type Ticket { id: ID! purchase: Purchase! }
        interface Event { id: ID! }
        type Bought implements Event { id: ID! purchase: Purchase! }
        type Cancelled implements Event { id: ID! }
    "#;

    fn cost_of(query: &str, variables: serde_json::Value, limits: &CostLimits) -> u64 {
        let schema = Schema::parse_and_validate(SCHEMA, "schema.graphql").expect("schema");
        let document =
            ExecutableDocument::parse_and_validate(&schema, query, "q.graphql").expect("query");
        let operation = document.operations.get(None).expect("one operation");
        let variables: JsonMap = serde_json::from_value(variables).expect("variables");
        let normalized = normalize(&schema, &document, operation, &variables).expect("normal");
        estimate(&schema, &normalized, &variables, limits)
    }

    #[test]
    fn lists_multiply_what_they_hold() {
        let limits = CostLimits::default();
        // purchase 1 + tickets 10 x (1 + purchase 1 + tickets 10 x 1) = 1 + 10 x 12
        assert_eq!(
            cost_of(
                "{ purchase(id: 1) { id lines tickets { id purchase { tickets { id } } } } }",
                serde_json::json!({}),
                &limits
            ),
            121
        );
        // Scalars, enums, lists of scalars and __typename cost nothing.
        assert_eq!(
            cost_of(
                "{ purchase(id: 1) { __typename id lines } }",
                serde_json::json!({}),
                &limits
            ),
            1
        );
    }

    #[test]
    fn page_sizes_come_from_first_or_last_literal_or_variable() {
        let limits = CostLimits::default();
        // connection 1 + nodes 100 x (1 + tickets 10 x 1) + edges 100 x (1 + node 1)
        assert_eq!(
            cost_of(
                "query($n: Int) { purchases(first: $n) { total nodes { tickets { id } } edges { node { id } } } }",
                serde_json::json!({ "n": 100 }),
                &limits
            ),
            1 + 100 * 11 + 100 * 2
        );
        assert_eq!(
            cost_of(
                "{ purchases(last: 3) { nodes { id } } }",
                serde_json::json!({}),
                &limits
            ),
            1 + 3
        );
        // Without one, the default list size.
        assert_eq!(
            cost_of(
                "{ purchases { nodes { id } } }",
                serde_json::json!({}),
                &limits
            ),
            1 + 10
        );
    }

    #[test]
    fn configured_sizes_mutations_and_alternative_fragments() {
        let mut limits = CostLimits::default();
        limits
            .list_sizes
            .insert(("Purchase".into(), "tickets".into()), 2);
        assert_eq!(
            cost_of(
                "{ purchase(id: 1) { tickets { id } } }",
                serde_json::json!({}),
                &limits
            ),
            1 + 2
        );
        assert_eq!(
            cost_of(
                "mutation { buy(seats: 1) { id } }",
                serde_json::json!({}),
                &limits
            ),
            10
        );
        // Only the dearest type of an interface counts: events 10 x (1 + max(Bought 1+1x..., 0)).
        assert_eq!(
            cost_of(
                "{ events { id ... on Bought { purchase { tickets { id } } } ... on Cancelled { id } } }",
                serde_json::json!({}),
                &limits
            ),
            10 * (1 + (1 + 2))
        );
    }

    #[test]
    fn deep_walks_are_refused_with_the_estimate() {
        let limits = CostLimits {
            max_cost: 1000,
            ..CostLimits::default()
        };
        let query = "{ purchase(id: 1) { tickets { purchase { tickets { purchase { tickets { id } } } } } } }";
        let schema = Schema::parse_and_validate(SCHEMA, "schema.graphql").expect("schema");
        let document =
            ExecutableDocument::parse_and_validate(&schema, query, "q.graphql").expect("query");
        let operation = document.operations.get(None).expect("one operation");
        let variables = JsonMap::new();
        let normalized = normalize(&schema, &document, operation, &variables).expect("normal");
        let error = check(&schema, &normalized, &variables, &limits).expect_err("refused");
        let json = serde_json::to_value(&error).expect("error");
        assert_eq!(json["extensions"]["code"], "COST_LIMIT_EXCEEDED");
        assert_eq!(
            json["extensions"]["cost"]["estimated"],
            1 + 10 * (2 + 10 * (2 + 10))
        );
        assert_eq!(json["extensions"]["cost"]["limit"], 1000);
    }
}
