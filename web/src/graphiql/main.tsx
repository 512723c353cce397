// GraphiQL as the gateway serves it at GET /graphql (`Accept: text/html`), bundled from npm by
// this build into dist/graphiql/ (index.html, hashed files in assets/): the page loads everything
// from the gateway and works on a machine without internet. The editors are Monaco, whose
// workers are bundled too (graphiql/setup-workers/vite). Queries and mutations are POSTed to the
// same origin's /graphql (`@defer` over multipart/mixed); subscriptions go over graphql-ws on the
// same path, with the header editor's headers as the socket's `connection_init` payload.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import './page.css';
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { type DocumentNode, parse } from 'graphql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

const url = new URL('/graphql', window.location.href).href;
const toolkitFetcher = createGraphiQLFetcher({ url, subscriptionUrl: url.replace(/^http/, 'ws') });

// The toolkit picks the socket when the document is a subscription, judging by the document
// GraphiQL parsed from the editor, which lags the text by a moment: run right after an edit,
// a subscription went over HTTP and the gateway refused it. It judges the text being sent here.
const fetcher: Fetcher = (params, options) =>
  toolkitFetcher(params, { ...options, documentAST: parsed(params.query) ?? options?.documentAST });

function parsed(query: string): DocumentNode | undefined {
  try {
    return parse(query);
  } catch {
    return undefined;
  }
}

// The dashboard keeps the organiser's token in this origin's storage (src/auth.ts): if it is
// there, the header editor starts with it. Headers typed here are not persisted.
const token = localStorage.getItem('conftools.token');
const initialHeaders = token ? JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2) : undefined;

const root = document.getElementById('graphiql');
if (!root) throw new Error('no #graphiql element');
root.textContent = '';
createRoot(root).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      initialHeaders={initialHeaders}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
      defaultEditorToolsVisibility={token ? 'headers' : true}
    />
  </StrictMode>,
);
