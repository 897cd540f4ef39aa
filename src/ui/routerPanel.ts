// Routing panel: pick the small model and the policy, ask a question, and see per turn which side answered and
// why (p, both predicted latencies, the switch cost), with running counts of large-model calls and mean latency.
import { errorMessage } from '../errors.ts';
import type { Backend } from '../backend/types.ts';
import type { Mesh } from '../mesh/mesh.ts';
import type { Session } from '../pipeline/session.ts';
import type { StrategyName } from '../planner/types.ts';
import { createPageRouter } from '../router/pageRouter.ts';
import type { PageRouter, PageRouterOptions } from '../router/pageRouter.ts';
import type { TurnRecord } from '../router/router.ts';
import { POLICIES } from '../router/rule.ts';
import type { PolicyConfig, PolicyName } from '../router/rule.ts';
import { MODEL_CHOICES } from './chatPanel.ts';
import { h, numberInput, panel, promptRow } from './dom.ts';
import './router.css';

const POLICY_LABELS: Record<PolicyName, string> = {
  'always-small': 'always small',
  'always-large': 'always large',
  static: 'static threshold on p',
  'latency-aware': 'latency-aware (ours)',
};

export interface RouterPanelDeps {
  session: Session;
  mesh: Mesh;
  backend: () => Promise<Backend>;
  largeModel: () => string;
  strategy: () => StrategyName;
}

/** The panels on this page (the e2e spec reaches its router through here). */
export const routerPanels: RouterPanel[] = [];

export class RouterPanel {
  readonly el: HTMLElement;
  page: PageRouter | null = null;
  private small: HTMLSelectElement;
  private policy: HTMLSelectElement;
  private alpha: HTMLInputElement;
  private theta: HTMLInputElement;
  private classifier: HTMLInputElement;
  private input: HTMLTextAreaElement;
  private rows: HTMLElement;
  private summary: HTMLElement;
  private error: HTMLElement;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly deps: RouterPanelDeps) {
    this.small = h(
      'select',
      { 'aria-label': 'small model' },
      ...MODEL_CHOICES.map((m) => h('option', { value: m.value }, m.label)),
    );
    this.small.value = '/fixtures/tiny-llama/';
    this.policy = h(
      'select',
      { 'aria-label': 'routing policy', onchange: () => this.applyPolicy() },
      ...POLICIES.map((p) => h('option', { value: p }, POLICY_LABELS[p])),
    );
    this.policy.value = 'latency-aware';
    const onchange = () => this.applyPolicy();
    this.alpha = numberInput('alpha', { class: 'num', step: '0.05', min: '0', value: '0.5', onchange });
    this.theta = numberInput('theta', { class: 'num', step: '0.05', value: '0.5', onchange });
    this.classifier = h('input', {
      class: 'custom-model',
      placeholder: 'optional difficulty classifier (Hub id or folder); default: small-model entropy',
      'aria-label': 'difficulty classifier',
    });
    this.input = h('textarea', {
      class: 'chat-input',
      rows: 2,
      placeholder: 'Ask; the router picks the side…',
      'aria-label': 'routed prompt',
    });
    this.rows = h('tbody', {});
    this.summary = h('div', { class: 'router-summary', role: 'status' }, 'No routed turns yet.');
    this.error = h('div', { class: 'error', hidden: true });
    const table = h(
      'table',
      { class: 'router-table' },
      h(
        'thead',
        {},
        h('tr', {}, ...['#', 'side', 'p', 'T small', 'T large', 'switch', 'took', 'why'].map((c) => h('th', {}, c))),
      ),
      this.rows,
    );
    this.el = panel(
      'router-panel',
      'Routing: small model here, large model on the mesh',
      [
        h('label', {}, 'small ', this.small),
        h('label', {}, 'policy ', this.policy),
        h('label', {}, 'alpha ', this.alpha),
        h('label', {}, 'theta ', this.theta),
      ],
      this.classifier,
      this.error,
      promptRow(
        this.input,
        h('button', { class: 'primary', onclick: () => void this.ask() }, 'Ask (routed)'),
        h('button', { onclick: () => this.newConversation() }, 'New conversation'),
      ),
      this.summary,
      h('div', { class: 'timeline-scroll' }, table),
    );
    routerPanels.push(this);
  }

  policyConfig(): PolicyConfig {
    return {
      name: this.policy.value as PolicyName,
      alpha: Math.max(0, Number(this.alpha.value) || 0),
      theta: Number(this.theta.value) || 0,
    };
  }

  private applyPolicy(): void {
    if (this.page) this.page.router.policy = this.policyConfig();
  }

  /** Load the small model and plan the large one (idempotent until the models change). */
  async load(extra: Partial<PageRouterOptions> = {}): Promise<PageRouter> {
    if (this.page && !extra.smallModel) return this.page;
    this.page?.local.dispose();
    this.unsubscribe?.();
    this.page = await createPageRouter({
      session: this.deps.session,
      mesh: this.deps.mesh,
      backend: this.deps.backend,
      smallModel: this.small.value,
      largeModel: this.deps.largeModel(),
      strategy: this.deps.strategy(),
      policy: this.policyConfig(),
      scorer: this.classifier.value.trim() || undefined,
      ...extra,
    });
    this.unsubscribe = this.page.router.on((r) => this.addRow(r));
    return this.page;
  }

  private async ask(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.error.hidden = true;
    try {
      const page = await this.load();
      if (!page.tokenizer)
        throw new Error('the small model folder has no tokenizer; routed chat needs one (both models share it)');
      this.input.value = '';
      await page.router.chat(text, page.tokenizer, { maxTokens: 32 });
    } catch (e) {
      this.error.textContent = errorMessage(e);
      this.error.hidden = false;
    }
  }

  private newConversation(): void {
    this.page?.router.newConversation();
    this.rows.replaceChildren();
  }

  private addRow(r: TurnRecord): void {
    const s = (x: number): string => `${(x * 1000).toFixed(1)} ms`;
    this.rows.append(
      h(
        'tr',
        { class: `side-${r.side}` },
        h('td', {}, String(r.index + 1)),
        h('td', {}, r.side),
        h('td', {}, r.p.toFixed(3)),
        h('td', {}, s(r.predicted.small.totalSec)),
        h('td', {}, s(r.predicted.large.totalSec)),
        h('td', {}, s(r.switchSec)),
        h('td', {}, `${r.latencyMs.toFixed(1)} ms`),
        h('td', { class: 'why' }, r.decision.reason),
      ),
    );
    const st = this.page?.router.stats();
    if (st)
      this.summary.textContent =
        `${st.turns} turns, ${st.largeCalls} large-model calls, mean latency ${st.meanLatencyMs.toFixed(1)} ms ` +
        `(policy: ${POLICY_LABELS[r.policy.name]})`;
  }
}
