// `npm run --silent infer -- --model DIR|URL|FILE.gguf|owner/repo:Q4_K_M --ids 1,2,3 --steps N --backend cpu|webgpu
// [--activations f32|int8] --json`: the engine as a CLI (the JSON shape is a contract, shared/ARCHITECTURE.md).
// `--activations int8` runs the CPU engine's opt-in llama.cpp-style path for block-quantized weights (not exact).
import { ShoalError } from '../src/errors.ts';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { openModelAt } from '../src/weights/locate.ts';
import { parseStages, runInfer } from '../src/model/infer.ts';
import type { InferResult } from '../src/model/infer.ts';
import type { LogitsMode } from '../src/model/stage.ts';
import { intFlag, parseFlags, runCli } from './cli.ts';
import type { Tokenizer } from '../src/tokenizer/index.ts';

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['model', 'ids', 'prompt', 'steps', 'backend', 'stages', 'logits', 'activations'],
    switches: ['json', 'chat'],
  });
  if (typeof f.model !== 'string')
    throw new ShoalError(
      'ERR_BAD_ARGS',
      'usage: infer --model DIR|URL|FILE.gguf|owner/repo:QUANT (--ids 1,2,3 | --prompt "text" [--chat]) [--steps N] ' +
        '[--backend cpu|webgpu] [--stages 0-2,2-4] [--logits all|last|none] [--activations f32|int8] --json',
    );
  const backendName = f.backend ?? 'cpu';
  if (backendName !== 'cpu' && backendName !== 'webgpu')
    throw new ShoalError('ERR_BAD_ARGS', `--backend must be cpu or webgpu (got ${backendName})`);
  const logits = (f.logits ?? 'all') as LogitsMode;
  if (!['all', 'last', 'none'].includes(logits))
    throw new ShoalError('ERR_BAD_ARGS', `--logits must be all, last or none (got ${logits})`);
  const activations = f.activations ?? 'f32';
  if (activations !== 'f32' && activations !== 'int8')
    throw new ShoalError('ERR_BAD_ARGS', `--activations must be f32 or int8 (got ${String(activations)})`);
  if (activations === 'int8' && backendName !== 'cpu')
    throw new ShoalError('ERR_BAD_ARGS', '--activations int8 is a CPU engine path: use --backend cpu');
  const steps = intFlag(f, 'steps', 0);
  if ((f.ids === undefined) === (f.prompt === undefined))
    throw new ShoalError('ERR_BAD_ARGS', 'give exactly one of --ids or --prompt');

  let tokenizer: Tokenizer | undefined;
  let ids: number[];
  if (typeof f.prompt === 'string') {
    const { loadTokenizer } = await import('../src/tokenizer/index.ts');
    tokenizer = await loadTokenizer(f.model);
    ids = f.chat
      ? tokenizer.applyChatTemplate([{ role: 'user', content: f.prompt }], { addGenerationPrompt: true })
      : tokenizer.encode(f.prompt);
  } else {
    const idsText = String(f.ids);
    ids = idsText.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0 || s.trim() === '')
        throw new ShoalError('ERR_BAD_ARGS', `--ids: "${s}" is not a token id`);
      return n;
    });
  }

  let result: InferResult;
  if (backendName === 'webgpu') {
    const { runInferInBrowser } = await import('./webgpu-runner.ts');
    result = await runInferInBrowser({ model: f.model, ids, steps, stages: f.stages, logits });
  } else {
    const model = await openModelAt(f.model);
    const stages = typeof f.stages === 'string' ? parseStages(f.stages, model.spec.nLayers) : undefined;
    const backend = createCpuBackend({ activations });
    result = await runInfer({ model, backend, ids, steps, stages, logits });
  }
  if (tokenizer) result.text = tokenizer.decode(result.generated);
  const { stats, ...contract } = result;
  if (f.json) process.stdout.write(JSON.stringify(contract) + '\n');
  else {
    process.stdout.write(`input_ids: ${ids.join(',')}\ngenerated: ${result.generated.join(',')}\n`);
    if (result.text !== undefined) process.stdout.write(`text: ${JSON.stringify(result.text)}\n`);
    if (stats)
      process.stdout.write(`prefill ${stats.prefillMs.toFixed(1)} ms, decode ${stats.decodeMs.toFixed(1)} ms\n`);
  }
});
