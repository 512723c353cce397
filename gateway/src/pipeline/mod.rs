//! The request pipeline, one module per stage:
//! parse + validate (`validate`) → normalise (`normalize`) → plan (`plan`, cached in
//! `plan_cache`) → execute (`execute`) → shape (`shape`).

pub mod cost;
pub mod defer;
pub mod document_cache;
pub mod execute;
pub mod normalize;
pub mod plan;
pub mod plan_cache;
pub mod selection;
pub mod shape;
pub mod validate;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::JsonMap;
use axum::http::{HeaderMap, header};
use platform::client_address::TrustedProxies;
use platform::rate_limit::{MutationLimiter, RateKey};
use serde::Deserialize;

use crate::authentication::BearerTokens;
use crate::forwarded_headers::{ClientAddress, ForwardedHeaders, HeaderPropagation};
use crate::in_flight::InFlight;
use crate::metrics::Metrics;
use crate::persisted_queries::{PersistedQueries, PersistedQueryError};
use crate::response::{GraphQLError, Response};
use crate::shared_requests::SharedClientRequests;
use crate::subgraph_client::{SubgraphClient, SubgraphResponse};
use crate::subscriptions::shared::{SharingSettings, SubscriptionGroups};
use crate::subscriptions::ws::OpenSockets;
use crate::supergraph::Supergraph;
use crate::trusted_documents::TrustedDocuments;
use document_cache::DocumentCache;
use execute::ExecutionContext;
use normalize::NormalizedOperation;
use plan::QueryPlan;
use plan_cache::PlanCache;

/// A GraphQL-over-HTTP request body (or GET parameters).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    pub query: Option<String>,
    /// A trusted document's id instead of its text (GraphQL over HTTP's persisted documents;
    /// Relay calls it `doc_id`).
    #[serde(alias = "doc_id")]
    pub document_id: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<serde_json::Value>,
    pub extensions: Option<serde_json::Value>,
}

/// Limits that protect the gateway and the subgraphs from abusive operations.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub document: validate::DocumentLimits,
    pub introspection: bool,
    /// Operations one WebSocket may run at once: each subscription holds an upstream socket
    /// to a subgraph, so one client must not open hundreds.
    pub max_operations_per_socket: usize,
    /// WebSocket connections one client address may hold at once.
    pub max_sockets_per_address: usize,
    /// How long one WebSocket message may take to write before the client counts as stalled
    /// and its connection is closed.
    pub websocket_send_timeout: std::time::Duration,
    /// Operations one batch (a JSON array) may hold.
    pub max_batch: usize,
    /// Largest request body, and largest message a WebSocket client may send.
    pub max_body_bytes: usize,
    /// How long a WebSocket client has to send `connection_init`.
    pub websocket_init_timeout: std::time::Duration,
    pub cost: cost::CostLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Get,
    Post,
    /// WebSocket or SSE over POST: every operation type, subscriptions included.
    Stream,
    /// SSE over GET: queries and subscriptions; GET stays free of side effects.
    StreamGet,
}

/// An operation that passed every check and has its plan: what execution needs.
pub struct Prepared {
    pub normalized: NormalizedOperation,
    pub plan: Arc<QueryPlan>,
    /// The coerced variables, as JSON for forwarding to subgraphs.
    pub variables: serde_json::Map<String, serde_json::Value>,
    introspection: Option<apollo_compiler::response::ExecutionResponse>,
}

impl Prepared {
    pub fn operation_type(&self) -> OperationType {
        self.normalized.operation_type
    }

    /// The introspection part's data, for the shaper; its errors join `errors`.
    fn introspection_answer(&self, errors: &mut Vec<GraphQLError>) -> Option<&JsonMap> {
        let response = self.introspection.as_ref()?;
        errors.extend(
            response
                .errors
                .iter()
                .cloned()
                .map(GraphQLError::from_compiler),
        );
        response.data.as_ref()
    }
}

/// What the HTTP layer needs to pick a status code.
#[derive(Debug)]
pub enum Outcome {
    /// Execution ran (possibly with field errors).
    Executed(Response),
    /// The request was rejected before execution; the response has no `data`.
    Rejected(Response),
    /// A mutation was sent over GET.
    MethodNotAllowed(Response),
    /// A persisted query's hash the gateway does not know: HTTP 200 whatever the media type,
    /// so that Apollo Client's persisted-queries link retries with the document (it turns
    /// persisted queries off after a 400).
    PersistedQueryNotFound(Response),
    /// The client's mutation rate limit refused it: HTTP 429, `Retry-After` when waiting helps.
    RateLimited {
        response: Response,
        retry_after_secs: Option<u64>,
    },
}

impl Outcome {
    /// The errors to send where no HTTP status can be set (a WebSocket or SSE operation).
    pub fn into_errors(self) -> Vec<GraphQLError> {
        match self {
            Outcome::Executed(response)
            | Outcome::Rejected(response)
            | Outcome::MethodNotAllowed(response)
            | Outcome::PersistedQueryNotFound(response)
            | Outcome::RateLimited { response, .. } => response.errors,
        }
    }
}

/// Automatic persisted queries remembered unless configured otherwise
/// (`--persisted-query-cache-size`): far more distinct operations than a frontend sends.
pub const DEFAULT_PERSISTED_QUERIES: usize = 1_000;

pub struct Pipeline {
    supergraph: Arc<Supergraph>,
    client: SubgraphClient,
    /// Identical client queries in flight at the same moment, executed once; `None` when off.
    client_requests: Option<SharedClientRequests>,
    /// Identical subscriptions sharing one upstream subscription; `None` when off.
    subscription_groups: Option<Arc<SubscriptionGroups>>,
    /// WebSocket connections open per client address.
    open_sockets: Arc<OpenSockets>,
    /// Where long-lived streams (WebSocket connections, shared subscriptions) run; `None`:
    /// on the runtime that accepted them.
    streams: Option<tokio::runtime::Handle>,
    plans: PlanCache,
    documents: DocumentCache,
    limits: Limits,
    propagation: HeaderPropagation,
    tokens: BearerTokens,
    /// The mutation rate limit per client; `None` when off.
    mutation_rate: Option<MutationRate>,
    persisted_queries: PersistedQueries,
    trusted_documents: TrustedDocuments,
}

/// The gateway's own mutation rate limit: the services' rule (`platform::rate_limit`), applied
/// at the door so that a client over its rate gets 429 and `Retry-After` from the gateway and
/// costs no subgraph request.
pub struct MutationRate {
    pub limiter: MutationLimiter,
    /// Proxies in front of the gateway whose `X-Forwarded-For`/`Forwarded` names the client.
    pub proxies: TrustedProxies,
}

fn rejected(message: impl Into<String>, code: &str) -> Outcome {
    Outcome::Rejected(Response::request_error(vec![
        GraphQLError::new(message).with_code(code),
    ]))
}

impl Pipeline {
    pub fn new(
        supergraph: Arc<Supergraph>,
        client: SubgraphClient,
        limits: Limits,
        plan_cache_size: usize,
    ) -> Self {
        let open_sockets = OpenSockets::new(limits.max_sockets_per_address.max(1));
        Pipeline {
            open_sockets,
            supergraph,
            client,
            plans: PlanCache::new(plan_cache_size),
            // Every cached plan comes from some document; as many documents as plans.
            documents: DocumentCache::new(plan_cache_size),
            limits,
            client_requests: None,
            subscription_groups: None,
            streams: None,
            propagation: HeaderPropagation::default(),
            tokens: BearerTokens::default(),
            mutation_rate: None,
            persisted_queries: PersistedQueries::new(DEFAULT_PERSISTED_QUERIES),
            trusted_documents: TrustedDocuments::none(),
        }
    }

    /// Knows the documents of a manifest by id and, when it is enforced, runs nothing else
    /// (see [`TrustedDocuments`]).
    pub fn trust_documents(mut self, documents: TrustedDocuments) -> Self {
        self.trusted_documents = documents;
        self
    }

    /// Remembers up to `capacity` automatic persisted queries; `0` turns them off.
    pub fn persist_queries(mut self, capacity: usize) -> Self {
        self.persisted_queries = PersistedQueries::new(capacity);
        self
    }

    /// Limits how many mutations each client may send (see [`MutationRate`]).
    pub fn limit_mutation_rate(mut self, rate: MutationRate) -> Self {
        self.mutation_rate = Some(rate);
        self
    }

    pub fn mutation_rate(&self) -> Option<&MutationRate> {
        self.mutation_rate.as_ref()
    }

    /// Where a request came from, and whose mutation bucket it draws from: a verified token's
    /// subject, else the client's address (through trusted proxies).
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> ClientAddress {
        let client = ClientAddress::new(headers, peer);
        let Some(rate) = &self.mutation_rate else {
            return client;
        };
        let key = match self.tokens.subject(headers.get(header::AUTHORIZATION)) {
            Some(subject) => RateKey::Subject(Arc::from(subject)),
            None => rate
                .proxies
                .client_address(peer.map(|ip| SocketAddr::new(ip, 0)), headers)
                .map_or(RateKey::Unknown, |ip| {
                    RateKey::Address(platform::client_address::ClientAddress::new(ip))
                }),
        };
        client.with_rate_key(key)
    }

    /// Takes one mutation from the client's bucket, or the refusal to answer.
    pub fn admit_mutation(&self, client: &ClientAddress) -> Result<(), Outcome> {
        let Some(rate) = &self.mutation_rate else {
            return Ok(());
        };
        rate.limiter.check(client.rate_key(), 1).map_err(|refusal| {
            self.metrics().mutation_rate_limited();
            Outcome::RateLimited {
                response: Response::request_error(vec![
                    GraphQLError::new(refusal.message()).with_code("RATE_LIMITED"),
                ]),
                retry_after_secs: refusal.retry_after_secs(),
            }
        })
    }

    /// Verifies clients' bearer tokens before anything else (see [`BearerTokens`]).
    pub fn verify_bearer_tokens(mut self, tokens: BearerTokens) -> Self {
        self.tokens = tokens;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn bearer_tokens(&self) -> &BearerTokens {
        &self.tokens
    }

    /// Forwards these client request headers to subgraphs besides `Authorization`.
    pub fn propagate_headers(mut self, propagation: HeaderPropagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// What a client request sends on to subgraphs; taken once per request.
    pub fn forwarded_headers(&self, headers: &HeaderMap) -> ForwardedHeaders {
        self.propagation.from_request(headers)
    }

    pub fn header_propagation(&self) -> &HeaderPropagation {
        &self.propagation
    }

    /// Executes identical client queries that are in flight at the same moment once, and
    /// gives each client the same answer.
    pub fn share_identical_client_requests(mut self) -> Self {
        self.client_requests = Some(InFlight::default());
        self
    }

    pub fn shared_client_requests(&self) -> Option<&SharedClientRequests> {
        self.client_requests.as_ref()
    }

    /// Lets identical subscriptions share one upstream subscription and one execution per
    /// event (see [`SubscriptionGroups`]).
    pub fn share_identical_subscriptions(mut self, settings: SharingSettings) -> Self {
        self.subscription_groups = Some(SubscriptionGroups::new(settings));
        self
    }

    /// Runs WebSocket connections and shared subscriptions on `runtime` (see
    /// [`crate::StreamingRuntime`]).
    pub fn stream_on(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.streams = Some(runtime);
        self
    }

    /// Spawns a long-lived stream task where streams run.
    pub fn spawn_stream<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.streams {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }

    pub fn open_sockets(&self) -> &Arc<OpenSockets> {
        &self.open_sockets
    }

    pub fn subscription_groups(&self) -> Option<&Arc<SubscriptionGroups>> {
        self.subscription_groups.as_ref()
    }

    pub fn client(&self) -> &SubgraphClient {
        &self.client
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        self.client.metrics()
    }

    pub fn supergraph(&self) -> &Supergraph {
        &self.supergraph
    }

    /// Number of cached query plans (observability, tests).
    pub fn cached_plans(&self) -> usize {
        self.plans.len()
    }

    /// Number of cached parsed-and-validated documents (observability, tests).
    pub fn cached_documents(&self) -> usize {
        self.documents.len()
    }

    pub async fn handle(
        &self,
        request: GraphQLRequest,
        transport: Transport,
        forwarded: &ForwardedHeaders,
        client: &ClientAddress,
    ) -> Outcome {
        let prepared = match self.prepare(request, transport) {
            Ok(prepared) => prepared,
            Err(outcome) => return outcome,
        };
        self.handle_prepared(&prepared, forwarded, client).await
    }

    /// [`Pipeline::handle`] once the operation is prepared: a mutation passes the client's
    /// rate limit first. Deferred fragments, if any, are part of the one response.
    pub async fn handle_prepared(
        &self,
        prepared: &Prepared,
        forwarded: &ForwardedHeaders,
        client: &ClientAddress,
    ) -> Outcome {
        if prepared.operation_type() == OperationType::Mutation {
            if let Err(refused) = self.admit_mutation(client) {
                return refused;
            }
            let forwarded = forwarded.with_client(client);
            return Outcome::Executed(self.execute(prepared, &forwarded, None).await);
        }
        Outcome::Executed(self.execute(prepared, forwarded, None).await)
    }

    fn execution_context<'a>(
        &'a self,
        prepared: &'a Prepared,
        forwarded: &'a ForwardedHeaders,
    ) -> ExecutionContext<'a> {
        ExecutionContext {
            supergraph: &self.supergraph,
            client: &self.client,
            variables: &prepared.variables,
            forwarded,
        }
    }

    /// Runs a query with active `@defer` fragments and sends its payloads on `payloads` as
    /// they are ready (see [`defer`]): the first once the non-deferred part has its data, then
    /// one per batch of fragments whose fetches have answered. Stops when the receiver is
    /// gone. A prepared operation without deferred fragments gets its one payload.
    pub async fn execute_deferred(
        &self,
        prepared: &Prepared,
        forwarded: &ForwardedHeaders,
        format: defer::Format,
        payloads: &tokio::sync::mpsc::Sender<Vec<u8>>,
    ) {
        let sg = &*self.supergraph;
        let Some(deferred) = prepared.normalized.deferred.as_deref() else {
            let response = self.execute(prepared, forwarded, None).await;
            let _ = payloads.send(response.into_json()).await;
            return;
        };
        let ctx = self.execution_context(prepared, forwarded);
        let plan = &prepared.plan;
        let initial = defer::needs(plan, &[], &deferred.initial);
        let mut execution = execute::Execution::new(plan, &ctx, None);
        while execution.step(|i| initial[i]).await.is_some() {}
        let mut errors = execution.errors_since(0).to_vec();
        let errors_sent = errors.len();
        let introspection_data = prepared.introspection_answer(&mut errors);
        let data = shape::shape_selection(
            sg,
            prepared.normalized.root_type.as_str(),
            &deferred.initial,
            execution.data(),
            introspection_data,
            &mut errors,
            0,
        );
        let mut later = defer::Payloads::new(
            sg,
            plan,
            deferred,
            format,
            &initial,
            data.as_bytes(),
            execution.data(),
            errors_sent,
        );
        if payloads
            .send(later.initial(data.as_bytes(), &errors))
            .await
            .is_err()
        {
            return;
        }
        let mut everything_ran = false;
        while !later.is_done() {
            if let Some(payload) = later.next(&execution, everything_ran) {
                if payloads.send(payload).await.is_err() {
                    return;
                }
                continue;
            }
            everything_ran = execution.step(|_| true).await.is_none();
        }
    }

    /// The type of the operation a request runs, when its document is valid (parsed once:
    /// the document cache keeps it for the request's own preparation).
    pub fn operation_type(&self, request: &GraphQLRequest) -> Option<OperationType> {
        // A document sent by id or hash is looked up (without remembering anything).
        let resolved;
        let request = if request.query.is_none() {
            let mut copy = request.clone();
            if !self.trusted_documents.resolve(&mut copy) {
                self.persisted_queries.resolve(&mut copy).ok()?;
            }
            resolved = copy;
            &resolved
        } else {
            request
        };
        let query = request.query.as_deref()?;
        let document = self
            .documents
            .get_or_parse(query, || {
                validate::parse_within(&self.supergraph.api, query, &self.limits.document)
            })
            .ok()?;
        document
            .operations
            .get(request.operation_name.as_deref())
            .ok()
            .map(|operation| operation.operation_type)
    }

    /// Runs every stage before execution: parse, validate, check the operation against the
    /// transport and the limits, coerce variables, normalise, plan (cached), and answer the
    /// introspection part. Rejections come back as the `Outcome` to send.
    pub fn prepare(
        &self,
        mut request: GraphQLRequest,
        transport: Transport,
    ) -> Result<Prepared, Outcome> {
        let sg = &*self.supergraph;
        // A trusted document's id is resolved first: it needs no persisted-query round trip.
        let trusted = self.trusted_documents.resolve(&mut request);
        if !trusted && let Err(error) = self.persisted_queries.resolve(&mut request) {
            return Err(match error {
                PersistedQueryError::NotFound => {
                    Outcome::PersistedQueryNotFound(Response::request_error(vec![
                        error.into_graphql_error(),
                    ]))
                }
                refused => {
                    Outcome::Rejected(Response::request_error(vec![refused.into_graphql_error()]))
                }
            });
        }
        if let Err(error) = self.trusted_documents.check(&request) {
            return Err(Outcome::Rejected(Response::request_error(vec![error])));
        }
        let Some(query) = request.query.as_deref() else {
            return Err(rejected("Must provide query string.", "BAD_REQUEST"));
        };
        let document = match self.documents.get_or_parse(query, || {
            validate::parse_within(&sg.api, query, &self.limits.document)
        }) {
            Ok(document) => document,
            Err(errors) => return Err(Outcome::Rejected(Response::request_error(errors))),
        };
        let operation = match document.operations.get(request.operation_name.as_deref()) {
            Ok(operation) => operation,
            Err(error) => {
                return Err(Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources))
                        .with_code("GRAPHQL_VALIDATION_FAILED"),
                ])));
            }
        };
        match (operation.operation_type, transport) {
            (OperationType::Mutation, Transport::Get | Transport::StreamGet) => {
                return Err(Outcome::MethodNotAllowed(Response::request_error(vec![
                    GraphQLError::new("Mutations cannot be sent with GET; use POST.")
                        .with_code("METHOD_NOT_ALLOWED"),
                ])));
            }
            (OperationType::Subscription, Transport::Get | Transport::Post) => {
                return Err(rejected(
                    "Subscriptions need a streaming transport: a WebSocket \
                     (graphql-transport-ws or graphql-ws) or SSE (Accept: text/event-stream).",
                    "OPERATION_NOT_SUPPORTED",
                ));
            }
            _ => {}
        }

        let raw_variables: JsonMap = match request.variables {
            None | Some(serde_json::Value::Null) => JsonMap::new(),
            Some(value @ serde_json::Value::Object(_)) => match serde_json::from_value(value) {
                Ok(map) => map,
                Err(e) => return Err(rejected(format!("Invalid variables: {e}"), "BAD_REQUEST")),
            },
            Some(_) => return Err(rejected("Variables must be an object.", "BAD_REQUEST")),
        };
        let variables = match apollo_compiler::request::coerce_variable_values(
            &sg.api,
            operation,
            &raw_variables,
        ) {
            Ok(variables) => variables,
            Err(error) => {
                return Err(Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources))
                        .with_code("BAD_USER_INPUT"),
                ])));
            }
        };
        // apollo-compiler 1.x coerces without the OneOf Input Object rules.
        if let Err(error) =
            validate::check_one_of_variables(&sg.api, &document, operation, &variables)
        {
            return Err(Outcome::Rejected(Response::request_error(vec![error])));
        }

        let has_introspection = operation
            .root_fields(&document)
            .any(|f| f.name == "__schema" || f.name == "__type");
        if has_introspection && !self.limits.introspection {
            return Err(rejected(
                "GraphQL introspection has been disabled on this gateway.",
                "INTROSPECTION_DISABLED",
            ));
        }

        let normalized = match normalize::normalize(&sg.api, &document, operation, &variables) {
            Ok(normalized) => normalized,
            Err(error) => return Err(rejected(error.to_string(), "OPERATION_TOO_LARGE")),
        };
        if let Err(error) = validate::check_limits(&normalized, &self.limits) {
            return Err(Outcome::Rejected(Response::request_error(vec![error])));
        }
        if let Err(error) = cost::check(&sg.api, &normalized, &variables, &self.limits.cost) {
            return Err(Outcome::Rejected(Response::request_error(vec![error])));
        }

        let introspection = if has_introspection {
            if let Err(error) =
                apollo_compiler::introspection::check_max_depth(&document, operation)
            {
                return Err(Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources)),
                ])));
            }
            match sg.introspect(&document, operation, &variables) {
                Ok(response) => Some(response),
                Err(error) => {
                    return Err(Outcome::Rejected(Response::request_error(vec![
                        GraphQLError::from_compiler(error.to_graphql_error(&document.sources)),
                    ])));
                }
            }
        } else {
            None
        };

        let plan = match self
            .plans
            .get_or_plan(&normalized, || plan::plan(sg, &normalized))
        {
            Ok(plan) => plan,
            Err(error) => return Err(rejected(error.to_string(), "QUERY_PLANNING_FAILED")),
        };

        let variables = match serde_json::to_value(&*variables) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        Ok(Prepared {
            normalized,
            plan,
            variables,
            introspection,
        })
    }

    /// Executes a prepared operation and shapes the response. `root` is the answer to the
    /// plan's first (root) fetch when it already arrived another way: a subscription event
    /// pushed by the owning subgraph; the remaining fetches then run as usual.
    pub async fn execute(
        &self,
        prepared: &Prepared,
        forwarded: &ForwardedHeaders,
        root: Option<SubgraphResponse>,
    ) -> Response {
        let sg = &*self.supergraph;
        let ctx = self.execution_context(prepared, forwarded);
        let output = execute::execute(&prepared.plan, &ctx, root).await;
        let mut errors = output.errors;
        let introspection_data = prepared.introspection_answer(&mut errors);
        let last_size = &prepared.plan.last_response_bytes;
        let data = shape::shape(
            sg,
            &prepared.normalized,
            &output.data,
            introspection_data,
            &mut errors,
            // A little over the last size: an answer that grew a bit still fits.
            last_size.load(Ordering::Relaxed) / 8 * 9,
        );
        last_size.store(data.as_bytes().len() + 16, Ordering::Relaxed);
        Response {
            errors,
            data: Some(data),
        }
    }
}
