// `npm run bench -- engine [--presets demo,smollm2-135m] [--prompt 32] [--decode 16]
// [--backends webgpu,cpu,cpu-int8] [--formats bf16,Q8_0,Q4_K_M] [--runs 1] [--ops] [--quant-layout]`: WebGPU and CPU
// side by side in the same headless Chromium (WebGPU via SwiftShader here): medians over --runs passes of prefill and
// decode tokens/s, dispatches and submits per decoded token, weight bytes
// read per token and the effective GB/s, for the bf16 safetensors preset and GGUF files of it (make-model --gguf;
// both engines read the blocks). --quant-layout: docs/gguf.md's WebGPU block-layout figure instead. Napkin math:
// decode reads every layer weight once plus the LM head, so bytes/token = the weights' real byte sizes; the page's
// read roofline (a wasm SIMD sum over 256 MiB) says what share of the memory system that is.
import { parseConfig, type ModelSpec } from '../../src/model/config.ts';
import { ShoalError } from '../../src/errors.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import { median } from './lib/tabs.ts';
import { openEngineSession, type EngineSession } from '../webgpu-runner.ts';
import { benchGguf, benchModel, decodeBytesPerToken } from './lib/models.ts';
import { rooflineWasmBase64 } from './lib/roofline.ts';
import { ROOFLINE_BYTES } from './lib/readBandwidth.ts';
import { openModel } from '../../src/weights/model.ts';
import { openModelAt } from '../../src/weights/locate.ts';
import { localModelFiles } from '../../src/weights/localFiles.ts';
import { GGUF_QUANTS, type GgufQuant } from '../../src/weights/ggufRecipe.ts';
import type { Page } from '@playwright/test';
import type { LayoutBenchArgs } from '../pages/quant-layout-bench.ts';

/** A preset in one format, as the page fetches it, with the weight bytes a decoded token reads (real sizes). */
async function benchFormat(
  session: EngineSession,
  preset: string,
  format: string,
): Promise<{ url: string; bytesPerToken: number; spec: ModelSpec }> {
  if (format === 'bf16') {
    const { dir } = await benchModel(preset, 'bf16');
    const model = await openModel(localModelFiles(dir));
    return { url: session.modelUrl(dir), bytesPerToken: await decodeBytesPerToken(model), spec: model.spec };
  }
  const g = await benchGguf(preset, format as GgufQuant);
  const model = await openModelAt(g.path);
  return { url: session.modelUrl(g.dir) + g.file, bytesPerToken: await decodeBytesPerToken(model), spec: model.spec };
}

/** The page's read bandwidth in GB/s (best of 5 sums over ROOFLINE_BYTES). */
async function pageRoofline(session: EngineSession): Promise<number> {
  const b64 = await rooflineWasmBase64();
  return session.page.evaluate(
    ([code, bytes]) =>
      (
        window as unknown as { shoalReadBandwidth: (c: string, n: number, r: number) => Promise<number> }
      ).shoalReadBandwidth(code, bytes, 5),
    [b64, ROOFLINE_BYTES] as const,
  );
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['presets', 'prompt', 'decode', 'backends', 'formats', 'runs'],
    switches: ['ops', 'quant-layout'],
  });
  const presets = String(f.presets ?? 'demo,smollm2-135m').split(',');
  const promptLen = intFlag(f, 'prompt', 32, 1); // SwiftShader prefill is slow: keep the default run to a few minutes
  const decodeLen = intFlag(f, 'decode', 16, 1);
  const runs = intFlag(f, 'runs', 1, 1); // medians over this many measured passes (the VM's speed drifts run to run)
  const backends = String(f.backends ?? 'webgpu,cpu').split(',');
  for (const b of backends)
    if (b !== 'webgpu' && b !== 'cpu' && b !== 'cpu-int8')
      throw new ShoalError('ERR_BAD_ARGS', `--backends: unknown backend ${b} (webgpu, cpu, cpu-int8)`);
  const formats = String(f.formats ?? 'bf16,Q8_0,Q4_K_M').split(',');
  for (const q of formats)
    if (q !== 'bf16' && !(GGUF_QUANTS as readonly string[]).includes(q))
      throw new ShoalError('ERR_BAD_ARGS', `--formats: unknown format "${q}" (bf16, ${GGUF_QUANTS.join(', ')})`);
  const session = await openEngineSession();
  try {
    if (f['quant-layout']) return await quantLayout(session.page);
    const ua = await session.page.evaluate(
      () => navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? navigator.userAgent,
    );
    console.log(
      `engine benchmark in headless ${ua} (WebGPU adapter: SwiftShader on this machine), ` +
        `prompt ${promptLen}, decode ${decodeLen}, greedy`,
    );
    const rooflineGBs = await pageRoofline(session);
    console.log(
      `read roofline in this page: ${rooflineGBs.toFixed(2)} GB/s (WebAssembly SIMD sum over ` +
        `${ROOFLINE_BYTES / 2 ** 20} MiB, best of 5, one thread)`,
    );
    console.log(
      mdHeader([
        'preset',
        'weights',
        'backend',
        'prefill tok/s',
        'decode tok/s',
        'dispatches/token',
        'dispatches/layer',
        'submits/token',
        'weight MB read/token',
        'effective GB/s',
        'of roofline',
      ]),
    );
    for (const preset of presets)
      for (const format of formats) {
        const { url: model, bytesPerToken, spec } = await benchFormat(session, preset, format);
        const ids = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % spec.vocabSize);
        for (const choice of backends) {
          if (choice === 'cpu-int8' && format === 'bf16') continue; // int8 activations apply to block formats only
          const backend = choice === 'webgpu' ? 'webgpu' : 'cpu';
          const activations = choice === 'cpu-int8' ? 'int8' : 'f32';
          const run = { model, logits: 'none' as const, backend, activations } as const;
          // Warm-up: compile every pipeline (seconds on SwiftShader) outside the timed run.
          const warm = await session.infer({ ...run, ids: ids.slice(0, 4), steps: 2 });
          if (!warm.ok) throw new ShoalError(warm.code as ShoalError['code'], warm.message);
          const passes: { prefillTps: number; decodeTps: number }[] = [];
          let reply = warm;
          for (let r = 0; r < runs; r++) {
            const r1 = await session.infer({ ...run, ids, steps: decodeLen + 1 });
            if (!r1.ok) throw new ShoalError(r1.code as ShoalError['code'], r1.message);
            reply = r1;
            const { prefillMs, decodeMs } = r1.result.stats!;
            passes.push({ prefillTps: promptLen / (prefillMs / 1000), decodeTps: decodeLen / (decodeMs / 1000) });
          }
          const st = reply.result.stats!;
          if (process.env.SHOAL_BENCH_PASSES) console.log(passes.map((x) => x.decodeTps.toFixed(1)).join(' '));
          const prefillTps = median(passes.map((x) => x.prefillTps));
          const decodeTps = median(passes.map((x) => x.decodeTps));
          const name = reply.fellBack
            ? 'cpu (no WebGPU)'
            : `${reply.result.backend}${activations === 'int8' ? ' int8' : ''}`;
          const perLayer =
            st.dispatchesPerToken !== undefined ? (st.dispatchesPerToken / spec.nLayers).toFixed(2) : '-';
          console.log(
            mdRow([
              preset,
              format,
              name,
              prefillTps.toFixed(1),
              decodeTps.toFixed(2),
              st.dispatchesPerToken?.toFixed(1) ?? '-',
              perLayer,
              st.submitsPerToken?.toFixed(2) ?? '-',
              (bytesPerToken / 1e6).toFixed(1),
              ((bytesPerToken * decodeTps) / 1e9).toFixed(2),
              `${((100 * bytesPerToken * decodeTps) / 1e9 / rooflineGBs).toFixed(0)}%`,
            ]),
          );
        }
      }
    if (f.ops) {
      // Per-op ms at each preset's decode shapes (napkin math: which kernel the decode time goes to).
      for (const preset of presets) {
        const { dir } = await benchModel(preset, 'bf16');
        const spec = parseConfig(JSON.parse(readFileSync(resolve(dir, 'config.json'), 'utf8')));
        const shape = {
          dim: spec.dim,
          hiddenDim: spec.hiddenDim,
          vocabSize: spec.vocabSize,
          nHeads: spec.nHeads,
          nKvHeads: spec.nKvHeads,
          headDim: spec.headDim,
          prefill: promptLen,
          ctx: promptLen,
        };
        const ms = await session.page.evaluate(
          (sh) =>
            (
              window as unknown as { shoalKernelBench: (x: typeof sh) => Promise<Record<string, number>> }
            ).shoalKernelBench(sh),
          shape,
        );
        console.log(`\nWebGPU ops at ${preset} shapes (ms per dispatch, bf16 weights):`);
        for (const [op, t] of Object.entries(ms)) console.log(`  ${op.padEnd(36)} ${t.toFixed(3)}`);
      }
    }
  } finally {
    await session.close();
  }
});

/**
 * docs/gguf.md's layout figure: ms per dispatch of a 1024 x 1024 matmul (decode: rows and gemv kernels, T = 1;
 * prefill: tiled, T = 32) with each block format read from the file's bytes vs padded to whole words.
 */
async function quantLayout(page: Page): Promise<void> {
  const args: LayoutBenchArgs = { N: 1024, K: 1024, prefill: 32, reps: 3, rounds: 5 };
  const ms = await page.evaluate(
    (a) =>
      (
        window as unknown as { shoalQuantLayoutBench: (x: LayoutBenchArgs) => Promise<Record<string, number>> }
      ).shoalQuantLayoutBench(a),
    args,
  );
  console.log(`WebGPU matmul ${args.N}x${args.K}, ms per dispatch (median of ${args.rounds} submits of ${args.reps}):`);
  for (const [k, t] of Object.entries(ms)) console.log(`  ${k.padEnd(36)} ${t.toFixed(2)}`);
}
