// The page shell and this tab's life: read the URL (room, name, model, emulation knobs), join the mesh,
// profile the device and share the profile, and lay out sections that other UI modules fill (peers, chat, timeline).
import { Mesh } from '../mesh/mesh.ts';
import { emulation, parseEmulation, setEmulation } from '../profile/emulation.ts';
import { profileDevice } from '../profile/profiler.ts';
import type { DeviceProfile, EmulationKnobs } from '../profile/types.ts';
import { errorMessage } from '../errors.ts';
import { mountPeersTable } from './peersTable.ts';
import { StageQueues } from './stageQueues.ts';
import type { MeshReport } from '../mesh/mesh.ts';
import './style.css';

/** Model folders tried in order when the URL names none: the demo model `npm start` makes, then a fixture. */
export const DEFAULT_MODEL_CANDIDATES = ['/models/demo/', '/fixtures/tiny-llama/'];
/** Reports kept for the debug handle. */
const MAX_REPORTS = 200;

export interface TabConfig {
  room: string;
  name: string;
  secret?: string;
  modelUrl: string | null;
  /** `?backend=cpu` never uses WebGPU; `?backend=webgpu` runs stages on WebGPU even where the CPU measured faster
   * (SwiftShader: the browser tests of the WebGPU kernels in a real pipeline). */
  backend: 'auto' | 'cpu' | 'webgpu';
  /** The CPU engine's block-quantized matmuls: int8 activations as llama.cpp (default), `?activations=f32` exact. */
  cpuActivations: 'int8' | 'f32';
  iceServers: RTCIceServer[];
  knobs: EmulationKnobs;
  /** `?host=api`: this tab offers to run the server's OpenAI-compatible API requests (issue 22). */
  hostApi: boolean;
  /** Weight sources: `?cache=off` (no persistent cache), `?p2p=off` (never from peers), `?corruptServe=1` (tests). */
  weights: { cache: boolean; peers: boolean; corruptServe: boolean };
}

export function tabConfigFromUrl(search: string): TabConfig {
  const q = new URLSearchParams(search);
  const room = (q.get('room') || 'default').replace(/[^\w.-]/g, '_').slice(0, 64);
  const short = Math.random().toString(36).slice(2, 6);
  const guess = /Mobi|Android|iPhone/i.test(navigator.userAgent) ? 'phone' : 'tab';
  // ICE: ?stun=stun:host:3478 (repeatable); none are needed on one LAN.
  const iceServers = q
    .getAll('stun')
    .filter((u) => /^stuns?:/.test(u))
    .map((urls) => ({ urls }));
  return {
    room,
    name: (q.get('name') || `${guess}-${short}`).slice(0, 64),
    secret: q.get('secret') || undefined,
    modelUrl: q.get('model'),
    backend: q.get('backend') === 'cpu' ? 'cpu' : q.get('backend') === 'webgpu' ? 'webgpu' : 'auto',
    cpuActivations: q.get('activations') === 'f32' ? 'f32' : 'int8',
    iceServers,
    knobs: parseEmulation(search),
    hostApi: q.get('host') === 'api',
    weights: {
      cache: q.get('cache') !== 'off',
      peers: q.get('p2p') !== 'off',
      corruptServe: q.get('corruptServe') === '1',
    },
  };
}

async function firstReachableModel(candidates: string[]): Promise<string> {
  for (const c of candidates) {
    try {
      const r = await fetch(new URL('config.json', new URL(c, location.href)).href, { method: 'HEAD' });
      if (r.ok) return c;
    } catch {
      // try the next one
    }
  }
  return candidates[candidates.length - 1];
}

/** One tab: its mesh, its profile, and the state shown in its own row. */
export class Tab {
  readonly mesh: Mesh;
  readonly config: TabConfig;
  profile: DeviceProfile | null = null;
  state = 'starting';
  modelUrl: string | null;
  readonly reports: MeshReport[] = [];
  /** Weight bytes a tab caches (the pipeline sets it once its session exists; the peers table shows it). */
  cachedBytes: ((peerId: string) => number | null | undefined) | null = null;
  private profiling: Promise<DeviceProfile> | null = null;

  constructor(config: TabConfig) {
    this.config = config;
    this.modelUrl = config.modelUrl;
    setEmulation(config.knobs);
    this.mesh = new Mesh({
      room: config.room,
      name: config.name,
      secret: config.secret,
      iceServers: config.iceServers,
      knobs: emulation(),
    });
    this.mesh.on('report', (r) => {
      if (this.reports.length >= MAX_REPORTS) this.reports.shift();
      this.reports.push(r);
      console.warn(`shoal mesh: ${r.kind}${r.peerId ? ` (${r.peerId})` : ''}: ${r.detail}`);
    });
    this.mesh.on('peer-left', (id, reason) => console.info(`shoal mesh: peer ${id} left: ${reason}`));
    this.mesh.on('peer-link', (id, state) =>
      console.info(
        `shoal mesh: peer ${id} ${state === 'open' ? 'is back on a new link' : 'lost its link; reconnecting'}`,
      ),
    );
  }

  /** Measure this device (again) and share the result with the room. */
  profileNow(): Promise<DeviceProfile> {
    this.profiling ??= (async () => {
      try {
        this.modelUrl ??= await firstReachableModel(DEFAULT_MODEL_CANDIDATES);
        const p = await profileDevice({
          peerId: this.mesh.peerId,
          name: this.mesh.name,
          modelUrl: this.modelUrl,
          knobs: this.config.knobs,
          backend: this.config.backend === 'cpu' ? 'cpu' : 'auto',
          onStep: (s) => (this.state = `profiling: ${s}`),
        });
        this.profile = p;
        this.state = 'ready';
        this.mesh.setProfile(p);
        return p;
      } catch (e) {
        this.state = `profiling failed: ${errorMessage(e)}`;
        throw e;
      } finally {
        this.profiling = null;
      }
    })();
    return this.profiling;
  }
}

export interface AppSections {
  header: HTMLElement;
  peers: HTMLElement;
  /** Where the pipeline UI (chat, controls, timeline) mounts. */
  main: HTMLElement;
  /** Each stage's queue: the pipeline UI reports it, the peers table shows it. */
  queues: StageQueues;
}

/** Lay out the page: a header, the peers section and an empty main section for other modules. */
export function mountShell(root: HTMLElement, tab: Tab): AppSections {
  root.replaceChildren();
  const header = document.createElement('header');
  const title = document.createElement('h1');
  title.textContent = 'Shoal';
  const sub = document.createElement('p');
  const k = tab.config.knobs;
  const emu = [
    k.slowdown > 1 && `compute x${k.slowdown} slower`,
    k.loadBytesPerSec && `load cap ${(k.loadBytesPerSec / 1e6).toFixed(2)} MB/s`,
    k.linkDelayMs && `link +${k.linkDelayMs} ms`,
    k.linkBytesPerSec && `link cap ${(k.linkBytesPerSec / 1e6).toFixed(2)} MB/s`,
    k.memoryBytes && `memory cap ${(k.memoryBytes / 1024 ** 2).toFixed(0)} MiB`,
  ].filter(Boolean);
  const emulating = emu.length ? ` · emulating: ${emu.join(', ')}` : '';
  const hosting = tab.config.hostApi ? ' · hosts the API' : '';
  sub.textContent = `room ${tab.config.room} · ${tab.config.name}${hosting}${emulating}`;
  header.append(title, sub);
  const peers = document.createElement('section');
  peers.className = 'peers-section';
  const main = document.createElement('section');
  main.className = 'main-section';
  root.append(header, peers, main);
  const queues = new StageQueues();
  mountPeersTable(peers, {
    mesh: tab.mesh,
    ownProfile: () => tab.profile,
    ownState: () => tab.state,
    queues,
    cachedBytes: (id) => tab.cachedBytes?.(id),
  });
  return { header, peers, main, queues };
}
