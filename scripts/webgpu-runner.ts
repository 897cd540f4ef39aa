// Drives the engine inside headless Chromium (WebGPU via SwiftShader): a programmatic Vite server (no HMR, no file
// watching, so edits elsewhere never reload the page mid-run) serves scripts/pages/webgpu-infer.html, local model
// folders are mounted under a URL prefix, and runInfer's JSON comes back. Used by `npm run infer -- --backend
// webgpu`, the engine benchmark and the WebGPU specs.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import type { Browser, Page } from '@playwright/test';
import { createServer } from 'vite';
import type { Plugin, ViteDevServer } from 'vite';
import { ShoalError } from '../src/errors.ts';
import type { InferResult } from '../src/model/infer.ts';
import type { LogitsMode } from '../src/model/stage.ts';
import { serveFiles } from '../src/server/rangeFiles.ts';
import { chromiumLaunchOptions } from './chromium.ts';
import type { PageInferArgs, PageInferReply } from './pages/webgpu-infer.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PAGE = '/scripts/pages/webgpu-infer.html';
const PAGE_READY_TIMEOUT_MS = 120_000;

export interface EngineServer {
  baseUrl: string;
  /** Serve a local folder to the page; returns its URL path (e.g. /__local/0/). */
  mount(dir: string): string;
  close(): Promise<void>;
}

export interface EngineServerOptions {
  /** Headers on every response, e.g. COOP/COEP for a page that needs cross-origin isolation (wasm threads). */
  headers?: Record<string, string>;
}

/** Vite on a free localhost port (WebGPU needs a secure context: localhost is one). */
export async function startEngineServer(opts: EngineServerOptions = {}): Promise<EngineServer> {
  const mounts: ((req: IncomingMessage, res: ServerResponse, next: () => void) => void)[] = [];
  const mountPlugin: Plugin = {
    name: 'shoal-local-models',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        for (const [k, v] of Object.entries(opts.headers ?? {})) res.setHeader(k, v);
        let i = 0;
        const step = (): void => {
          const m = mounts[i++];
          if (m) m(req, res, step);
          else next();
        };
        step();
      });
    },
  };
  const server: ViteDevServer = await createServer({
    root: ROOT,
    configFile: resolve(ROOT, 'vite.config.ts'),
    logLevel: 'error',
    clearScreen: false,
    plugins: [mountPlugin],
    server: { port: 0, host: 'localhost', hmr: false, watch: null, strictPort: false },
  });
  await server.listen();
  const addr = server.httpServer?.address() as AddressInfo | null;
  if (!addr) throw new ShoalError('ERR_BACKEND', 'the Vite server did not start');
  return {
    baseUrl: `http://localhost:${addr.port}`,
    mount(dir: string) {
      const prefix = `/__local/${mounts.length}/`;
      const serve = serveFiles(prefix, dir);
      // A missing file under the mount is a 404, not Vite's index.html fallback (the loader probes for shard indexes).
      mounts.push(
        (req, res, next) =>
          void serve(req, res, () => {
            if (!(req.url ?? '').startsWith(prefix)) return next();
            res.statusCode = 404;
            res.end('not found');
          }),
      );
      return prefix;
    },
    close: () => server.close(),
  };
}

export interface EngineSession {
  server: EngineServer;
  browser: Browser;
  page: Page;
  /** Map a --model argument to a URL the page can fetch. */
  modelUrl(model: string): string;
  infer(args: PageInferArgs): Promise<PageInferReply>;
  close(): Promise<void>;
}

/**
 * Open a page and wait for its entry point. Vite may re-optimise dependencies on a first visit and then needs a
 * reload, which it cannot ask for without HMR: so reload ourselves a few times before giving up.
 */
export async function openReady(page: Page, url: string, globalName: string, pageErrors: string[] = []): Promise<void> {
  const deadline = Date.now() + PAGE_READY_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    if (attempt === 0) await page.goto(url);
    else await page.reload();
    try {
      await page.waitForFunction((name) => name in window, globalName, {
        timeout: Math.min(30_000, Math.max(1000, deadline - Date.now())),
      });
      return;
    } catch {
      if (Date.now() >= deadline || attempt >= 3) {
        throw new ShoalError(
          'ERR_BACKEND',
          `the engine page ${url} did not load${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`,
        );
      }
    }
  }
}

export interface EngineSessionOptions extends EngineServerOptions {
  /** Another page under scripts/pages and the window property that says it is ready (default: the engine page). */
  page?: { path: string; ready: string };
}

/** Start Vite + Chromium and open the engine page; reuse it for many runs (benchmarks). */
export async function openEngineSession(opts: EngineSessionOptions = {}): Promise<EngineSession> {
  const server = await startEngineServer(opts);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ ...chromiumLaunchOptions(), headless: true });
    const page = await browser.newPage();
    if (process.env.SHOAL_DEBUG) page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await openReady(page, server.baseUrl + (opts.page?.path ?? PAGE), opts.page?.ready ?? 'shoalInfer', pageErrors);
    const b = browser;
    return {
      server,
      browser: b,
      page,
      modelUrl(model: string) {
        if (/^https?:\/\//i.test(model)) return model;
        if (existsSync(model) && statSync(model).isDirectory()) return server.mount(resolve(model));
        // A local GGUF file: serve its folder (split shards open from any shard's name) and name the file in it.
        if (existsSync(model) && /\.gguf$/i.test(model)) return server.mount(dirname(resolve(model))) + basename(model);
        if (/^\/(fixtures|models)\//.test(model)) return model; // already a path on the dev server
        // A Hub repo id, repo:QUANT or a file in a repo: the page resolves it (needs network).
        if (/^[\w.-]+\/[\w.-]+(:[\w.-]+|(\/[\w.-]+)*\.gguf)?$/i.test(model)) return model;
        throw new ShoalError(
          'ERR_BAD_ARGS',
          `--model ${model}: no such folder or .gguf file (give a model folder, a GGUF file, an http(s) URL or a Hub ` +
            'repo id)',
        );
      },
      infer: (args) =>
        page.evaluate(
          (a) => (window as unknown as { shoalInfer: (x: PageInferArgs) => Promise<PageInferReply> }).shoalInfer(a),
          args,
        ),
      async close() {
        await b.close();
        await server.close();
      },
    };
  } catch (e) {
    await browser?.close();
    await server.close();
    throw e;
  }
}

export interface BrowserInferArgs {
  model: string;
  ids: number[];
  steps: number;
  stages?: string;
  logits?: LogitsMode;
}

/** The infer CLI's `--backend webgpu`: same JSON as the CPU backend, computed in headless Chromium. */
export async function runInferInBrowser(args: BrowserInferArgs): Promise<InferResult> {
  const session = await openEngineSession();
  try {
    const reply = await session.infer({ ...args, model: session.modelUrl(args.model), backend: 'webgpu' });
    if (!reply.ok) throw new ShoalError(reply.code as ShoalError['code'], reply.message);
    if (reply.fellBack) process.stderr.write(`warning: ${reply.reason}\n`);
    return reply.result;
  } finally {
    await session.close();
  }
}
