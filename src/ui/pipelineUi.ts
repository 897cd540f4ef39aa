// Mounts the pipeline part of the page (chat, controls, timeline) and wires this tab's Session to it: the timeline,
// the stages' queues (peers table), and lines in the chat when the mesh acts on its own (a plan from another tab,
// a turn rebuilt). A failure in here is shown in the page, never thrown into the session's event loop.
import { createBestBackend } from '../backend/select.ts';
import type { Backend } from '../backend/types.ts';
import { Session } from '../pipeline/session.ts';
import type { SessionEvent, TurnResult } from '../pipeline/session.ts';
import type { CoordinatorEvent } from '../pipeline/coordinator.ts';
import type { StageAssignment } from '../pipeline/messages.ts';
import type { StageEvent } from '../pipeline/stageRunner.ts';
import { payComputeDebt } from '../profile/emulation.ts';
import type { StrategyName } from '../planner/types.ts';
import type { Tab } from './app.ts';
import { errorMessage } from '../errors.ts';
import { modelBaseUrl } from '../weights/model.ts';
import { ChatPanel } from './chatPanel.ts';
import { convLabel, lostLine, namePeers, planLine, restartLine, resumedLine } from './conversations.ts';
import { h } from './dom.ts';
import type { DeviceRow } from './timelineView.ts';
import { StageQueues, totalQueued } from './stageQueues.ts';
import { RouterPanel } from './routerPanel.ts';
import { TimelineView } from './timelineView.ts';
import { mountSpecPanel } from './specPanel.ts';
import { ApiHost } from '../api/apiHost.ts';
import './pipeline.css';

export interface PipelineUi {
  session: Session;
  chat: ChatPanel;
  timeline: TimelineView;
  router: RouterPanel;
  apiHost: ApiHost | null;
  backendNote: () => string;
}

/** The status line for a stage event, or null for events that leave it as it is. */
function stageStatus(s: StageEvent): string | null {
  switch (s.type) {
    case 'assigned':
      return s.range
        ? `This tab runs stage ${s.index + 1} of ${s.of}: layers ${s.range.start + 1}-${s.range.end}.`
        : 'This tab holds no layers in the current plan.';
    case 'progress': {
      const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
      const layers = `${s.layersLoaded}/${s.layersTotal}`;
      const from = (['origin', 'cache', 'peer'] as const)
        .filter((k) => s.bySource[k] > 0)
        .map(
          (k) => `${mb(s.bySource[k])} MB from ${k === 'peer' ? 'peers' : k === 'cache' ? 'the cache' : 'the origin'}`,
        );
      const verb = s.layersLoaded === s.layersTotal ? 'Loaded' : 'Loading';
      const sources = from.length ? `: ${from.join(', ')}` : '';
      return `${verb} layers: ${layers} (${mb(s.loadedBytes)} of ${mb(s.totalBytes)} MB${sources}).`;
    }
    case 'error':
      return `Error in this tab: ${s.message}`;
    case 'dropped':
      return 'Weights and caches dropped (run from cold).';
    default:
      return null;
  }
}

/** The timeline's one-line summary of a finished turn. */
function turnStats(r: TurnResult, cold: boolean): string {
  const predicted = r.plan?.ttftSeconds ?? r.plan?.predictedSeconds;
  const parts = [
    `TTFT ${(r.ttftMs / 1000).toFixed(2)} s${cold ? ' (from cold)' : ''}`,
    `${r.decodeTokensPerSec.toFixed(1)} tokens/s`,
    `${r.stages.length} stage${r.stages.length === 1 ? '' : 's'}`,
    predicted !== undefined ? `predicted TTFT ${predicted.toFixed(2)} s` : '',
    r.restarts > 0 ? `rebuilt ${r.restarts}×` : '',
  ];
  return parts.filter(Boolean).join(' · ');
}

// One wiring function: the panels, the session and the event handlers share this tab's state (status line,
// queues, peer names), so they are set up together.
export function mountPipeline(main: HTMLElement, tab: Tab, queues = new StageQueues()): PipelineUi {
  let note = '';
  let backend: Promise<Backend> | null = null;
  const status = h('div', { class: 'stage-status', role: 'status' }, 'This tab holds no layers yet.');
  const wanted = tab.config.backend;
  const getBackend = (): Promise<Backend> => {
    // Run on the engine the profile measured faster here (on SwiftShader that is the CPU; on a real GPU, WebGPU).
    backend ??= (tab.profile ? Promise.resolve(tab.profile) : tab.profileNow())
      .then(
        (p) => p.backend,
        () => 'webgpu' as const,
      )
      .then((measured) =>
        createBestBackend({
          preferCpu: wanted === 'cpu' || (wanted === 'auto' && measured === 'cpu'),
          cpuActivations: tab.config.cpuActivations,
        }),
      )
      .then((c) => {
        const why = wanted === 'auto' ? 'measured fastest here' : `?backend=${wanted}`;
        const int8 = c.backend.name === 'cpu' && tab.config.cpuActivations === 'int8';
        const path = int8 ? ', int8 activations for quantized weights (?activations=f32: exact)' : '';
        note = c.fellBack ? (c.reason ?? 'running on the CPU backend') : `engine: ${c.backend.name} (${why}${path})`;
        if (c.fellBack) status.textContent = note;
        return c.backend;
      });
    return backend;
  };
  const session = new Session({
    mesh: tab.mesh,
    knobs: tab.config.knobs,
    backend: getBackend,
    afterCompute: async (ms) => void (await payComputeDebt(ms)),
    weights: tab.config.weights,
  });
  const self = tab.mesh.peerId;
  tab.cachedBytes = (id) =>
    id === self
      ? session.sources.cache
        ? session.sources.cache.usedBytes()
        : null
      : session.sources.share.holdingsOf(id)?.cachedBytes;
  /** A tab's name (conversation labels, status lines). */
  const peerName = (peerId: string): string => {
    if (peerId === self) return tab.mesh.name;
    return tab.mesh.peers().find((p) => p.peerId === peerId)?.name ?? peerId.slice(0, 8);
  };
  const named = (text: string): string => namePeers(text, [{ peerId: self, name: tab.mesh.name }, ...tab.mesh.peers()]);
  const timeline = new TimelineView({ peerName });
  const q = new URLSearchParams(location.search);
  const chat = new ChatPanel(session, timeline, {
    defaultModel: tab.config.modelUrl ?? undefined,
    defaultStrategy: (q.get('strategy') as StrategyName | null) ?? undefined,
  });
  main.append(h('div', { class: 'pipeline-grid' }, h('div', {}, chat.el, status), timeline.el));
  // Read the chat's model header now, while the tab is idle: a GGUF header carries the vocabulary (megabytes), and
  // reading it at the first Send put seconds before that turn's first token (npm run bench -- coldstart --weights).
  // A failure here is left to the first turn, which reports it.
  const preopen = (): Promise<unknown> => session.openModel(modelBaseUrl(chat.modelLocation));
  if (chat.modelLocation)
    Promise.resolve()
      .then(preopen)
      .catch(() => undefined);
  // Issue 7: route each query between a small model held here and the chat's (large) model on the mesh.
  const router = new RouterPanel({
    session,
    mesh: tab.mesh,
    backend: getBackend,
    largeModel: () => chat.modelLocation,
    strategy: () => (q.get('strategy') as StrategyName | null) ?? 'csgo',
  });
  main.append(router.el);
  // Speculative decoding (issue 8); its session is reachable as window.shoalSpec for tests and the console.
  const specPanel = mountSpecPanel(session, getBackend, { model: tab.config.modelUrl ?? undefined });
  main.append(specPanel.el);
  Object.defineProperty(window, 'shoalSpec', { value: specPanel.spec, configurable: true });

  const nameOf = (peerId: string): string => (peerId === self ? `${tab.mesh.name} (this tab)` : peerName(peerId));
  const rows = (stages: StageAssignment[]): DeviceRow[] =>
    stages.map((s, i) => ({ id: s.peer, label: nameOf(s.peer), stage: `stage ${i + 1}: L${s.start + 1}-${s.end}` }));
  const onCoordinator = (c: CoordinatorEvent): void => {
    switch (c.type) {
      case 'timeline':
        timeline.addActual(c.intervals);
        break;
      case 'progress':
        timeline.setProgress(c.peer, c.progress.loadedBytes, c.progress.totalBytes, c.progress.bySource);
        break;
      case 'queue':
        if (c.peer !== self) queues.set(c.peer, { queued: c.queued }); // this tab's own stage reports more itself
        break;
      case 'plan':
        // The coordinator starts the new plan's timeline now (whoever made it); a plan made here adds its planned
        // lanes with the session's 'plan' event.
        timeline.setDevices(rows(c.stages));
        timeline.resetActual();
        timeline.setPlanned([]);
        queues.clear();
        if (c.by !== self) chat.notice(planLine(peerName(c.by), c.stages.length, c.restarted));
        break;
      case 'restart':
        chat.notice(restartLine(convLabel(c.conv, peerName), c.positions, named(c.reason)));
        break;
      case 'lost':
        chat.notice(lostLine(peerName(c.peer), c.paused));
        break;
      case 'resumed':
        chat.notice(resumedLine(convLabel(c.conv, peerName), c.index));
        break;
      case 'error':
        chat.showError(`${nameOf(c.peer)}: ${c.message}`);
        break;
    }
  };
  const onStage = (s: StageEvent): void => {
    if (s.type === 'queue')
      queues.set(self, { queued: totalQueued(s.depths), depths: s.depths, conversations: s.conversations });
    const line = stageStatus(s);
    if (line !== null) status.textContent = line;
  };
  const onSession = (e: SessionEvent): void => {
    switch (e.type) {
      case 'plan':
        timeline.setDevices(rows(e.stages));
        timeline.setPlanned(e.planned?.intervals ?? []);
        break;
      case 'coordinator':
        onCoordinator(e.event);
        break;
      case 'stage':
        onStage(e.event);
        break;
      case 'notice':
        chat.notice(named(e.message));
        break;
      case 'turn':
        timeline.setStats(turnStats(e.result, e.cold));
        break;
      case 'peer-left':
        if (e.wasCoordinator)
          status.textContent =
            'The tab that coordinated the last run has left. Type a prompt here to start a new run from this tab.';
        break;
    }
  };
  session.on((e: SessionEvent) => {
    try {
      onSession(e);
    } catch (err) {
      chat.showError(`the page could not show an event (${e.type}): ${errorMessage(err)}`);
    }
  });
  return { session, chat, timeline, router, apiHost: mountApiHost(tab, session, chat), backendNote: () => note };
}

/** With `?host=api`, this tab runs the server's API requests for its room on the mesh; the chat shows them. */
function mountApiHost(tab: Tab, session: Session, chat: ChatPanel): ApiHost | null {
  if (!tab.config.hostApi) return null;
  const host = new ApiHost({
    session,
    room: tab.config.room,
    name: tab.config.name,
    secret: tab.config.secret,
    model: () => chat.modelLocation,
    strategy: () => chat.strategyName,
    onTurn: (prompt) => chat.apiTurn(prompt),
    onStatus: (line) => chat.notice(line),
  });
  chat.onModelChanged(() => host.refresh());
  host.start();
  return host;
}
