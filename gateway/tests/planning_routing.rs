//! Routing choices of the planner on small hand-written supergraphs: which subgraph and which
//! key a fetch uses when several could serve, per-subgraph field types, shared value types
//! split between owners, and variable defaults carried into subgraph operations.

use gateway::pipeline::plan::{FetchKind, QueryPlan, plan};
use gateway::pipeline::{normalize, validate};
use gateway::supergraph::Supergraph;

/// Wraps type definitions in the join-spec boilerplate every supergraph carries.
fn supergraph(graphs: &[&str], types: &str) -> Supergraph {
    let mut sdl = String::from(
        r#"schema
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
"#,
    );
    for graph in graphs {
        sdl.push_str(&format!(
            "  {} @join__graph(name: \"{graph}\", url: \"http://{graph}.invalid\")\n",
            graph.to_uppercase()
        ));
    }
    sdl.push_str("}\n");
    sdl.push_str(types);
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

/// (subgraph, operation) per fetch.
fn fetches(sg: &Supergraph, plan: &QueryPlan) -> Vec<(String, String)> {
    plan.fetches
        .iter()
        .map(|f| (sg.subgraphs[f.subgraph].name.clone(), f.operation.clone()))
        .collect()
}

#[test]
fn entity_hop_uses_a_key_the_current_subgraph_has() {
    // `a` knows books by `upc`, `c` only by `id`: reaching `c` goes through `b`, which has both.
    let sg = supergraph(
        &["a", "b", "c"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) @join__type(graph: C) {
  books: [Book] @join__field(graph: A)
}
type Book @join__type(graph: A, key: "upc") @join__type(graph: B, key: "upc")
  @join__type(graph: B, key: "id") @join__type(graph: C, key: "id") {
  upc: ID! @join__field(graph: A) @join__field(graph: B)
  id: ID! @join__field(graph: B) @join__field(graph: C)
  author: String @join__field(graph: C)
}
"#,
    );
    let plan = plan_for(&sg, "{ books { author } }");
    let fetches = fetches(&sg, &plan);
    assert_eq!(fetches.len(), 3, "{fetches:?}");
    assert_eq!(
        fetches[0],
        ("a".into(), "query {books {__typename upc}}".into())
    );
    assert_eq!(fetches[1].0, "b");
    assert!(fetches[1].1.contains("... on Book {id}"), "{fetches:?}");
    assert_eq!(fetches[2].0, "c");
    assert!(fetches[2].1.contains("... on Book {author}"), "{fetches:?}");
    assert!(plan.fetches[2].depends_on.contains(&1));
}

#[test]
fn external_key_fields_are_not_taken_from_their_subgraph() {
    // `a` marks `Pet.id` `@external` (composition keeps that only when it is meant): `a`
    // cannot give the key, so nothing can reach `b` for `name`. Planning fails instead of
    // sending `a` a field it does not resolve.
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  pets: [Pet] @join__field(graph: A)
}
type Pet @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID! @join__field(graph: A, external: true) @join__field(graph: B)
  name: String @join__field(graph: B)
}
"#,
    );
    let document = validate::parse_and_validate(&sg.api, "{ pets { id name } }").expect("valid");
    let operation = document.operations.get(None).expect("one operation");
    let variables =
        apollo_compiler::request::coerce_variable_values(&sg.api, operation, &Default::default())
            .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    assert!(plan(&sg, &normalized).is_err());
}

#[test]
fn per_subgraph_field_types_drop_impossible_fragments() {
    // `a` declares `book: Book` where the supergraph has the union: no `... on Song` there.
    let sg = supergraph(
        &["a"],
        r#"
type Query @join__type(graph: A) {
  book: Media @join__field(graph: A, type: "Book")
}
union Media @join__type(graph: A) @join__unionMember(graph: A, member: "Book")
  @join__unionMember(graph: A, member: "Song") = Book | Song
type Book @join__type(graph: A) { title: String }
type Song @join__type(graph: A) { title: String }
"#,
    );
    let plan = plan_for(
        &sg,
        "{ book { __typename ... on Song { title } ... on Book { title } } }",
    );
    assert_eq!(
        fetches(&sg, &plan),
        [("a".into(), "query {book {__typename title}}".into())]
    );
}

#[test]
fn shared_value_type_root_field_is_split_between_owners() {
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  viewer: Viewer
}
type Viewer @join__type(graph: A) @join__type(graph: B) {
  name: String
  inA: String @join__field(graph: A)
  inB: String @join__field(graph: B)
}
"#,
    );
    let plan = plan_for(&sg, "{ viewer { name inB inA } }");
    let fetches = fetches(&sg, &plan);
    assert_eq!(
        fetches,
        [
            ("a".into(), "query {viewer {name inA}}".into()),
            ("b".into(), "query {viewer {inB}}".into()),
        ]
    );
    assert!(plan.fetches.iter().all(|f| f.depends_on.is_empty()));

    // When one owner has everything, it gets all of it.
    let plan = plan_for(&sg, "{ viewer { name inB } }");
    assert_eq!(
        self::fetches(&sg, &plan),
        [("b".into(), "query {viewer {name inB}}".into())]
    );
}

#[test]
fn value_type_fields_only_another_owner_has_go_through_the_parent_entity() {
    // `category` is a value type in `c`, which alone has `details`: ask `c` for the product's
    // `category { details }` through the Product entity.
    let sg = supergraph(
        &["a", "c"],
        r#"
type Query @join__type(graph: A) @join__type(graph: C) {
  products: [Product] @join__field(graph: A)
}
type Product @join__type(graph: A, key: "id") @join__type(graph: C, key: "id") {
  id: ID!
  category: Category
}
type Category @join__type(graph: A, key: "id") @join__type(graph: C) {
  id: ID! @join__field(graph: A)
  details: String @join__field(graph: C)
}
"#,
    );
    let plan = plan_for(&sg, "{ products { category { id details } } }");
    let fetches = fetches(&sg, &plan);
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert_eq!(
        fetches[0],
        (
            "a".into(),
            "query {products {category {id} __typename id}}".into()
        )
    );
    assert_eq!(fetches[1].0, "c");
    assert!(
        fetches[1].1.contains("... on Product {category {details}}"),
        "{fetches:?}"
    );
    let FetchKind::Entity { type_name, .. } = &plan.fetches[1].kind else {
        panic!("expected an entity fetch");
    };
    assert_eq!(type_name.as_str(), "Product");
}

#[test]
fn variable_defaults_reach_the_subgraph() {
    let sg = supergraph(
        &["a"],
        r#"
type Query @join__type(graph: A) {
  comments(limit: Int!): [String] @join__field(graph: A)
}
"#,
    );
    let plan = plan_for(&sg, "query($limit: Int = 1) { comments(limit: $limit) }");
    assert_eq!(
        plan.fetches[0].operation,
        "query($limit: Int = 1) {comments(limit: $limit)}"
    );
}

#[test]
fn required_fields_with_arguments_are_aliased() {
    // Two requirements ask for `price` with different arguments, and the client for a third:
    // one subgraph operation carries all three under different response keys.
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  products: [Product] @join__field(graph: B)
}
type Product @join__type(graph: A, key: "upc") @join__type(graph: B, key: "upc") {
  upc: String!
  price(currency: String!): Int @join__field(graph: A, external: true) @join__field(graph: B)
  usd: Int @join__field(graph: A, requires: "price(currency: \"USD\")")
  eur: Int @join__field(graph: A, requires: "price(currency: \"EUR\")")
}
"#,
    );
    let plan = plan_for(&sg, r#"{ products { price(currency: "GBP") usd eur } }"#);
    let root = &plan.fetches[0].operation;
    assert!(root.contains(r#"price(currency: "GBP")"#), "{root}");
    let usd = root
        .find(r#": price(currency: "USD")"#)
        .expect("aliased USD price");
    let eur = root
        .find(r#": price(currency: "EUR")"#)
        .expect("aliased EUR price");
    assert_ne!(usd, eur);
    // Each requiring fetch gets its own representation, projected back to `price`.
    let representations: Vec<String> = plan.fetches[1..]
        .iter()
        .filter_map(|f| match &f.kind {
            FetchKind::Entity { representation, .. } => Some(representation.to_string()),
            FetchKind::Root => None,
        })
        .collect();
    assert_eq!(representations.len(), 2, "{representations:?}");
    assert!(
        representations
            .iter()
            .all(|r| r.contains("_required_price_") && r.contains("price(currency:")),
        "{representations:?}"
    );
}

#[test]
fn inaccessible_enum_values_never_reach_clients() {
    let sdl_types = r#"
type Query @join__type(graph: A) {
  users: [User] @join__field(graph: A)
}
type User @join__type(graph: A) { id: ID! kind: Kind }
enum Kind @join__type(graph: A) { REGULAR ANONYMOUS @inaccessible }
"#;
    let sg = supergraph_with_inaccessible(&["a"], sdl_types);
    let document =
        validate::parse_and_validate(&sg.api, "{ users { id kind } }").expect("valid operation");
    let operation = document.operations.get(None).expect("operation");
    let variables =
        apollo_compiler::request::coerce_variable_values(&sg.api, operation, &Default::default())
            .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    let data = gateway::json::Json::from(serde_json::json!({ "users": [
        { "id": "1", "kind": "REGULAR" },
        { "id": "2", "kind": "ANONYMOUS" }
    ]}));
    let mut errors = Vec::new();
    let shaped = gateway::pipeline::shape::shape(&sg, &normalized, &data, None, &mut errors, 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(shaped.as_bytes()).expect("JSON"),
        serde_json::json!({ "users": [
            { "id": "1", "kind": "REGULAR" },
            { "id": "2", "kind": null }
        ]})
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].path,
        Some(vec![
            serde_json::json!("users"),
            serde_json::json!(1),
            serde_json::json!("kind")
        ])
    );
}

fn supergraph_with_inaccessible(graphs: &[&str], types: &str) -> Supergraph {
    let types = format!(
        "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n{types}"
    );
    supergraph(graphs, &types)
}

#[test]
fn interface_fragments_split_where_the_subgraph_lacks_the_implementation() {
    // `Oven` implements `Node` only in `b`; `a` returns ovens in the union but would answer
    // `... on Node` with nothing for them.
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  products: [Product] @join__field(graph: A)
}
interface Node @join__type(graph: A) @join__type(graph: B) { id: ID! }
union Product @join__type(graph: A) @join__unionMember(graph: A, member: "Oven")
  @join__unionMember(graph: A, member: "Toaster") = Oven | Toaster
type Oven implements Node @join__implements(graph: B, interface: "Node")
  @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") { id: ID! }
type Toaster implements Node @join__implements(graph: A, interface: "Node")
  @join__type(graph: A, key: "id") { id: ID! }
"#,
    );
    let plan = plan_for(&sg, "{ products { ... on Node { id } } }");
    assert_eq!(
        fetches(&sg, &plan),
        [(
            "a".into(),
            "query {products {... on Oven {id} ... on Toaster {id} __typename}}".into()
        )]
    );
}

#[test]
fn fields_with_and_without_requirements_share_one_entity_fetch() {
    // A subgraph may resolve each reference once per operation (it may even have side
    // effects): the entity is sent once, with the required fields in its representation.
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  product: Product @join__field(graph: A)
}
type Product @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  price: Float @join__field(graph: A) @join__field(graph: B, external: true)
  isAvailable: Boolean @join__field(graph: B)
  isExpensive: Boolean @join__field(graph: B, requires: "price")
}
"#,
    );
    for query in [
        "{ product { isAvailable isExpensive } }",
        "{ product { isExpensive isAvailable } }",
    ] {
        let plan = plan_for(&sg, query);
        assert_eq!(plan.fetches.len(), 2, "{query}");
        let FetchKind::Entity { representation, .. } = &plan.fetches[1].kind else {
            panic!("expected an entity fetch");
        };
        assert_eq!(
            representation.to_string(),
            "{__typename id price}",
            "{query}"
        );
    }
}

#[test]
fn a_fetch_producing_requirements_never_carries_them() {
    // `author` in `d` requires `comments { authorId }`: `comments` comes from `d` itself and
    // `authorId` from `c`, so the fetch for `author` must wait for both and stay separate.
    let sg = supergraph(
        &["c", "d"],
        r#"
type Query @join__type(graph: C) @join__type(graph: D) {
  feed: [Post] @join__field(graph: C)
}
type Post @join__type(graph: C, key: "id") @join__type(graph: D, key: "id") {
  id: ID!
  author: String @join__field(graph: D, requires: "comments(limit: 3) { authorId }")
  comments(limit: Int!): [Comment] @join__field(graph: D)
}
type Comment @join__type(graph: C, key: "id") @join__type(graph: D, key: "id") {
  id: ID!
  authorId: ID @join__field(graph: C) @join__field(graph: D, external: true)
}
"#,
    );
    let plan = plan_for(&sg, "{ feed { author comments(limit: 1) { id } } }");
    for (i, fetch) in plan.fetches.iter().enumerate() {
        assert!(!fetch.depends_on.contains(&i), "fetch {i} waits for itself");
    }
    let author = plan
        .fetches
        .iter()
        .position(|f| f.operation.contains("{author}"))
        .expect("a fetch for author");
    let comments_hop = plan
        .fetches
        .iter()
        .position(|f| f.operation.contains("_required_comments_"))
        .expect("a fetch for the required comments");
    assert_ne!(author, comments_hop);
    assert!(plan.fetches[author].depends_on.contains(&comments_hop));
}

#[test]
fn provides_on_a_fragment_covers_only_that_type() {
    // `b` provides `title` for books only: a query wanting movie titles too must not be sent
    // there whole, and `a` plus entity fetches to `c` answer it.
    let sg = supergraph(
        &["a", "b", "c"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) @join__type(graph: C) {
  media: [Media] @join__field(graph: A) @join__field(graph: B, provides: "... on Book { title }")
}
union Media @join__type(graph: A) @join__type(graph: B)
  @join__unionMember(graph: A, member: "Book") @join__unionMember(graph: B, member: "Book")
  @join__unionMember(graph: A, member: "Movie") @join__unionMember(graph: B, member: "Movie")
  = Book | Movie
type Book @join__type(graph: A, key: "id") @join__type(graph: B, key: "id")
  @join__type(graph: C, key: "id") {
  id: ID!
  title: String @join__field(graph: B, external: true) @join__field(graph: C)
}
type Movie @join__type(graph: A, key: "id") @join__type(graph: B, key: "id")
  @join__type(graph: C, key: "id") {
  id: ID!
  title: String @join__field(graph: C)
}
"#,
    );
    let plan = plan_for(
        &sg,
        "{ media { ... on Book { title } ... on Movie { title } } }",
    );
    let fetches = fetches(&sg, &plan);
    assert!(
        fetches
            .iter()
            .all(|(_, op)| !op.contains("... on Movie {title") || op.contains("_entities")),
        "{fetches:?}"
    );
    // Books alone can come from `b` in one request.
    let plan = plan_for(&sg, "{ media { ... on Book { title } } }");
    assert_eq!(self::fetches(&sg, &plan).len(), 1);
    assert_eq!(sg.subgraphs[plan.fetches[0].subgraph].name, "b");
}

#[test]
fn fields_typed_differently_in_the_subgraph_are_aliased() {
    // `b` declares `User.id: ID!` but `Admin.id: ID`: side by side in one selection they
    // would conflict, so the planner aliases the one whose type differs.
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  accounts: [Account!]! @join__field(graph: B)
}
union Account @join__type(graph: B) @join__unionMember(graph: B, member: "User")
  @join__unionMember(graph: B, member: "Admin") = User | Admin
type Admin @join__type(graph: B) { id: ID name: String }
type User @join__type(graph: A) @join__type(graph: B, key: "id") {
  id: ID @join__field(graph: A, type: "ID") @join__field(graph: B, type: "ID!")
  name: String @join__field(graph: B)
}
"#,
    );
    let plan = plan_for(
        &sg,
        "{ accounts { ... on User { id name } ... on Admin { id name } } }",
    );
    let fetches = fetches(&sg, &plan);
    assert_eq!(
        fetches,
        [(
            "b".into(),
            "query {accounts {... on User {_gw_typed_id: id name} ... on Admin {id name} __typename}}"
                .into()
        )]
    );
    assert!(plan.fetches[0].renames);
}

#[test]
fn shared_field_reached_by_a_hop_is_split_between_its_owners() {
    // `category` is a value type in `a` and `b`: `details` only `a` has, `id` only `b`, and
    // `name` lives in `c`, reachable through the `id` that `b` gives.
    let sg = supergraph(
        &["a", "b", "c", "d"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) @join__type(graph: C) @join__type(graph: D) {
  product: Product @join__field(graph: D)
}
type Product @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") @join__type(graph: D, key: "id") {
  id: ID @join__field(graph: A, external: true) @join__field(graph: B, external: true) @join__field(graph: D)
  category: Category @join__field(graph: A) @join__field(graph: B)
}
type Category @join__type(graph: A) @join__type(graph: B) @join__type(graph: C, key: "id") {
  details: String @join__field(graph: A)
  id: ID @join__field(graph: B) @join__field(graph: C)
  name: String @join__field(graph: C)
}
"#,
    );
    let plan = plan_for(&sg, "{ product { category { id name details } } }");
    let fetches = fetches(&sg, &plan);
    let names: Vec<&str> = fetches.iter().map(|(g, _)| g.as_str()).collect();
    assert!(
        names.contains(&"a") && names.contains(&"b") && names.contains(&"c"),
        "{fetches:?}"
    );
    let a = fetches
        .iter()
        .find(|(g, _)| g == "a")
        .map(|(_, op)| op.clone());
    assert!(
        a.is_some_and(|op| op.contains("category {details}")),
        "{fetches:?}"
    );
}

#[test]
fn interface_field_overridden_for_one_implementation_is_routed_per_type() {
    let sg = supergraph(
        &["a", "b"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) {
  feed: [Post] @join__field(graph: A)
}
interface Post @join__type(graph: A) @join__type(graph: B) {
  id: ID!
  createdAt: String!
}
type ImagePost implements Post @join__implements(graph: A, interface: "Post")
  @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  createdAt: String! @join__field(graph: A, usedOverridden: true) @join__field(graph: B, override: "a")
}
"#,
    );
    let plan = plan_for(&sg, "{ feed { id createdAt } }");
    let fetches = fetches(&sg, &plan);
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert!(!fetches[0].1.contains("createdAt"), "{fetches:?}");
    assert_eq!(fetches[1].0, "b");
    assert!(
        fetches[1].1.contains("... on ImagePost {createdAt}"),
        "{fetches:?}"
    );
}

#[test]
fn shareable_root_field_prefers_the_owner_that_provides_more() {
    // Both can answer `media`, neither all of the selection (`age` lives in `c`): `a` only
    // its `id`, `b` also the animals with their names (it provides them). `b` answers,
    // hopping to `c` for `age`, rather than `a` (which cannot produce the animals).
    let sg = supergraph(
        &["a", "b", "c"],
        r#"
type Query @join__type(graph: A) @join__type(graph: B) @join__type(graph: C) {
  media: Media @join__field(graph: A) @join__field(graph: B, provides: "animals { name }")
}
type Media @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  animals: [Animal] @join__field(graph: B)
  title: String @join__field(graph: A)
}
type Animal @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") @join__type(graph: C, key: "id") {
  id: ID!
  name: String @join__field(graph: A) @join__field(graph: B, external: true)
  age: Int @join__field(graph: C)
}
"#,
    );
    let plan = plan_for(&sg, "{ media { id animals { name age } } }");
    let fetches = fetches(&sg, &plan);
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    assert_eq!(fetches[0].0, "b");
    assert!(
        fetches[0].1.starts_with("query {media {id animals {name"),
        "{fetches:?}"
    );
    assert_eq!(fetches[1].0, "c");
}

#[test]
fn objects_of_an_inaccessible_type_become_null() {
    let sdl_types = r#"
type Query @join__type(graph: A) {
  items: [Item] @join__field(graph: A)
}
interface Item @join__type(graph: A) { id: ID! }
type Public implements Item @join__implements(graph: A, interface: "Item") @join__type(graph: A) { id: ID! }
type Secret implements Item @join__implements(graph: A, interface: "Item") @join__type(graph: A) @inaccessible { id: ID! }
"#;
    let sg = supergraph_with_inaccessible(&["a"], sdl_types);
    let document = validate::parse_and_validate(&sg.api, "{ items { __typename id } }")
        .expect("valid operation");
    let operation = document.operations.get(None).expect("operation");
    let variables =
        apollo_compiler::request::coerce_variable_values(&sg.api, operation, &Default::default())
            .expect("variables");
    let normalized =
        normalize::normalize(&sg.api, &document, operation, &variables).expect("normalized");
    let data = gateway::json::Json::from(serde_json::json!({ "items": [
        { "__typename": "Public", "id": "1" },
        { "__typename": "Secret", "id": "2" }
    ]}));
    let mut errors = Vec::new();
    let shaped = gateway::pipeline::shape::shape(&sg, &normalized, &data, None, &mut errors, 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(shaped.as_bytes()).expect("JSON"),
        serde_json::json!({ "items": [{ "__typename": "Public", "id": "1" }, null] })
    );
}
