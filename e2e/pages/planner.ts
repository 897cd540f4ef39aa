// Test page: the planner in a real module Worker through comlink; results go on window for Playwright to read.
import { paperScenario } from '../../src/planner/paper.ts';
import { wrapPlanner } from '../../src/planner/remote.ts';

declare global {
  interface Window {
    plannerResult?: unknown;
  }
}

async function main(): Promise<unknown> {
  const worker = new Worker(new URL('../../src/planner/planner.worker.ts', import.meta.url), { type: 'module' });
  const api = wrapPlanner(worker);
  const sc = paperScenario(1024);
  const all = await api.planAll(sc);
  const sim = await api.simulate(sc, all.csgo);
  const engine = await api.toEngineStages(all.csgo);
  let error: { name: string; message: string; code?: unknown } | null = null;
  try {
    await api.plan({ ...sc, devices: sc.devices.map((d) => ({ ...d, memoryBytes: 1e9 })) }, 'csgo');
  } catch (e) {
    error = { name: (e as Error).name, message: (e as Error).message, code: (e as { code?: unknown }).code };
  }
  worker.terminate();
  return {
    all,
    sim: { ttftSeconds: sim.ttftSeconds, intervals: sim.timeline.intervals.length, devices: sim.timeline.devices },
    engine,
    error,
  };
}

main().then(
  (r) => {
    window.plannerResult = r;
    document.getElementById('out')!.textContent = 'done';
  },
  (e: unknown) => {
    window.plannerResult = { fatal: String(e) };
    document.getElementById('out')!.textContent = 'failed';
  },
);
