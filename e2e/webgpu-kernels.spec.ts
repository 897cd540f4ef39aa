// Every WebGPU kernel against its CPU twin in real headless Chromium (WebGPU via SwiftShader), at sizes that do
// not divide the workgroups and in each weight dtype; the checks themselves live in pages/webgpu-kernels.ts.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import type { CheckReport, KernelSuite } from './pages/webgpu-kernels.ts';
import { openReady, startEngineServer } from '../scripts/webgpu-runner.ts';
import type { EngineServer } from '../scripts/webgpu-runner.ts';

type SuiteWindow = { shoalKernels: KernelSuite };

async function open(page: Page, baseUrl: string): Promise<void> {
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('WebGPU error: ') && !m.text().includes('404'))
      console.log(`[page] ${m.text()}`);
  });
  await openReady(page, baseUrl + '/e2e/pages/webgpu-kernels.html', 'shoalKernels');
}

function expectAllOk(reports: CheckReport[]): void {
  expect(reports.length).toBeGreaterThan(0);
  const bad = reports
    .filter((r) => !r.ok)
    .map((r) => `${r.label}: max err ${r.maxAbsErr}\n    ${r.mismatches.join('\n    ')}`);
  expect(bad, bad.join('\n')).toEqual([]);
}

test.describe.configure({ mode: 'serial' });

// Our own Vite server without HMR or file watching: other work in this tree must not reload the page mid-suite.
let server: EngineServer;
let page: Page;
test.beforeAll(async ({ browser }) => {
  server = await startEngineServer();
  page = await browser.newPage();
  await open(page, server.baseUrl);
});
test.afterAll(async () => {
  await page.close();
  await server.close();
});

test('rmsNorm matches the CPU reference', async () => {
  expectAllOk(await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.rmsNorm()));
});

test('embed matches, whole and split across bindings', async () => {
  expectAllOk(await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.embed()));
  expectAllOk(await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.embedSplit()));
});

for (const dtype of ['F32', 'F16', 'BF16'] as const) {
  test(`matmul (gemv and tiled, bias/residual/norm) in ${dtype}`, async () => {
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.matmul(d), dtype));
  });
  test(`matmul with the weight split across bindings in ${dtype}`, async () => {
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.matmulSplit(d), dtype));
  });
  test(`gateUp (fused norm + silu*up) in ${dtype}, whole and split`, async () => {
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.gateUp(d), dtype));
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.gateUpSplit(d), dtype));
  });
  test(`ropeAndCache + attention (prefill then decode, GQA, qk-norm weights in ${dtype})`, async () => {
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.attention(d), dtype));
  });
}

for (const dtype of ['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const) {
  test(`${dtype} blocks: the WGSL dequantizer equals quant.ts exactly on hand-built blocks`, async () => {
    expectAllOk(await page.evaluate((d) => (window as unknown as SuiteWindow).shoalKernels.dequant(d), dtype));
  });
  test(`matmul and gateUp in ${dtype} (gemv and tiled, fused norm/bias/residual), whole and split`, async () => {
    for (const check of ['matmul', 'matmulSplit', 'gateUp', 'gateUpSplit'] as const)
      expectAllOk(
        await page.evaluate(([c, d]) => (window as unknown as SuiteWindow).shoalKernels[c](d), [check, dtype] as const),
      );
  });
}

test('argmax (ties to the lowest index), sliceRows and concatRows', async () => {
  expectAllOk(await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.argmaxSlice()));
});

test('ops between two reads go into one submit', async () => {
  const s = await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.oneSubmit());
  expect(s).toEqual({ dispatches: 5, submits: 1 });
});

test('a tensor that cannot fit is refused before anything is uploaded', async () => {
  const codes = await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.doesNotFit());
  expect(codes).toEqual(['ERR_DOES_NOT_FIT', 'ERR_DOES_NOT_FIT']);
});

test('an uncaptured WebGPU error goes to the one failure path with a code', async () => {
  const r = await page.evaluate(() => (window as unknown as SuiteWindow).shoalKernels.failurePath());
  expect(r).toEqual({ reported: ['ERR_BACKEND'], readRejects: 'ERR_BACKEND' });
});
