// Page entry: start this tab (mesh + profile), lay out the shell; other UI modules mount into its sections.
import { Tab, mountShell, tabConfigFromUrl } from './app.ts';
import { mountPipeline } from './pipelineUi.ts';

const root = document.getElementById('app');
const tab = new Tab(tabConfigFromUrl(location.search));
const sections = root ? mountShell(root, tab) : null;
const pipeline = sections ? mountPipeline(sections.main, tab, sections.queues) : null;
void tab.profileNow().catch(() => undefined); // the failure is shown in this tab's row

// Debug and test handle: everything here is already reachable by any script on the page, so exposing it
// costs nothing in production; e2e specs drive the mesh and read profiles through it.
Object.defineProperty(window, 'shoal', {
  value: Object.freeze({ tab, mesh: tab.mesh, session: pipeline?.session, backendNote: pipeline?.backendNote }),
  configurable: false,
  writable: false,
});
