//! `@interfaceObject` (`@join__type(isInterfaceObject: true)`): subgraph `b` declares the
//! interface `Account` as an object and adds `name` to every account without knowing `Admin`
//! or `Regular`; subgraph `a` has the real interface as an entity. Mock subgraphs answer with
//! canned JSON and record what they were sent.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::routing::post;
use gateway::Config;
use gateway::pipeline::plan::{FetchKind, plan};
use gateway::pipeline::{normalize, validate};
use gateway::supergraph::Supergraph;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const SUPERGRAPH: &str = r#"schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)
{ query: Query }

directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
scalar join__FieldSet
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }
enum join__Graph {
  A @join__graph(name: "a", url: "http://a.invalid")
  B @join__graph(name: "b", url: "http://b.invalid")
}
type Query @join__type(graph: A) @join__type(graph: B) {
  admins: [Admin] @join__field(graph: A)
  accounts: [Account] @join__field(graph: B)
}
interface Account @join__type(graph: A, key: "id") @join__type(graph: B, key: "id", isInterfaceObject: true) {
  id: ID!
  name: String @join__field(graph: B)
}
type Admin implements Account @join__implements(graph: A, interface: "Account") @join__type(graph: A, key: "id") {
  id: ID!
  isMain: Boolean
  name: String @join__field
}
type Regular implements Account @join__implements(graph: A, interface: "Account") @join__type(graph: A, key: "id") {
  id: ID!
  name: String @join__field
}
"#;

fn fetches(query: &str) -> Vec<(String, String, Option<String>)> {
    let sg = Supergraph::parse(SUPERGRAPH).expect("valid supergraph");
    let document = validate::parse_and_validate(&sg.api, query).expect("valid operation");
    let operation = document.operations.get(None).expect("one operation");
    let variables =
        apollo_compiler::request::coerce_variable_values(&sg.api, operation, &Default::default())
            .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    plan(&sg, &normalized)
        .expect("plan")
        .fetches
        .into_iter()
        .map(|f| {
            let representation_type = match &f.kind {
                FetchKind::Entity {
                    representation_type,
                    ..
                } => representation_type.as_ref().map(|t| t.to_string()),
                FetchKind::Root => None,
            };
            (
                sg.subgraphs[f.subgraph].name.clone(),
                f.operation,
                representation_type,
            )
        })
        .collect()
}

#[test]
fn interface_object_fields_are_fetched_as_the_interface() {
    let fetches = fetches("{ admins { isMain name } }");
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert_eq!(fetches[1].0, "b");
    assert!(
        fetches[1].1.contains("... on Account {name}"),
        "{fetches:?}"
    );
    assert_eq!(fetches[1].2.as_deref(), Some("Account"));
}

#[test]
fn concrete_types_of_interface_objects_come_from_the_entity_interface() {
    let fetches = fetches("{ accounts { name ... on Admin { isMain } } }");
    assert_eq!(fetches[0].0, "b");
    assert_eq!(fetches[1].0, "a");
    assert!(
        fetches[1].1.contains("... on Account {") && fetches[1].1.contains("__typename"),
        "{fetches:?}"
    );
    assert!(
        fetches[1].1.contains("... on Admin {isMain}"),
        "{fetches:?}"
    );
}

type Log = Arc<Mutex<Vec<Value>>>;

/// A subgraph that records each request and answers with `answer(query, variables)`.
async fn mock(answer: fn(&str, &Value) -> Value) -> (String, Log) {
    let log: Log = Arc::default();
    let recorded = log.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |Json(body): Json<Value>| {
            let recorded = recorded.clone();
            async move {
                if let Ok(mut log) = recorded.lock() {
                    log.push(body.clone());
                }
                let query = body["query"].as_str().unwrap_or_default();
                Json(answer(query, &body["variables"]))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}/graphql"), log)
}

fn representations(variables: &Value) -> Vec<Value> {
    variables["representations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn subgraph_a(query: &str, variables: &Value) -> Value {
    if !query.contains("_entities") {
        return json!({ "data": { "admins": [{ "__typename": "Admin", "id": "admin-1", "isMain": true }] } });
    }
    let entities: Vec<Value> = representations(variables)
        .iter()
        .map(|rep| {
            let id = rep["id"].as_str().unwrap_or_default();
            if id.starts_with("admin") {
                json!({ "__typename": "Admin", "id": id, "isMain": id == "admin-1" })
            } else {
                json!({ "__typename": "Regular", "id": id })
            }
        })
        .collect();
    json!({ "data": { "_entities": entities } })
}

fn subgraph_b(query: &str, variables: &Value) -> Value {
    if query.contains("_entities") {
        let entities: Vec<Value> = representations(variables)
            .iter()
            .map(|rep| {
                // A real interface-object subgraph only knows `Account` references.
                if rep["__typename"] != "Account" {
                    return Value::Null;
                }
                json!({ "__typename": "Account", "name": format!("{}-name", rep["id"].as_str().unwrap_or_default()) })
            })
            .collect();
        return json!({ "data": { "_entities": entities } });
    }
    json!({ "data": { "accounts": [
        { "__typename": "Account", "id": "admin-1", "name": "admin-1-name" },
        { "__typename": "Account", "id": "user-2", "name": "user-2-name" }
    ]}})
}

#[tokio::test]
async fn interface_objects_end_to_end() {
    let dir = std::env::temp_dir().join(format!("gateway-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("supergraph.graphql");
    std::fs::write(&path, SUPERGRAPH).expect("write supergraph");
    let (a_url, _a_log) = mock(subgraph_a).await;
    let (b_url, b_log) = mock(subgraph_b).await;
    let mut config = Config::with_supergraph(&path);
    config.subgraph_urls = vec![("a".into(), a_url), ("b".into(), b_url)];
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(gateway::run(listener, config, std::future::pending()));

    let http = reqwest::Client::new();
    let mut body = Value::Null;
    for _ in 0..100 {
        if let Ok(response) = http
            .post(format!("http://{addr}/graphql"))
            .json(&json!({ "query": "{ accounts { __typename name ... on Admin { isMain name } } }" }))
            .send()
            .await
        {
            body = response.json().await.expect("JSON");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        body,
        json!({ "data": { "accounts": [
            { "__typename": "Admin", "name": "admin-1-name", "isMain": true },
            { "__typename": "Regular", "name": "user-2-name" }
        ]}})
    );

    // An admin from `a`, its `name` from `b`: the representation names the interface.
    let response: Value = http
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": "{ admins { id name } }" }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert!(response["errors"].is_null(), "{response}");
    let sent: Vec<Value> = b_log
        .lock()
        .map(|log| log.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|body| {
            body["query"]
                .as_str()
                .is_some_and(|q| q.contains("_entities"))
        })
        .flat_map(|body| representations(&body["variables"]))
        .collect();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|rep| rep["__typename"] == "Account"),
        "{sent:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
