// A stage runner as a Node "tab" for tests and benchmarks: the CPU engine, and a model from a local folder.
import { createCpuBackend } from '../backend/cpu/index.ts';
import type { Transport } from '../pipeline/messages.ts';
import { StageRunner, type StageRunnerDeps } from '../pipeline/stageRunner.ts';
import { openModelAt } from '../weights/locate.ts';
import type { ModelSource } from '../weights/model.ts';

/**
 * A stage runner on the CPU engine; its model is the location `model` (a folder or a GGUF file, opened per
 * assignment) or one already open.
 */
export function cpuStageRunner(
  transport: Transport,
  model: string | ModelSource,
  deps: Pick<StageRunnerDeps, 'onEvent'> = {},
): StageRunner {
  return new StageRunner({
    transport,
    backend: () => Promise.resolve(createCpuBackend()),
    openModel: typeof model === 'string' ? () => openModelAt(model) : () => Promise.resolve(model),
    ...deps,
  });
}
