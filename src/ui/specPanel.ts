// Speculative decoding panel (issue 8): pick a draft, a draft length (or auto) and parallel drafting, run a prompt,
// and watch the draft length, acceptance rate and tokens/s live, round by round.
import type { Backend } from '../backend/types.ts';
import { errorMessage } from '../errors.ts';
import type { Session } from '../pipeline/session.ts';
import { compareStrategies, exampleRoom } from '../speculative/associationExample.ts';
import { payComputeDebt } from '../profile/emulation.ts';
import { SpecSession } from '../speculative/specSession.ts';
import type { SpecSessionEvent } from '../speculative/specSession.ts';
import { h, numberInput } from './dom.ts';

export interface SpecPanel {
  el: HTMLElement;
  spec: SpecSession;
}

// Kept whole: the controls, the live line and the run handler close over the same inputs, and the DOM reads in
// the order the page shows it.
export function mountSpecPanel(
  session: Session,
  backend: () => Promise<Backend>,
  defaults: { model?: string } = {},
): SpecPanel {
  const spec = new SpecSession(session, backend, { afterCompute: payComputeDebt });
  const model = h('input', { value: defaults.model ?? '/models/demo/', 'aria-label': 'target model', size: 22 });
  const draftUrl = h('input', {
    value: '',
    placeholder: "draft folder (empty: target's first layers)",
    'aria-label': 'draft model',
    size: 26,
  });
  const draftLayers = numberInput('draft layers', { min: 1, value: 2, style: 'width: 4em' });
  const gamma = h(
    'select',
    { 'aria-label': 'draft length' },
    h('option', { value: 'auto' }, 'auto'),
    ...[1, 2, 4, 6, 8, 12, 16].map((g) => h('option', { value: String(g) }, `γ = ${g}`)),
  );
  const parallel = h('input', { type: 'checkbox', checked: true, 'aria-label': 'parallel drafting' });
  // Hedges (greedy parallel mode): alternatives at likely rejections, verified beside the main line.
  // Empty: the default (SpecOptions.hedges: some in a tab that holds no stage, none in one that does).
  const hedges = numberInput('hedges in flight', { min: 0, max: 8, placeholder: 'auto', style: 'width: 4em' });
  const prompt = h('input', { value: 'Once upon a time', 'aria-label': 'speculative prompt', size: 30 });
  const maxTokens = numberInput('max tokens', { min: 1, value: 48, style: 'width: 5em' });
  const live = h(
    'div',
    { class: 'spec-live', role: 'status', 'aria-live': 'polite', style: 'overflow-wrap: anywhere' },
    'Not run yet.',
  );
  const output = h('div', { class: 'spec-output', style: 'overflow-wrap: anywhere' });
  const run = h('button', { class: 'primary' }, 'Run speculative');
  const stop = h('button', { onclick: () => spec.stop() }, 'Stop');
  run.addEventListener(
    'click',
    () =>
      void (async () => {
        run.disabled = true;
        output.textContent = '';
        try {
          const tok = await session.tokenizer(model.value);
          const ids = tok.encode(prompt.value);
          const r = await spec.generateIds(model.value, ids, {
            draft: draftUrl.value.trim() ? { url: draftUrl.value.trim() } : { layers: Number(draftLayers.value) || 1 },
            gamma: gamma.value === 'auto' ? 'auto' : Number(gamma.value),
            parallel: parallel.checked,
            hedges: hedges.value.trim() === '' ? undefined : Math.max(0, Math.floor(Number(hedges.value) || 0)),
            maxTokens: Number(maxTokens.value) || 32,
            strategy: 'csgo',
          });
          output.textContent = tok.decode(r.tokens);
        } catch (e) {
          live.textContent = `Error: ${errorMessage(e)}`;
        } finally {
          run.disabled = false;
        }
      })(),
  );
  spec.on((e: SpecSessionEvent) => {
    if (e.type === 'start')
      live.textContent = `Starting (${e.parallel ? 'parallel' : 'sequential'} drafting, γ ${e.gamma})…`;
    else if (e.type === 'round') {
      const r = e.report;
      const inFlight = r.nextInFlight > 1 ? ` (${r.nextInFlight} in flight)` : '';
      live.textContent =
        `round ${r.round}: γ ${r.gamma} -> next ${r.nextGamma}${inFlight}, accepted ${r.accepted}/${r.gamma}, ` +
        `acceptance ${(r.alpha * 100).toFixed(0)}%, draft ${r.draftMsPerToken.toFixed(1)} ms/token, ` +
        `round trip ${r.roundTripMs.toFixed(0)} ms, ${r.tokensPerSec.toFixed(1)} tokens/s` +
        (r.hedgeTokens > 0 ? `; a hedge gave ${r.hedgeTokens} tokens` : '');
    } else {
      const r = e.result;
      live.textContent =
        `done: ${r.tokens.length} tokens in ${r.rounds} rounds, acceptance ${(r.acceptanceRate * 100).toFixed(0)}%, ` +
        `${r.tokensPerSec.toFixed(1)} tokens/s, ` +
        `γ ${r.gammas.join(' ')}; drafted ahead ${r.draftedAhead}, discarded ${r.discarded}` +
        (r.hedgesSent > 0
          ? `; hedges ${r.hedgeHits}/${r.hedgesSent} held the target's token (${r.hedgeTokens} tokens)`
          : '');
    }
  });
  const el = h(
    'details',
    { class: 'spec-panel', style: 'max-width: 100%' },
    h('summary', {}, 'Speculative decoding (draft here, verify across the mesh)'),
    h(
      'div',
      { class: 'spec-controls', style: 'display: flex; flex-wrap: wrap; gap: 0.5em; align-items: center' },
      h('label', {}, 'target ', model),
      h('label', {}, 'draft ', draftUrl),
      h('label', {}, 'or layers ', draftLayers),
      h('label', {}, gamma),
      h('label', {}, parallel, ' parallel'),
      h(
        'label',
        {
          title:
            'greedy parallel mode: alternatives at the likeliest rejections, verified beside the main line ' +
            '(empty: 6 in a tab that holds no stage, none in one that does); they pay on slow links ' +
            '(20 ms and more a hop), set 0 where compute, not the links, makes up the round trip',
        },
        'hedges ',
        hedges,
      ),
      h('label', {}, 'prompt ', prompt),
      h('label', {}, 'tokens ', maxTokens),
      run,
      stop,
    ),
    live,
    output,
    associationView(),
  );
  return { el, spec };
}

/** Several people and several verifier pipelines: who verifies with whom, per strategy (an example room). */
function associationView(): HTMLElement {
  const { users, pipelines } = exampleRoom();
  const rows = compareStrategies(users, pipelines);
  const table = h(
    'table',
    { class: 'spec-assoc' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'strategy'), h('th', {}, 'room tokens/s'), ...users.map((u) => h('th', {}, u.id))),
    ),
    h(
      'tbody',
      {},
      ...rows.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, r.strategy),
          h('td', {}, r.totalTokensPerSec.toFixed(0)),
          ...users.map((u) => h('td', {}, r.association[u.id] ?? '-')),
        ),
      ),
    ),
  );
  const pipelineList = pipelines.map((p) => `${p.id} (${p.msPerPass} ms/pass + ${p.msPerPosition} ms/position)`);
  return h(
    'details',
    { class: 'spec-assoc-view' },
    h('summary', {}, 'Association: several people, several verifier pipelines (example room)'),
    h('p', {}, `Pipelines: ${pipelineList.join(', ')}. Every person is closest to desk.`),
    h('div', { style: 'overflow-x: auto; max-width: 100%' }, table),
  );
}
