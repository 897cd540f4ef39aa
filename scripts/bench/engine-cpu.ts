// `npm run bench -- engine-cpu [--presets demo,smollm2-135m] [--prompt 128] [--decode 64] [--variants simd,js]`: CPU
// backend prefill and decode tokens/s in Node (the mission's comparison setting: 128-token prompt, then 64 greedy
// tokens, bf16 weights), for the WebAssembly SIMD matmul and the scalar JavaScript reference.
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { layerParamCount } from '../../src/model/config.ts';
import { loadStages } from '../../src/model/infer.ts';
import { openModel } from '../../src/weights/model.ts';
import { localModelFiles } from '../../src/weights/localFiles.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import { benchModel } from './lib/models.ts';
import { cpus } from 'node:os';

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), { values: ['presets', 'prompt', 'decode', 'variants'], switches: [] });
  const variants = String(f.variants ?? 'simd,js').split(',');
  for (const v of variants)
    if (v !== 'simd' && v !== 'js') throw new Error(`--variants: unknown variant "${v}" (simd, js)`);
  const presets = String(f.presets ?? 'demo,smollm2-135m').split(',');
  const promptLen = intFlag(f, 'prompt', 128, 1);
  const decodeLen = intFlag(f, 'decode', 64, 1);
  const machine = `Node ${process.version}, ${cpus().length} cores: ${cpus()[0]?.model ?? '?'}`;
  console.log(`CPU backend (${machine}), prompt ${promptLen}, decode ${decodeLen}, greedy`);
  console.log(mdHeader(['preset', 'matmul', 'params', 'prefill tok/s', 'decode tok/s', 'decode GFLOP/s']));
  for (const preset of presets)
    for (const variant of variants) {
      const { dir } = await benchModel(preset, 'bf16');
      const model = await openModel(localModelFiles(dir));
      const spec = model.spec;
      const backend = createCpuBackend({ simd: variant === 'simd' });
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
          variant,
          `${(params / 1e6).toFixed(1)} M`,
          prefillTps.toFixed(1),
          decodeTps.toFixed(2),
          gflops.toFixed(2),
        ]),
      );
      stage.dispose();
    }
});
