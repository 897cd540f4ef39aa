// A stage runner as a Node "tab" for tests and benchmarks: the CPU engine, and a model from a local folder.
import { createCpuBackend } from '../backend/cpu/index.ts';
import type { Transport } from '../pipeline/messages.ts';
import { StageRunner, type StageRunnerDeps } from '../pipeline/stageRunner.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { openModel, type ModelSource } from '../weights/model.ts';

/** A stage runner on the CPU engine; its model is the folder `model` (opened per assignment) or one already open. */
export function cpuStageRunner(
  transport: Transport,
  model: string | ModelSource,
  deps: Pick<StageRunnerDeps, 'onEvent'> = {},
): StageRunner {
  return new StageRunner({
    transport,
    backend: () => Promise.resolve(createCpuBackend()),
    openModel: typeof model === 'string' ? () => openModel(localModelFiles(model)) : () => Promise.resolve(model),
    ...deps,
  });
}
