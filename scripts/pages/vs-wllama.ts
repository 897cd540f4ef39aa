// In-page entry for `npm run bench -- vs-wllama`: our CPU engine and @wllama/wllama (llama.cpp in WebAssembly) on
// the same GGUF URL, timed the same way by the wall clock: load, prefill (prompt to first token), decode (each
// further token).
import { Wllama } from '@wllama/wllama';
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { errorMessage } from '../../src/errors.ts';
import { loadStages } from '../../src/model/infer.ts';
import { openModelAt } from '../../src/weights/locate.ts';
import { measureReadBandwidth } from '../bench/lib/readBandwidth.ts';

export interface SideArgs {
  /** The GGUF file, on this page's origin. */
  url: string;
  /** Ours: the prompt's ids. */
  ids: number[];
  /** wllama: the same prompt as text (it tokenizes it itself). */
  text: string;
  /** Tokens to generate, the first included (it comes from the prefill). */
  tokens: number;
  /** wllama: its wasm file's URL and thread count. */
  wasmUrl: string;
  threads: number;
  /**
   * wllama: token ids it must not generate, those whose bytes are not whole UTF-8 characters. Its server throws
   * (`invalid UTF-8 byte`) when such a token is followed by one that does not complete the character, which a
   * random model does; a ban costs nothing per token, and every token costs the same to compute.
   */
  banned: number[];
  /** Ours: the CPU engine's activations for block formats (int8 as llama.cpp, or exact f32). */
  activations: 'f32' | 'int8';
}

export type SideReply =
  | {
      ok: true;
      loadS: number;
      prefillTps: number;
      decodeTps: number;
      promptTokens: number;
      generated: number;
      threads: number;
      /** wllama's own timings (llama-server's), for comparison with the wall clock. */
      internal?: { prefillTps: number; decodeTps: number };
    }
  | { ok: false; message: string };

/** Our CPU engine: open, load every layer, prefill the ids, then one forward per token (greedy). */
async function shoalSide(a: SideArgs): Promise<SideReply> {
  const backend = createCpuBackend({ activations: a.activations });
  try {
    const t0 = performance.now();
    const model = await openModelAt(new URL(a.url, location.href).href);
    const [stage] = await loadStages(model, backend, [{ start: 0, end: model.spec.nLayers }], a.ids.length + a.tokens);
    const t1 = performance.now();
    let next = (await stage.forward(Int32Array.from(a.ids), { logits: 'none', argmax: true })).nextToken!;
    const t2 = performance.now();
    for (let i = 1; i < a.tokens; i++)
      next = (await stage.forward(Int32Array.of(next), { logits: 'none', argmax: true })).nextToken!;
    const t3 = performance.now();
    stage.dispose();
    return {
      ok: true,
      loadS: (t1 - t0) / 1000,
      prefillTps: a.ids.length / ((t2 - t1) / 1000),
      decodeTps: (a.tokens - 1) / ((t3 - t2) / 1000),
      promptTokens: a.ids.length,
      generated: a.tokens,
      threads: 1, // the CPU engine computes on the calling thread
    };
  } catch (e) {
    return { ok: false, message: errorMessage(e) };
  } finally {
    backend.destroy();
  }
}

interface Timings {
  prompt_per_second: number;
  predicted_per_second: number;
  prompt_n: number;
  predicted_n: number;
}

/** wllama: fetch the file, load it on the CPU (no WebGPU layers), then a streamed greedy completion. */
async function wllamaSide(a: SideArgs): Promise<SideReply> {
  const native: string[] = []; // llama.cpp's log, kept to explain a failure (its errors reach JS only as codes)
  const keep = (...xs: unknown[]): void => void native.push(xs.map(String).join(' '));
  const logger = { debug: keep, log: keep, warn: keep, error: keep };
  const wllama = new Wllama({ default: a.wasmUrl }, { logger });
  try {
    const t0 = performance.now();
    const blob = await (await fetch(a.url)).blob();
    await wllama.loadModel([blob], { n_threads: a.threads, n_gpu_layers: 0, n_ctx: 512, n_parallel: 1 });
    const t1 = performance.now();
    let first = 0,
      last = 0,
      chunks = 0;
    let timings: Timings | undefined;
    await wllama.createCompletion({
      prompt: a.text,
      max_tokens: a.tokens,
      temp: 0,
      ignore_eos: true,
      logit_bias: a.banned.map((id) => [id, false]) as never, // llama-server's [[id, false]]: never sample it
      stream: true,
      onData: (c) => {
        last = performance.now();
        if (chunks++ === 0) first = last;
        const t = (c as { timings?: Timings }).timings;
        if (t) timings = t;
      },
    });
    const generated = timings?.predicted_n ?? chunks;
    return {
      ok: true,
      loadS: (t1 - t0) / 1000,
      prefillTps: (timings?.prompt_n ?? 0) / ((first - t1) / 1000),
      decodeTps: (generated - 1) / ((last - first) / 1000),
      promptTokens: timings?.prompt_n ?? 0,
      generated,
      threads: wllama.getNumThreads(),
      internal: timings && { prefillTps: timings.prompt_per_second, decodeTps: timings.predicted_per_second },
    };
  } catch (e) {
    const why = native.filter((l) => /error|fail|abort/i.test(l)).slice(-5);
    return { ok: false, message: `${errorMessage(e)}${why.length ? ` (llama.cpp: ${why.join(' | ')})` : ''}` };
  } finally {
    await wllama.exit().catch(() => undefined);
  }
}

const w = window as unknown as Record<string, unknown>;
w.shoalSide = shoalSide;
w.wllamaSide = wllamaSide;
w.shoalReadBandwidth = measureReadBandwidth;
