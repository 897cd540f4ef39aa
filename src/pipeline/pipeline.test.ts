// The pipeline's protocol logic over an in-memory bus (a stand-in for WebRTC, which Node cannot run), with the real
// CPU engine and real fixture files: a 3-tab chain must produce exactly the reference greedy ids.
import { describe, expect, it, vi } from 'vitest';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { openModel } from '../weights/model.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { FIXTURE_NAMES } from '../testing/allClose.ts';
import { fixtureCases, fixtureDir } from '../testing/fixturesNode.ts';
import { MemoryBus } from './memoryBus.ts';
import { cpuStageRunner } from '../testing/cpuStage.ts';
import { Coordinator } from './coordinator.ts';
import { runInfer } from '../model/infer.ts';
import { parsePipelineMessage } from './messages.ts';
import type { StageAssignment, Transport } from './messages.ts';

function mesh(name: string, tabs: string[]) {
  const bus = new MemoryBus();
  const errors: string[] = [];
  const runners = tabs.map((id) =>
    cpuStageRunner(bus.transport(id), fixtureDir(name), {
      onEvent: (e) => {
        if (e.type === 'error') errors.push(e.message);
      },
    }),
  );
  // the coordinator lives in the first tab, beside its stage runner
  const coordinatorTransport = bus.transport(`${tabs[0]}-ui`);
  const coordinator = new Coordinator(coordinatorTransport);
  return { coordinator, runners, errors, members: tabs };
}

describe.each(FIXTURE_NAMES)('pipeline over 3 tabs on %s', (name) => {
  it('generates the reference greedy ids from cold and every tab reports its timeline', async () => {
    const { coordinator, members } = mesh(name, ['a', 'b', 'c']);
    const cases = fixtureCases(name);
    const L = cases.length && (name === 'tiny-llama' ? 4 : 6);
    const stages = [
      { peer: 'b', start: 0, end: 1 },
      { peer: 'a', start: 1, end: 3 },
      { peer: 'c', start: 3, end: L },
    ];
    await coordinator.assign('fixture', stages, members, 64);
    for (const c of cases) {
      const r = await coordinator.generate(c.input_ids, { maxTokens: c.greedy.length, eos: [] });
      expect(r.tokens).toEqual(c.greedy);
      expect(r.stoppedBy).toBe('maxTokens');
    }
    const kinds = new Set(coordinator.intervals.map((i) => i.kind));
    expect([...kinds].sort()).toEqual(['compute', 'load', 'recv', 'send', 'upload']);
    const devices = new Set(coordinator.intervals.map((i) => i.device));
    expect([...devices].sort()).toEqual(['a', 'b', 'c']);
    coordinator.dispose();
  });

  it('a second turn reuses the cached prefix and equals a fresh run', async () => {
    const { coordinator, members } = mesh(name, ['a', 'b']);
    const model = await openModel(localModelFiles(fixtureDir(name)));
    const L = model.spec.nLayers;
    await coordinator.assign(
      'fixture',
      [
        { peer: 'a', start: 0, end: 2 },
        { peer: 'b', start: 2, end: L },
      ],
      members,
      128,
    );
    const turn1 = [5, 9, 33, 41];
    const r1 = await coordinator.generate(turn1, { maxTokens: 4, eos: [] });
    // turn 2 extends the conversation: prompt 1 + answer 1 + new user tokens
    const turn2 = [...turn1, ...r1.tokens, 7, 8, 9];
    const r2 = await coordinator.generate(turn2, { maxTokens: 5, eos: [] });
    const fresh = await runInfer({ model, backend: createCpuBackend(), ids: turn2, steps: 5, logits: 'none' });
    expect(r2.tokens).toEqual(fresh.generated);
    // a diverging turn (edited history) rolls the caches back and still matches
    const turn3 = [5, 9, 100, 101];
    const r3 = await coordinator.generate(turn3, { maxTokens: 3, eos: [] });
    const fresh3 = await runInfer({ model, backend: createCpuBackend(), ids: turn3, steps: 3, logits: 'none' });
    expect(r3.tokens).toEqual(fresh3.generated);
    coordinator.dispose();
  });
});

describe('pipeline control', () => {
  it('stops on an eos token and reports it', async () => {
    const name = 'tiny-llama';
    const c = fixtureCases(name)[1];
    const { coordinator, members } = mesh(name, ['a', 'b']);
    await coordinator.assign(
      'fixture',
      [
        { peer: 'a', start: 0, end: 2 },
        { peer: 'b', start: 2, end: 4 },
      ],
      members,
      64,
    );
    const eos = c.greedy[3];
    const r = await coordinator.generate(c.input_ids, { maxTokens: 12, eos: [eos] });
    expect(r.tokens).toEqual(c.greedy.slice(0, c.greedy.indexOf(eos) + 1));
    expect(r.stoppedBy).toBe('eos');
  });

  it('a stage computes the next round while its last result is on the link (latency does not hold it)', async () => {
    // Tab b's link hands messages over at once but reports them sent only when released, as an emulated link
    // delay does (Link.send resolves after the delay): two verification rounds in flight must both come back
    // while b's sends are still pending, i.e. b did not hold its compute queue on the first send.
    const name = 'tiny-llama';
    const bus = new MemoryBus();
    const held: (() => void)[] = [];
    const gated = (t: Transport): Transport => ({
      ...t,
      send: (to, msg, payload) => {
        void t.send(to, msg, payload);
        return new Promise<void>((r) => held.push(r));
      },
    });
    const runners = ['a', 'b', 'c'].map((id) =>
      cpuStageRunner(id === 'b' ? gated(bus.transport(id)) : bus.transport(id), fixtureDir(name)),
    );
    const coordinator = new Coordinator(bus.transport('a-ui'));
    await coordinator.assign(
      'fixture',
      [
        { peer: 'a', start: 0, end: 1 },
        { peer: 'b', start: 1, end: 3 },
        { peer: 'c', start: 3, end: 4 },
      ],
      ['a', 'b', 'c'],
      64,
    );
    const c = fixtureCases(name)[0];
    const first = coordinator.verify(0, c.input_ids, { keepFrom: c.input_ids.length - 1, wantLogits: false });
    const second = coordinator.verify(c.input_ids.length, [c.greedy[0], c.greedy[1]], {
      keepFrom: 0,
      wantLogits: false,
    });
    const [r1, r2] = await Promise.all([first, second]);
    expect(held.length).toBeGreaterThanOrEqual(2); // b's two activations: neither reported sent yet
    expect([...r1.tokens, ...r2.tokens]).toEqual(c.greedy.slice(0, 3));
    // Each reply carries the compute the three stages spent on its pass, summed (what prices a speculative hedge).
    for (const r of [r1, r2]) expect(r.computeMs).toBeGreaterThan(0);
    for (const release of held) release();
    coordinator.dispose();
    for (const r of runners) r.dispose();
  });

  it('a tab whose model fails to load reports a clear error to the coordinator', async () => {
    const bus = new MemoryBus();
    cpuStageRunner(bus.transport('a'), '/nonexistent/model');
    const coordinator = new Coordinator(bus.transport('ui'));
    const errors: string[] = [];
    coordinator.on((e) => {
      if (e.type === 'error') errors.push(e.message);
    });
    await coordinator.assign('x', [{ peer: 'a', start: 0, end: 4 }], ['a'], 16);
    await expect(coordinator.generate([1, 2], { maxTokens: 2, eos: [] })).rejects.toThrow(
      /config\.json|not found|nonexistent/i,
    );
    expect(errors.length).toBeGreaterThan(0);
  });

  it('a turn waiting after a loss ends with its tokens when no plan comes in time', async () => {
    const bus = new MemoryBus();
    const coordinator = new Coordinator(bus.transport('ui'), 50);
    const events: string[] = [];
    coordinator.on((e) => {
      if (e.type === 'error' || e.type === 'lost') events.push(e.type);
    });
    // tab "gone" holds the layers but never answers: it is about to vanish
    await coordinator.assign('x', [{ peer: 'gone', start: 0, end: 4 }], [], 16);
    const turn = coordinator.generate([1, 2], { maxTokens: 2, eos: [] });
    coordinator.peerLeft('gone');
    const r = await turn;
    expect(r.stoppedBy).toBe('lost');
    expect(r.tokens).toEqual([]);
    expect(events).toEqual(['lost', 'error']);
    await expect(coordinator.generate([1, 2], { maxTokens: 2, eos: [] })).rejects.toThrow(/no plan/);
  });

  it('the validator drops malformed pipeline messages without throwing', () => {
    for (const bad of [
      null,
      1,
      'x',
      [],
      {},
      { kind: 'act' },
      { kind: 'token', planId: 'p', runId: -1 },
      { kind: 'assign', planId: 'p', stages: 'no' },
      { kind: 'timeline', planId: 'p', intervals: [{ kind: 'nap' }] },
      { kind: 'zzz' },
    ]) {
      expect(typeof parsePipelineMessage(bad)).toBe('string');
    }
    // A reported compute time must be a duration: a peer cannot make a hedge look free or infinitely dear.
    const verified = { kind: 'verified', planId: 'p', conv: 'a/0', runId: 1, pos0: 0, tokens: [3] };
    expect(parsePipelineMessage({ ...verified, computeMs: 4.5 })).toEqual({ ...verified, computeMs: 4.5 });
    expect(parsePipelineMessage(verified)).toEqual(verified);
    for (const computeMs of [-1, Infinity, 'x', 1e9])
      expect(parsePipelineMessage({ ...verified, computeMs })).toMatch(/computeMs/);
  });
});

describe('several conversations on one mesh', () => {
  /** Three tabs, each with its own coordinator (the page's), over one plan; the tiny-llama fixture. */
  async function room(maxConversations?: number) {
    const name = 'tiny-llama';
    const bus = new MemoryBus();
    const tabs = ['a', 'b', 'c'];
    const runners = tabs.map((id) => cpuStageRunner(bus.transport(id), fixtureDir(name)));
    const coordinators = tabs.map((id) => new Coordinator(bus.transport(`${id}-ui`)));
    const members = [...tabs, ...tabs.map((t) => `${t}-ui`)];
    const stages = [
      { peer: 'a', start: 0, end: 1 },
      { peer: 'b', start: 1, end: 3 },
      { peer: 'c', start: 3, end: 4 },
    ];
    const model = await openModel(localModelFiles(fixtureDir(name)));
    const solo = async (
      ids: number[],
      steps: number,
      sampling?: { temperature: number; topP: number; seed: number },
    ) => {
      if (!sampling)
        return (await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' })).generated;
      const b = new MemoryBus();
      const r = cpuStageRunner(b.transport('x'), fixtureDir(name));
      const c = new Coordinator(b.transport('x-ui'));
      await c.assign('fixture', [{ peer: 'x', start: 0, end: 4 }], ['x', 'x-ui'], 64);
      const out = (await c.generate(ids, { maxTokens: steps, eos: [], sampling })).tokens;
      c.dispose();
      r.dispose();
      return out;
    };
    const close = () => {
      for (const c of coordinators) c.dispose();
      for (const r of runners) r.dispose();
    };
    /** Tab i plans; resolves once every tab has adopted the plan the room settles on. */
    const assign = async (...planners: number[]) => {
      await Promise.all(
        planners.map((i) => coordinators[i].assign('fixture', stages, members, 64, { maxConversations })),
      );
      await expect.poll(() => new Set(coordinators.map((c) => c.planId)).size).toBe(1);
    };
    return { coordinators, runners, members, stages, model, solo, close, assign };
  }

  it('two tabs that plan and send at the same moment both finish, each with its answer alone', async () => {
    const r = await room();
    const cases = fixtureCases('tiny-llama');
    // Both tabs plan at once: the room converges on the newer plan and the other tab's turn restarts on it.
    await r.assign(0, 1);
    const [t0, t1] = await Promise.all([
      r.coordinators[0].generate(cases[0].input_ids, { maxTokens: 8, eos: [] }),
      r.coordinators[1].generate(cases[1].input_ids, { maxTokens: 8, eos: [] }),
    ]);
    expect(t0.tokens).toEqual(cases[0].greedy.slice(0, 8));
    expect(t1.tokens).toEqual(cases[1].greedy.slice(0, 8));
    expect(r.coordinators[0].planId).toBe(r.coordinators[1].planId);
    r.close();
  });

  it('two tabs plan and send at once, not waiting for each other: the superseded turn restarts exactly', async () => {
    const r = await room();
    const cases = fixtureCases('tiny-llama');
    const seeded = { temperature: 0.8, topP: 1, seed: 3 };
    const turn = (i: number) =>
      r.coordinators[i].assign('fixture', r.stages, r.members, 64).then(() =>
        r.coordinators[i].generate(cases[i].input_ids, {
          maxTokens: 8,
          eos: [],
          sampling: i === 1 ? seeded : undefined,
        }),
      );
    const [t0, t1] = await Promise.all([turn(0), turn(1)]);
    expect(t0.tokens).toEqual(cases[0].greedy.slice(0, 8));
    expect(t1.tokens).toEqual(await r.solo(cases[1].input_ids, 8, seeded));
    r.close();
  });

  it('three conversations (greedy, seeded; from one tab and two others) equal their answers alone', async () => {
    const r = await room();
    await r.assign(2);
    const seeded = { temperature: 0.9, topP: 0.95, seed: 11 };
    const long = Array.from({ length: 50 }, (_, i) => (i * 37 + 5) % 256);
    const jobs = [
      { c: 0, conv: 'x', ids: [5, 9, 33, 41], steps: 10 },
      { c: 0, conv: 'y', ids: [7, 7, 1], steps: 6, sampling: seeded },
      { c: 1, conv: undefined, ids: long, steps: 5 },
      { c: 2, conv: undefined, ids: [100, 3], steps: 9, sampling: seeded },
    ];
    const got = await Promise.all(
      jobs.map((j) =>
        r.coordinators[j.c].generate(j.ids, { maxTokens: j.steps, eos: [], conv: j.conv, sampling: j.sampling }),
      ),
    );
    for (const [i, j] of jobs.entries())
      expect(got[i].tokens, `job ${i}`).toEqual(await r.solo(j.ids, j.steps, j.sampling));
    // The 50-position prompt ran as chunks: two compute passes at the first stage at least carry it.
    const chunked = r.coordinators[2].intervals.filter(
      (iv) => iv.device === 'a' && iv.kind === 'compute' && iv.conv?.includes('b-ui/0'),
    );
    expect(chunked.length).toBeGreaterThanOrEqual(2);
    r.close();
  });

  it('a conversation whose caches were evicted continues correctly on its next turn', async () => {
    const r = await room(1);
    await r.assign(0);
    const a1 = await r.coordinators[0].generate([5, 9, 33, 41], { maxTokens: 4, eos: [] });
    // Another conversation takes the only cache every stage keeps.
    await r.coordinators[1].generate([1, 2, 3], { maxTokens: 3, eos: [] });
    const restarts: string[] = [];
    r.coordinators[0].on((e) => {
      if (e.type === 'restart') restarts.push(e.reason);
    });
    const turn2 = [5, 9, 33, 41, ...a1.tokens, 7, 8];
    const a2 = await r.coordinators[0].generate(turn2, { maxTokens: 5, eos: [] });
    expect(a2.tokens).toEqual(await r.solo(turn2, 5));
    expect(a2.restarts).toBe(1);
    expect(restarts[0]).toMatch(/holds 0 of its positions/);
    r.close();
  });

  it('a turn started while the only cache is in use fails clearly; the other turn is unharmed', async () => {
    const r = await room(1);
    await r.assign(0);
    const first = r.coordinators[0].generate([5, 9, 33, 41], { maxTokens: 12, eos: [] });
    const second = r.coordinators[1].generate([1, 2, 3], { maxTokens: 3, eos: [] });
    await expect(second).rejects.toThrow(/conversations in flight/);
    expect((await first).tokens).toEqual(await r.solo([5, 9, 33, 41], 12));
    r.close();
  });
});

/**
 * Three tabs a, b, c on a fixture, chained a [0, 1), b [1, 3), c [3, L); each tab's transport is shared by its stage
 * runner and any coordinator there, as in a page. `loseB` is an onToken hook: after token 2, tab b vanishes, every
 * coordinator given hears of it, and `mine` (tab a's) assigns `next` over a and c; `replanned` awaits that.
 */
async function lossRoom(name: string) {
  const bus = new MemoryBus();
  const [ta, tb, tc] = ['a', 'b', 'c'].map((id) => bus.transport(id));
  for (const t of [ta, tb, tc]) cpuStageRunner(t, fixtureDir(name));
  const L = (await openModel(localModelFiles(fixtureDir(name)))).spec.nLayers;
  const mine = new Coordinator(ta);
  const chain = [
    { peer: 'a', start: 0, end: 1 },
    { peer: 'b', start: 1, end: 3 },
    { peer: 'c', start: 3, end: L },
  ];
  await mine.assign('fixture', chain, ['a', 'b', 'c'], 64);
  const replans: Promise<void>[] = [];
  const loseB =
    (coordinators: Coordinator[], next: StageAssignment[]) =>
    (_t: number, index: number): void => {
      if (index !== 2 || replans.length > 0) return;
      bus.leave('b');
      for (const c of coordinators) c.peerLeft('b');
      replans.push(mine.assign('fixture', next, ['a', 'c'], 64));
    };
  return { tc, L, mine, chain, loseB, replanned: () => Promise.all(replans) };
}

describe.each(FIXTURE_NAMES)('recovery on %s', (name) => {
  it('a stage vanishes mid-answer: the turn waits, restarts on the next plan, equals an unbroken run', async () => {
    const { L, mine: coordinator, loseB, replanned } = await lossRoom(name);
    const events: string[] = [];
    coordinator.on((e) => {
      if (e.type === 'lost' || e.type === 'restart' || e.type === 'resumed') events.push(e.type);
    });
    const c = fixtureCases(name)[0];
    // The middle stage's tab vanishes after token 2; the room re-plans over the other two.
    const next = [
      { peer: 'a', start: 0, end: 2 },
      { peer: 'c', start: 2, end: L },
    ];
    const r = await coordinator.generate(c.input_ids, {
      maxTokens: c.greedy.length,
      eos: [],
      onToken: loseB([coordinator], next),
    });
    await replanned();
    expect(r.tokens).toEqual(c.greedy);
    expect(r.restarts).toBe(1);
    expect(events).toEqual(['lost', 'restart', 'resumed']);
    coordinator.dispose();
  });

  it('two conversations from two tabs through the lost stage both recover exactly', async () => {
    const { tc, L, mine, loseB, replanned } = await lossRoom(name);
    const theirs = new Coordinator(tc);
    const [c0, c1] = fixtureCases(name);
    await vi.waitFor(() => expect(theirs.planId).toBe(mine.planId)); // the assignment reaches the other tab
    const next = [
      { peer: 'a', start: 0, end: 2 },
      { peer: 'c', start: 2, end: L },
    ];
    const other = theirs.generate(c1.input_ids, { maxTokens: c1.greedy.length, eos: [] });
    const r0 = await mine.generate(c0.input_ids, {
      maxTokens: c0.greedy.length,
      eos: [],
      onToken: loseB([mine, theirs], next),
    });
    await replanned();
    expect(r0.tokens).toEqual(c0.greedy);
    const r1 = await other;
    expect(r1.tokens).toEqual(c1.greedy);
    expect([r0.restarts, r1.restarts], 'both were in flight through the loss').toEqual([1, 1]);
    mine.dispose();
    theirs.dispose();
  });

  it('a stage that keeps its layers keeps its cache: the restart computes only the new row there', async () => {
    const { mine: coordinator, chain, loseB, replanned } = await lossRoom(name);
    const c = fixtureCases(name)[0];
    const restarts: number[] = [];
    coordinator.on((e) => {
      if (e.type === 'restart') restarts.push(e.positions);
    });
    // Tab a takes b's layers over; tab c keeps its range, so its weights and its cache stay.
    const next = [{ ...chain[0], end: 3 }, chain[2]];
    const r = await coordinator.generate(c.input_ids, {
      maxTokens: c.greedy.length,
      eos: [],
      onToken: loseB([coordinator], next),
    });
    await replanned();
    expect(r.tokens).toEqual(c.greedy);
    const n = c.input_ids.length + 3; // the prompt and the tokens so far
    expect(restarts, 'tab a recomputes every position').toEqual([n]);
    await vi.waitFor(() =>
      expect(coordinator.intervals.some((i) => i.device === 'c' && i.kind === 'compute')).toBe(true),
    );
    const labels = coordinator.intervals.filter((i) => i.device === 'c' && i.kind === 'compute').map((i) => i.label);
    expect(new Set(labels), 'tab c: one row per pass, the restart included').toEqual(new Set(['1 rows']));
    coordinator.dispose();
  });
});
