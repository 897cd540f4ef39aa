// The peers table: one row per tab in the room (this one first) with its profile and this tab's link to it,
// redrawn on mesh events, on queue reports (at most every QUEUE_REFRESH_MS) and once a second (RTT and throughput
// move on their own).
import type { Mesh } from '../mesh/mesh.ts';
import type { DeviceProfile, LinkStats } from '../profile/types.ts';
import { fmtQueue } from './stageQueues.ts';
import type { StageQueues } from './stageQueues.ts';

export const REFRESH_MS = 1000;
/** A stage reports its queue after every pass (hundreds a second): the table follows at most this often. */
export const QUEUE_REFRESH_MS = 250;

const COLUMNS = [
  'name',
  'backend',
  'GFLOP/s (matmul / gemv)',
  'memory',
  'load MB/s',
  'RTT',
  'throughput',
  'queue (steps)',
  'cached',
  'state',
];

export interface PeersTableSource {
  mesh: Mesh;
  /** This tab's profile, or null while profiling. */
  ownProfile(): DeviceProfile | null;
  /** What this tab is doing ('profiling: compute', 'ready', ...). */
  ownState(): string;
  /** Each stage's queue (issue 18); the column shows '-' without it. */
  queues?: StageQueues;
  /** Weight bytes a tab holds in its persistent cache (null: it has none; undefined: not known yet). */
  cachedBytes?(peerId: string): number | null | undefined;
}

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const mb = (bytesPerSec: number | null | undefined): string => (bytesPerSec ? fmt(bytesPerSec / 1e6, 2) : '-');
const gib = (bytes: number | undefined): string => (bytes ? `${fmt(bytes / 1024 ** 3, 2)} GiB` : '-');

const cachedMb = (bytes: number | null | undefined): string =>
  bytes === null ? 'off' : bytes === undefined ? '-' : `${fmt(bytes / 1e6, 1)} MB`;

function cells(
  name: string,
  p: DeviceProfile | null,
  link: LinkStats | null,
  queue: string,
  cached: string,
  state: string,
): string[] {
  return [
    name,
    p ? p.backend + (p.emulation.slowdown > 1 ? ` (x${p.emulation.slowdown} slower)` : '') : '-',
    p ? `${fmt(p.matmulGflops, 2)} / ${fmt(p.gemvGflops, 2)}` : '-',
    gib(p?.memoryBytes),
    mb(p?.loadBytesPerSec),
    link?.rttMs != null ? `${fmt(link.rttMs, 1)} ms` : '-',
    link?.bytesPerSec ? `${mb(link.bytesPerSec)} MB/s` : '-',
    queue,
    cached,
    state,
  ];
}

/** Mount the table into `root`; returns a function that stops the updates. */
export function mountPeersTable(root: HTMLElement, src: PeersTableSource): () => void {
  const table = document.createElement('table');
  table.className = 'peers';
  table.dataset.testid = 'peers-table';
  const head = table.createTHead().insertRow();
  for (const c of COLUMNS) head.appendChild(document.createElement('th')).textContent = c;
  const body = table.createTBody();
  const caption = table.createCaption();
  root.append(table);

  const queue = (peerId: string): string => fmtQueue(src.queues?.get(peerId));
  const cached = (peerId: string): string => cachedMb(src.cachedBytes?.(peerId));
  const render = (): void => {
    const rows: { id: string; self: boolean; values: string[] }[] = [
      {
        id: src.mesh.peerId,
        self: true,
        values: cells(
          `${src.mesh.name} (this tab)`,
          src.ownProfile(),
          null,
          queue(src.mesh.peerId),
          cached(src.mesh.peerId),
          src.ownState(),
        ),
      },
    ];
    for (const p of src.mesh.peers()) {
      const state = p.state === 'reconnecting' ? 'reconnecting' : p.profile ? 'connected' : 'connected, profiling';
      const values = cells(p.name, p.profile, p.link, queue(p.peerId), cached(p.peerId), state);
      rows.push({ id: p.peerId, self: false, values });
    }
    const tabs = `${rows.length} tab${rows.length === 1 ? '' : 's'}`;
    caption.textContent = `room "${src.mesh.room}": ${tabs}, signaling ${src.mesh.signalingState}`;
    // Rebuild rows in place: a handful of rows, once a second.
    while (body.rows.length > rows.length) body.deleteRow(-1);
    rows.forEach((r, i) => {
      const tr = body.rows[i] ?? body.insertRow();
      tr.dataset.peerId = r.id;
      tr.classList.toggle('self', r.self);
      r.values.forEach((v, j) => {
        const td = tr.cells[j] ?? tr.insertCell();
        if (td.textContent !== v) td.textContent = v;
      });
    });
  };
  const offs = [
    src.mesh.on('peer-joined', render),
    src.mesh.on('peer-left', render),
    src.mesh.on('peer-link', render),
    src.mesh.on('profile', render),
    src.mesh.on('signaling', render),
  ];
  let queueTimer: ReturnType<typeof setTimeout> | null = null;
  const offQueues = src.queues?.onChange(() => {
    queueTimer ??= setTimeout(() => {
      queueTimer = null;
      render();
    }, QUEUE_REFRESH_MS);
  });
  const timer = setInterval(render, REFRESH_MS);
  render();
  return () => {
    clearInterval(timer);
    if (queueTimer) clearTimeout(queueTimer);
    offQueues?.();
    for (const off of offs) off();
    table.remove();
  };
}
