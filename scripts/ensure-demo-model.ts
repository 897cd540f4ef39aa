// Make sure the generated demo models exist (public/models/demo, public/models/tiny): `npm start`
// calls this; also runnable as `tsx scripts/ensure-demo-model.ts [modelsDir]`.
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GENERATOR_VERSION, makeModel } from './make-model.ts';
import { runCli } from './cli.ts';
import { GGUF_RECIPE_VERSION, type GgufQuant } from '../src/weights/ggufRecipe.ts';

/** The presets served without any download, and the seed they are generated with. */
export const DEMO_PRESETS = ['demo', 'tiny'] as const;
export const DEMO_SEED = 0;
let tmpCounter = 0;

/**
 * True when `dir` holds a complete model from this generator version (else it is rebuilt), and, with `gguf`, its
 * model-QUANT.gguf made by the current recipe.
 */
function isCurrent(dir: string, preset: string, gguf?: GgufQuant): boolean {
  try {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
      shoal_generator?: { version?: number; preset?: string; seed?: number; gguf?: string; gguf_recipe?: number };
    };
    const g = config.shoal_generator;
    return (
      g?.version === GENERATOR_VERSION &&
      g.preset === preset &&
      g.seed === DEMO_SEED &&
      existsSync(join(dir, 'model.safetensors')) &&
      existsSync(join(dir, 'tokenizer.json')) &&
      (!gguf ||
        (g.gguf === gguf && g.gguf_recipe === GGUF_RECIPE_VERSION && existsSync(join(dir, `model-${gguf}.gguf`))))
    );
  } catch {
    return false;
  }
}

/**
 * Generate each demo preset into modelsDir/<preset> unless a current copy is there. Builds in a
 * temporary folder and renames it into place, so an interrupted run never leaves half a model.
 * Returns the demo model's folder.
 */
export async function ensureDemoModel(
  modelsDir = 'public/models',
  log: (line: string) => void = () => {},
  quant?: GgufQuant,
): Promise<string> {
  const root = resolve(modelsDir);
  for (const preset of DEMO_PRESETS) {
    const dir = join(root, preset);
    // `npm start -- --quant Q4_K_M`: the demo also as model-Q4_K_M.gguf (the same weights, quantized).
    const gguf = preset === 'demo' ? quant : undefined;
    if (isCurrent(dir, preset, gguf)) continue;
    const tag = `${process.pid}-${tmpCounter++}`;
    const tmp = join(root, `.${preset}.tmp-${tag}`);
    const r = await makeModel({ preset, out: tmp, seed: DEMO_SEED, ...(gguf ? { gguf } : {}) });
    // Swap by renames (atomic), never by deleting a folder another process may be renaming into.
    // Losing a race to a concurrent caller is fine: the winner wrote the same bytes.
    if (!isCurrent(dir, preset) || gguf) {
      const old = join(root, `.${preset}.old-${tag}`);
      await rename(dir, old).catch(() => {});
      await rename(tmp, dir).catch((e: unknown) => {
        if (!isCurrent(dir, preset)) throw e;
      });
      await rm(old, { recursive: true, force: true });
    }
    await rm(tmp, { recursive: true, force: true });
    log(`generated ${preset} model in ${dir} (${(r.weightBytes / 2 ** 20).toFixed(1)} MiB, ${r.seconds.toFixed(1)} s)`);
  }
  return join(root, 'demo');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(async () => {
    const dir = await ensureDemoModel(process.argv[2], (line) => process.stderr.write(line + '\n'));
    process.stdout.write(dir + '\n');
  });
}
