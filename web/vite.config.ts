// `npm run dev` serves the dashboard with hot reload and forwards the API, HTTP and WebSocket,
// to a running `conftools up`, so the page stays same-origin as when the gateway serves it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000';

/**
 * Ships the trusted documents manifest `npm run codegen` wrote (see codegen.ts) beside the page
 * as `trusted-documents.json`: the build's one output a gateway needs to run this page's
 * operations and nothing else. Emitted as an asset so `emptyOutDir` cannot lose it.
 */
function trustedDocuments(): Plugin {
  const manifest = fileURLToPath(new URL('./src/gql/persisted-documents.json', import.meta.url));
  return {
    name: 'conftools-trusted-documents',
    apply: 'build',
    generateBundle() {
      this.emitFile({
        type: 'asset',
        fileName: 'trusted-documents.json',
        source: readFileSync(manifest, 'utf8'),
      });
    },
  };
}

const proxy = { '/graphql': { target: gateway, ws: true, changeOrigin: true } };

/**
 * `--mode graphiql` builds GraphiQL, which the gateway serves to browsers at GET /graphql, into
 * dist/graphiql/ with its files under /graphiql/assets/: a build of its own, after the
 * dashboard's, so the dashboard's bundle shares nothing with it. (`npm run dev -- --mode
 * graphiql` serves it with hot reload.) React's and Monaco's packages carry `"use client"`,
 * which means nothing to a browser bundle: that warning is dropped.
 */
const graphiql = defineConfig({
  root: fileURLToPath(new URL('./src/graphiql', import.meta.url)),
  base: '/graphiql/',
  build: {
    outDir: fileURLToPath(new URL('./dist/graphiql', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
  server: { proxy },
  // Monaco's workers (`?worker` imports) load only outside the dev server's dependency bundle.
  optimizeDeps: { exclude: ['graphiql/setup-workers/vite', '@graphiql/react/setup-workers/vite'] },
});

export default defineConfig(({ mode }) =>
  mode === 'graphiql'
    ? graphiql
    : {
        plugins: [trustedDocuments()],
        build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
        server: { proxy },
      },
);
