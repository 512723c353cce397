//! Partial unions: a `@shareable` field returning a union whose members differ between the
//! subgraphs that resolve it. `agenda` knows `Item = Break | Keynote`, `venues` knows
//! `Item = Break | Workshop`; both resolve the entity `Hall` and its shareable `programme`.
//!
//! A shareable field may be answered by any subgraph that resolves it, so below it only the
//! members every such subgraph can return are selected: fragments on the others would make the
//! answer depend on which subgraph the planner happened to pick. Where the path is tied to one
//! subgraph (a field only it has, or a value type no hop can reach elsewhere), all of that
//! subgraph's members are selected. Real async-graphql subgraphs, composed by the gateway.

mod support;

use gateway::Config;
use serde_json::{Value, json};
use support::{SubgraphServer, serve_subgraph, spawn_gateway};

mod agenda {
    use async_graphql::{
        EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject, Union,
    };

    #[derive(SimpleObject, Clone)]
    #[graphql(shareable)]
    pub struct Break {
        pub minutes: i32,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Keynote {
        pub speaker: Option<String>,
    }

    #[derive(Union, Clone)]
    #[graphql(name = "Item")]
    pub enum Item {
        Break(Break),
        Keynote(Keynote),
    }

    #[derive(SimpleObject, Clone)]
    #[graphql(shareable)]
    pub struct Programme {
        pub items: Vec<Item>,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Hall {
        pub id: ID,
        #[graphql(shareable)]
        pub programme: Option<Programme>,
    }

    fn programme() -> Programme {
        Programme {
            items: vec![
                Item::Break(Break { minutes: 15 }),
                Item::Keynote(Keynote {
                    speaker: Some("Grace".into()),
                }),
            ],
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        /// A hall only this subgraph lists; its `programme` is shareable with `venues`.
        async fn agenda_hall(&self) -> Option<Hall> {
            Some(Hall {
                id: ID::from("h1"),
                programme: Some(programme()),
            })
        }

        /// A programme only this subgraph has and no hop can reach elsewhere: a value type.
        async fn opening_day(&self) -> Option<Programme> {
            Some(programme())
        }

        #[graphql(entity)]
        async fn find_hall_by_id(&self, id: ID) -> Option<Hall> {
            (id == "h1").then(|| Hall {
                id,
                programme: Some(programme()),
            })
        }
    }

    pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish()
    }
}

mod venues {
    use async_graphql::{
        EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject, Union,
    };

    #[derive(SimpleObject, Clone)]
    #[graphql(shareable)]
    pub struct Break {
        pub minutes: i32,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Workshop {
        pub room: Option<String>,
    }

    #[derive(Union, Clone)]
    #[graphql(name = "Item")]
    pub enum Item {
        Break(Break),
        Workshop(Workshop),
    }

    #[derive(SimpleObject, Clone)]
    #[graphql(shareable)]
    pub struct Programme {
        pub items: Vec<Item>,
    }

    #[derive(SimpleObject, Clone)]
    pub struct Hall {
        pub id: ID,
        #[graphql(shareable)]
        pub programme: Option<Programme>,
        /// Only this subgraph has it: reaching it from `agenda` takes an entity hop here.
        pub workshop_programme: Option<Programme>,
    }

    fn programme() -> Programme {
        Programme {
            items: vec![
                Item::Break(Break { minutes: 15 }),
                Item::Workshop(Workshop {
                    room: Some("Room 2".into()),
                }),
            ],
        }
    }

    fn hall(id: ID) -> Hall {
        Hall {
            id,
            programme: Some(programme()),
            workshop_programme: Some(programme()),
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn venue_hall(&self) -> Option<Hall> {
            Some(hall(ID::from("h1")))
        }

        #[graphql(entity)]
        async fn find_hall_by_id(&self, id: ID) -> Option<Hall> {
            (id == "h1").then(|| hall(id))
        }
    }

    pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish()
    }
}

struct Stack {
    agenda: SubgraphServer,
    venues: SubgraphServer,
    url: String,
    http: reqwest::Client,
}

async fn start() -> Stack {
    let agenda = serve_subgraph(agenda::schema(), None).await;
    let venues = serve_subgraph(venues::schema(), None).await;
    // Composed from the subgraphs' own SDL, so the union's members per subgraph come from
    // what each one really declares.
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("agenda".into(), agenda.url.clone()),
        ("venues".into(), venues.url.clone()),
    ];
    let gateway = spawn_gateway(config).await;
    Stack {
        agenda,
        venues,
        url: format!("http://{gateway}/graphql"),
        http: reqwest::Client::new(),
    }
}

impl Stack {
    async fn query(&self, query: &str) -> Value {
        self.http
            .post(&self.url)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("gateway request")
            .json()
            .await
            .expect("JSON body")
    }

    /// The operations sent to a subgraph, `_service` (composition) left out.
    fn operations(server: &SubgraphServer) -> Vec<String> {
        server
            .requests()
            .into_iter()
            .map(|r| r.query)
            .filter(|q| !q.contains("_service"))
            .collect()
    }
}

const ITEMS: &str = "items { __typename ... on Break { minutes } ... on Keynote { speaker } ... on Workshop { room } }";

#[tokio::test]
async fn shareable_entity_field_selects_only_members_every_owner_has() {
    let stack = start().await;
    let body = stack
        .query(&format!("{{ agendaHall {{ programme {{ {ITEMS} }} }} }}"))
        .await;
    // `programme` could come from either subgraph (`Hall` is an entity in both): `Keynote`
    // is not a member in `venues`, so its fields are not selected even though `agenda`,
    // which answers here, has them. The object still reports its type. (The member fields
    // are nullable: a non-null one left unselected would null its parent, with an error.)
    assert_eq!(
        body,
        json!({ "data": { "agendaHall": { "programme": { "items": [
            { "__typename": "Break", "minutes": 15 },
            { "__typename": "Keynote", "speaker": null }
        ]}}}})
    );
    let sent = Stack::operations(&stack.agenda);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!sent[0].contains("Keynote"), "{sent:?}");
    assert!(!sent[0].contains("Workshop"), "{sent:?}");
    assert!(Stack::operations(&stack.venues).is_empty());
}

#[tokio::test]
async fn field_reached_by_a_hop_selects_the_target_subgraphs_members() {
    let stack = start().await;
    let body = stack
        .query(&format!(
            "{{ agendaHall {{ workshopProgramme {{ {ITEMS} }} }} }}"
        ))
        .await;
    // Only `venues` resolves `workshopProgramme`: its members are all selected there.
    assert_eq!(
        body,
        json!({ "data": { "agendaHall": { "workshopProgramme": { "items": [
            { "__typename": "Break", "minutes": 15 },
            { "__typename": "Workshop", "room": "Room 2" }
        ]}}}})
    );
    let sent = Stack::operations(&stack.venues);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("... on Workshop {room}"), "{sent:?}");
}

#[tokio::test]
async fn value_type_only_one_subgraph_returns_keeps_all_its_members() {
    let stack = start().await;
    let body = stack
        .query(&format!("{{ openingDay {{ {ITEMS} }} }}"))
        .await;
    // `Programme` is shareable but not an entity: no hop could take this path to `venues`,
    // so everything `agenda` can return is selected.
    assert_eq!(
        body,
        json!({ "data": { "openingDay": { "items": [
            { "__typename": "Break", "minutes": 15 },
            { "__typename": "Keynote", "speaker": "Grace" }
        ]}}})
    );
    let body = stack
        .query("{ openingDay { items { __typename ... on Keynote { speaker } } } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "openingDay": { "items": [
            { "__typename": "Break" },
            { "__typename": "Keynote", "speaker": "Grace" }
        ]}}})
    );
}
