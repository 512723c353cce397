// `npm run dev` serves the dashboard with hot reload and forwards the API, HTTP and WebSocket,
// to a running `conftools up`, so the page stays same-origin as when the gateway serves it.
import { defineConfig } from 'vite';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/graphql': { target: gateway, ws: true, changeOrigin: true },
    },
  },
});
