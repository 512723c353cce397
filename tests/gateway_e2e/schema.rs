//! `schema.graphql` at the repository root is the gateway's public API schema. It must match
//! what composing the services gives, offline (as `conftools compose` does) and online (as the
//! gateway does from the running services' `_service { sdl }`).

use std::process::Command;

use gateway::supergraph::compose::SubgraphSdl;
use serde_json::json;

use crate::support::Stack;

fn committed_schema() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {path} ({e}): run `{}`",
            conftools::compose::COMPOSE_COMMAND
        )
    })
}

#[test]
fn schema_graphql_is_up_to_date() {
    let composed = conftools::compose::api_schema().expect("ticketing and the CRM compose");
    // Not assert_eq!: a 600-line diff helps less than the command that fixes it.
    assert!(
        committed_schema() == composed,
        "schema.graphql is stale: run `{}` and commit the result",
        conftools::compose::COMPOSE_COMMAND
    );
}

#[tokio::test]
async fn the_running_services_compose_to_the_committed_schema() {
    let stack = Stack::start().await;
    let mut subgraphs = Vec::new();
    for (name, task) in [
        (conftools::compose::TICKETING, &stack.services.ticketing),
        (conftools::compose::CRM, &stack.services.crm),
    ] {
        let url = task.graphql_url();
        let body = testkit::gql(
            &reqwest::Client::new(),
            &url,
            None,
            "{ _service { sdl } }",
            json!({}),
        )
        .await;
        let sdl = body["data"]["_service"]["sdl"]
            .as_str()
            .unwrap_or_else(|| panic!("no SDL from {name}: {body:#}"))
            .to_owned();
        subgraphs.push(SubgraphSdl {
            name: name.to_owned(),
            url,
            sdl,
        });
    }
    let online = conftools::compose::api_schema_of(&subgraphs).expect("composes");
    assert!(
        online == conftools::compose::api_schema().expect("composes"),
        "the services' `_service {{ sdl }}` differs from the SDL `conftools compose` exports"
    );

    // And the gateway in front of them serves that schema's root fields.
    let body = stack
        .gql(
            None,
            "{ __schema { queryType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    let names = |kind: &str| -> Vec<String> {
        body["data"]["__schema"][kind]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no {kind}: {body:#}"))
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect()
    };
    let queries = names("queryType");
    assert!(
        queries.contains(&"ticketPurchase".to_owned()) && queries.contains(&"sponsors".to_owned())
    );
    assert!(
        !queries.contains(&"_entities".to_owned()) && !queries.contains(&"_service".to_owned())
    );
    assert_eq!(names("subscriptionType"), ["ticketEvents", "sponsorEvents"]);
}

#[test]
fn compose_check_fails_on_a_stale_file_and_says_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("schema.graphql");
    let compose = |check: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conftools"));
        command.arg("compose").arg("--output").arg(&output);
        if check {
            command.arg("--check");
        }
        command.output().expect("conftools compose runs")
    };

    let missing = compose(true);
    assert!(
        !missing.status.success(),
        "a missing file is not up to date"
    );

    assert!(compose(false).status.success());
    assert_eq!(
        std::fs::read_to_string(&output).expect("written"),
        committed_schema()
    );
    assert!(compose(true).status.success());

    std::fs::write(&output, "type Query { stale: Int }\n").expect("write");
    let stale = compose(true);
    assert!(!stale.status.success());
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(
        stderr.contains("stale") && stderr.contains(conftools::compose::COMPOSE_COMMAND),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&output).expect("read"),
        "type Query { stale: Int }\n",
        "--check writes nothing"
    );
}
