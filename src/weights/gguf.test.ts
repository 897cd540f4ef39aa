// GGUF files written by our writer, read back as a model (names, shapes, llama q/k rows, split files), and every
// kind of bad file turned into one ShoalError line that names the problem.
import { describe, expect, it } from 'vitest';
import { expectedShape, parseConfig, type ModelSpec } from '../model/config.ts';
import { caught, sameBytes } from '../testing/assertions.ts';
import { readGgufHeader, unpermuteHeads } from './gguf.ts';
import { ggufModelMetadata, ggufTensorName, openGgufModel } from './ggufModel.ts';
import { writeGguf, type GgufWriteValue } from './ggufWriter.ts';
import { ggufLocation, ggufShardNames, pickQuantFile } from './locate.ts';
import { memorySource } from './source.ts';
import { quantize } from './quantize.ts';
import { requiredTensorNames, type ModelFiles } from './model.ts';
import type { QuantDtype, WeightDtype } from './types.ts';

const SPEC_CONFIG = {
  model_type: 'llama',
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 96,
  vocab_size: 40,
  tie_word_embeddings: true,
  eos_token_id: 3,
};
const SPEC: ModelSpec = parseConfig(SPEC_CONFIG);

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.1);
}

interface Tensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  data: Uint8Array;
}

/** Every tensor of `spec` under its Hugging Face name: matrices in `dtype` (rows are whole blocks), vectors F32. */
function hfTensors(spec: ModelSpec = SPEC, dtype: QuantDtype = 'Q8_0'): Tensor[] {
  return requiredTensorNames(spec).map((name, i) => {
    const shape = expectedShape(spec, name)!;
    const x = values(
      shape.reduce((a, b) => a * b, 1),
      i,
    );
    if (shape.length === 1) return { name, dtype: 'F32', shape, data: new Uint8Array(x.buffer) };
    return { name, dtype, shape, data: quantize(dtype, x, shape[1], name) };
  });
}

/** As llama.cpp writes them: GGUF names, llama q/k rows permuted. */
function ggufTensors(ts: Tensor[]): Tensor[] {
  return ts.map((t) => {
    const heads = t.name.includes('q_proj') ? SPEC.nHeads : t.name.includes('k_proj') ? SPEC.nKvHeads : 0;
    const data = heads ? unpermuteHeads(t.data, t.shape[0], heads, true) : t.data;
    return { ...t, name: ggufTensorName(t.name), data };
  });
}

const META: Record<string, GgufWriteValue> = ggufModelMetadata(SPEC, 'test');

function filesOf(map: Record<string, Uint8Array>): ModelFiles {
  return {
    base: 'mem/',
    text: () => Promise.reject(new Error('no text files')),
    bytes: (name) => memorySource(`mem/${name}`, map[name]),
  };
}

const open = (bytes: Uint8Array) => openGgufModel(filesOf({ 'm.gguf': bytes }), ['m.gguf']);

describe('GGUF round trip through our writer', () => {
  it('writes an Int32Array as an INT32 array (llama.cpp refuses a UINT32 tokenizer.ggml.token_type)', () => {
    const key = 'tokenizer.ggml.token_type';
    const bytes = writeGguf({ [key]: Int32Array.of(1, 3, 4) }, []);
    const at = new TextDecoder('latin1').decode(bytes).indexOf(key) + key.length;
    const v = new DataView(bytes.buffer, bytes.byteOffset + at);
    expect([v.getUint32(0, true), v.getUint32(4, true), Number(v.getBigUint64(8, true))]).toEqual([9, 5, 3]);
    expect([v.getInt32(16, true), v.getInt32(20, true), v.getInt32(24, true)]).toEqual([1, 3, 4]);
  });

  it.each(['Q8_0', 'Q5_0'] as const)(
    '%s: reads back the spec, tied embeddings and every tensor (llama q/k rows unpermuted)',
    async (dtype) => {
      const hf = hfTensors(SPEC, dtype);
      const model = await open(writeGguf(META, ggufTensors(hf)));
      expect({ ...model.spec, normEps: 0 }).toEqual({ ...SPEC, normEps: 0 });
      expect(model.spec.normEps).toBeCloseTo(SPEC.normEps, 12); // stored as f32
      expect(model.spec.tiedEmbeddings).toBe(true);
      const layer = await model.loadLayer(1);
      for (const t of hf.filter((x) => x.name.startsWith('model.layers.1.'))) {
        const got = layer.get(t.name)!;
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(sameBytes(got.data, t.data), t.name).toBe(true);
      }
      expect((await model.loadLmHead()).name).toBe('model.embed_tokens.weight');
      // Sizes come from the blocks: 2 bytes of scale per 32 values on top of the int8s.
      expect(model.layerBytes(0)).toBe(
        hf.filter((t) => t.name.startsWith('model.layers.0.')).reduce((s, t) => s + t.data.length, 0),
      );
      model.resetStats();
      await model.loadLayer(0);
      expect(model.stats().reads).toBe(1); // one coalesced read per layer
    },
  );

  it.each(['qwen2', 'qwen3'])('%s: biases / q-k norms mapped, rows left as stored (no permutation)', async (arch) => {
    const spec = parseConfig({ ...SPEC_CONFIG, model_type: arch, head_dim: 32, tie_word_embeddings: false });
    const hf = hfTensors(spec);
    const g = hf.map((t) => ({ ...t, name: ggufTensorName(t.name) }));
    const model = await open(writeGguf(ggufModelMetadata(spec, arch), g));
    expect({ ...model.spec, normEps: 0 }).toEqual({ ...spec, normEps: 0 });
    expect(spec.qkvBias || spec.qkNorm).toBe(true);
    const layer = await model.loadLayer(0);
    for (const t of hf.filter((x) => x.name.startsWith('model.layers.0.')))
      expect(sameBytes(layer.get(t.name)!.data, t.data), t.name).toBe(true);
  });

  it('a tied matrix stored only as output.weight serves as the embedding too', async () => {
    const g = ggufTensors(hfTensors()).map((t) =>
      t.name === 'token_embd.weight' ? { ...t, name: 'output.weight' } : t,
    );
    const model = await open(writeGguf(META, g));
    expect(model.spec.tiedEmbeddings).toBe(true);
    expect(sameBytes((await model.loadEmbedding()).data, g.find((t) => t.name === 'output.weight')!.data)).toBe(true);
  });

  it('opens split files (-00001-of-00002) as one model', async () => {
    const g = ggufTensors(hfTensors());
    const cut = g.findIndex((t) => t.name.startsWith('blk.1.'));
    const names = ggufShardNames('m-00002-of-00002.gguf');
    expect(names).toEqual(['m-00001-of-00002.gguf', 'm-00002-of-00002.gguf']);
    const files = filesOf({ [names[0]]: writeGguf(META, g.slice(0, cut)), [names[1]]: writeGguf({}, g.slice(cut)) });
    const model = await openGgufModel(files, names);
    expect(model.fileOf('model.layers.1.mlp.up_proj.weight')).toBe(names[1]);
    expect((await model.loadLayer(1)).size).toBe(9);
  });

  it('resolves owner/repo:QUANT through the Hub file listing, and owner/repo/file.gguf directly', async () => {
    const asked: string[] = [];
    const fetchImpl = ((url: string) => {
      asked.push(url);
      const tree = [{ path: 'README.md' }, { path: 'm-Q8_0.gguf' }, { path: 'sub/big-Q4_K_M-00001-of-00002.gguf' }];
      return Promise.resolve(new Response(JSON.stringify(tree)));
    }) as typeof fetch;
    expect(await ggufLocation('o/r:Q4_K_M', { fetchImpl })).toEqual({
      folder: 'https://huggingface.co/o/r/resolve/main/sub/',
      files: ['big-Q4_K_M-00001-of-00002.gguf', 'big-Q4_K_M-00002-of-00002.gguf'],
    });
    expect(asked).toEqual(['https://huggingface.co/api/models/o/r/tree/main?recursive=1']);
    expect(await ggufLocation('o/r/m-Q8_0.gguf')).toEqual({
      folder: 'https://huggingface.co/o/r/resolve/main/',
      files: ['m-Q8_0.gguf'],
    });
    expect(await ggufLocation('./local/m.gguf')).toEqual({ folder: './local/', files: ['m.gguf'] });
    expect(await ggufLocation('some/folder')).toBeNull();
  });

  it('picks a Hub file by quant tag', () => {
    const files = ['README.md', 'm-Q4_K_M.gguf', 'm-Q8_0.gguf', 'big-Q4_K_M-00001-of-00002.gguf'];
    expect(pickQuantFile('o/r', 'q8_0', files)).toBe('m-Q8_0.gguf');
    expect(() => pickQuantFile('o/r', 'Q4_K_M', files)).toThrow(/several GGUF files match/);
    expect(() => pickQuantFile('o/r', 'Q2_K', files)).toThrow(/no GGUF file matches the quant tag "Q2_K"/);
  });
});

/** Overwrite the little-endian u32 `ahead` bytes after the name of tensor `name` in the tensor infos. */
function patchAfterName(file: Uint8Array, name: string, ahead: number, value: number): Uint8Array {
  const out = file.slice();
  const needle = new TextEncoder().encode(name);
  let at = -1;
  for (let i = file.length - needle.length; i >= 0 && at < 0; i--)
    if (needle.every((b, j) => file[i + j] === b)) at = i + needle.length;
  new DataView(out.buffer).setUint32(at + ahead, value, true);
  return out;
}

describe('bad GGUF files: one clear error each', () => {
  const good = () => writeGguf(META, ggufTensors(hfTensors()));
  const why = async (bytes: Uint8Array) => (await caught(open(bytes))).message;

  it('truncated file, bad magic, unsupported version', async () => {
    expect(await why(good().slice(0, 10))).toMatch(/mem\/m\.gguf: the file is 10 bytes, too short/);
    expect(await why(good().slice(0, 300))).toMatch(/mem\/m\.gguf: .*(truncated|corrupt)/);
    const bad = good();
    bad[0] = 0x58;
    expect(await why(bad)).toMatch(/not a GGUF file \(bad magic/);
    const v1 = good();
    v1[4] = 1;
    expect(await why(v1)).toMatch(/GGUF version 1 is not supported \(supported: 2, 3\)/);
  });

  it('tensor data past the end of the file', async () => {
    const f = good();
    expect(await why(f.slice(0, f.length - 10))).toMatch(/tensor "[\w.]+" \[\d+, \d+\) is out of range: the file has/);
  });

  it('unknown tensor type, and a row that is not whole blocks', async () => {
    // after the name: n_dims (4), ne[0] and ne[1] (8 each), then the type
    expect(await why(patchAfterName(good(), 'blk.0.ffn_up.weight', 20, 13))).toMatch(
      new RegExp(
        'tensor "blk\\.0\\.ffn_up\\.weight" has type Q5_K \\(ggml type 13\\), which is not supported ' +
          '\\(F32, F16, Q4_0, Q5_0, Q8_0, Q4_K, Q6_K, BF16\\)',
      ),
    );
    expect(await why(patchAfterName(good(), 'blk.0.ffn_up.weight', 4, 40))).toMatch(
      /blk\.0\.ffn_up\.weight": rows of 40 values are not a multiple of the Q8_0 block size \(32\)/,
    );
  });

  it('unsupported architecture, and a tensor the metadata does not account for', async () => {
    const g = ggufTensors(hfTensors());
    const phi = await caught(open(writeGguf({ ...META, 'general.architecture': 'phi3' }, g)));
    expect(phi.code).toBe('ERR_UNSUPPORTED_ARCH');
    expect(phi.message).toMatch(/GGUF architecture "phi3" is not supported \(supported: llama, qwen2, qwen3\)/);
    const missing = g.filter((t) => t.name !== 'blk.1.ffn_down.weight');
    expect(await why(writeGguf(META, missing))).toMatch(/no tensor for "model\.layers\.1\.mlp\.down_proj\.weight"/);
  });

  it('the header reader reports the GGUF tensor types it read', async () => {
    const h = await readGgufHeader(memorySource('m.gguf', good()));
    expect(h.tensors.get('blk.0.attn_q.weight')).toMatchObject({ dtype: 'Q8_0', shape: [64, 64] });
    expect(h.metadata['llama.block_count']).toBe(2);
  });
});
