// The planner API through a real module Worker in Chromium (comlink), matching what Node computes.
import { expect, test } from '@playwright/test';
import { planAll } from '../src/planner/index.ts';
import { paperScenario } from '../src/planner/paper.ts';

test('planner worker plans, simulates and reports infeasible scenarios', async ({ page }) => {
  await page.goto('/e2e/pages/planner.html');
  await expect.poll(() => page.evaluate(() => window.plannerResult !== undefined), { timeout: 60_000 }).toBe(true);
  const r = (await page.evaluate(() => window.plannerResult)) as {
    fatal?: string;
    all: ReturnType<typeof planAll>;
    sim: { ttftSeconds: number; intervals: number; devices: string[] };
    engine: { device: string; start: number; end: number }[];
    error: { name: string; message: string; code?: string } | null;
  };
  expect(r.fatal).toBeUndefined();
  // the browser's answer is Node's answer, strategy by strategy
  const node = planAll(paperScenario(1024));
  for (const name of Object.keys(node) as (keyof typeof node)[]) {
    expect(r.all[name].stages).toEqual(node[name].stages);
    expect(r.all[name].predictedSeconds).toBeCloseTo(node[name].predictedSeconds, 9);
  }
  expect(r.all.csgo.method).toBe('exact');
  expect(r.sim.ttftSeconds).toBeCloseTo(node.csgo.predictedSeconds, 9);
  expect(r.sim.intervals).toBeGreaterThan(40);
  expect(r.sim.devices).toEqual(['device1', 'device2', 'device3', 'device4']);
  expect(r.engine[0].start).toBe(0);
  expect(r.engine[r.engine.length - 1].end).toBe(40);
  expect(r.error?.name).toBe('ShoalError');
  expect(r.error?.message).toMatch(/no plan fits/);
  expect(r.error?.code).toBe('ERR_INFEASIBLE_PLAN');
});
