// Every GraphQL operation the dashboard sends, in one place. `npm run codegen` checks each one
// against the gateway's public schema (../schema.graphql) and generates its result and variable
// types into src/gql/, so a renamed field fails the build instead of a page at runtime.
import { graphql } from './gql';

export const ConferencesQuery = graphql(`
  query Conferences {
    conferences(first: 100) {
      nodes { id name currency startsOn endsOn }
    }
  }
`);

/** Seats per ticket type: what the sales chart draws. Restricted types need an admin token. */
export const SalesQuery = graphql(`
  query Sales($conferenceId: ID!) {
    conference(id: $conferenceId) {
      id name currency
      ticketTypes { id name capacity sold remaining visibility onSale price { amount currency } }
    }
  }
`);

/** Purchases of the conference, a page at a time: revenue is the sum of the paid ones. */
export const PurchasesQuery = graphql(`
  query Purchases($conferenceId: ID!, $after: String) {
    ticketPurchases(conferenceId: $conferenceId, first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id status complimentary total { amount currency } }
    }
  }
`);

/** Public ticket types: what an anonymous buyer sees. */
export const PublicTicketTypesQuery = graphql(`
  query PublicTicketTypes($conferenceId: ID!) {
    conference(id: $conferenceId) {
      id name
      ticketTypes { id name remaining onSale visibility price { amount currency } }
    }
  }
`);

export const BuyTicketMutation = graphql(`
  mutation BuyTicket($input: CreateTicketPurchaseInput!, $idempotencyKey: String) {
    createTicketPurchase(input: $input, idempotencyKey: $idempotencyKey) {
      id status ticketCount expiresAt total { amount currency } accessToken
    }
  }
`);

// A buyer without an account reads and cancels their purchase with the access token that
// came with it: the id alone opens nothing.
export const OwnPurchaseQuery = graphql(`
  query OwnPurchase($id: ID!, $accessToken: String!) {
    ticketPurchase(id: $id, accessToken: $accessToken) {
      id status ticketCount expiresAt total { amount currency }
      purchaser { name email }
      lines { quantity ticketType { name } }
    }
  }
`);

export const CancelOwnPurchaseMutation = graphql(`
  mutation CancelOwnPurchase($id: ID!, $accessToken: String!) {
    cancelTicketPurchase(id: $id, accessToken: $accessToken) { id status }
  }
`);

// What the feed shows of each event. A purchase names its sponsor: ticketing knows the
// purchase, the CRM the sponsor, and the gateway joins them per event.
export const TicketEventFields = graphql(`
  fragment TicketEventFields on TicketEvent {
    __typename id cursor occurredAt
    ... on TicketPurchaseCreated { purchase { ...FeedPurchase } }
    ... on TicketPurchasePaid { purchase { ...FeedPurchase } }
    ... on TicketPurchaseCancelled { purchase { ...FeedPurchase } }
    ... on TicketPurchaseExpired { purchase { ...FeedPurchase } }
    ... on TicketAssigned {
      ticket { id attendee { name } ticketType { name } purchase { id sponsor { id name } } }
    }
    ... on TicketTypeCreated { ticketType { id name capacity } }
    ... on TicketTypeUpdated { ticketType { id name capacity } }
    ... on TicketTypeSoldOut { ticketType { id name capacity } }
    ... on TicketTypeAvailableAgain { ticketType { id name remaining } }
    ... on ConferenceCreated { conference { id name } }
  }
`);

export const FeedPurchase = graphql(`
  fragment FeedPurchase on TicketPurchase {
    id status complimentary ticketCount
    purchaser { name }
    total { amount currency }
    lines { quantity ticketType { name } }
    sponsor { id name level { name } }
  }
`);

// Sponsor events, enriched the other way round: a booked allocation shows the purchase that
// ticketing made for it.
export const SponsorEventFields = graphql(`
  fragment SponsorEventFields on SponsorEvent {
    __typename id cursor occurredAt
    ... on SponsorCreated { sponsor { id name level { name } } }
    ... on ContractSent { sponsor { id name } }
    ... on ContractSigned { sponsor { id name } }
    ... on ContractCancelled { sponsor { id name } }
    ... on SponsorOnboarded { sponsor { id name } }
    ... on SponsorLevelChanged { sponsor { id name level { name } } }
    ... on TicketAllowanceOverrideSet { sponsor { id name ticketAllowanceOverride } }
    ... on TicketAllowanceExceeded { sponsor { id name } excessTickets }
    ... on InvoiceIssued { invoice { ...FeedInvoice } }
    ... on InvoicePaid { invoice { ...FeedInvoice } }
    ... on InvoiceVoided { invoice { ...FeedInvoice } }
    ... on TicketAllocationRequested { request { ...FeedAllocation } }
    ... on TicketAllocationBooked { request { ...FeedAllocation } }
    ... on TicketAllocationFailed { request { ...FeedAllocation } }
    ... on TicketAllocationRetried { request { ...FeedAllocation } }
    ... on SponsorshipLevelUpdated { level { name ticketAllowance } }
    ... on SponsorConferenceConfigured { conference { conferenceId } }
  }
`);

export const FeedInvoice = graphql(`
  fragment FeedInvoice on Invoice {
    id status amount { amount currency } sponsor { id name }
  }
`);

export const FeedAllocation = graphql(`
  fragment FeedAllocation on TicketAllocationRequest {
    id sponsorId quantity status reason attempts
    purchase { id ticketCount purchaser { name } }
  }
`);

export const TicketEventLogQuery = graphql(`
  query TicketEventLog($after: String) {
    ticketEvents(after: $after, first: 100) {
      pageInfo { hasNextPage }
      nodes { ...TicketEventFields }
    }
  }
`);

export const SponsorEventLogQuery = graphql(`
  query SponsorEventLog($after: String) {
    sponsorEvents(after: $after, first: 100) {
      pageInfo { hasNextPage }
      nodes { ...SponsorEventFields }
    }
  }
`);

export const TicketEventsSubscription = graphql(`
  subscription TicketEvents($after: String) {
    ticketEvents(after: $after) { ...TicketEventFields }
  }
`);

export const SponsorEventsSubscription = graphql(`
  subscription SponsorEvents($after: String) {
    sponsorEvents(after: $after) { ...SponsorEventFields }
  }
`);

export const SponsorBoardQuery = graphql(`
  query SponsorBoard($conferenceId: ID!) {
    sponsorshipLevels { name rank ticketAllowance price { amount currency } }
    sponsors(conferenceId: $conferenceId, first: 100) {
      nodes { ...BoardSponsor }
    }
  }
`);

export const BoardSponsor = graphql(`
  fragment BoardSponsor on Sponsor {
    id name contactName onboarded
    level { name price { amount currency } }
    contract { status }
    invoices { id status dueOn amount { amount currency } }
    ticketAllocation { status ticketsAllowed ticketsBooked attempts reason }
    ticketPurchases { id status ticketCount tickets { id attendee { name } } }
  }
`);

export const SendContractMutation = graphql(`
  mutation SendContract($sponsorId: ID!) { sendContract(sponsorId: $sponsorId) { id } }
`);

export const SignContractMutation = graphql(`
  mutation SignContract($sponsorId: ID!) { signContract(sponsorId: $sponsorId) { id } }
`);

export const IssueInvoiceMutation = graphql(`
  mutation IssueInvoice($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }
`);

export const MarkInvoicePaidMutation = graphql(`
  mutation MarkInvoicePaid($id: ID!) { markInvoicePaid(id: $id) { id status } }
`);

export const ChangeSponsorLevelMutation = graphql(`
  mutation ChangeSponsorLevel($sponsorId: ID!, $level: String!) {
    changeSponsorLevel(sponsorId: $sponsorId, level: $level) { id }
  }
`);

export const RetryTicketAllocationMutation = graphql(`
  mutation RetryTicketAllocation($sponsorId: ID!) {
    retryTicketAllocation(sponsorId: $sponsorId) { id }
  }
`);
