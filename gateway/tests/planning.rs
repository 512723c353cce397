//! Query plan shapes for the fixture supergraph, without any network.

use gateway::Config;
use gateway::forwarded_headers::ForwardedHeaders;
use gateway::pipeline::plan::{FetchKind, QueryPlan, plan};
use gateway::pipeline::{GraphQLRequest, Outcome, Transport, normalize, validate};
use gateway::supergraph::Supergraph;
use serde_json::json;

fn supergraph() -> Supergraph {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/supergraph.graphql");
    let sdl = std::fs::read_to_string(path).expect("fixture");
    Supergraph::parse(&sdl).expect("valid supergraph")
}

fn plan_for(sg: &Supergraph, query: &str) -> QueryPlan {
    let document = validate::parse_and_validate(&sg.api, query).expect("valid operation");
    let operation = document.operations.get(None).expect("one operation");
    let variables =
        apollo_compiler::request::coerce_variable_values(&sg.api, operation, &Default::default())
            .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    plan(sg, &normalized).expect("plan")
}

fn subgraph_of(sg: &Supergraph, plan: &QueryPlan, index: usize) -> String {
    sg.subgraphs[plan.fetches[index].subgraph].name.clone()
}

#[test]
fn independent_root_fields_run_in_parallel() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ topProducts { name } me { name } reviews { body } }");
    assert_eq!(plan.fetches.len(), 3);
    assert!(plan.fetches.iter().all(|f| f.depends_on.is_empty()));
    assert!(
        plan.fetches
            .iter()
            .all(|f| matches!(f.kind, FetchKind::Root))
    );
}

#[test]
fn sibling_entity_fetches_depend_only_on_their_parent() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ topProducts { name reviews { body } inStock } }");
    assert_eq!(plan.fetches.len(), 3);
    assert_eq!(subgraph_of(&sg, &plan, 0), "products");
    assert_eq!(
        plan.fetches[0].operation,
        "query {topProducts {name __typename upc}}"
    );
    for fetch in &plan.fetches[1..] {
        assert_eq!(fetch.depends_on, vec![0]);
    }
}

#[test]
fn requires_adds_required_fields_to_the_parent_and_representation() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ topProducts { shippingEstimate } }");
    assert_eq!(plan.fetches.len(), 2);
    assert_eq!(
        plan.fetches[0].operation,
        "query {topProducts {__typename upc price weight}}"
    );
    assert_eq!(
        plan.fetches[1].operation,
        "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product {shippingEstimate} } }"
    );
    let FetchKind::Entity { representation, .. } = &plan.fetches[1].kind else {
        panic!("expected an entity fetch");
    };
    assert_eq!(representation.to_string(), "{__typename upc price weight}");
}

#[test]
fn requires_through_another_subgraph_waits_for_it() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ reviews { product { shippingEstimate } } }");
    let names: Vec<String> = (0..plan.fetches.len())
        .map(|i| subgraph_of(&sg, &plan, i))
        .collect();
    assert_eq!(names, ["reviews", "products", "inventory"]);
    assert_eq!(plan.fetches[1].depends_on, vec![0]);
    assert!(plan.fetches[2].depends_on.contains(&1));
}

#[test]
fn provides_keeps_the_field_in_the_providing_subgraph() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ reviews { author { username } } }");
    assert_eq!(plan.fetches.len(), 1);
    let plan = plan_for(&sg, "{ reviews { author { name } } }");
    assert_eq!(plan.fetches.len(), 2);
}

#[test]
fn abstract_types_split_per_runtime_type() {
    let sg = supergraph();
    let plan = plan_for(&sg, "{ media { title ... on Book { reviewCount } } }");
    assert_eq!(
        plan.fetches[0].operation,
        "query {media {title ... on Book {__typename id} __typename}}"
    );
    let FetchKind::Entity {
        type_name, paths, ..
    } = &plan.fetches[1].kind
    else {
        panic!("expected an entity fetch");
    };
    assert_eq!(type_name.as_str(), "Book");
    assert_eq!(
        paths
            .iter()
            .map(|p| p.iter().map(|n| n.as_str()).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [["media"]]
    );
}

#[test]
fn variables_are_forwarded_only_where_used() {
    let sg = supergraph();
    let document = validate::parse_and_validate(
        &sg.api,
        "query($u: String!, $n: Int) { product(upc: $u) { reviews { body } } topProducts(first: $n) { name } }",
    )
    .expect("valid");
    let operation = document.operations.get(None).expect("operation");
    let raw = serde_json::from_value(json!({ "u": "1", "n": 2 })).expect("map");
    let variables = apollo_compiler::request::coerce_variable_values(&sg.api, operation, &raw)
        .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    let plan = plan(&sg, &normalized).expect("plan");
    assert_eq!(
        plan.fetches[0].operation,
        "query($u: String!, $n: Int) {product(upc: $u) {__typename upc} topProducts(first: $n) {name}}"
    );
    assert!(plan.fetches[1].variables.is_empty());
}

#[tokio::test]
async fn plans_are_cached_by_normalized_operation() {
    let mut config = Config::with_supergraph("unused");
    config.plan_cache_size = 16;
    let pipeline = gateway::build_pipeline(&config, supergraph()).expect("pipeline");
    for query in [
        "{ __typename }",
        "query   {\n __typename\n}",
        "{ ...F } fragment F on Query { __typename }",
    ] {
        let request = GraphQLRequest {
            query: Some(query.into()),
            ..GraphQLRequest::default()
        };
        let outcome = pipeline
            .handle(
                request,
                Transport::Post,
                &ForwardedHeaders::default(),
                &gateway::forwarded_headers::ClientAddress::default(),
            )
            .await;
        assert!(matches!(outcome, Outcome::Executed(_)), "{outcome:?}");
    }
    assert_eq!(pipeline.cached_plans(), 1);
}

#[tokio::test]
async fn documents_are_parsed_once_per_text() {
    let mut config = Config::with_supergraph("unused");
    config.plan_cache_size = 16;
    let pipeline = gateway::build_pipeline(&config, supergraph()).expect("pipeline");
    // The same text three times, a second text, and an invalid one that must not be kept.
    for query in [
        "{ __typename }",
        "{ __typename }",
        "{ __typename }",
        "query { __typename }",
        "{ nope }",
    ] {
        let request = GraphQLRequest {
            query: Some(query.into()),
            ..GraphQLRequest::default()
        };
        pipeline
            .handle(
                request,
                Transport::Post,
                &ForwardedHeaders::default(),
                &gateway::forwarded_headers::ClientAddress::default(),
            )
            .await;
    }
    assert_eq!(pipeline.cached_documents(), 2);
}

#[test]
fn the_same_entity_fetch_needed_in_two_places_is_sent_once() {
    let sg = supergraph();
    // Both `product`s come from the one reviews fetch, and both need the same product fields
    // from the products subgraph: one products fetch serves both paths.
    let plan = plan_for(
        &sg,
        "{ reviews { product { name } author { reviews { product { name } } } } }",
    );
    let products: Vec<_> = plan
        .fetches
        .iter()
        .enumerate()
        .filter(|(i, _)| subgraph_of(&sg, &plan, *i) == "products")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(products.len(), 1, "{:#?}", plan.fetches);
    let FetchKind::Entity { paths, .. } = &products[0].kind else {
        panic!("expected an entity fetch");
    };
    let paths: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| p.iter().map(|n| n.as_str()).collect())
        .collect();
    assert_eq!(
        paths,
        [
            vec!["reviews", "product"],
            vec!["reviews", "author", "reviews", "product"]
        ]
    );
}
