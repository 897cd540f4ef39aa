// One engine run as the infer CLI defines it: prefill the ids through a chain of stages, then greedy steps.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import type { ModelSpec } from './config.ts';
import type { LogitsMode, StageRange, WeightProvider } from './stage.ts';
import { Stage } from './stage.ts';

export interface InferRequest {
  model: WeightProvider & { spec: ModelSpec };
  backend: Backend;
  ids: number[];
  steps: number;
  stages?: StageRange[];
  logits?: LogitsMode;
}

/** The infer CLI's JSON contract (shared/ARCHITECTURE.md). */
export interface InferResult {
  input_ids: number[];
  logits: number[][];
  generated: number[];
  backend: string;
  text?: string;
  stats?: { prefillMs: number; decodeMs: number; dispatchesPerToken?: number; submitsPerToken?: number };
}

/** Parse "0-2,2-4" into ranges and check they chain over every layer. */
export function parseStages(text: string, nLayers: number): StageRange[] {
  const ranges = text.split(',').map((part) => {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (!m) throw new ShoalError('ERR_BAD_ARGS', `--stages: "${part}" is not of the form start-end`);
    return { start: Number(m[1]), end: Number(m[2]) };
  });
  validateStages(ranges, nLayers);
  return ranges;
}

export function validateStages(ranges: StageRange[], nLayers: number): void {
  let next = 0;
  for (const r of ranges) {
    if (r.start !== next || r.end <= r.start)
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `stages must chain contiguously from layer 0: got ${r.start}-${r.end} where ${next}-... was expected`,
      );
    next = r.end;
  }
  if (next !== nLayers)
    throw new ShoalError('ERR_BAD_ARGS', `stages cover layers 0-${next} but the model has ${nLayers}`);
}

/** Load a chain of stages from one weight source. */
export async function loadStages(
  model: InferRequest['model'],
  backend: Backend,
  ranges: StageRange[],
  maxSeq?: number,
): Promise<Stage[]> {
  const stages = ranges.map((r) => new Stage(backend, model.spec, r, maxSeq));
  for (const s of stages) await s.loadAll(model);
  return stages;
}

/** Run T positions through the chain; returns the last stage's result. */
export async function runChain(stages: Stage[], input: Int32Array, opts: { logits: LogitsMode; argmax: boolean }) {
  let x: Int32Array | Float32Array = input;
  for (let i = 0; i < stages.length - 1; i++) x = (await stages[i].forward(x)).hidden!;
  return stages[stages.length - 1].forward(x, opts);
}

export async function runInfer(req: InferRequest): Promise<InferResult> {
  const { model, backend, ids } = req;
  const spec = model.spec;
  if (ids.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'no input ids');
  for (const id of ids)
    if (!(Number.isInteger(id) && id >= 0 && id < spec.vocabSize))
      throw new ShoalError('ERR_BAD_ARGS', `input id ${id} is outside the vocabulary (${spec.vocabSize})`);
  const ranges = req.stages ?? [{ start: 0, end: spec.nLayers }];
  validateStages(ranges, spec.nLayers);
  const maxSeq = Math.min(spec.maxSeqLen, ids.length + req.steps + 1);
  const stages = await loadStages(model, backend, ranges, maxSeq);
  try {
    const mode = req.logits ?? 'all';
    const t0 = performance.now();
    const first = await runChain(stages, Int32Array.from(ids), { logits: mode, argmax: true });
    const t1 = performance.now();
    const V = spec.vocabSize;
    const rows: number[][] = [];
    if (first.logits)
      for (let r = 0; r < first.logits.length / V; r++)
        rows.push(Array.from(first.logits.subarray(r * V, (r + 1) * V)));
    const generated: number[] = [];
    let next = first.nextToken!;
    backend.resetStats();
    for (let s = 0; s < req.steps; s++) {
      generated.push(next);
      if (s === req.steps - 1) break;
      next = (await runChain(stages, Int32Array.of(next), { logits: 'none', argmax: true })).nextToken!;
    }
    const t2 = performance.now();
    const st = backend.stats();
    const decoded = Math.max(1, req.steps - 1);
    return {
      input_ids: ids,
      logits: rows,
      generated,
      backend: backend.name,
      stats: {
        prefillMs: t1 - t0,
        decodeMs: t2 - t1,
        dispatchesPerToken: st.dispatches / decoded,
        submitsPerToken: st.submits / decoded,
      },
    };
  } finally {
    for (const s of stages) s.dispose();
  }
}
