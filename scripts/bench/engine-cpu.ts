// `npm run bench -- engine-cpu [--presets demo,smollm2-135m] [--prompt 128] [--decode 64] [--variants simd,js,int8]
// [--formats bf16,Q8_0,Q4_K_M]`: CPU backend prefill and decode tokens/s in Node (the mission's comparison setting:
// 128-token prompt, then 64 greedy tokens), for the WebAssembly SIMD matmul, the scalar JavaScript reference and the
// SIMD engine with int8 activations (block formats only; not exact); `--formats` adds GGUF files of the preset
// (make-model --gguf), with the weight bytes a token reads and their GB/s.
import '../wasmFlags.ts'; // first: the browsers' relaxed-SIMD build
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { layerParamCount } from '../../src/model/config.ts';
import { loadStages } from '../../src/model/infer.ts';
import { openModel, type ModelSource } from '../../src/weights/model.ts';
import { openModelAt } from '../../src/weights/locate.ts';
import { localModelFiles } from '../../src/weights/localFiles.ts';
import { GGUF_QUANTS, type GgufQuant } from '../../src/weights/ggufRecipe.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import { benchGguf, benchModel, decodeBytesPerToken } from './lib/models.ts';
import { cpus } from 'node:os';

/** 'bf16': the safetensors preset; a GGUF file type: that preset written by make-model --gguf. */
async function openFormat(preset: string, format: string): Promise<ModelSource> {
  if (format === 'bf16') return openModel(localModelFiles((await benchModel(preset, 'bf16')).dir));
  return openModelAt((await benchGguf(preset, format as GgufQuant)).path);
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['presets', 'prompt', 'decode', 'variants', 'formats'],
    switches: [],
  });
  const variants = String(f.variants ?? 'simd,js').split(',');
  for (const v of variants)
    if (v !== 'simd' && v !== 'js' && v !== 'int8')
      throw new Error(`--variants: unknown variant "${v}" (simd, js, int8)`);
  const formats = String(f.formats ?? 'bf16').split(',');
  for (const q of formats)
    if (q !== 'bf16' && !(GGUF_QUANTS as readonly string[]).includes(q))
      throw new Error(`--formats: unknown format "${q}" (bf16, ${GGUF_QUANTS.join(', ')})`);
  const presets = String(f.presets ?? 'demo,smollm2-135m').split(',');
  const promptLen = intFlag(f, 'prompt', 128, 1);
  const decodeLen = intFlag(f, 'decode', 64, 1);
  const machine = `Node ${process.version}, ${cpus().length} cores: ${cpus()[0]?.model ?? '?'}`;
  console.log(`CPU backend (${machine}), prompt ${promptLen}, decode ${decodeLen}, greedy`);
  console.log(
    mdHeader([
      'preset',
      'weights',
      'matmul',
      'params',
      'prefill tok/s',
      'decode tok/s',
      'decode GFLOP/s',
      'weight MB read/token',
      'effective GB/s',
    ]),
  );
  for (const preset of presets)
    for (const format of formats)
      for (const variant of variants) {
        const model = await openFormat(preset, format);
        const spec = model.spec;
        const bytesPerToken = await decodeBytesPerToken(model);
        if (variant === 'int8' && format === 'bf16') continue; // int8 activations apply to block formats only
        const backend = createCpuBackend({
          simd: variant !== 'js',
          activations: variant === 'int8' ? 'int8' : 'f32',
        });
        const [stage] = await loadStages(model, backend, [{ start: 0, end: spec.nLayers }], promptLen + decodeLen + 1);
        const ids = Int32Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % spec.vocabSize);
        const t0 = performance.now();
        let next = (await stage.forward(ids, { logits: 'none', argmax: true })).nextToken!;
        const t1 = performance.now();
        for (let i = 0; i < decodeLen; i++)
          next = (await stage.forward(Int32Array.of(next), { logits: 'none', argmax: true })).nextToken!;
        const t2 = performance.now();
        const params = spec.nLayers * layerParamCount(spec) + spec.vocabSize * spec.dim;
        const decodeTps = decodeLen / ((t2 - t1) / 1000);
        const prefillTps = promptLen / ((t1 - t0) / 1000);
        const gflops = (2 * params * decodeTps) / 1e9;
        console.log(
          mdRow([
            preset,
            format,
            variant,
            `${(params / 1e6).toFixed(1)} M`,
            prefillTps.toFixed(1),
            decodeTps.toFixed(2),
            gflops.toFixed(2),
            (bytesPerToken / 1e6).toFixed(1),
            ((bytesPerToken * decodeTps) / 1e9).toFixed(2),
          ]),
        );
        stage.dispose();
      }
});
