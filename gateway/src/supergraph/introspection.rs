//! Answers the introspection part of an operation (`__schema`, `__type`) from the API schema.
//!
//! apollo-compiler 1.x ships an introspection executor, but its `__Type` has no `isOneOf`
//! (added by the September 2025 spec): current graphql-js asks for it (`getIntrospectionQuery({
//! oneOf: true })`) and would get a field error per type. apollo-compiler's execution engine
//! (`apollo_compiler::resolvers`) is public, though, so this module brings its own resolvers for
//! the introspection types and leaves fragments, `@skip`/`@include`, aliases, argument coercion
//! and null propagation to the engine.
//!
//! The engine answers `__schema` and `__type` itself, with its built-in resolvers, whenever
//! they are fields of the schema's query root type. It therefore runs against a copy of the API
//! schema in which no type is the query root and the root type declares `__schema` and `__type`
//! as ordinary fields, so that they reach [`Root`]. Operations are still validated against the
//! API schema itself; the copy only drives execution.

use apollo_compiler::ast::{DirectiveList, FieldDefinition, InputValueDefinition, Type};
use apollo_compiler::executable::Operation;
use apollo_compiler::request::RequestError;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{ExecutionResponse, JsonMap, JsonValue};
use apollo_compiler::schema::{Component, DirectiveDefinition, EnumValueDefinition, ExtendedType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node, Schema, name};

use super::Supergraph;

/// The API schema prepared for execution by the engine (see the module documentation).
pub(super) struct ExecutionSchema {
    schema: Valid<Schema>,
}

impl ExecutionSchema {
    pub(super) fn new(api: &Valid<Schema>) -> Self {
        let mut schema = Schema::clone(api);
        let root = schema
            .schema_definition
            .query
            .as_ref()
            .map(|r| r.name.clone());
        if let Some(ExtendedType::Object(root)) = root.and_then(|r| schema.types.get_mut(&r)) {
            let fields = &mut root.make_mut().fields;
            fields.insert(
                name!("__schema"),
                Component::new(FieldDefinition {
                    description: None,
                    name: name!("__schema"),
                    arguments: Vec::new(),
                    ty: Type::NonNullNamed(name!("__Schema")),
                    directives: Default::default(),
                }),
            );
            fields.insert(
                name!("__type"),
                Component::new(FieldDefinition {
                    description: None,
                    name: name!("__type"),
                    arguments: vec![Node::new(InputValueDefinition {
                        description: None,
                        name: name!("name"),
                        ty: Node::new(Type::NonNullNamed(name!("String"))),
                        default_value: None,
                        directives: Default::default(),
                    })],
                    ty: Type::Named(name!("__Type")),
                    directives: Default::default(),
                }),
            );
        }
        schema.schema_definition.make_mut().query = None;
        // Valid: the API schema was validated; the changes above only move the two meta-fields
        // from the engine's hands into this module's, with the types the spec gives them.
        ExecutionSchema {
            schema: Valid::assume_valid(schema),
        }
    }
}

impl Supergraph {
    /// Executes the introspection meta-fields of `operation` (a validated query, `variables`
    /// coerced) against the API schema. Other root fields are left out of the returned data:
    /// the caller merges the subgraphs' answer for them.
    pub fn introspect(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: &Operation,
        variables: &Valid<JsonMap>,
    ) -> Result<ExecutionResponse, RequestError> {
        let root = Root {
            api: &self.api,
            type_name: operation.object_type().as_str(),
        };
        Execution::new(&self.introspection.schema, document)
            .implementers_map(&self.api_implementers)
            .operation(operation)
            .coerced_variable_values(variables)
            .execute_sync(&root)
    }
}

/// The operation's root object: resolves `__schema` and `__type`, skips every concrete field.
struct Root<'a> {
    api: &'a Schema,
    type_name: &'a str,
}

impl ObjectValue for Root<'_> {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        match info.field_name() {
            "__schema" => Ok(ResolvedValue::object(Introspected {
                api: self.api,
                of: Of::Schema,
            })),
            "__type" => {
                // Coerced against `name: String!` by the engine, so always a string; an error
                // rather than a panic should that ever change.
                let Some(name) = info.arguments().get("name").and_then(JsonValue::as_str) else {
                    return Err(FieldError {
                        message: "`__type` needs a `name` string".into(),
                    });
                };
                Ok(ResolvedValue::nullable_object(
                    self.api.types.get(name).map(|ty| Introspected {
                        api: self.api,
                        of: Of::Named(ty),
                    }),
                ))
            }
            // Answered by the subgraphs; the caller merges their data with this.
            _ => Ok(ResolvedValue::SkipForPartialExecution),
        }
    }
}

/// What an introspection object describes.
#[derive(Clone, Copy)]
enum Of<'a> {
    /// `__Schema`.
    Schema,
    /// `__Type` of a named type.
    Named(&'a ExtendedType),
    /// `__Type` of a list or non-null type. `nullable` views a non-null `ty` without its
    /// outer non-null (the `ofType` of `[T]!` is `[T]`), so no type has to be built.
    Wrapped { ty: &'a Type, nullable: bool },
    /// `__Field`.
    Field(&'a FieldDefinition),
    /// `__InputValue`: an argument or an input field.
    InputValue(&'a InputValueDefinition),
    /// `__EnumValue`.
    EnumValue(&'a EnumValueDefinition),
    /// `__Directive`.
    Directive(&'a DirectiveDefinition),
}

/// An object of the introspection schema, resolved from the API schema.
struct Introspected<'a> {
    api: &'a Schema,
    of: Of<'a>,
}

impl<'a> Introspected<'a> {
    fn object(&self, of: Of<'a>) -> ResolvedValue<'a> {
        ResolvedValue::object(Introspected { api: self.api, of })
    }

    fn named(&self, name: &str) -> ResolvedValue<'a> {
        let api = self.api;
        ResolvedValue::nullable_object(api.types.get(name).map(|ty| Introspected {
            api,
            of: Of::Named(ty),
        }))
    }

    /// The `__Type` of a type reference: wrapper types first, then the named type.
    fn type_ref(&self, ty: &'a Type, nullable: bool) -> ResolvedValue<'a> {
        if (ty.is_non_null() && !nullable) || ty.is_list() {
            self.object(Of::Wrapped { ty, nullable })
        } else {
            self.named(ty.inner_named_type())
        }
    }

    fn named_list(
        &self,
        names: impl Iterator<Item = &'a apollo_compiler::Name> + 'a,
    ) -> ResolvedValue<'a> {
        let api = self.api;
        ResolvedValue::list(names.filter_map(move |name| {
            api.types.get(name).map(|ty| {
                ResolvedValue::object(Introspected {
                    api,
                    of: Of::Named(ty),
                })
            })
        }))
    }

    fn input_values(
        &self,
        values: impl Iterator<Item = &'a Node<InputValueDefinition>> + 'a,
        info: &ResolveInfo<'_>,
    ) -> ResolvedValue<'a> {
        let api = self.api;
        let include_deprecated = include_deprecated(info);
        ResolvedValue::list(
            values
                .filter(move |v| include_deprecated || !v.directives.has("deprecated"))
                .map(move |v| {
                    ResolvedValue::object(Introspected {
                        api,
                        of: Of::InputValue(v),
                    })
                }),
        )
    }

    fn deprecation_reason(&self, directives: &'a DirectiveList) -> ResolvedValue<'a> {
        // `argument_by_name` falls back on the definition's default ("No longer supported").
        ResolvedValue::leaf(
            directives
                .get("deprecated")
                .and_then(|d| d.argument_by_name("reason", self.api).ok())
                .and_then(|reason| reason.as_str()),
        )
    }

    fn schema_field(&self, info: &ResolveInfo<'_>) -> Result<ResolvedValue<'a>, FieldError> {
        let api = self.api;
        let root = |name: &'a Option<apollo_compiler::schema::ComponentName>| match name {
            Some(name) => self.named(name),
            None => ResolvedValue::null(),
        };
        Ok(match info.field_name() {
            "description" => ResolvedValue::leaf(api.schema_definition.description.as_deref()),
            "types" => ResolvedValue::list(api.types.values().map(move |ty| {
                ResolvedValue::object(Introspected {
                    api,
                    of: Of::Named(ty),
                })
            })),
            "queryType" => root(&api.schema_definition.query),
            "mutationType" => root(&api.schema_definition.mutation),
            "subscriptionType" => root(&api.schema_definition.subscription),
            "directives" => {
                ResolvedValue::list(api.directive_definitions.values().map(move |directive| {
                    ResolvedValue::object(Introspected {
                        api,
                        of: Of::Directive(directive),
                    })
                }))
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }

    fn named_type_field(
        &self,
        ty: &'a ExtendedType,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let api = self.api;
        Ok(match (info.field_name(), ty) {
            ("kind", _) => ResolvedValue::leaf(match ty {
                ExtendedType::Scalar(_) => "SCALAR",
                ExtendedType::Object(_) => "OBJECT",
                ExtendedType::Interface(_) => "INTERFACE",
                ExtendedType::Union(_) => "UNION",
                ExtendedType::Enum(_) => "ENUM",
                ExtendedType::InputObject(_) => "INPUT_OBJECT",
            }),
            ("name", _) => ResolvedValue::leaf(ty.name().as_str()),
            ("description", _) => ResolvedValue::leaf(ty.description().map(|d| &**d)),
            ("fields", ExtendedType::Object(_) | ExtendedType::Interface(_)) => {
                let fields = match ty {
                    ExtendedType::Object(o) => o.fields.values(),
                    ExtendedType::Interface(i) => i.fields.values(),
                    _ => return Ok(ResolvedValue::null()),
                };
                let include_deprecated = include_deprecated(info);
                ResolvedValue::list(
                    fields
                        .filter(move |f| include_deprecated || !f.directives.has("deprecated"))
                        .map(move |f| {
                            ResolvedValue::object(Introspected {
                                api,
                                of: Of::Field(f),
                            })
                        }),
                )
            }
            ("interfaces", ExtendedType::Object(o)) => {
                self.named_list(o.implements_interfaces.iter().map(|i| &i.name))
            }
            ("interfaces", ExtendedType::Interface(i)) => {
                self.named_list(i.implements_interfaces.iter().map(|i| &i.name))
            }
            // In schema order, as graphql-js lists them, rather than in the order of a map.
            ("possibleTypes", ExtendedType::Interface(interface)) => {
                let name = &interface.name;
                ResolvedValue::list(
                    api.types
                        .values()
                        .filter(move |candidate| {
                            matches!(candidate, ExtendedType::Object(o)
                                if o.implements_interfaces.contains(name.as_str()))
                        })
                        .map(move |candidate| {
                            ResolvedValue::object(Introspected {
                                api,
                                of: Of::Named(candidate),
                            })
                        }),
                )
            }
            ("possibleTypes", ExtendedType::Union(u)) => {
                self.named_list(u.members.iter().map(|m| &m.name))
            }
            ("enumValues", ExtendedType::Enum(e)) => {
                let include_deprecated = include_deprecated(info);
                ResolvedValue::list(
                    e.values
                        .values()
                        .filter(move |v| include_deprecated || !v.directives.has("deprecated"))
                        .map(move |v| {
                            ResolvedValue::object(Introspected {
                                api,
                                of: Of::EnumValue(v),
                            })
                        }),
                )
            }
            ("inputFields", ExtendedType::InputObject(input)) => {
                self.input_values(input.fields.values().map(|f| &f.node), info)
            }
            ("specifiedByURL", ExtendedType::Scalar(scalar)) => ResolvedValue::leaf(
                scalar
                    .directives
                    .get("specifiedBy")
                    .and_then(|d| d.specified_argument_by_name("url"))
                    .and_then(|url| url.as_str()),
            ),
            // September 2025 spec: true or false for input objects, null for every other kind.
            ("isOneOf", ExtendedType::InputObject(input)) => {
                ResolvedValue::leaf(input.directives.has("oneOf"))
            }
            (
                "fields" | "interfaces" | "possibleTypes" | "enumValues" | "inputFields" | "ofType"
                | "specifiedByURL" | "isOneOf",
                _,
            ) => ResolvedValue::null(),
            _ => return Err(self.unknown_field_error(info)),
        })
    }

    fn wrapped_type_field(
        &self,
        ty: &'a Type,
        nullable: bool,
        info: &ResolveInfo<'_>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let non_null = ty.is_non_null() && !nullable;
        Ok(match info.field_name() {
            "kind" => ResolvedValue::leaf(if non_null { "NON_NULL" } else { "LIST" }),
            "ofType" if non_null => self.type_ref(ty, true),
            "ofType" => self.type_ref(ty.item_type(), false),
            "name" | "description" | "fields" | "interfaces" | "possibleTypes" | "enumValues"
            | "inputFields" | "specifiedByURL" | "isOneOf" => ResolvedValue::null(),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

fn include_deprecated(info: &ResolveInfo<'_>) -> bool {
    // `includeDeprecated: Boolean = false` is nullable: null means the default.
    info.arguments()
        .get("includeDeprecated")
        .and_then(JsonValue::as_bool)
        .unwrap_or(false)
}

impl ObjectValue for Introspected<'_> {
    fn type_name(&self) -> &str {
        match self.of {
            Of::Schema => "__Schema",
            Of::Named(_) | Of::Wrapped { .. } => "__Type",
            Of::Field(_) => "__Field",
            Of::InputValue(_) => "__InputValue",
            Of::EnumValue(_) => "__EnumValue",
            Of::Directive(_) => "__Directive",
        }
    }

    fn resolve_field<'b>(
        &'b self,
        info: &'b ResolveInfo<'b>,
    ) -> Result<ResolvedValue<'b>, FieldError> {
        let field = info.field_name();
        match self.of {
            Of::Schema => self.schema_field(info),
            Of::Named(ty) => self.named_type_field(ty, info),
            Of::Wrapped { ty, nullable } => self.wrapped_type_field(ty, nullable, info),
            Of::Field(f) => Ok(match field {
                "name" => ResolvedValue::leaf(f.name.as_str()),
                "description" => ResolvedValue::leaf(f.description.as_deref()),
                "args" => self.input_values(f.arguments.iter(), info),
                "type" => self.type_ref(&f.ty, false),
                "isDeprecated" => ResolvedValue::leaf(f.directives.has("deprecated")),
                "deprecationReason" => self.deprecation_reason(&f.directives),
                _ => return Err(self.unknown_field_error(info)),
            }),
            Of::InputValue(v) => Ok(match field {
                "name" => ResolvedValue::leaf(v.name.as_str()),
                "description" => ResolvedValue::leaf(v.description.as_deref()),
                "type" => self.type_ref(&v.ty, false),
                // The value as GraphQL source text, on one line.
                "defaultValue" => ResolvedValue::leaf(
                    v.default_value
                        .as_ref()
                        .map(|value| value.serialize().no_indent().to_string()),
                ),
                "isDeprecated" => ResolvedValue::leaf(v.directives.has("deprecated")),
                "deprecationReason" => self.deprecation_reason(&v.directives),
                _ => return Err(self.unknown_field_error(info)),
            }),
            Of::EnumValue(v) => Ok(match field {
                "name" => ResolvedValue::leaf(v.value.as_str()),
                "description" => ResolvedValue::leaf(v.description.as_deref()),
                "isDeprecated" => ResolvedValue::leaf(v.directives.has("deprecated")),
                "deprecationReason" => self.deprecation_reason(&v.directives),
                _ => return Err(self.unknown_field_error(info)),
            }),
            Of::Directive(d) => Ok(match field {
                "name" => ResolvedValue::leaf(d.name.as_str()),
                "description" => ResolvedValue::leaf(d.description.as_deref()),
                "locations" => {
                    ResolvedValue::list(d.locations.iter().map(|l| ResolvedValue::leaf(l.name())))
                }
                "args" => self.input_values(d.arguments.iter(), info),
                "isRepeatable" => ResolvedValue::leaf(d.repeatable),
                _ => return Err(self.unknown_field_error(info)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use apollo_compiler::ExecutableDocument;
    use apollo_compiler::response::JsonMap;
    use apollo_compiler::validation::Valid;

    use crate::supergraph::Supergraph;
    use crate::supergraph::compose::SUPERGRAPH_PRELUDE;

    /// Every kind of type and every introspection field a client can ask for.
    const TYPES: &str = r#"
        scalar DateTime @specifiedBy(url: "https://example.com/date-time")
        interface Node { id: ID! }
        "Has a name."
        interface Named implements Node { id: ID! name: String }
        type Talk implements Named & Node {
          id: ID!
          name: String
          "Old."
          old: Int @deprecated
          slot(at: DateTime, tz: String = "UTC" @deprecated(reason: "Use at.")): String
            @deprecated(reason: "Use slots.")
        }
        type Room implements Node { id: ID! }
        union Thing = Talk | Room
        enum Track { MAIN "Closed." SIDE @deprecated(reason: "Closed.") OLD @deprecated }
        input Nested { x: Int }
        input Filter {
          track: Track = MAIN
          tags: [String!]! = ["a", "b"]
          nested: Nested = { x: 1 }
          gone: Int @deprecated
        }
        "By id or by name."
        input By @oneOf { id: ID name: String }
        "Cache the answer."
        directive @cached(ttl: Int = 60) repeatable on FIELD | QUERY
        type Query {
          node(id: ID!): Node
          things(filter: Filter, by: By): [Thing!]!
          named: [[Named!]]!
        }
        type Mutation { touch: Int }
    "#;

    /// The standard introspection query of graphql-js, without `isOneOf`, which apollo-compiler's
    /// own executor cannot answer.
    const QUERY: &str = r#"
        query IntrospectionQuery {
          __schema {
            description
            queryType { name kind } mutationType { name kind } subscriptionType { name kind }
            types { ...FullType }
            directives {
              name description isRepeatable locations
              args(includeDeprecated: true) { ...InputValue }
            }
          }
        }
        fragment FullType on __Type {
          kind name description specifiedByURL
          fields(includeDeprecated: true) {
            name description args(includeDeprecated: true) { ...InputValue }
            type { ...TypeRef } isDeprecated deprecationReason
          }
          inputFields(includeDeprecated: true) { ...InputValue }
          interfaces { ...TypeRef }
          enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
          possibleTypes { ...TypeRef }
        }
        fragment InputValue on __InputValue {
          name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
        }
        fragment TypeRef on __Type {
          kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
        }
        query Partial {
          __typename
          things { __typename }
          t: __type(name: "Talk") {
            fields { name }
            deprecated: fields(includeDeprecated: true) { name }
            ... @skip(if: true) { name }
          }
          missing: __type(name: "Missing") { name }
        }
    "#;

    fn supergraph() -> Supergraph {
        let sdl = format!(
            "{SUPERGRAPH_PRELUDE}\n\
             \"The programme.\"\n\
             schema @link(url: \"https://specs.apollo.dev/link/v1.0\") \
             @link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION) \
             {{ query: Query mutation: Mutation }}\n\
             enum join__Graph {{ A @join__graph(name: \"a\", url: \"http://a.invalid\") }}\n\
             {TYPES}"
        );
        match Supergraph::parse(&sdl) {
            Ok(supergraph) => supergraph,
            Err(error) => panic!("invalid supergraph: {error}"),
        }
    }

    fn run(supergraph: &Supergraph, query: &str, operation: &str) -> (JsonMap, JsonMap) {
        let document = ExecutableDocument::parse_and_validate(&supergraph.api, query, "q.graphql")
            .expect("valid query");
        let operation = document.operations.get(Some(operation)).expect("operation");
        let variables = Valid::assume_valid(JsonMap::new());
        let ours = supergraph
            .introspect(&document, operation, &variables)
            .expect("executes");
        let theirs = apollo_compiler::introspection::partial_execute(
            &supergraph.api,
            &supergraph.api_implementers,
            &document,
            operation,
            &variables,
        )
        .expect("executes");
        assert!(ours.errors.is_empty(), "{:?}", ours.errors);
        assert!(theirs.errors.is_empty(), "{:?}", theirs.errors);
        (ours.data.expect("data"), theirs.data.expect("data"))
    }

    #[test]
    fn answers_as_apollo_compiler_does_where_it_can() {
        let supergraph = supergraph();
        for operation in ["IntrospectionQuery", "Partial"] {
            let (ours, theirs) = run(&supergraph, QUERY, operation);
            assert_eq!(ours, theirs, "{operation}");
        }
        // Not two empty answers: the schema's details are all there.
        let (ours, _) = run(&supergraph, QUERY, "IntrospectionQuery");
        let text = serde_json::to_string(&ours).expect("JSON");
        for detail in [
            "The programme.",
            "Has a name.",
            "Use slots.",
            "\\\"UTC\\\"",
            "[\\\"a\\\", \\\"b\\\"]",
            "{x: 1}",
            "https://example.com/date-time",
            "Cache the answer.",
            "No longer supported",
        ] {
            assert!(text.contains(detail), "{detail} in {text}");
        }
    }

    #[test]
    fn is_one_of_is_true_false_or_null() {
        let supergraph = supergraph();
        let query = r#"query Q {
          by: __type(name: "By") { isOneOf }
          filter: __type(name: "Filter") { isOneOf }
          talk: __type(name: "Talk") { isOneOf }
          named: __type(name: "Query") { fields { type { isOneOf ofType { isOneOf } } } }
        }"#;
        let document = ExecutableDocument::parse_and_validate(&supergraph.api, query, "q.graphql")
            .expect("valid query");
        let operation = document.operations.get(None).expect("operation");
        let variables = Valid::assume_valid(JsonMap::new());
        let response = supergraph
            .introspect(&document, operation, &variables)
            .expect("executes");
        let data = serde_json::to_value(response.data).expect("JSON");
        assert_eq!(
            data,
            serde_json::json!({
                "by": { "isOneOf": true },
                "filter": { "isOneOf": false },
                "talk": { "isOneOf": null },
                "named": { "fields": [
                    { "type": { "isOneOf": null, "ofType": null } },
                    { "type": { "isOneOf": null, "ofType": { "isOneOf": null } } },
                    { "type": { "isOneOf": null, "ofType": { "isOneOf": null } } },
                ] }
            })
        );
    }
}
