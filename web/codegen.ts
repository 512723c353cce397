// Typed operations from the gateway's public schema (the repository's schema.graphql, written by
// `cargo run -- compose`): every query, mutation and subscription in src/ is checked against it
// and gets its result and variable types. Documents are plain strings (`documentMode: 'string'`):
// fetch and graphql-ws take a string, so no GraphQL runtime ships to the browser.
//
// `persistedDocuments` also writes src/gql/persisted-documents.json: every operation, normalized
// (fragments inlined, selections sorted, minified), under its `sha256:` id. The build ships it
// as dist/trusted-documents.json, the manifest a gateway enforces with
// `--trusted-documents-only`. `replaceDocumentWithHash` leaves the generated documents holding
// only their id, so the only text the page can send is the manifest's own (see src/client.ts).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { hashAlgorithm: 'sha256', mode: 'replaceDocumentWithHash' },
      },
      config: {
        documentMode: 'string',
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { Date: 'string', DateTime: 'string', MinorUnits: 'number' },
      },
    },
  },
};

export default config;
