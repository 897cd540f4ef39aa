// The peers table: one row per tab in the room (this one first) with its profile and this tab's link to it,
// redrawn on mesh events and once a second (RTT and throughput move on their own).
import type { Mesh } from '../mesh/mesh.ts';
import type { DeviceProfile, LinkStats } from '../profile/types.ts';

export const REFRESH_MS = 1000;

const COLUMNS = ['name', 'backend', 'GFLOP/s (matmul / gemv)', 'memory', 'load MB/s', 'RTT', 'throughput', 'state'];

export interface PeersTableSource {
  mesh: Mesh;
  /** This tab's profile, or null while profiling. */
  ownProfile(): DeviceProfile | null;
  /** What this tab is doing ('profiling: compute', 'ready', ...). */
  ownState(): string;
}

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const mb = (bytesPerSec: number | null | undefined): string => (bytesPerSec ? fmt(bytesPerSec / 1e6, 2) : '-');
const gib = (bytes: number | undefined): string => (bytes ? `${fmt(bytes / 1024 ** 3, 2)} GiB` : '-');

function cells(name: string, p: DeviceProfile | null, link: LinkStats | null, state: string): string[] {
  return [
    name,
    p ? p.backend + (p.emulation.slowdown > 1 ? ` (x${p.emulation.slowdown} slower)` : '') : '-',
    p ? `${fmt(p.matmulGflops, 2)} / ${fmt(p.gemvGflops, 2)}` : '-',
    gib(p?.memoryBytes),
    mb(p?.loadBytesPerSec),
    link?.rttMs != null ? `${fmt(link.rttMs, 1)} ms` : '-',
    link?.bytesPerSec ? `${mb(link.bytesPerSec)} MB/s` : '-',
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

  const render = (): void => {
    const rows: { id: string; self: boolean; values: string[] }[] = [
      { id: src.mesh.peerId, self: true, values: cells(`${src.mesh.name} (this tab)`, src.ownProfile(), null, src.ownState()) },
    ];
    for (const p of src.mesh.peers()) rows.push({ id: p.peerId, self: false, values: cells(p.name, p.profile, p.link, p.state === 'reconnecting' ? 'reconnecting' : p.profile ? 'connected' : 'connected, profiling') });
    caption.textContent = `room "${src.mesh.room}": ${rows.length} tab${rows.length === 1 ? '' : 's'}, signaling ${src.mesh.signalingState}`;
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
  const timer = setInterval(render, REFRESH_MS);
  render();
  return () => {
    clearInterval(timer);
    for (const off of offs) off();
    table.remove();
  };
}
