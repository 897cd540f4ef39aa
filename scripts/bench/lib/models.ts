// Benchmarks' model cache: generated presets under public/models/<preset>[-<dtype>] (git-ignored), made once; GGUF
// files of a preset under public/models/<preset>-gguf-<QUANT>-r<recipe version>/ (a recipe change makes them again).
// Plus the weight bytes a decoded token reads.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { makeModel } from '../../make-model.ts';
import type { GenDtype } from '../../../src/model/presets.ts';
import { EMBED_TENSOR } from '../../../src/model/config.ts';
import type { ModelSource } from '../../../src/weights/model.ts';
import { tensorBytes } from '../../../src/weights/types.ts';
import { GGUF_RECIPE_VERSION, type GgufQuant } from '../../../src/weights/ggufRecipe.ts';

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

/** A preset as one GGUF file (`make-model --gguf QUANT`), made first if missing: its folder, file name and path. */
export async function benchGguf(
  preset: string,
  quant: GgufQuant,
): Promise<{ dir: string; file: string; path: string }> {
  const dir = resolve(MODELS_DIR, `${preset}-gguf-${quant}-r${GGUF_RECIPE_VERSION}`);
  const file = `model-${quant}.gguf`;
  if (!existsSync(resolve(dir, file))) {
    process.stderr.write(`generating ${preset} as ${quant} GGUF into ${dir}...\n`);
    await makeModel({ preset, out: dir, gguf: quant });
  }
  return { dir, file, path: resolve(dir, file) };
}

/**
 * Weight bytes one decoded token reads, from the tensors' real dtypes and shapes (tensorBytes): every layer tensor,
 * the final norm and the LM head (the tied embedding when there is none); the embedding itself only gathers a row.
 */
export async function decodeBytesPerToken(model: ModelSource): Promise<number> {
  let bytes = 0;
  for (const name of model.requiredTensors()) {
    if (name === EMBED_TENSOR && !model.spec.tiedEmbeddings) continue;
    const info = await model.tensorInfo(name);
    bytes += tensorBytes(info.dtype, info.shape, name);
  }
  return bytes;
}
