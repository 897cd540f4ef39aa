// `npm run make-model -- --preset NAME --out DIR [--seed N] [--dtype f32|f16|bf16] [--shard-mb N] [--gguf QUANT]`:
// a random-weight model in exact Hugging Face layout, deterministic from the seed, streamed to disk; with --gguf
// also model-QUANT.gguf (Q8_0, Q4_0, Q5_0, Q4_K_M, Q6_K, BF16), the same f32 weights quantized by our own quantizer.
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WeightDtype } from '../src/weights/types.ts';
import { ShoalError } from '../src/errors.ts';
import {
  EMBED_TENSOR,
  FINAL_NORM_TENSOR,
  LM_HEAD_TENSOR,
  expectedShape,
  layerTensorNames,
  parseConfig,
  type ModelSpec,
} from '../src/model/config.ts';
import { PRESETS, presetNames, type GenDtype } from '../src/model/presets.ts';
import { generateTokenizer } from '../src/tokenizer/generate.ts';
import { f32ToBf16, f32ToF16 } from '../src/weights/dtype.ts';
import {
  planShards,
  safetensorsLayout,
  shardFileName,
  shardIndex,
  entryBytes,
  type TensorEntry,
} from '../src/weights/writer.ts';
import { intFlag, parseFlags, runCli } from './cli.ts';
import { ggufModelMetadata, ggufTensorName } from '../src/weights/ggufModel.ts';
import { ggufLayout, type GgufTensorEntry } from '../src/weights/ggufWriter.ts';
import { GGUF_QUANTS, GGUF_RECIPE_VERSION, recipeDtype, type GgufQuant } from '../src/weights/ggufRecipe.ts';
import { unpermuteHeads } from '../src/weights/gguf.ts';
import { quantize } from '../src/weights/quantize.ts';
import { isQuantized } from '../src/weights/types.ts';
import { ggufTokenizerMetadata } from '../src/tokenizer/ggufTokenizer.ts';

/** Hugging Face's default max_shard_size is "2GB", which it reads as 2 * 10^9 bytes: --shard-mb counts 10^6 bytes. */
export const DEFAULT_SHARD_MB = 2000;
/** Elements generated and written per step: bounds memory whatever the tensor size. */
const CHUNK_ELEMENTS = 1 << 20;
/** Bumped when the same options would produce different bytes, so cached demo models get rebuilt. */
export const GENERATOR_VERSION = 3;

const TORCH_DTYPE: Record<GenDtype, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };
const FILE_DTYPE: Record<GenDtype, WeightDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export interface MakeModelOptions {
  preset: string;
  out: string;
  seed?: number;
  dtype?: GenDtype;
  shardMb?: number;
  /**
   * Draft/target pairs (issue 8): the draft is the target's first `draftLayers` layers with the
   * target's own embedding, final norm and LM head (same names, same random streams, so the bytes
   * are identical; the tokenizer depends on the vocabulary only). The target's layers from
   * `draftLayers` on write into the residual stream scaled by `draftStrength` (0: the draft is
   * exact; 1: a plain random model), which sets how often the draft's guess is the target's.
   * Measured greedy agreement (draft argmax = target argmax along the target's own continuation,
   * demo preset, 3 prompts x 48 tokens): draftLayers 2: S 0.02 -> 0.91, 0.05 -> 0.73, 0.1 -> 0.59,
   * 0.15 -> 0.51, 0.2 -> 0.39, 0.3 -> 0.20, 1 -> 0.01; draftLayers 4: S 0.05 -> 0.87, 0.1 -> 0.74.
   */
  role?: 'model' | 'draft';
  draftLayers?: number;
  draftStrength?: number;
  /** Also write model-QUANT.gguf: the f32 weights in a llama.cpp file type (our quantizer, llama.cpp's recipe). */
  gguf?: GgufQuant;
  /** Override the init (experiments); the default is what every preset uses. */
  init?: InitScheme;
  log?: (line: string) => void;
}

export interface MakeModelResult {
  dir: string;
  files: string[];
  /** Bytes of tensor data written (what index.json calls total_size). */
  weightBytes: number;
  seconds: number;
  spec: ModelSpec;
}

/** How a tensor's values are drawn: normal(mean, std), quantised to 65536 levels (see fillTensor). */
interface InitTensor extends TensorEntry {
  mean: number;
  std: number;
}

// ---- random numbers ---------------------------------------------------------------------------

/** 32-bit FNV-1a of the seed and a tensor name: each tensor gets its own stream, independent of order and sharding. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  h = Math.imul(h, 0x01000193);
  h ^= Math.floor(seed / 2 ** 32);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [
    -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
    2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

// Standard normal at the 65536 mid-quantiles: a 16-bit random index then picks a normal sample with
// one table read, which is what makes 1B parameters take seconds rather than minutes. The tails stop
// at about 4.3 sigma, which a random init does not miss.
let quantiles: Float32Array | null = null;
function standardNormalTable(): Float32Array {
  if (!quantiles) {
    quantiles = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) quantiles[i] = normalQuantile((i + 0.5) / 65536);
  }
  return quantiles;
}

/** The 65536 possible values of a tensor, already encoded in the file's dtype. */
function valueTable(dtype: WeightDtype, mean: number, std: number): Float32Array | Uint16Array {
  const z = standardNormalTable();
  const v = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) v[i] = mean + std * z[i];
  if (dtype === 'F32') return v;
  return dtype === 'BF16' ? f32ToBf16(v) : f32ToF16(v);
}

// safetensors is little-endian and the chunks are typed-array bytes: refuse to write wrong files.
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Write a tensor's values to `sink` chunk by chunk: mulberry32 gives 32 random bits per step, i.e.
 * two 16-bit table indices. Deterministic from (seed, name) alone.
 */
async function fillTensor(t: InitTensor, seed: number, sink: (bytes: Uint8Array) => Promise<void>): Promise<void> {
  const table = valueTable(t.dtype, t.mean, t.std);
  const n = entryBytes(t) / table.BYTES_PER_ELEMENT;
  const chunk =
    table instanceof Float32Array
      ? new Float32Array(Math.min(n, CHUNK_ELEMENTS))
      : new Uint16Array(Math.min(n, CHUNK_ELEMENTS));
  let state = streamSeed(seed, t.name);
  for (let done = 0; done < n; done += chunk.length) {
    const m = Math.min(chunk.length, n - done);
    for (let i = 0; i < m; i += 2) {
      state = (state + 0x6d2b79f5) | 0;
      let r = Math.imul(state ^ (state >>> 15), state | 1);
      r ^= r + Math.imul(r ^ (r >>> 7), r | 61);
      r = r ^ (r >>> 14);
      chunk[i] = table[r & 0xffff];
      if (i + 1 < m) chunk[i + 1] = table[(r >>> 16) & 0xffff];
    }
    await sink(new Uint8Array(chunk.buffer, 0, m * chunk.BYTES_PER_ELEMENT));
  }
}

// ---- what to write ----------------------------------------------------------------------------

/**
 * The random init, as multipliers of 1/sqrt(fan_in) (LeCun normal: each projection keeps the scale
 * of its input); embedding and a separate LM head use 1/sqrt(dim). Why not HF's fixed
 * normal(0, initializer_range = 0.02): on the demo preset it collapses to one token repeated (1-3
 * distinct greedy tokens out of 40). Plain LeCun still repeats (4-16 of 40) because attention
 * averages the context into a component shared by every position; halving o_proj and giving the
 * MLP 1.5x makes the token-specific path win: 38-40 distinct of 40 on demo, 33-38 on tiny, 39-40 on
 * smollm2-135m (4 prompts x 2 seeds, CPU engine, greedy).
 */
export interface InitScheme {
  embed: number;
  qk: number;
  v: number;
  o: number;
  gateUp: number;
  down: number;
  /** Absolute std of q/k/v biases (qwen2). */
  bias: number;
  /** Absolute std of the noise on RMSNorm gains around 1. */
  normNoise: number;
}

export const DEFAULT_INIT: InitScheme = {
  embed: 1,
  qk: 1,
  v: 1,
  o: 0.5,
  gateUp: 1.5,
  down: 1,
  bias: 0.02,
  normNoise: 0.05,
};

/** Every tensor of the model in file order (embedding, layers, final norm, LM head if separate) with its init. */
export function modelTensors(
  spec: ModelSpec,
  dtype: GenDtype,
  residualScale: (layer: number) => number,
  init: InitScheme = DEFAULT_INIT,
): InitTensor[] {
  const fileDtype = FILE_DTYPE[dtype];
  const entry = (name: string, mean: number, std: number | ((fanIn: number) => number)): InitTensor => {
    const shape = expectedShape(spec, name);
    if (!shape) throw new Error(`no shape for tensor ${name}`); // a bug in config.ts or this list, not bad input
    return { name, dtype: fileDtype, shape, mean, std: typeof std === 'number' ? std : std(shape[shape.length - 1]) };
  };
  const lecun = (k: number) => (fanIn: number) => k / Math.sqrt(fanIn);
  const out = [entry(EMBED_TENSOR, 0, init.embed / Math.sqrt(spec.dim))];
  for (let l = 0; l < spec.nLayers; l++) {
    for (const name of layerTensorNames(spec, l)) {
      const kind = name.slice(name.lastIndexOf('.', name.length - '.weight'.length - 1) + 1);
      if (name.endsWith('norm.weight')) out.push(entry(name, 1, init.normNoise));
      else if (name.endsWith('.bias')) out.push(entry(name, 0, init.bias));
      else if (kind === 'q_proj.weight' || kind === 'k_proj.weight') out.push(entry(name, 0, lecun(init.qk)));
      else if (kind === 'v_proj.weight') out.push(entry(name, 0, lecun(init.v)));
      else if (kind === 'o_proj.weight') out.push(entry(name, 0, lecun(init.o * residualScale(l))));
      else if (kind === 'down_proj.weight') out.push(entry(name, 0, lecun(init.down * residualScale(l))));
      else out.push(entry(name, 0, lecun(init.gateUp)));
    }
  }
  out.push(entry(FINAL_NORM_TENSOR, 1, init.normNoise));
  if (!spec.tiedEmbeddings) out.push(entry(LM_HEAD_TENSOR, 0, init.embed / Math.sqrt(spec.dim)));
  return out;
}

function checkOptions(o: MakeModelOptions) {
  const preset = PRESETS[o.preset];
  if (!preset)
    throw new ShoalError('ERR_BAD_ARGS', `unknown preset "${o.preset}" (valid: ${presetNames().join(', ')})`);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new ShoalError('ERR_BAD_ARGS', `--seed must be a non-negative integer (got ${seed})`);
  const dtype = o.dtype ?? preset.defaultDtype;
  if (!(dtype in TORCH_DTYPE))
    throw new ShoalError('ERR_BAD_ARGS', `--dtype must be f32, f16 or bf16 (got ${String(dtype)})`);
  const shardMb = o.shardMb ?? DEFAULT_SHARD_MB;
  if (!(Number.isFinite(shardMb) && shardMb > 0))
    throw new ShoalError('ERR_BAD_ARGS', `--shard-mb must be a positive number (got ${shardMb})`);
  const nLayers = preset.config.num_hidden_layers as number;
  const draftLayers = o.draftLayers ?? nLayers;
  if (!Number.isInteger(draftLayers) || draftLayers < 1 || draftLayers > nLayers) {
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `--draft-layers must be an integer in 1..${nLayers} for preset ${o.preset} (got ${draftLayers})`,
    );
  }
  const draftStrength = o.draftStrength ?? 1;
  if (!(Number.isFinite(draftStrength) && draftStrength >= 0))
    throw new ShoalError('ERR_BAD_ARGS', `--draft-strength must be a number >= 0 (got ${draftStrength})`);
  if (o.gguf !== undefined && !(GGUF_QUANTS as readonly string[]).includes(o.gguf))
    throw new ShoalError('ERR_BAD_ARGS', `--gguf must be one of ${GGUF_QUANTS.join(', ')} (got ${String(o.gguf)})`);
  if (o.draftStrength !== undefined && o.draftLayers === undefined)
    throw new ShoalError('ERR_BAD_ARGS', '--draft-strength needs --draft-layers N (the layers it leaves unscaled)');
  if (o.role === 'draft' && o.draftLayers === undefined)
    throw new ShoalError(
      'ERR_BAD_ARGS',
      "--draft-of needs --draft-layers N (how many of the target's layers the draft keeps)",
    );
  return { preset, seed, dtype, shardMb, draftLayers, draftStrength, role: o.role ?? 'model' };
}

/** Remove weight files a previous run may have left (a stale index would shadow a new single file). */
/** One tensor's f32 values in file layout for GGUF: quantized per the recipe, llama q/k rows in llama.cpp's order. */
async function ggufTensorBytes(t: InitTensor, dtype: WeightDtype, spec: ModelSpec, seed: number): Promise<Uint8Array> {
  const f32 = new Uint8Array(entryBytes({ ...t, dtype: 'F32' }));
  let at = 0;
  await fillTensor({ ...t, dtype: 'F32' }, seed, (bytes) => {
    f32.set(bytes, at);
    at += bytes.length;
    return Promise.resolve();
  });
  const cols = t.shape[t.shape.length - 1];
  const values = new Float32Array(f32.buffer);
  let data: Uint8Array;
  if (isQuantized(dtype)) data = quantize(dtype, values, cols, t.name);
  else data = dtype === 'F32' ? f32 : new Uint8Array((dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values)).buffer);
  const heads = /q_proj\.weight$/.test(t.name) ? spec.nHeads : /k_proj\.weight$/.test(t.name) ? spec.nKvHeads : 0;
  return spec.arch === 'llama' && heads ? unpermuteHeads(data, t.shape[0], heads, true) : data;
}

/** Write model-QUANT.gguf next to the safetensors: header first, then each tensor (one in memory at a time). */
async function writeGgufModel(
  file: string,
  quant: GgufQuant,
  spec: ModelSpec,
  tensors: InitTensor[],
  seed: number,
  tok: ReturnType<typeof generateTokenizer>,
): Promise<number> {
  const entries: GgufTensorEntry[] = tensors.map((t) => ({
    name: ggufTensorName(t.name),
    dtype: recipeDtype(quant, t.name, t.shape, spec.nLayers, spec.tiedEmbeddings),
    shape: t.shape,
  }));
  const metadata = {
    ...ggufModelMetadata(spec, `shoal ${quant}`),
    ...ggufTokenizerMetadata(tok.tokenizer, tok.tokenizerConfig),
    'general.quantization_version': 2,
  };
  const { header, offsets, dataBytes } = ggufLayout(metadata, entries);
  const fh = await open(file, 'w');
  try {
    await fh.write(header);
    let at = 0;
    for (let i = 0; i < tensors.length; i++) {
      if (offsets[i].begin > at) await fh.write(new Uint8Array(offsets[i].begin - at)); // alignment padding
      await fh.write(await ggufTensorBytes(tensors[i], entries[i].dtype, spec, seed));
      at = offsets[i].end;
    }
  } finally {
    await fh.close();
  }
  return dataBytes;
}

async function clearWeights(dir: string): Promise<void> {
  for (const f of await readdir(dir)) {
    if (
      f === 'model.safetensors' ||
      f === 'model.safetensors.index.json' ||
      /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)
    )
      await rm(join(dir, f));
  }
}

/** Generate a model folder. Writes each shard header first, then each tensor in chunks: memory stays small. */
export async function makeModel(opts: MakeModelOptions): Promise<MakeModelResult> {
  const t0 = performance.now();
  const o = checkOptions(opts);
  if (!LITTLE_ENDIAN)
    throw new ShoalError(
      'ERR_BAD_ARGS',
      'make-model writes little-endian safetensors and needs a little-endian machine',
    );
  const log = opts.log ?? (() => {});
  const dir = resolve(opts.out);
  const tok = generateTokenizer(o.preset.config.vocab_size as number, {
    modelMaxLength: o.preset.config.max_position_embeddings as number,
  });

  const config: Record<string, unknown> = {
    ...o.preset.config,
    bos_token_id: tok.endOfTextId,
    eos_token_id: tok.imEndId,
    pad_token_id: tok.endOfTextId,
    torch_dtype: TORCH_DTYPE[o.dtype],
  };
  if (o.role === 'draft') config.num_hidden_layers = o.draftLayers;
  config.shoal_generator = {
    version: GENERATOR_VERSION,
    preset: opts.preset,
    seed: o.seed,
    dtype: o.dtype,
    role: o.role,
    // the recipe that typed model-QUANT.gguf: ensureDemoModel makes the file again when it changes
    ...(opts.gguf ? { gguf: opts.gguf, gguf_recipe: GGUF_RECIPE_VERSION } : {}),
    ...(o.draftLayers < (o.preset.config.num_hidden_layers as number)
      ? { draft_layers: o.draftLayers, draft_strength: o.draftStrength }
      : {}),
  };
  const spec = parseConfig(config);
  // Layers a draft also has keep full strength; only the target's extra layers are scaled.
  const tensors = modelTensors(spec, o.dtype, (l) => (l < o.draftLayers ? 1 : o.draftStrength), opts.init);

  await mkdir(dir, { recursive: true });
  await clearWeights(dir);
  const shards = planShards(tensors, o.shardMb * 1e6);
  const files: string[] = [];
  for (let s = 0; s < shards.length; s++) {
    const file = shards.length === 1 ? 'model.safetensors' : shardFileName(s, shards.length);
    const { header, dataBytes } = safetensorsLayout(shards[s]);
    const fh = await open(join(dir, file), 'w');
    try {
      await fh.write(header);
      for (const t of shards[s]) await fillTensor(t, o.seed, async (bytes) => void (await fh.write(bytes)));
    } finally {
      await fh.close();
    }
    files.push(file);
    log(`wrote ${file} (${shards[s].length} tensors, ${(dataBytes / 2 ** 20).toFixed(1)} MiB)`);
  }
  const json = (x: unknown) => JSON.stringify(x, null, 2) + '\n';
  if (shards.length > 1) {
    await writeFile(join(dir, 'model.safetensors.index.json'), json(shardIndex(shards)));
    files.push('model.safetensors.index.json');
  }
  await writeFile(join(dir, 'config.json'), json(config));
  await writeFile(
    join(dir, 'generation_config.json'),
    json({
      _from_model_config: true,
      bos_token_id: tok.endOfTextId,
      eos_token_id: tok.imEndId,
      pad_token_id: tok.endOfTextId,
    }),
  );
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.tokenizer));
  await writeFile(join(dir, 'tokenizer_config.json'), json(tok.tokenizerConfig));
  files.push('config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json');
  if (opts.gguf) {
    const file = `model-${opts.gguf}.gguf`;
    const bytes = await writeGgufModel(join(dir, file), opts.gguf, spec, tensors, o.seed, tok);
    files.push(file);
    log(`wrote ${file} (${(bytes / 2 ** 20).toFixed(1)} MiB of tensor data)`);
  }
  const weightBytes = tensors.reduce((sum, t) => sum + entryBytes(t), 0);
  return { dir, files, weightBytes, seconds: (performance.now() - t0) / 1000, spec };
}

// One line, as every CLI error here: the draft/target options are described in MakeModelOptions.
const USAGE =
  'usage: make-model (--preset NAME | --draft-of NAME --draft-layers N [--draft-strength S] [--target-out DIR2]) ' +
  '--out DIR [--seed N] [--dtype f32|f16|bf16] [--shard-mb N] [--gguf Q8_0|Q4_0|Q5_0|Q4_K_M|Q6_K|BF16]';

function numberFlag(v: string | true | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n))
    throw new ShoalError('ERR_BAD_ARGS', `--${name} must be a number (got ${String(v)})`);
  return n;
}

/** The command line as generator runs (a draft with --target-out is two). Throws ShoalError on bad input. */
export function parseMakeModelArgs(argv: string[]): MakeModelOptions[] {
  const f = parseFlags(argv, {
    values: [
      'preset',
      'out',
      'seed',
      'dtype',
      'shard-mb',
      'draft-of',
      'draft-layers',
      'draft-strength',
      'target-out',
      'gguf',
    ],
    switches: [],
  });
  if (f.preset !== undefined && f['draft-of'] !== undefined)
    throw new ShoalError('ERR_BAD_ARGS', 'give either --preset or --draft-of, not both');
  const preset = f.preset ?? f['draft-of'];
  if (typeof preset !== 'string' || typeof f.out !== 'string')
    throw new ShoalError('ERR_BAD_ARGS', `${USAGE} (presets: ${presetNames().join(', ')})`);
  if (f['target-out'] !== undefined && f['draft-of'] === undefined)
    throw new ShoalError('ERR_BAD_ARGS', '--target-out only goes with --draft-of');
  const dtype = f.dtype as GenDtype | undefined;
  if (dtype !== undefined && !(dtype in TORCH_DTYPE))
    throw new ShoalError('ERR_BAD_ARGS', `--dtype must be f32, f16 or bf16 (got ${String(dtype)})`);
  const common = {
    preset,
    seed: intFlag(f, 'seed', 0),
    dtype,
    shardMb: numberFlag(f['shard-mb'], 'shard-mb'),
    draftLayers: f['draft-layers'] === undefined ? undefined : intFlag(f, 'draft-layers', 0, 1),
    draftStrength: numberFlag(f['draft-strength'], 'draft-strength'),
    gguf: f.gguf as GgufQuant | undefined,
  };
  const runs: MakeModelOptions[] = [{ ...common, out: f.out, role: f['draft-of'] !== undefined ? 'draft' : 'model' }];
  if (typeof f['target-out'] === 'string') runs.push({ ...common, out: f['target-out'], role: 'model' });
  for (const run of runs) checkOptions(run); // fail before writing anything
  return runs;
}

async function main(): Promise<void> {
  const runs = parseMakeModelArgs(process.argv.slice(2));
  for (const run of runs) {
    const r = await makeModel({ ...run, log: (line) => process.stderr.write(line + '\n') });
    const s = r.spec;
    const weightFiles = r.files.filter((x) => x.endsWith('.safetensors')).length;
    process.stdout.write(
      `${r.dir}: ${run.preset}${run.role === 'draft' ? ' draft' : ''}, ${s.nLayers} layers, dim ${s.dim}, ` +
        `vocab ${s.vocabSize}, ${(r.weightBytes / 2 ** 20).toFixed(1)} MiB of weights in ${weightFiles} file(s), ` +
        `${r.seconds.toFixed(1)} s\n`,
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await runCli(main);
