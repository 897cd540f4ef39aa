// `npm run bench -- vs-wllama [--preset smollm2-135m] [--formats BF16,Q8_0,Q4_K_M] [--prompt 128] [--tokens 64]
// [--runs 3] [--threads 1]`: our CPU engine against @wllama/wllama (llama.cpp in WebAssembly) on the same GGUF files
// (make-model --gguf, random weights) in one headless Chromium page, runs interleaved (ours, theirs, ours, ...),
// each run on a freshly loaded page (no heap of an earlier run still held), medians of the runs: load s, prefill and
// decode tokens/s, and our/their ratio. If wllama fails, the error names llama.cpp's log lines. The page has COOP/COEP
// (wllama's shared wasm memory needs cross-origin isolation); wllama's wasm comes from node_modules, same server.
// Our CPU engine computes on one thread, so wllama gets one too unless --threads says otherwise.
import { resolve } from 'node:path';
import { ShoalError } from '../../src/errors.ts';
import { GGUF_QUANTS, type GgufQuant } from '../../src/weights/ggufRecipe.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { openEngineSession, type EngineSession } from '../webgpu-runner.ts';
import { benchGguf } from './lib/models.ts';
import { median } from './lib/tabs.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import type { SideArgs, SideReply } from '../pages/vs-wllama.ts';

const WLLAMA_WASM_DIR = resolve(import.meta.dirname, '../../node_modules/@wllama/wllama/esm/wasm');
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
/** English-like text our generated BPE vocabulary splits into many tokens; cut to the prompt length in tokens. */
const PROMPT_TEXT = 'The quick brown fox jumps over the lazy dog while the shoal of fish swims past. ';

type Side = 'shoalSide' | 'wllamaSide';
type Ok = Extract<SideReply, { ok: true }>;

/** One run on a freshly loaded page: nothing the other engine (or an earlier run) allocated is still held. */
async function runSide(session: EngineSession, side: Side, args: SideArgs): Promise<Ok> {
  await session.page.reload();
  await session.page.waitForFunction(() => 'wllamaSide' in window, null, { timeout: 60_000 });
  const r = await session.page.evaluate(
    ([name, a]) => (window as unknown as Record<string, (x: SideArgs) => Promise<SideReply>>)[name](a),
    [side, args] as const,
  );
  if (!r.ok) throw new ShoalError('ERR_BACKEND', `${side === 'shoalSide' ? 'our engine' : 'wllama'}: ${r.message}`);
  return r;
}

/**
 * The prompt as ids (ours) and as the text they decode to (wllama tokenizes it itself; its count is reported), and
 * the tokens that are not whole UTF-8 characters on their own (they decode to U+FFFD), which wllama must not sample.
 */
async function prompt(path: string, n: number): Promise<{ ids: number[]; text: string; banned: number[] }> {
  const tok = await loadTokenizer(path);
  const ids = tok.encode(PROMPT_TEXT.repeat(Math.ceil(n / 8))).slice(0, n);
  if (ids.length < n) throw new ShoalError('ERR_BAD_ARGS', `--prompt ${n}: the prompt text gives only ${ids.length}`);
  const banned = Array.from({ length: tok.vocabSize }, (_, id) => id).filter((id) =>
    tok.decode([id]).includes('\uFFFD'),
  );
  return { ids, text: tok.decode(ids), banned };
}

/** The median of one figure over the runs, formatted. */
const med = (rs: Ok[], pick: (r: Ok) => number, digits: number): string => median(rs.map(pick)).toFixed(digits);

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['preset', 'formats', 'prompt', 'tokens', 'runs', 'threads', 'activations'],
    switches: [],
  });
  const preset = String(f.preset ?? 'smollm2-135m');
  const formats = String(f.formats ?? 'BF16,Q8_0,Q4_K_M').split(',');
  for (const q of formats)
    if (!(GGUF_QUANTS as readonly string[]).includes(q))
      throw new ShoalError('ERR_BAD_ARGS', `--formats: unknown GGUF type "${q}" (${GGUF_QUANTS.join(', ')})`);
  const promptLen = intFlag(f, 'prompt', 128, 1);
  const tokens = intFlag(f, 'tokens', 64, 2);
  const runs = intFlag(f, 'runs', 3, 1);
  const threads = intFlag(f, 'threads', 1, 1);
  const activations = String(f.activations ?? 'f32');
  if (activations !== 'f32' && activations !== 'int8')
    throw new ShoalError('ERR_BAD_ARGS', `--activations: f32 or int8 (got ${activations})`);
  const session = await openEngineSession({
    headers: ISOLATION,
    page: { path: '/scripts/pages/vs-wllama.html', ready: 'wllamaSide' },
  });
  try {
    const wasmUrl = session.server.mount(WLLAMA_WASM_DIR) + 'wllama.wasm';
    const isolated = await session.page.evaluate(() => crossOriginIsolated);
    const ua = await session.page.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? '?');
    console.log(
      `${preset} (random weights), prompt ${promptLen} tokens, ${tokens} greedy tokens, median of ${runs} ` +
        `interleaved runs, headless ${ua}, cross-origin isolated: ${isolated}; our CPU engine: 1 thread, ` +
        `${activations} activations; ` +
        `wllama: --threads ${threads}, no WebGPU layers`,
    );
    console.log(
      mdHeader([
        'file',
        'engine',
        'threads',
        'prompt tokens',
        'load s',
        'prefill tok/s',
        'decode tok/s',
        'wllama own timings: prefill / decode tok/s',
      ]),
    );
    const ratios: string[] = [];
    for (const quant of formats) {
      const g = await benchGguf(preset, quant as GgufQuant);
      const { ids, text, banned } = await prompt(g.path, promptLen);
      const url = session.modelUrl(g.dir) + g.file;
      const args: SideArgs = { url, ids, text, tokens, wasmUrl, threads, banned, activations };
      const got: Record<Side, Ok[]> = { shoalSide: [], wllamaSide: [] };
      for (let r = 0; r < runs; r++)
        for (const side of ['shoalSide', 'wllamaSide'] as const) got[side].push(await runSide(session, side, args));
      for (const side of ['shoalSide', 'wllamaSide'] as const) {
        const rs = got[side];
        const own = rs.every((x) => x.internal)
          ? `${med(rs, (x) => x.internal!.prefillTps, 1)} / ${med(rs, (x) => x.internal!.decodeTps, 2)}`
          : '-';
        console.log(
          mdRow([
            g.file,
            side === 'shoalSide' ? `shoal CPU (wasm SIMD, ${activations})` : 'wllama',
            rs[0].threads,
            rs[0].promptTokens,
            med(rs, (x) => x.loadS, 2),
            med(rs, (x) => x.prefillTps, 1),
            med(rs, (x) => x.decodeTps, 2),
            own,
          ]),
        );
      }
      const ratio = (k: 'loadS' | 'prefillTps' | 'decodeTps') =>
        (median(got.shoalSide.map((x) => x[k])) / median(got.wllamaSide.map((x) => x[k]))).toFixed(2);
      ratios.push(`${g.file}: load ${ratio('loadS')}x, prefill ${ratio('prefillTps')}x, decode ${ratio('decodeTps')}x`);
    }
    console.log(`\nours / wllama (medians; load: time, lower is better; prefill and decode: tok/s, higher is better)`);
    for (const r of ratios) console.log(`  ${r}`);
  } finally {
    await session.close();
  }
});
