// The whole engine on WebGPU in headless Chromium against the reference fixtures and the CPU backend: logits at
// every position, greedy ids, splits into stages, weights split across bindings, cached decode vs full recompute,
// the GGUF fixtures (Q8_0, Q4_K_M: block formats unpacked in the kernels), and a generated model in F32, F16, BF16
// and as a Q4_K_M GGUF whose rows take llama.cpp's fallbacks (Q5_0, Q8_0).
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { openReady, startEngineServer } from '../scripts/webgpu-runner.ts';
import type { EngineServer } from '../scripts/webgpu-runner.ts';
import { makeModel } from '../scripts/make-model.ts';
import type { PageBranchArgs, PageBranchReply, PageInferArgs, PageInferReply } from '../scripts/pages/webgpu-infer.ts';
import { allClose } from '../src/testing/allClose.ts';
import type { FixtureCase } from '../src/testing/allClose.ts';
import { fixtureCases } from '../src/testing/fixturesNode.ts';
import { QUANT_FIXTURE_NAMES } from '../src/testing/allClose.ts';
import type { InferResult } from '../src/model/infer.ts';
import { GGUF_RECIPE_VERSION } from '../src/weights/ggufRecipe.ts';

const ATOL = 2e-3; // test/fixtures/README.md: WebGPU f32 accumulation
const RTOL = 2e-3;
const MODELS_DIR = resolve(import.meta.dirname, '../public/models');

test.describe.configure({ mode: 'serial' });

let server: EngineServer;
let page: Page;
test.beforeAll(async ({ browser }) => {
  server = await startEngineServer(); // no HMR: other work in this tree must not reload the page
  page = await browser.newPage();
  // 404s are expected: the loader probes for model.safetensors.index.json before model.safetensors.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('404')) console.log(`[page] ${m.text()}`);
  });
  await openReady(page, server.baseUrl + '/scripts/pages/webgpu-infer.html', 'shoalInfer');
});
test.afterAll(async () => {
  await page.close();
  await server.close();
});

async function infer(args: PageInferArgs): Promise<InferResult> {
  const reply = await page.evaluate(
    (a) => (window as unknown as { shoalInfer: (x: PageInferArgs) => Promise<PageInferReply> }).shoalInfer(a),
    args,
  );
  if (!reply.ok) throw new Error(`${reply.code}: ${reply.message}`);
  if (args.backend !== 'cpu') expect(reply.fellBack, reply.reason).toBe(false);
  return reply.result;
}

function expectLogitsClose(got: number[][], want: number[][], label: string): void {
  expect(got.length, `${label}: rows`).toBe(want.length);
  for (let r = 0; r < want.length; r++) {
    const rep = allClose(got[r], want[r], ATOL, RTOL, `${label} row ${r}`);
    expect(rep.ok, `max err ${rep.maxAbsErr}\n${rep.mismatches.join('\n')}`).toBe(true);
  }
}

for (const fixture of ['tiny-llama', 'tiny-qwen2'] as const) {
  const cases: FixtureCase[] = fixtureCases(fixture);
  const model = `/fixtures/${fixture}`;

  test(`${fixture}: logits at every position and greedy ids match expected.json`, async () => {
    for (const c of cases) {
      const r = await infer({ model, ids: c.input_ids, steps: c.greedy.length, logits: 'all' });
      expect(r.backend).toBe('webgpu');
      expectLogitsClose(r.logits, c.logits, `${fixture} ids=${c.input_ids.length}`);
      expect(r.generated).toEqual(c.greedy);
    }
  });

  test(`${fixture}: a split into stages gives the same result as one stage`, async () => {
    const c = cases[cases.length - 1];
    const one = await infer({ model, ids: c.input_ids, steps: 4, logits: 'all' });
    const split = fixture === 'tiny-llama' ? '0-1,1-3,3-4' : '0-2,2-3,3-6';
    const many = await infer({ model, ids: c.input_ids, steps: 4, logits: 'all', stages: split });
    expect(many.generated).toEqual(one.generated);
    for (let r = 0; r < one.logits.length; r++) {
      const rep = allClose(many.logits[r], one.logits[r], 1e-6, 1e-6, `stages ${split} row ${r}`);
      expect(rep.ok, rep.mismatches.join('\n')).toBe(true);
    }
  });

  test(`${fixture}: embedding and LM head split across small bindings give the same result`, async () => {
    const c = cases[1];
    // 4 KiB bindings: the (314, dim) embedding / LM head and the MLP matrices all split into many chunks.
    const r = await infer({
      model,
      ids: c.input_ids,
      steps: c.greedy.length,
      logits: 'all',
      maxBindingBytesOverride: 4096,
    });
    expectLogitsClose(r.logits, c.logits, `${fixture} split bindings`);
    expect(r.generated).toEqual(c.greedy);
  });

  test(`${fixture}: a stage branch computes its own path and gives the main line back untouched`, async () => {
    const c = cases[cases.length - 1];
    const n = c.input_ids.length,
      at = 3;
    const alt = [5, 6, 7, 8, 9, 10].slice(0, n - at); // longer than what the main line holds past `at`
    const reply = await page.evaluate(
      (a) => (window as unknown as { shoalBranch: (x: PageBranchArgs) => Promise<PageBranchReply> }).shoalBranch(a),
      { model, ids: c.input_ids, at, alt },
    );
    if (!reply.ok) throw new Error(reply.message);
    expectLogitsClose(reply.branch, reply.pathRef, `${fixture} branch vs its path from scratch`);
    expectLogitsClose(reply.main, c.logits.slice(n - 2), `${fixture} main line after a branch`);
  });

  test(`${fixture}: decode with the KV cache equals a full recompute`, async () => {
    const c = cases[1];
    const cached = await infer({ model, ids: c.input_ids, steps: 6, logits: 'none' });
    // Prefill the prompt plus what was generated: row i's argmax is the token after position i.
    const full = await infer({
      model,
      ids: [...c.input_ids, ...cached.generated.slice(0, 5)],
      steps: 1,
      logits: 'all',
    });
    const argmax = (row: number[]) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
    const recomputed = full.logits.slice(c.input_ids.length - 1).map(argmax);
    expect(recomputed).toEqual(cached.generated);
  });
}

for (const name of QUANT_FIXTURE_NAMES) {
  const cases: FixtureCase[] = fixtureCases(name);
  const [folder, quant] = name.split('/');
  const model = `/fixtures/${folder}/model-${quant}.gguf`;

  test(`${name}: logits at every position and greedy ids match expected-${quant}.json`, async () => {
    for (const c of cases) {
      const r = await infer({ model, ids: c.input_ids, steps: c.greedy.length, logits: 'all' });
      expect(r.backend).toBe('webgpu');
      expectLogitsClose(r.logits, c.logits, `${name} ids=${c.input_ids.length}`);
      expect(r.generated).toEqual(c.greedy);
    }
  });

  test(`${name}: one layer per stage matches expected-${quant}.json and one stage`, async () => {
    for (const c of cases) {
      const r = await infer({ model, ids: c.input_ids, steps: c.greedy.length, logits: 'all', stages: '0-1,1-2' });
      expectLogitsClose(r.logits, c.logits, `${name} stages 0-1,1-2 ids=${c.input_ids.length}`);
      expect(r.generated).toEqual(c.greedy);
    }
    const c = cases[cases.length - 1];
    const one = await infer({ model, ids: c.input_ids, steps: 4, logits: 'all' });
    const two = await infer({ model, ids: c.input_ids, steps: 4, logits: 'all', stages: '0-1,1-2' });
    for (let r = 0; r < one.logits.length; r++) {
      const rep = allClose(two.logits[r], one.logits[r], 1e-6, 1e-6, `${name} stages row ${r}`);
      expect(rep.ok, rep.mismatches.join('\n')).toBe(true);
    }
  });

  test(`${name}: blocks split across small bindings give the same result`, async () => {
    const c = cases[1];
    // 16 KiB bindings: the (768, 256) MLP matrices and the (314, 256) embedding / LM head split into chunks of rows.
    const r = await infer({
      model,
      ids: c.input_ids,
      steps: c.greedy.length,
      logits: 'all',
      maxBindingBytesOverride: 16384,
    });
    expectLogitsClose(r.logits, c.logits, `${name} split bindings`);
    expect(r.generated).toEqual(c.greedy);
  });
}

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  test(`generated tiny model in ${dtype.toUpperCase()}: WebGPU greedy ids equal the CPU backend's`, async () => {
    const dir = resolve(MODELS_DIR, `webgpu-test-tiny-${dtype}`);
    if (!existsSync(resolve(dir, 'config.json'))) await makeModel({ preset: 'tiny', out: dir, dtype, seed: 7 });
    const model = server.mount(dir);
    const ids = [1, 17, 42, 99, 200, 311, 5, 64, 128];
    const gpu = await infer({ model, ids, steps: 16, logits: 'last' });
    const cpu = await infer({ model, ids, steps: 16, logits: 'last', backend: 'cpu' });
    expect(cpu.backend).toBe('cpu');
    expect(gpu.generated).toEqual(cpu.generated);
    expectLogitsClose(gpu.logits, cpu.logits, `tiny ${dtype} last row`);
  });
}

// Rows of 64 and 128 values are not whole 256-value blocks: this Q4_K_M file holds llama.cpp's fallbacks (Q5_0, Q8_0).
test("generated tiny model as Q4_K_M GGUF (Q5_0, Q8_0 blocks): WebGPU greedy ids equal the CPU backend's", async () => {
  const dir = resolve(MODELS_DIR, `webgpu-test-tiny-gguf-Q4_K_M-r${GGUF_RECIPE_VERSION}`);
  if (!existsSync(resolve(dir, 'model-Q4_K_M.gguf')))
    await makeModel({ preset: 'tiny', out: dir, dtype: 'f32', seed: 7, gguf: 'Q4_K_M' });
  const model = server.mount(dir) + 'model-Q4_K_M.gguf';
  const ids = [1, 17, 42, 99, 200, 311, 5, 64, 128];
  const gpu = await infer({ model, ids, steps: 16, logits: 'last' });
  const cpu = await infer({ model, ids, steps: 16, logits: 'last', backend: 'cpu' });
  expect(cpu.backend).toBe('cpu');
  expect(gpu.generated).toEqual(cpu.generated);
  expectLogitsClose(gpu.logits, cpu.logits, 'tiny Q4_K_M last row');
});

test('a page without WebGPU falls back to the CPU backend and says so', async ({ browser }) => {
  const p = await browser.newPage();
  try {
    await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
    await openReady(p, server.baseUrl + '/scripts/pages/webgpu-infer.html', 'shoalInfer');
    const reply = await p.evaluate(
      (a) => (window as unknown as { shoalInfer: (x: PageInferArgs) => Promise<PageInferReply> }).shoalInfer(a),
      { model: '/fixtures/tiny-llama', ids: [5, 6], steps: 2, logits: 'none' as const },
    );
    expect(reply.ok).toBe(true);
    if (!reply.ok) return;
    expect(reply.fellBack).toBe(true);
    expect(reply.reason).toMatch(/WebGPU is not available/);
    expect(reply.result.backend).toBe('cpu');
    // ...whose matmuls run as WebAssembly SIMD in the browser too (the module compiles synchronously, main thread)
    const simd = await p.evaluate(async () => {
      const url = '/src/backend/cpu/wasmGemm.ts';
      return ((await import(/* @vite-ignore */ url)) as { wasmSimdSupported(): boolean }).wasmSimdSupported();
    });
    expect(simd).toBe(true);
  } finally {
    await p.close();
  }
});
