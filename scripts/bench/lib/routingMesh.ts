// The routing bench on a real mesh (default engine): headless Chromium, one browser context per tab (its own
// renderer process), real WebRTC between tabs, link delay and the person's compute slowdown set by URL knobs. The
// person's tab loads the small model whole through its routing panel (the page's own createPageRouter: same loader,
// same engine choice, the tab's emulated slowdown paid by the small model) and coordinates the large model's three
// stages on three other tabs. Timing and every routed turn run inside the person's tab (src/router/benchRun.ts).
import { chromium } from '@playwright/test';
import type { Mesh } from '../../../src/mesh/mesh.ts';
import type { StageAssignment } from '../../../src/pipeline/messages.ts';
import type { Session } from '../../../src/pipeline/session.ts';
import type * as BenchRunNs from '../../../src/router/benchRun.ts';
import type * as DifficultyNs from '../../../src/router/difficulty.ts';
import type { PageRouter } from '../../../src/router/pageRouter.ts';
import type * as PanelNs from '../../../src/ui/routerPanel.ts';
import { chromiumLaunchOptions } from '../../chromium.ts';
import { startEngineServer } from '../../webgpu-runner.ts';
import type { RoutingEngine } from './routingEngine.ts';
import { openBenchTabs, type BenchTabs } from './tabs.ts';

type Win = { shoal: { mesh: Mesh; session: Session }; shoalRouteBench?: PageRouter };

export async function meshEngine(
  dirs: { small: string; large: string },
  o: { delayMs: number; smallSlowdown: number; log: (line: string) => void },
): Promise<RoutingEngine> {
  const server = await startEngineServer();
  const browser = await chromium.launch({ ...chromiumLaunchOptions(), headless: true });
  let tabs: BenchTabs | null = null;
  const close = async () => {
    await tabs?.close();
    await browser.close();
    await server.close();
  };
  try {
    const smallUrl = server.mount(dirs.small),
      largeUrl = server.mount(dirs.large);
    tabs = await openBenchTabs(browser, server.baseUrl, {
      n: 4,
      roomPrefix: 'routebench',
      delayMs: o.delayMs,
      slowdown: o.smallSlowdown,
      log: o.log,
      timeoutMs: 180_000,
    });
    const { pages, ids } = tabs;
    const person = pages[0];
    const probe = await person.evaluate(
      async ({ smallUrl, largeUrl, ids }) => {
        const w = window as unknown as Win;
        const panelUrl = '/src/ui/routerPanel.ts',
          scorerUrl = '/src/router/difficulty.ts'; // page URLs (Vite), not Node paths
        const { routerPanels } = (await import(/* @vite-ignore */ panelUrl)) as typeof PanelNs;
        const { scorerFrom } = (await import(/* @vite-ignore */ scorerUrl)) as typeof DifficultyNs;
        // the spec of the large model decides the split: three stages of equal layer count on the other tabs
        const spec = (await w.shoal.session.openModel(largeUrl)).spec;
        const L = spec.nLayers,
          a = Math.floor(L / 3),
          b = Math.floor((2 * L) / 3);
        const stages: StageAssignment[] = [
          { peer: ids[1], start: 0, end: a },
          { peer: ids[2], start: a, end: b },
          { peer: ids[3], start: b, end: L },
        ];
        w.shoalRouteBench = await routerPanels[0].load({
          smallModel: smallUrl,
          largeModel: largeUrl,
          strategy: 'even',
          stages,
          policy: { name: 'always-small', alpha: 0, theta: 0 },
          scorer: scorerFrom('unused', () => 0),
        });
        const m = w.shoal.mesh;
        return {
          smallLayers: w.shoalRouteBench.local.spec.nLayers,
          largeLayers: L,
          backend: m.profileOf(m.peerId)?.backend ?? 'not profiled yet',
        };
      },
      { smallUrl, largeUrl, ids },
    );
    o.log(`mesh up: 4 tabs, person's tab profiled ${probe.backend}`);

    /** One step of src/router/benchRun.ts in the person's tab. */
    const inPage = <T>(step: Parameters<typeof BenchRunNs.pageBenchStep>[1]): Promise<T> =>
      person.evaluate(async (step) => {
        const benchUrl = '/src/router/benchRun.ts';
        const { pageBenchStep } = (await import(/* @vite-ignore */ benchUrl)) as typeof BenchRunNs;
        return pageBenchStep((window as unknown as Win).shoalRouteBench!, step);
      }, step) as Promise<T>;

    return {
      description:
        `real mesh: headless Chromium (engine of the person's tab: ${probe.backend}), 4 tabs each in its own browser ` +
        `context, WebRTC; small = ${probe.smallLayers}-layer model whole in the person's tab (compute slowdown ` +
        `x${o.smallSlowdown}); large = ${probe.largeLayers} layers as 3 stages on the 3 other tabs, coordinated from ` +
        `the person's tab; +${o.delayMs} ms on every send of every tab`,
      time: (side) => inPage({ kind: 'time', side }),
      run: (conv, policy, params, seed) => inPage({ kind: 'run', conv, policy, params, seed }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
