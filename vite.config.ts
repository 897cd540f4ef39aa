// Vite: the app (index.html), the CLI's engine page (scripts/pages), in-browser test pages (e2e/pages), Node polyfills
// for simple-peer.
import { defineConfig } from 'vite';
import { nodePolyfills } from 'vite-plugin-node-polyfills';
import { shoalDevPlugin } from './src/server/vitePlugin.ts';

export default defineConfig({
  plugins: [
    // simple-peer (readable-stream) needs Buffer, global and process in the page (shared/MISSION.md).
    nodePolyfills({
      include: ['events', 'buffer', 'process', 'util', 'stream'],
      globals: { Buffer: true, global: true, process: true },
    }),
    shoalDevPlugin(),
  ],
  // Browser tests set SHOAL_NO_HMR: a file saved mid-run must not reload the tabs under test.
  server: {
    host: true,
    fs: { allow: ['.'] },
    hmr: !process.env.SHOAL_NO_HMR,
    watch: process.env.SHOAL_NO_HMR ? null : undefined,
  },
  // Pre-bundle every dependency up front: discovering one mid-test makes Vite reload the page.
  optimizeDeps: { include: ['comlink', 'simple-peer', '@huggingface/transformers'] },
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
