// `npm start`: make sure the demo model and the built app exist, then serve both with signaling:
// HTTP on localhost, HTTPS (self-signed, made on first start) on every interface, LAN URLs + QR code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import qrcode from 'qrcode-terminal';
import { build } from 'vite';
import { startShoalServer } from '../src/server/app.ts';
import { ensureCertificate } from '../src/server/certs.ts';
import { lanAddresses } from '../src/server/lan.ts';
import { FIXTURES_DIR, MODELS_DIR } from '../src/server/vitePlugin.ts';
import { errorMessage } from '../src/errors.ts';
import { parseFlags } from './cli.ts';
import { launchHostTabs } from './hostTabs.ts';
import { randomBytes } from 'node:crypto';
import { GGUF_QUANTS, type GgufQuant } from '../src/weights/ggufRecipe.ts';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const CERTS = join(ROOT, '.certs');

/** Model downloads are paced like a home network by default, so three local tabs have a reason to split a model. */
const DEFAULT_MODEL_BPS = 4_000_000;

function parseBps(v: string): number | undefined {
  if (v === 'off' || v === '0') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--model-bps must be a positive number of bytes/s or "off" (got ${v})`);
  return n;
}

function usage(): string {
  return [
    'usage: npm start -- [--http-port N] [--https-port N|off] [--host ADDR] [--secret S] [--model-bps N|off] ' +
      '[--no-build] [--no-model]',
    '       [--host-tabs N] [--api-host ADDR] [--api-key K] [--api-max-inflight N] [--api-queue N] [--quant Q4_K_M]',
    '  --quant Q: also write the demo model as model-Q.gguf (Q8_0, Q4_0, Q5_0, Q4_K_M, Q6_K) and open the page on it',
    '  --host-tabs N: launch N headless Chromium tabs that join room "default" and host the OpenAI-compatible API',
    '  --api-host ADDR: serve the plain-HTTP port (app and /v1 API) on ADDR instead of 127.0.0.1; the API then',
    '    needs a bearer token (--api-key, SHOAL_API_KEY, or one made and printed at start)',
    'env: SHOAL_HTTP_PORT (8080), SHOAL_HTTPS_PORT (8443, "off" disables), SHOAL_HOST (0.0.0.0), SHOAL_ROOM_SECRET,',
    `     SHOAL_MODEL_BPS (model downloads paced to ${DEFAULT_MODEL_BPS} bytes/s per request, like a home network; ` +
      '"off" disables)',
  ].join('\n');
}

function parseArgs(argv: string[]) {
  const f = parseFlags(
    argv,
    {
      values: [
        'http-port',
        'https-port',
        'host',
        'secret',
        'model-bps',
        'host-tabs',
        'api-host',
        'api-key',
        'api-max-inflight',
        'api-queue',
        'quant',
      ],
      switches: ['no-build', 'no-model', 'help'],
    },
    `\n${usage()}`,
  );
  if (f.help) {
    console.log(usage());
    process.exit(0);
  }
  // A flag wins over its environment variable, which wins over the default.
  const httpsPort = f['https-port'] ?? process.env.SHOAL_HTTPS_PORT ?? '8443';
  const o = {
    httpPort: Number(f['http-port'] ?? process.env.SHOAL_HTTP_PORT ?? 8080),
    httpsPort: httpsPort === 'off' ? null : Number(httpsPort),
    host: f.host ?? process.env.SHOAL_HOST ?? '0.0.0.0',
    secret: f.secret ?? (process.env.SHOAL_ROOM_SECRET || undefined),
    modelBps: parseBps(f['model-bps'] ?? process.env.SHOAL_MODEL_BPS ?? String(DEFAULT_MODEL_BPS)),
    build: !f['no-build'],
    model: !f['no-model'],
    hostTabs: count(f['host-tabs'] ?? '0', '--host-tabs', 0),
    apiHost: f['api-host'] ?? '127.0.0.1',
    apiKey: f['api-key'] ?? (process.env.SHOAL_API_KEY || undefined),
    apiMaxInFlight:
      f['api-max-inflight'] === undefined ? undefined : count(f['api-max-inflight'], '--api-max-inflight', 1),
    apiQueue: f['api-queue'] === undefined ? undefined : count(f['api-queue'], '--api-queue', 0),
    quant: quantOf(f.quant),
  };
  for (const p of [o.httpPort, o.httpsPort])
    if (p !== null && !(Number.isInteger(p) && p >= 0 && p < 65536)) throw new Error(`bad port ${p}\n${usage()}`);
  return o;
}

/** --quant: serve the demo model as this GGUF file type too, and open the page on it. */
function quantOf(v: string | undefined): GgufQuant | undefined {
  if (v === undefined) return undefined;
  if (!(GGUF_QUANTS as readonly string[]).includes(v))
    throw new Error(`--quant must be one of ${GGUF_QUANTS.join(', ')} (got ${v})\n${usage()}`);
  return v as GgufQuant;
}

function count(v: string, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min} (got ${v})\n${usage()}`);
  return n;
}

const isLoopback = (addr: string): boolean => addr === 'localhost' || addr === '::1' || addr.startsWith('127.');

/** Newest modification time under a path (files only), skipping generated folders. */
function newestMtimeMs(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const e of readdirSync(path)) {
    if (e === 'models' || e === 'node_modules') continue;
    newest = Math.max(newest, newestMtimeMs(join(path, e)));
  }
  return newest;
}

function distIsStale(): boolean {
  const built = join(DIST, 'index.html');
  if (!existsSync(built)) return true;
  const sources = Math.max(
    ...['src', 'public', 'index.html', 'vite.config.ts', 'package.json'].map((p) => newestMtimeMs(join(ROOT, p))),
  );
  return sources > statSync(built).mtimeMs;
}

async function ensureModel(quant: GgufQuant | undefined): Promise<void> {
  // The demo-model generator lives in scripts/ensure-demo-model.ts (another module); load it lazily so the
  // server still starts (serving whatever is in public/models) if it is missing or fails.
  try {
    const modUrl = new URL('./ensure-demo-model.ts', import.meta.url).href; // not a static import: see above
    const mod = (await import(modUrl)) as {
      ensureDemoModel: (modelsDir?: string, log?: (l: string) => void, quant?: GgufQuant) => Promise<string>;
    };
    const dir = await mod.ensureDemoModel(MODELS_DIR, (l) => console.log(l), quant);
    console.log(`demo model: ${dir}`);
  } catch (e) {
    console.warn(`demo model not prepared (${errorMessage(e)}); serving what is in ${MODELS_DIR}`);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.model) await ensureModel(o.quant);
  // The page (and host tabs) open on the GGUF file when --quant asks for one.
  const pageQuery = o.quant ? `room=default&model=/models/demo/model-${o.quant}.gguf` : 'room=default';
  if (o.build && distIsStale()) {
    console.log('building the app (vite build -> dist/) ...');
    await build({ root: ROOT, logLevel: 'warn' });
  }
  if (!existsSync(join(DIST, 'index.html')))
    throw new Error('dist/index.html is missing: run `npm run build` (or drop --no-build)');
  const lan = lanAddresses();
  const tls = o.httpsPort === null ? undefined : await ensureCertificate(CERTS, lan);
  if (tls?.created) console.log(`made a self-signed certificate in ${CERTS} (browsers will ask you to accept it once)`);
  // Beyond loopback the API needs a token: a program on another machine must not drive this one's tabs unasked.
  const token = isLoopback(o.apiHost) ? o.apiKey : (o.apiKey ?? randomBytes(18).toString('base64url'));
  const server = await startShoalServer({
    distDir: DIST,
    modelsDir: MODELS_DIR,
    fixturesDir: FIXTURES_DIR,
    httpPort: o.httpPort,
    httpHost: o.apiHost,
    api: { token, maxInFlight: o.apiMaxInFlight, maxQueued: o.apiQueue },
    httpsPort: o.httpsPort,
    httpsHost: o.host,
    tls,
    secret: o.secret,
    defaultModelBytesPerSec: o.modelBps,
    log: (l) => console.log(l),
  });
  console.log(`\nShoal is up.\n  this machine: ${server.httpUrl}/?${pageQuery}`);
  if (o.modelBps)
    console.log(
      `  model downloads are paced to ${(o.modelBps / 1e6).toFixed(1)} MB/s per request, like a home network ` +
        '(--model-bps off for full speed)',
    );
  if (server.httpsPort !== null) {
    console.log(`  this machine (https): https://localhost:${server.httpsPort}/?${pageQuery}`);
    const urls = lan.map((ip) => `https://${ip}:${server.httpsPort}/?${pageQuery}`);
    for (const u of urls) console.log(`  LAN: ${u}`);
    if (urls[0]) {
      console.log('\nOpen this on a phone or tablet on the same network:');
      qrcode.generate(urls[0], { small: true });
    }
  }
  const apiUrl = `${server.httpUrl}/v1`;
  const modelId = o.quant ? `model-${o.quant}.gguf` : 'demo';
  console.log(`\nOpenAI-compatible API: ${apiUrl} (model "${modelId}"; room "default", or a shoal-room header)`);
  if (token) console.log(`  bearer token: ${token}`);
  let hosts: Awaited<ReturnType<typeof launchHostTabs>> | null = null;
  if (o.hostTabs > 0) {
    try {
      hosts = await launchHostTabs({
        pageUrl: server.httpUrl,
        room: 'default',
        count: o.hostTabs,
        secret: o.secret,
        ...(o.quant ? { query: `model=/models/demo/model-${o.quant}.gguf` } : {}),
        log: (l) => console.log(l),
      });
      console.log(`  ${o.hostTabs} headless host tab${o.hostTabs === 1 ? '' : 's'} joined room default`);
    } catch (e) {
      console.warn(
        `  no host tabs (${errorMessage(e)}); open ${server.httpUrl}/?${pageQuery}&host=api to host the API`,
      );
    }
  } else console.log(`  host it: npm start -- --host-tabs 1, or open ${server.httpUrl}/?${pageQuery}&host=api`);
  const stop = (): void => {
    void Promise.all([hosts?.close(), server.close()]).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(`npm start: ${errorMessage(e)}`);
  process.exit(1);
});
