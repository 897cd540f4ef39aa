// Mounts the pipeline part of the page (chat, controls, timeline) and wires this tab's Session to it.
import { createBestBackend } from '../backend/select.ts';
import type { Backend } from '../backend/types.ts';
import { Session } from '../pipeline/session.ts';
import type { SessionEvent } from '../pipeline/session.ts';
import { payComputeDebt } from '../profile/emulation.ts';
import type { StrategyName } from '../planner/types.ts';
import type { Tab } from './app.ts';
import { ChatPanel } from './chatPanel.ts';
import { h } from './dom.ts';
import { RouterPanel } from './routerPanel.ts';
import { TimelineView } from './timelineView.ts';
import { mountSpecPanel } from './specPanel.ts';
import './pipeline.css';

export interface PipelineUi { session: Session; chat: ChatPanel; timeline: TimelineView; router: RouterPanel; backendNote: () => string }

export function mountPipeline(main: HTMLElement, tab: Tab): PipelineUi {
  let note = '';
  let backend: Promise<Backend> | null = null;
  const status = h('div', { class: 'stage-status', role: 'status' }, 'This tab holds no layers yet.');
  const getBackend = (): Promise<Backend> => {
    // Run on the engine the profile measured faster here (on SwiftShader that is the CPU; on a real GPU, WebGPU).
    backend ??= (tab.profile ? Promise.resolve(tab.profile) : tab.profileNow()).then((p) => p.backend, () => 'webgpu' as const).then((measured) => createBestBackend({ preferCpu: tab.config.backend === 'cpu' || measured === 'cpu' })).then((c) => {
      note = c.fellBack ? (c.reason ?? 'running on the CPU backend') : `engine: ${c.backend.name} (measured fastest here)`;
      if (c.fellBack) status.textContent = note;
      return c.backend;
    });
    return backend;
  };
  const session = new Session({ mesh: tab.mesh, knobs: tab.config.knobs, backend: getBackend, afterCompute: async (ms) => void (await payComputeDebt(ms)) });
  const timeline = new TimelineView();
  const q = new URLSearchParams(location.search);
  const chat = new ChatPanel(session, timeline, { defaultModel: tab.config.modelUrl ?? undefined, defaultStrategy: (q.get('strategy') as StrategyName | null) ?? undefined });
  main.append(h('div', { class: 'pipeline-grid' }, h('div', {}, chat.el, status), timeline.el));
  // Issue 7: route each query between a small model held here and the chat's (large) model on the mesh.
  const router = new RouterPanel({ session, mesh: tab.mesh, backend: getBackend, largeModel: () => chat.modelLocation, strategy: () => (q.get('strategy') as StrategyName | null) ?? 'csgo' });
  main.append(router.el);
  // Speculative decoding (issue 8); its session is reachable as window.shoalSpec for tests and the console.
  const specPanel = mountSpecPanel(session, getBackend, { model: tab.config.modelUrl ?? undefined });
  main.append(specPanel.el);
  Object.defineProperty(window, 'shoalSpec', { value: specPanel.spec, configurable: true });

  const nameOf = (peerId: string): string => {
    if (peerId === tab.mesh.peerId) return `${tab.mesh.name} (this tab)`;
    return tab.mesh.peers().find((p) => p.peerId === peerId)?.name ?? peerId.slice(0, 8);
  };
  session.on((e: SessionEvent) => {
    switch (e.type) {
      case 'plan':
        timeline.setDevices(e.stages.map((s, i) => ({ id: s.peer, label: nameOf(s.peer), stage: `stage ${i + 1}: L${s.start + 1}-${s.end}` })));
        timeline.resetActual();
        timeline.setPlanned(e.planned?.intervals ?? []);
        break;
      case 'coordinator':
        if (e.event.type === 'timeline') timeline.addActual(e.event.intervals);
        else if (e.event.type === 'progress') timeline.setProgress(e.event.peer, e.event.progress.loadedBytes, e.event.progress.totalBytes);
        else if (e.event.type === 'error') chat.showError(`${nameOf(e.event.peer)}: ${e.event.message}`);
        break;
      case 'stage': {
        const s = e.event;
        if (s.type === 'assigned') status.textContent = s.range ? `This tab runs stage ${s.index + 1} of ${s.of}: layers ${s.range.start + 1}-${s.range.end}.` : 'This tab holds no layers in the current plan.';
        else if (s.type === 'progress') status.textContent = `Loading layers: ${s.layersLoaded}/${s.layersTotal} (${(s.loadedBytes / 1e6).toFixed(1)} of ${(s.totalBytes / 1e6).toFixed(1)} MB).`;
        else if (s.type === 'error') status.textContent = `Error in this tab: ${s.message}`;
        else if (s.type === 'dropped') status.textContent = 'Weights and caches dropped (run from cold).';
        break;
      }
      case 'turn': {
        const r = e.result;
        const predicted = r.plan?.ttftSeconds ?? r.plan?.predictedSeconds;
        timeline.setStats(`TTFT ${(r.ttftMs / 1000).toFixed(2)} s${e.cold ? ' (from cold)' : ''} · ${r.decodeTokensPerSec.toFixed(1)} tokens/s · ${r.stages.length} stage${r.stages.length === 1 ? '' : 's'}${predicted !== undefined ? ` · predicted TTFT ${predicted.toFixed(2)} s` : ''}`);
        break;
      }
      case 'peer-left':
        if (e.wasCoordinator) status.textContent = 'The tab that coordinated the last run has left. Type a prompt here to start a new run from this tab.';
        break;
    }
  });
  return { session, chat, timeline, router, backendNote: () => note };
}
