// Vite plugin for `npm run dev` and the browser tests: serves the reference fixtures and generated models with Range.
import type { Plugin } from 'vite';
import { resolve } from 'node:path';
import { serveFiles } from './rangeFiles.ts';

export const FIXTURES_DIR = resolve(import.meta.dirname, '../../../shared/fixtures');
export const MODELS_DIR = resolve(import.meta.dirname, '../../public/models');

export function shoalDevPlugin(): Plugin {
  return {
    name: 'shoal-dev',
    configureServer(server) {
      const fixtures = serveFiles('/fixtures/', FIXTURES_DIR);
      const models = serveFiles('/models/', MODELS_DIR);
      server.middlewares.use((req, res, next) => void fixtures(req, res, () => void models(req, res, next)));
    },
  };
}
