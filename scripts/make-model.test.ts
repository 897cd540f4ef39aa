// The model generator end to end: files round-trip through the project's reader in every dtype,
// bytes are a pure function of the seed, sharding writes a valid index, drafts share the target's
// weights, the demo model generates varied tokens, and bad arguments get one-line errors.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../src/weights/types.ts';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { EMBED_TENSOR, FINAL_NORM_TENSOR, LM_HEAD_TENSOR, layerTensorNames, parseConfig } from '../src/model/config.ts';
import { runInfer } from '../src/model/infer.ts';
import { decodeToF32, f32ToBf16, f32ToF16 } from '../src/weights/dtype.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import { openModel, type ModelSource } from '../src/weights/model.ts';
import { ensureDemoModel } from './ensure-demo-model.ts';
import { openModelAt } from '../src/weights/locate.ts';
import { GGUF_RECIPE_VERSION, recipeDtype } from '../src/weights/ggufRecipe.ts';
import { dequantize } from '../src/weights/quant.ts';
import { isQuantized, numel, type QuantDtype } from '../src/weights/types.ts';
import { unpermuteHeads } from '../src/weights/gguf.ts';
import { ggufModelMetadata, ggufTensorName, openGgufModel } from '../src/weights/ggufModel.ts';
import { writeGguf } from '../src/weights/ggufWriter.ts';
import { memorySource } from '../src/weights/source.ts';
import { assertAllClose } from '../src/testing/allClose.ts';
import { loadTokenizer } from '../src/tokenizer/index.ts';
import { makeModel, parseMakeModelArgs, type MakeModelOptions } from './make-model.ts';

const root = mkdtempSync(join(tmpdir(), 'shoal-make-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const outDir = (tag: string) => join(root, `${tag}-${n++}`);

async function make(opts: Omit<MakeModelOptions, 'out'>) {
  const out = outDir(opts.preset);
  const r = await makeModel({ ...opts, out });
  return { ...r, model: await openModel(localModelFiles(out)) };
}

async function allTensors(model: ModelSource): Promise<HostTensor[]> {
  return model.loadTensors(model.requiredTensors());
}

function stats(x: Float32Array) {
  let s = 0,
    s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean) };
}

/** The fields of the generated JSON files that these tests read. */
interface ConfigJson {
  torch_dtype: string;
  eos_token_id: number;
  pad_token_id: number;
  vocab_size: number;
  shoal_generator: unknown;
}
interface IndexJson {
  weight_map: Record<string, string>;
  metadata: { total_size: number };
}
interface TokenizerJson {
  model: { vocab: Record<string, number> };
}
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('make-model', () => {
  it('tiny round-trips through the reader in f32, f16 and bf16; 16-bit files are the f32 values rounded', async () => {
    const byDtype = new Map<string, HostTensor[]>();
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const r = await make({ preset: 'tiny', seed: 3, dtype });
      const config = readJson<ConfigJson>(join(r.dir, 'config.json'));
      expect(config.torch_dtype).toBe({ f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype]);
      expect(r.model.spec.tiedEmbeddings).toBe(false);
      const tensors = await allTensors(r.model);
      expect(tensors.map((t) => t.name)).toEqual(r.model.requiredTensors());
      expect(tensors.map((t) => t.name)).toContain(LM_HEAD_TENSOR);
      for (const t of tensors) expect(t.dtype).toBe({ f32: 'F32', f16: 'F16', bf16: 'BF16' }[dtype]);
      const layer = await r.model.loadLayer(3);
      expect([...layer.keys()]).toEqual(layerTensorNames(r.model.spec, 3));
      byDtype.set(dtype, tensors);
    }
    const f32 = byDtype.get('f32')!;
    f32.forEach((t, i) => {
      const v = decodeToF32('F32', t.data);
      expect(Buffer.from(f32ToF16(v).buffer)).toEqual(Buffer.from(byDtype.get('f16')![i].data));
      expect(Buffer.from(f32ToBf16(v).buffer)).toEqual(Buffer.from(byDtype.get('bf16')![i].data));
    });
  });

  it('draws each tensor from its intended distribution', async () => {
    const r = await make({ preset: 'demo', seed: 1, dtype: 'f32' });
    const get = async (name: string) => decodeToF32('F32', (await r.model.loadTensors([name]))[0].data);
    const dim = 256;
    const cases: Array<[string, number, number]> = [
      [EMBED_TENSOR, 0, 1 / Math.sqrt(dim)],
      ['model.layers.5.self_attn.q_proj.weight', 0, 1 / Math.sqrt(dim)],
      ['model.layers.5.self_attn.o_proj.weight', 0, 0.5 / Math.sqrt(dim)],
      ['model.layers.5.mlp.gate_proj.weight', 0, 1.5 / Math.sqrt(dim)],
      ['model.layers.5.mlp.down_proj.weight', 0, 1 / Math.sqrt(768)],
      ['model.layers.5.input_layernorm.weight', 1, 0.05],
      [FINAL_NORM_TENSOR, 1, 0.05],
    ];
    for (const [name, mean, std] of cases) {
      const s = stats(await get(name));
      expect(Math.abs(s.mean - mean), name).toBeLessThan(std * 0.2);
      expect(s.std / std, name).toBeGreaterThan(0.85);
      expect(s.std / std, name).toBeLessThan(1.15);
    }
  });

  it('is a pure function of the seed', async () => {
    const a = await make({ preset: 'tiny', seed: 42 });
    const b = await make({ preset: 'tiny', seed: 42 });
    const c = await make({ preset: 'tiny', seed: 43 });
    for (const f of a.files) expect(sha(join(b.dir, f)), f).toBe(sha(join(a.dir, f)));
    expect(sha(join(c.dir, 'model.safetensors'))).not.toBe(sha(join(a.dir, 'model.safetensors')));
    expect(readFileSync(join(c.dir, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(a.dir, 'tokenizer.json'), 'utf8'),
    );
  });

  it('writes qwen2 biases and qwen3 q/k norms where the architecture has them (the reader checks shapes)', async () => {
    // Shrunk real configs: the same architecture features at a size a test can afford.
    const { PRESETS } = await import('../src/model/presets.ts');
    for (const [name, extra] of [
      ['qwen2.5-0.5b', 'self_attn.q_proj.bias'],
      ['qwen3-0.6b', 'self_attn.q_norm.weight'],
    ] as const) {
      const base = PRESETS[name];
      const key = `shrunk-${name}`;
      PRESETS[key] = {
        ...base,
        config: {
          ...base.config,
          num_hidden_layers: 2,
          hidden_size: 64,
          intermediate_size: 96,
          num_attention_heads: 4,
          num_key_value_heads: 2,
          head_dim: 16,
          vocab_size: 300,
        },
      };
      try {
        const r = await make({ preset: key, seed: 0 });
        const layer = await r.model.loadLayer(1);
        expect(layer.has(`model.layers.1.${extra}`)).toBe(true);
        expect(r.model.spec.tiedEmbeddings).toBe(true);
        expect(() => r.model.fileOf(LM_HEAD_TENSOR)).not.toThrow(); // single file: no lookup failure
        const header = readFileSync(join(r.dir, 'model.safetensors'))
          .subarray(8, 8 + 65536)
          .toString('utf8');
        expect(header).not.toContain(LM_HEAD_TENSOR); // tied: no separate head written
      } finally {
        delete PRESETS[key];
      }
    }
  });

  it('shards past --shard-mb with a Hugging Face index, and the shards hold the same tensors', async () => {
    const single = await make({ preset: 'tiny', seed: 5 });
    const sharded = await make({ preset: 'tiny', seed: 5, shardMb: 0.05 }); // 50 KB per shard
    const shards = readdirSync(sharded.dir)
      .filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f))
      .sort();
    expect(shards.length).toBeGreaterThan(3);
    expect(existsSync(join(sharded.dir, 'model.safetensors'))).toBe(false);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    const index = readJson<IndexJson>(join(sharded.dir, 'model.safetensors.index.json'));
    expect(Object.keys(index.weight_map).sort()).toEqual(single.model.requiredTensors().sort());
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shards));
    expect(index.metadata.total_size).toBe(single.weightBytes);
    for (const f of shards) expect(statSync(join(sharded.dir, f)).size).toBeLessThan(50_000 + 16384);
    const a = await allTensors(single.model);
    const b = await allTensors(sharded.model);
    a.forEach((t, i) => expect(Buffer.from(b[i].data).equals(Buffer.from(t.data)), t.name).toBe(true));
    // Regenerating unsharded into the same folder removes the old shards and index.
    await makeModel({ preset: 'tiny', seed: 5, out: sharded.dir });
    expect(readdirSync(sharded.dir).filter((f) => f.includes('safetensors'))).toEqual(['model.safetensors']);
  });

  it('writes config, generation config and tokenizer files that agree on the special tokens', async () => {
    const r = await make({ preset: 'demo', seed: 0 });
    const config = readJson<ConfigJson>(join(r.dir, 'config.json'));
    const gen = readJson<{ eos_token_id: number }>(join(r.dir, 'generation_config.json'));
    const tok = readJson<TokenizerJson>(join(r.dir, 'tokenizer.json'));
    const tokConfig = readJson<{ eos_token: string }>(join(r.dir, 'tokenizer_config.json'));
    expect(config.eos_token_id).toBe(tok.model.vocab['<|im_end|>']);
    expect(config.pad_token_id).toBe(tok.model.vocab['<|endoftext|>']);
    expect(gen.eos_token_id).toBe(config.eos_token_id);
    expect(tokConfig.eos_token).toBe('<|im_end|>');
    expect(Object.keys(tok.model.vocab)).toHaveLength(config.vocab_size);
    expect(parseConfig(config).eosTokenIds).toEqual([config.eos_token_id]);
  });

  it('the demo model greedily generates varied tokens, not one token repeated', async () => {
    const r = await make({ preset: 'demo', seed: 0 });
    for (const ids of [
      [295, 330, 341, 107, 441],
      [257, 117, 416, 10, 72, 105, 258, 10, 257],
    ]) {
      const out = await runInfer({ model: r.model, backend: createCpuBackend(), ids, steps: 24, logits: 'none' });
      expect(new Set(out.generated).size, out.generated.join(',')).toBeGreaterThanOrEqual(12);
    }
  });

  it("a draft copies the target's embedding, first layers, head byte for byte; strength scales the rest", async () => {
    const target = await make({ preset: 'tiny', seed: 9, draftLayers: 2, draftStrength: 0.25 });
    const draft = await make({ preset: 'tiny', seed: 9, role: 'draft', draftLayers: 2 });
    const plain = await make({ preset: 'tiny', seed: 9 });
    expect(draft.model.spec.nLayers).toBe(2);
    expect(target.model.spec.nLayers).toBe(4);
    const names = draft.model.requiredTensors();
    expect(names).toContain(LM_HEAD_TENSOR);
    const d = await draft.model.loadTensors(names);
    const t = await target.model.loadTensors(names);
    d.forEach((x, i) => expect(Buffer.from(x.data).equals(Buffer.from(t[i].data)), x.name).toBe(true));
    const o = 'model.layers.3.self_attn.o_proj.weight';
    const q = 'model.layers.3.self_attn.q_proj.weight';
    const [tO, tQ] = await target.model.loadTensors([o, q]);
    const [pO, pQ] = await plain.model.loadTensors([o, q]);
    expect(stats(decodeToF32(tO.dtype, tO.data)).std / stats(decodeToF32(pO.dtype, pO.data)).std).toBeCloseTo(0.25, 2);
    expect(Buffer.from(tQ.data).equals(Buffer.from(pQ.data))).toBe(true);
    const meta = readJson<ConfigJson>(join(draft.dir, 'config.json')).shoal_generator;
    expect(meta).toMatchObject({ role: 'draft', draft_layers: 2, seed: 9 });
  });

  it('generates smollm2-135m (real shape, bf16) in seconds, and the reader accepts it', async () => {
    const t0 = performance.now();
    const r = await make({ preset: 'smollm2-135m', seed: 0 });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`smollm2-135m bf16: ${(r.weightBytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(1)} s`);
    expect(r.weightBytes).toBe(134_515_008 * 2);
    expect((await r.model.loadLayer(29)).get('model.layers.29.mlp.down_proj.weight')!.shape).toEqual([576, 1536]);
    rmSync(r.dir, { recursive: true, force: true });
  });

  // demo rows are whole 256-value blocks (its tied embedding is Q6_K as llama.cpp's LM head); tiny's (hidden 64,
  // 128) are not: its Q4_K_M holds the Q5_0 and Q8_0 fallbacks.
  it.each([
    ['demo', 'Q8_0'],
    ['demo', 'Q4_0'],
    ['demo', 'Q5_0'],
    ['demo', 'Q4_K_M'],
    ['demo', 'Q6_K'],
    ['tiny', 'Q4_K_M'],
  ] as const)(
    '%s --gguf %s writes a GGUF the reader opens: the f32 weights within a step, the same tokenizer, a working model',
    async (preset, quant) => {
      const r = await make({ preset, seed: 5, dtype: 'f32', gguf: quant });
      const g = await openModelAt(join(r.dir, `model-${quant}.gguf`));
      expect({ ...g.spec, normEps: 0 }).toEqual({ ...r.model.spec, normEps: 0 });
      const layer = Math.min(9, g.spec.nLayers - 1);
      const names = ['model.embed_tokens.weight', ...layerTensorNames(g.spec, layer), FINAL_NORM_TENSOR];
      const [want, got] = await Promise.all([r.model.loadTensors(names), g.loadTensors(names)]);
      got.forEach((t, i) => {
        expect(t.dtype).toBe(recipeDtype(quant, t.name, t.shape, g.spec.nLayers, g.spec.tiedEmbeddings));
        const ref = decodeToF32('F32', want[i].data);
        const back = new Float32Array(ref.length);
        if (t.dtype === 'F32') back.set(decodeToF32('F32', t.data));
        else dequantize(t.dtype as QuantDtype, t.data, 0, ref.length, back);
        // within one step of each value's block (coarsest: Q4_0, 16 levels over the block's range)
        const amax = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const maxErr = ref.reduce((m, v, k) => Math.max(m, Math.abs(back[k] - v)), 0);
        expect(maxErr, t.name).toBeLessThan((2 * amax) / 7);
      });
      if (preset === 'tiny') expect(new Set(got.map((t) => t.dtype))).toEqual(new Set(['Q5_0', 'Q8_0', 'F32']));
      const [a, b] = await Promise.all([loadTokenizer(r.dir), loadTokenizer(join(r.dir, `model-${quant}.gguf`))]);
      expect(b.applyChatTemplate([{ role: 'user', content: 'hello there' }])).toEqual(
        a.applyChatTemplate([{ role: 'user', content: 'hello there' }]),
      );
      const out = await runInfer({ model: g, backend: createCpuBackend(), ids: [1, 2, 3], steps: 3, logits: 'last' });
      expect(out.generated).toHaveLength(3);
      expect(out.logits[0].every(Number.isFinite)).toBe(true);
    },
  );

  // The whole engine on blocks (Q5_0 and Q8_0 here) against the same weights dequantized and run as F32: the block
  // kernels may only change the order of f32 additions, so the fixtures' CPU tolerance holds, greedy ids exactly.
  it.each([true, false])('tiny as Q4_K_M on the CPU engine (simd %s) equals its weights dequantized', async (simd) => {
    const r = await make({ preset: 'tiny', seed: 6, dtype: 'f32', gguf: 'Q4_K_M' });
    const g = await openModelAt(join(r.dir, 'model-Q4_K_M.gguf'));
    const f32 = await dequantizedGguf(g);
    const ids = [1, 17, 42, 99, 200, 311, 5];
    const [q, f] = await Promise.all(
      [g, f32].map((model) => runInfer({ model, backend: createCpuBackend({ simd }), ids, steps: 6, logits: 'all' })),
    );
    expect(q.generated).toEqual(f.generated);
    q.logits.forEach((row, i) => assertAllClose(row, f.logits[i], 1e-4, 1e-4, `tiny Q4_K_M row ${i}`));
  });
});

/** `model` with every tensor dequantized to F32, as a GGUF in memory (llama q/k rows permuted back as stored). */
async function dequantizedGguf(model: ModelSource): Promise<ModelSource> {
  const spec = model.spec;
  const tensors = (await allTensors(model)).map((t) => {
    let data = t.data;
    if (isQuantized(t.dtype)) {
      const f = new Float32Array(numel(t.shape));
      dequantize(t.dtype, t.data, 0, f.length, f);
      data = new Uint8Array(f.buffer);
    }
    const heads = /q_proj\.weight$/.test(t.name) ? spec.nHeads : /k_proj\.weight$/.test(t.name) ? spec.nKvHeads : 0;
    if (heads) data = unpermuteHeads(data, t.shape[0], heads, true);
    return { name: ggufTensorName(t.name), dtype: 'F32' as const, shape: t.shape, data };
  });
  const bytes = writeGguf(ggufModelMetadata(spec, 'dequantized'), tensors);
  const files = {
    base: 'mem/',
    text: () => Promise.reject(new Error('no text files')),
    bytes: () => memorySource('mem/m.gguf', bytes),
  };
  return openGgufModel(files, ['m.gguf']);
}

describe('make-model CLI', () => {
  const run = promisify(execFile);
  const cli = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'scripts/make-model.ts', ...args], {
      cwd: join(import.meta.dirname, '..'),
    });

  it('writes a model and says what it wrote', async () => {
    const out = outDir('cli');
    const { stdout } = await cli('--preset', 'tiny', '--out', out, '--seed', '7', '--dtype', 'bf16');
    expect(stdout).toMatch(/tiny, 4 layers, dim 64, vocab 512/);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
  });

  it('fails on bad input with one line on stderr, a non-zero exit and no stack trace', async () => {
    const err = await cli('--preset', 'nope', '--out', outDir('never')).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err, 'should have failed').not.toBeNull();
    expect(err!.code).not.toBe(0);
    const lines = err!.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
    expect(lines, err!.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: unknown preset "nope" \(valid: demo, tiny, smollm2-135m/);
  });

  it.each([
    [['--preset', 'tiny'], /usage: make-model/],
    [['--preset', 'tiny', '--out', 'x', '--dtype', 'f8'], /--dtype must be f32, f16 or bf16/],
    [['--preset', 'tiny', '--out', 'x', '--seed', '-1'], /--seed must be an integer/],
    [['--preset', 'tiny', '--out', 'x', '--shard-mb', 'lots'], /--shard-mb must be a number/],
    [['--preset', 'tiny', '--out', 'x', '--shard-mb', '0'], /--shard-mb must be a positive number/],
    [['--preset', 'tiny', '--draft-of', 'tiny', '--out', 'x'], /either --preset or --draft-of/],
    [['--draft-of', 'tiny', '--out', 'x'], /--draft-of needs --draft-layers/],
    [['--draft-of', 'tiny', '--draft-layers', '9', '--out', 'x'], /--draft-layers must be an integer in 1\.\.4/],
    [
      ['--draft-of', 'tiny', '--draft-layers', '2', '--draft-strength', '-1', '--out', 'x'],
      /--draft-strength must be a number >= 0/,
    ],
    [['--preset', 'tiny', '--out', 'x', '--target-out', 'y'], /--target-out only goes with --draft-of/],
    [['--preset', 'tiny', '--out', 'x', '--draft-strength', '0.5'], /--draft-strength needs --draft-layers/],
    [['--preset', 'tiny', '--out', 'x', '--bogus'], /unknown flag --bogus/],
  ])('rejects %j', (args, message) => {
    expect(() => parseMakeModelArgs(args)).toThrow(message);
  });

  it('parses a draft with its target', () => {
    const runs = parseMakeModelArgs([
      '--draft-of',
      'demo',
      '--draft-layers',
      '2',
      '--draft-strength',
      '0.1',
      '--out',
      'd',
      '--target-out',
      't',
      '--seed',
      '4',
    ]);
    expect(runs.map((r) => [r.role, r.out, r.preset, r.draftLayers, r.draftStrength, r.seed])).toEqual([
      ['draft', 'd', 'demo', 2, 0.1, 4],
      ['model', 't', 'demo', 2, 0.1, 4],
    ]);
  });
});

describe('ensureDemoModel', () => {
  it('generates demo and tiny once, and regenerates a model that lost its weights', async () => {
    const models = outDir('models');
    const dir = await ensureDemoModel(models);
    expect(dir).toBe(join(models, 'demo'));
    const demo = await openModel(localModelFiles(dir));
    expect(demo.spec.nLayers).toBe(12);
    expect((await openModel(localModelFiles(join(models, 'tiny')))).spec.nLayers).toBe(4);
    const mtime = statSync(join(dir, 'model.safetensors')).mtimeMs;
    await ensureDemoModel(models);
    expect(statSync(join(dir, 'model.safetensors')).mtimeMs).toBe(mtime);
    unlinkSync(join(models, 'tiny', 'model.safetensors'));
    await ensureDemoModel(models);
    expect(existsSync(join(models, 'tiny', 'model.safetensors'))).toBe(true);
    expect(readdirSync(models).sort()).toEqual(['demo', 'tiny']); // no temporary folders left
  });

  it('with --quant, makes model-QUANT.gguf again when it was made by an older recipe', async () => {
    const models = outDir('models');
    const dir = await ensureDemoModel(models, () => {}, 'Q4_K_M');
    const gguf = join(dir, 'model-Q4_K_M.gguf');
    const mtime = statSync(gguf).mtimeMs;
    await ensureDemoModel(models, () => {}, 'Q4_K_M');
    expect(statSync(gguf).mtimeMs).toBe(mtime);
    const configFile = join(dir, 'config.json');
    const config = readJson<{ shoal_generator: { gguf_recipe: number } }>(configFile);
    config.shoal_generator.gguf_recipe -= 1;
    writeFileSync(configFile, JSON.stringify(config));
    await ensureDemoModel(models, () => {}, 'Q4_K_M');
    expect(statSync(gguf).mtimeMs).not.toBe(mtime);
    expect(readJson<typeof config>(configFile).shoal_generator.gguf_recipe).toBe(GGUF_RECIPE_VERSION);
  });

  it('survives concurrent callers (two servers starting at once)', async () => {
    const models = outDir('models');
    await Promise.all([ensureDemoModel(models), ensureDemoModel(models), ensureDemoModel(models)]);
    expect(readdirSync(models).sort()).toEqual(['demo', 'tiny']);
    expect((await openModel(localModelFiles(join(models, 'demo')))).spec.nLayers).toBe(12);
  });
});
