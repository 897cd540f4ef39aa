// Vite plugin for `npm run dev` and the browser tests: serves the reference fixtures and generated models
// with Range (and the ?bps= download cap), and the signaling WebSocket on /signal beside Vite's HMR socket.
import type { Plugin } from 'vite';
import type { Server as HttpServer } from 'node:http';
import { resolve } from 'node:path';
import { serveFiles } from './rangeFiles.ts';
import { throttleFromRequest } from './app.ts';
import { SignalingServer } from './signaling.ts';
import { ApiRelay } from './apiRelay.ts';

export const FIXTURES_DIR = resolve(import.meta.dirname, '../../test/fixtures');
export const MODELS_DIR = resolve(import.meta.dirname, '../../public/models');

export function shoalDevPlugin(): Plugin {
  let signaling: SignalingServer | null = null;
  return {
    name: 'shoal-dev',
    configureServer(server) {
      const throttle = { bytesPerSecFor: throttleFromRequest };
      const fixtures = serveFiles('/fixtures/', FIXTURES_DIR, throttle);
      const models = serveFiles('/models/', MODELS_DIR, throttle);
      // A missing model file is a real 404, not Vite's index.html fallback (the loader probes for shard indexes).
      const notFound = (req: { url?: string }, res: { statusCode: number; end(s: string): void }, next: () => void) => {
        if (/^\/(fixtures|models)\//.test(req.url ?? '')) {
          res.statusCode = 404;
          res.end('not found');
        } else next();
      };
      // The OpenAI-compatible API and its host-tab relay, as `npm start` serves them (the dev server is loopback).
      const api = new ApiRelay({ secret: process.env.SHOAL_ROOM_SECRET || undefined });
      server.middlewares.use((req, res, next) => {
        if (!api.handle(req, res)) next();
      });
      server.middlewares.use(
        (req, res, next) => void fixtures(req, res, () => void models(req, res, () => notFound(req, res, next))),
      );
      // Vite's HMR listener only takes upgrades for its own protocol; ours only takes /signal.
      signaling = new SignalingServer({ secret: process.env.SHOAL_ROOM_SECRET || undefined });
      if (server.httpServer) {
        signaling.attach(server.httpServer as HttpServer);
        api.attach(server.httpServer as HttpServer);
        server.httpServer.once('listening', () => {
          const addr = server.httpServer?.address();
          if (addr && typeof addr === 'object') api.pageUrl = `http://localhost:${addr.port}`;
        });
        server.httpServer.on('close', () => {
          signaling?.close();
          api.close();
        });
      }
    },
  };
}
