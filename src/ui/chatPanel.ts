// Chat and run controls: model, strategy, sampling, "Run from cold", stop; streams the answer and feeds the timeline.
import { errorMessage } from '../errors.ts';
import type { Session, TurnOptions, TurnResult } from '../pipeline/session.ts';
import type { StrategyName } from '../planner/types.ts';
import { STRATEGIES } from '../planner/types.ts';
import { h, numberInput, panel, promptRow } from './dom.ts';
import type { TimelineView } from './timelineView.ts';
import type { ApiTurnView } from '../api/apiHost.ts';

/** Generated presets the server may hold, then the reference fixtures (served by the dev server and `npm start`). */
export const MODEL_CHOICES = [
  { value: '/models/demo/', label: 'demo (generated, random weights)' },
  { value: '/models/tiny/', label: 'tiny (generated, random weights)' },
  { value: '/fixtures/tiny-llama/', label: 'tiny-llama fixture' },
  { value: '/fixtures/tiny-qwen2/', label: 'tiny-qwen2 fixture' },
];

/** Status lines kept in the log (a flapping mesh re-plans often; the answers matter more). */
export const MAX_NOTICES = 50;

export interface ChatPanelOptions {
  defaultModel?: string;
  defaultStrategy?: StrategyName;
}

type StartState = 'warm' | 'cold' | 'cached';

export class ChatPanel {
  readonly el: HTMLElement;
  private log: HTMLElement;
  private input: HTMLTextAreaElement;
  private sendBtn: HTMLButtonElement;
  private stopBtn: HTMLButtonElement;
  private coldBtn: HTMLButtonElement;
  private warmCacheBtn: HTMLButtonElement;
  private clearCacheBtn: HTMLButtonElement;
  private model: HTMLSelectElement;
  private customModel: HTMLInputElement;
  private strategy: HTMLSelectElement;
  private maxTokens: HTMLInputElement;
  private temperature: HTMLInputElement;
  private banner: HTMLElement;
  private errorBox: HTMLElement;

  // Builds the whole panel in one place: the DOM tree reads in the order the page shows it.
  constructor(
    private readonly session: Session,
    private readonly timeline: TimelineView,
    opts: ChatPanelOptions = {},
  ) {
    this.log = h('div', { class: 'chat-log', role: 'log', 'aria-live': 'polite' });
    this.input = h('textarea', { class: 'chat-input', rows: 2, placeholder: 'Say something…', 'aria-label': 'prompt' });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        void this.send('warm');
      }
    });
    this.sendBtn = h('button', { class: 'primary', onclick: () => void this.send('warm') }, 'Send');
    this.stopBtn = h('button', { disabled: true, onclick: () => session.stop() }, 'Stop');
    this.coldBtn = h(
      'button',
      {
        title: "Drop every tab's weights, KV caches and persistent weight cache, then run the prompt from cold",
        onclick: () => void this.send('cold'),
      },
      'Run from cold',
    );
    this.warmCacheBtn = h(
      'button',
      {
        title: "Drop every tab's weights from memory but keep their weight caches, then run the prompt",
        onclick: () => void this.send('cached'),
      },
      'Run from cache',
    );
    this.clearCacheBtn = h(
      'button',
      {
        title: "Delete this tab's persistent weight cache (the next load comes from peers or the network)",
        onclick: () => void this.clearCache(),
      },
      'Clear cache',
    );
    this.model = h(
      'select',
      { 'aria-label': 'model', onchange: () => this.onModelChange() },
      ...MODEL_CHOICES.map((m) => h('option', { value: m.value }, m.label)),
      h('option', { value: 'custom' }, 'Hugging Face repo id…'),
    );
    this.customModel = h('input', {
      class: 'custom-model',
      placeholder: 'e.g. HuggingFaceTB/SmolLM2-135M-Instruct',
      hidden: true,
      'aria-label': 'Hugging Face repo id',
      onchange: () => this.onModelChange(),
    });
    this.strategy = h(
      'select',
      { 'aria-label': 'strategy' },
      ...STRATEGIES.map((s) => h('option', { value: s }, s === 'csgo' ? 'csgo (our planner)' : s)),
    );
    this.maxTokens = numberInput('max tokens', { min: 1, max: 1024, value: 32, class: 'num' });
    this.temperature = numberInput('temperature', { min: 0, max: 2, step: 0.1, value: 0, class: 'num' });
    this.banner = h('div', { class: 'banner', hidden: true });
    this.errorBox = h('div', { class: 'error', role: 'alert', hidden: true });
    if (opts.defaultModel) {
      const known = MODEL_CHOICES.some((m) => m.value === opts.defaultModel);
      this.model.value = known ? opts.defaultModel : 'custom';
      if (!known) this.customModel.value = opts.defaultModel;
    }
    if (opts.defaultStrategy) this.strategy.value = opts.defaultStrategy;
    this.el = panel(
      'chat',
      'Chat',
      [
        h('label', {}, 'Model ', this.model),
        this.customModel,
        h('label', {}, 'Strategy ', this.strategy),
        h('label', {}, 'Max tokens ', this.maxTokens),
        h('label', {}, 'Temperature ', this.temperature),
      ],
      this.banner,
      this.errorBox,
      this.log,
      promptRow(
        this.input,
        this.sendBtn,
        this.stopBtn,
        this.coldBtn,
        this.warmCacheBtn,
        this.clearCacheBtn,
        h(
          'button',
          {
            onclick: () => {
              session.newConversation();
              this.log.replaceChildren();
            },
          },
          'New chat',
        ),
      ),
    );
    this.onModelChange();
  }

  get strategyName(): StrategyName {
    return this.strategy.value as StrategyName;
  }

  /** An API request this tab runs (it hosts the API): shown like a typed turn, marked as the API's. */
  apiTurn(prompt: string): ApiTurnView {
    this.log.append(h('div', { class: 'msg user api' }, h('span', { class: 'msg-tag' }, 'API'), prompt));
    const answer = h('div', { class: 'msg assistant api' }, '…');
    this.log.append(answer);
    this.log.scrollTop = this.log.scrollHeight;
    return {
      update: (text) => {
        answer.textContent = text;
        this.log.scrollTop = this.log.scrollHeight;
      },
      end: (summary) => void answer.append(h('div', { class: 'msg-meta' }, summary)),
      fail: (message) => {
        answer.textContent = `API request failed: ${message}`;
        answer.classList.add('failed');
      },
    };
  }

  get modelLocation(): string {
    return this.model.value === 'custom' ? this.customModel.value.trim() : this.model.value;
  }

  showError(message: string | null): void {
    this.errorBox.hidden = !message;
    this.errorBox.textContent = message ?? '';
  }

  /** A line from the mesh in the log (a plan from another tab, a turn rebuilt): said, not alarming. */
  notice(message: string): void {
    const old = this.log.querySelectorAll('.msg.notice');
    if (old.length >= MAX_NOTICES) old[0].remove();
    this.log.append(h('div', { class: 'msg notice' }, message));
    this.log.scrollTop = this.log.scrollHeight;
  }

  private modelListeners: (() => void)[] = [];

  onModelChanged(fn: () => void): void {
    this.modelListeners.push(fn);
  }

  private onModelChange(): void {
    for (const fn of this.modelListeners) fn();
    this.customModel.hidden = this.model.value !== 'custom';
    const loc = this.modelLocation;
    const generated = loc.startsWith('/models/') || loc.startsWith('/fixtures/');
    this.banner.hidden = !generated;
    this.banner.textContent = generated
      ? 'This is a generated random-weight model: its text is meaningless, the timeline is the point. ' +
        'For real text, choose "Hugging Face repo id…" and enter e.g. HuggingFaceTB/SmolLM2-135M-Instruct ' +
        '(every tab then loads its layers straight from the Hub).'
      : '';
    this.session.newConversation();
  }

  /** warm: as the mesh is; cold: memory and persistent caches emptied first; cached: memory emptied, caches kept. */
  private turnOptions(start: StartState): TurnOptions {
    const temperature = Math.max(0, Number(this.temperature.value) || 0);
    return {
      maxTokens: Math.max(1, Math.min(1024, Math.round(Number(this.maxTokens.value) || 32))),
      strategy: this.strategy.value as StrategyName,
      sampling: { temperature, topP: 0.95, seed: (Math.random() * 2 ** 31) >>> 0 },
      cold: start !== 'warm',
      keepCache: start === 'cached',
    };
  }

  private async clearCache(): Promise<void> {
    const mb = ((this.session.sources.cache?.usedBytes() ?? 0) / 1e6).toFixed(1);
    await this.session.sources.clearCache();
    this.notice(`Cleared this tab's weight cache (${mb} MB).`);
  }

  private async send(start: StartState): Promise<void> {
    const cold = start !== 'warm';
    const text = this.input.value.trim() || (cold ? 'Tell me about the sea.' : '');
    if (!text || this.session.busy) return;
    const loc = this.modelLocation;
    if (!loc) return this.showError('Enter a Hugging Face repo id (owner/name) or pick a model.');
    this.input.value = '';
    this.showError(null);
    this.log.append(h('div', { class: 'msg user' }, text));
    const answer = h('div', { class: 'msg assistant' }, '…');
    this.log.append(answer);
    this.setRunning(true);
    if (cold) this.timeline.resetActual();
    try {
      const r: TurnResult = await this.session.chat(loc, text, {
        ...this.turnOptions(start),
        onText: (t) => {
          answer.textContent = t;
          this.log.scrollTop = this.log.scrollHeight;
        },
      });
      answer.textContent = r.text;
      const restarts = r.restarts > 0 ? ` · rebuilt ${r.restarts}×` : '';
      const speed = `TTFT ${(r.ttftMs / 1000).toFixed(2)} s · ${r.decodeTokensPerSec.toFixed(1)} tok/s`;
      answer.append(
        h('div', { class: 'msg-meta' }, `${r.tokens.length} tokens · ${speed} · ${r.stoppedBy}${restarts}`),
      );
    } catch (e) {
      answer.remove();
      this.showError(errorMessage(e));
    } finally {
      this.setRunning(false);
    }
  }

  private setRunning(running: boolean): void {
    this.sendBtn.disabled = running;
    this.coldBtn.disabled = running;
    this.warmCacheBtn.disabled = running;
    this.stopBtn.disabled = !running;
  }
}
