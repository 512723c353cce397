//! OneOf Input Objects (`@oneOf`, September 2025 spec) through the gateway: a real
//! async-graphql subgraph declares one (`#[derive(OneofObject)]`), the gateway composes it from
//! the subgraph's own SDL, introspection shows it the way current graphql-js asks
//! (`getIntrospectionQuery({ oneOf: true })`), and values that do not name exactly one non-null
//! field are refused by the gateway, with a code, before any subgraph is asked.

mod support;

use gateway::Config;
use serde_json::{Value, json};
use support::{SubgraphServer, serve_subgraph, spawn_gateway};

mod talks {
    use async_graphql::{
        EmptyMutation, EmptySubscription, ID, InputObject, Object, OneofObject, Schema,
        SimpleObject,
    };

    #[derive(SimpleObject, Clone)]
    pub struct Talk {
        pub id: ID,
        pub slug: String,
        pub title: String,
    }

    /// One talk, by id or by slug.
    #[derive(OneofObject)]
    pub enum TalkBy {
        Id(ID),
        Slug(String),
    }

    /// An ordinary input object: every field may be given.
    #[derive(InputObject)]
    pub struct TalkFilter {
        pub title_contains: Option<String>,
        pub slug: Option<String>,
    }

    fn programme() -> Vec<Talk> {
        vec![
            Talk {
                id: ID::from("1"),
                slug: "rust".into(),
                title: "Rust at the edge".into(),
            },
            Talk {
                id: ID::from("2"),
                slug: "graphql".into(),
                title: "GraphQL, one of them".into(),
            },
        ]
    }

    fn find(by: &TalkBy) -> Option<Talk> {
        programme().into_iter().find(|talk| match by {
            TalkBy::Id(id) => talk.id == *id,
            TalkBy::Slug(slug) => talk.slug == *slug,
        })
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn talk(&self, by: TalkBy) -> Option<Talk> {
            find(&by)
        }

        async fn talks(&self, by: Vec<TalkBy>) -> Vec<Talk> {
            by.iter().filter_map(find).collect()
        }

        async fn search(&self, filter: Option<TalkFilter>) -> Vec<Talk> {
            let contains = filter.and_then(|f| f.title_contains).unwrap_or_default();
            programme()
                .into_iter()
                .filter(|talk| talk.title.contains(&contains))
                .collect()
        }
    }

    pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish()
    }
}

struct Stack {
    talks: SubgraphServer,
    url: String,
    http: reqwest::Client,
}

async fn start() -> Stack {
    let talks = serve_subgraph(talks::schema(), None).await;
    // Composed from the subgraph's `_service { sdl }`: the `@oneOf` comes from what
    // async-graphql really declares.
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![("talks".into(), talks.url.clone())];
    let gateway = spawn_gateway(config).await;
    Stack {
        talks,
        url: format!("http://{gateway}/graphql"),
        http: reqwest::Client::new(),
    }
}

impl Stack {
    async fn post(&self, query: &str, variables: Value) -> Value {
        self.http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("gateway request")
            .json()
            .await
            .expect("JSON body")
    }

    /// The operations the subgraph received, composition's `_service` left out.
    fn operations(&self) -> Vec<String> {
        self.talks
            .requests()
            .into_iter()
            .map(|r| r.query)
            .filter(|q| !q.contains("_service"))
            .collect()
    }
}

/// graphql-js 16's `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
/// directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true,
/// oneOf: true })`: the standard introspection query with `isOneOf` in `FullType`.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types {
      ...FullType
    }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) {
        ...InputValue
      }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  isOneOf
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) {
      ...InputValue
    }
    type {
      ...TypeRef
    }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) {
    ...InputValue
  }
  interfaces {
    ...TypeRef
  }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes {
    ...TypeRef
  }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    name
    kind
    ofType {
      name
      kind
      ofType {
        name
        kind
        ofType {
          name
          kind
          ofType {
            name
            kind
            ofType {
              name
              kind
              ofType {
                name
                kind
                ofType {
                  name
                  kind
                  ofType {
                    name
                    kind
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"#;

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or(&Value::Null)
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn graphql_js_introspection_with_one_of_reports_is_one_of() {
    let stack = start().await;
    let body = stack.post(INTROSPECTION_QUERY, Value::Null).await;
    assert!(body.get("errors").is_none(), "{body}");
    let schema = &body["data"]["__schema"];
    assert_eq!(
        schema["queryType"],
        json!({ "name": "Query", "kind": "OBJECT" })
    );
    assert_eq!(schema["mutationType"], Value::Null);
    let types = &schema["types"];

    let talk_by = named(types, "TalkBy");
    assert_eq!(talk_by["kind"], "INPUT_OBJECT");
    assert_eq!(talk_by["isOneOf"], true, "{talk_by}");
    assert_eq!(talk_by["description"], "One talk, by id or by slug.");
    assert_eq!(names(&talk_by["inputFields"]), ["id", "slug"]);
    // Every field of a OneOf Input Object is nullable and has no default.
    for field in talk_by["inputFields"].as_array().into_iter().flatten() {
        assert_eq!(field["type"]["kind"], "SCALAR", "{field}");
        assert_eq!(field["defaultValue"], Value::Null, "{field}");
    }

    // false for other input objects, null for every other kind.
    assert_eq!(named(types, "TalkFilter")["isOneOf"], false);
    assert_eq!(named(types, "Talk")["isOneOf"], Value::Null);
    assert_eq!(named(types, "String")["isOneOf"], Value::Null);
    assert_eq!(named(types, "__TypeKind")["isOneOf"], Value::Null);

    // The introspection types describe themselves with the new field.
    let introspection_type = named(types, "__Type");
    let is_one_of = named(&introspection_type["fields"], "isOneOf");
    assert_eq!(
        is_one_of["type"],
        json!({ "kind": "SCALAR", "name": "Boolean", "ofType": null })
    );

    // Argument types keep their wrappers: `talks(by: [TalkBy!]!)`.
    let query = named(types, "Query");
    let talks_by = named(&named(&query["fields"], "talks")["args"], "by");
    assert_eq!(
        talks_by["type"],
        json!({ "kind": "NON_NULL", "name": null, "ofType": {
            "kind": "LIST", "name": null, "ofType": {
                "kind": "NON_NULL", "name": null, "ofType": {
                    "kind": "INPUT_OBJECT", "name": "TalkBy", "ofType": null
                }
            }
        }})
    );
    // Federation machinery stays out of the API schema.
    assert!(named(types, "_Service").is_null());
    assert!(named(&query["fields"], "_service").is_null());

    let directives = &schema["directives"];
    let one_of = named(directives, "oneOf");
    assert_eq!(one_of["locations"], json!(["INPUT_OBJECT"]), "{directives}");
    assert_eq!(one_of["isRepeatable"], false);
    assert_eq!(one_of["args"], json!([]));
    for built_in in ["skip", "include", "deprecated", "specifiedBy"] {
        assert!(!named(directives, built_in).is_null(), "{built_in}");
    }
    assert_eq!(
        named(&named(directives, "deprecated")["args"], "reason")["defaultValue"],
        "\"No longer supported\""
    );

    // `__type`, and `isOneOf` on wrapper types, which are not input objects.
    let body = stack
        .post(
            r#"{
              oneOf: __type(name: "TalkBy") { name isOneOf }
              plain: __type(name: "TalkFilter") { isOneOf }
              missing: __type(name: "Nope") { isOneOf }
              query: __type(name: "Query") {
                fields { name args { type { kind isOneOf ofType { name isOneOf } } } }
              }
            }"#,
            Value::Null,
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let data = &body["data"];
    assert_eq!(data["oneOf"], json!({ "name": "TalkBy", "isOneOf": true }));
    assert_eq!(data["plain"], json!({ "isOneOf": false }));
    assert_eq!(data["missing"], Value::Null);
    let talk = named(&data["query"]["fields"], "talk");
    assert_eq!(
        talk["args"][0]["type"],
        json!({ "kind": "NON_NULL", "isOneOf": null, "ofType": { "name": "TalkBy", "isOneOf": true } })
    );
    assert!(stack.operations().is_empty(), "{:?}", stack.operations());
}

#[tokio::test]
async fn introspection_and_subgraph_fields_in_one_operation() {
    let stack = start().await;
    let body = stack
        .post(
            r#"{ __typename talk(by: { slug: "rust" }) { id } __type(name: "TalkBy") { isOneOf } }"#,
            Value::Null,
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": {
            "__typename": "Query",
            "talk": { "id": "1" },
            "__type": { "isOneOf": true }
        }})
    );
}

#[tokio::test]
async fn a_one_of_input_with_exactly_one_field_works_end_to_end() {
    let stack = start().await;
    let body = stack
        .post(
            r#"{ talk(by: { slug: "rust" }) { id title } }"#,
            Value::Null,
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "talk": { "id": "1", "title": "Rust at the edge" } } })
    );

    let body = stack
        .post(
            "query Talk($by: TalkBy!) { talk(by: $by) { slug } }",
            json!({ "by": { "id": "2" } }),
        )
        .await;
    assert_eq!(body, json!({ "data": { "talk": { "slug": "graphql" } } }));

    // A non-null variable as the one field, and a list of OneOf values.
    let body = stack
        .post(
            "query Talks($id: ID!) { talks(by: [{ id: $id }, { slug: \"rust\" }]) { id } }",
            json!({ "id": "2" }),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "talks": [{ "id": "2" }, { "id": "1" }] } })
    );

    // A nullable variable is allowed where it has a non-null default.
    let body = stack
        .post(
            "query Talk($slug: String = \"graphql\") { talk(by: { slug: $slug }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(body, json!({ "data": { "talk": { "id": "2" } } }));

    // Ordinary input objects take any number of fields.
    let body = stack
        .post(
            r#"{ search(filter: { titleContains: "Rust", slug: null }) { id } }"#,
            Value::Null,
        )
        .await;
    assert_eq!(body, json!({ "data": { "search": [{ "id": "1" }] } }));

    assert_eq!(stack.operations().len(), 5, "{:?}", stack.operations());
}

/// The error of a refused request: its code, and that it has no `data` (a request error).
fn refusal(body: &Value) -> (&str, &str) {
    assert!(body.get("data").is_none(), "{body}");
    (
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default(),
        body["errors"][0]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn literals_with_two_fields_none_or_null_are_refused_by_validation() {
    let stack = start().await;
    let refused = [
        r#"{ talk(by: { id: "1", slug: "rust" }) { id } }"#,
        "{ talk(by: {}) { id } }",
        "{ talk(by: { id: null }) { id } }",
        // Inside a list, and reached through a fragment.
        r#"{ ...Talks } fragment Talks on Query { talks(by: [{ id: "1" }, {}]) { id } }"#,
        // A variable counts as a field, whatever its value.
        r#"query Talk($slug: String!) { talk(by: { id: "1", slug: $slug }) { id } }"#,
        // A variable given as the field must not be nullable (without a non-null default).
        "query Talk($id: ID) { talk(by: { id: $id }) { id } }",
        "query Talk($id: ID = null) { talk(by: { id: $id }) { id } }",
        // Default values of variables are literals too.
        r#"query Talk($by: TalkBy! = { id: "1", slug: "rust" }) { talk(by: $by) { id } }"#,
    ];
    for query in refused {
        let body = stack.post(query, json!({ "slug": "rust" })).await;
        let (code, message) = refusal(&body);
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{query}: {body}");
        assert!(message.contains("TalkBy"), "{query}: {body}");
        assert!(body["errors"][0]["locations"].is_array(), "{query}: {body}");
    }
    let body = stack.post("{ talk(by: {}) { id } }", Value::Null).await;
    assert_eq!(
        body["errors"][0]["message"],
        "OneOf Input Object \"TalkBy\" must specify exactly one field; 0 given."
    );
    assert!(stack.operations().is_empty(), "{:?}", stack.operations());
}

#[tokio::test]
async fn variables_with_two_fields_none_or_null_are_refused_by_coercion() {
    let stack = start().await;
    let one = "query Talk($by: TalkBy!) { talk(by: $by) { id } }";
    let many = "query Talks($by: [TalkBy!]!) { talks(by: $by) { id } }";
    let refused = [
        (one, json!({ "by": { "id": "1", "slug": "rust" } })),
        (one, json!({ "by": {} })),
        (one, json!({ "by": { "id": null } })),
        (one, json!({ "by": { "id": "1", "slug": null } })),
        (
            many,
            json!({ "by": [{ "id": "1" }, { "id": "2", "slug": "rust" }] }),
        ),
        // A single value where a list is expected is a list of one.
        (many, json!({ "by": {} })),
        // Allowed by validation for its default, but explicitly null.
        (
            "query Talk($slug: String = \"rust\") { talk(by: { slug: $slug }) { id } }",
            json!({ "slug": null }),
        ),
    ];
    for (query, variables) in refused {
        let body = stack.post(query, variables.clone()).await;
        let (code, message) = refusal(&body);
        assert_eq!(code, "BAD_USER_INPUT", "{variables}: {body}");
        assert!(message.contains("TalkBy"), "{variables}: {body}");
    }
    let body = stack
        .post(
            many,
            json!({ "by": [{ "id": "1" }, { "id": "2", "slug": "rust" }] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "Variable \"$by\" got an invalid value: at \"by[1]\", OneOf Input Object \"TalkBy\" \
         must specify exactly one field; 2 given."
    );
    assert!(stack.operations().is_empty(), "{:?}", stack.operations());
}
