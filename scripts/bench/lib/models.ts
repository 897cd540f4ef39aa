// Benchmarks' model cache: generated presets under public/models/<preset>[-<dtype>] (git-ignored), made once.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { makeModel } from '../../make-model.ts';
import type { GenDtype } from '../../../src/model/presets.ts';

export const MODELS_DIR = resolve(import.meta.dirname, '../../../public/models');

/** Folder of a generated preset, making it first if missing. Returns its path and URL path under the server. */
export async function benchModel(preset: string, dtype: GenDtype = 'bf16'): Promise<{ dir: string; urlPath: string }> {
  const name = dtype === 'bf16' ? preset : `${preset}-${dtype}`;
  const dir = resolve(MODELS_DIR, name);
  if (!existsSync(resolve(dir, 'config.json'))) {
    process.stderr.write(`generating ${preset} (${dtype}) into ${dir}...\n`);
    await makeModel({ preset, out: dir, dtype });
  }
  return { dir, urlPath: `/models/${name}/` };
}
