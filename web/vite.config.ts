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

export default defineConfig({
  plugins: [trustedDocuments()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/graphql': { target: gateway, ws: true, changeOrigin: true },
    },
  },
});
