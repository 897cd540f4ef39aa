// Conversation names and colours: what the timeline, its legend and the chat's status lines show.
import { describe, expect, it } from 'vitest';
import type { Interval } from '../planner/timeline.ts';
import {
  CONV_PALETTE,
  ConvPalette,
  convLabel,
  convsLabel,
  describeInterval,
  namePeers,
  lostLine,
  planLine,
  restartLine,
  resumedLine,
  splitConvs,
} from './conversations.ts';

const names: Record<string, string> = { 'peer-a': 'tab1', 'peer-b': 'tab2' };
const peerName = (id: string): string => names[id] ?? id;

describe('conversation labels', () => {
  it('splits a batched pass and names each conversation by its tab', () => {
    expect(splitConvs(undefined)).toEqual([]);
    expect(splitConvs('')).toEqual([]);
    expect(splitConvs('peer-a/0')).toEqual(['peer-a/0']);
    expect(splitConvs('peer-a/0,peer-b/0')).toEqual(['peer-a/0', 'peer-b/0']);
    expect(convLabel('peer-a/0', peerName)).toBe('tab1/0');
    expect(convLabel('peer-x/api-3', peerName)).toBe('peer-x/api-3');
    expect(convLabel('0', peerName)).toBe('0'); // no owner: shown as is
    expect(convsLabel('peer-a/0', peerName)).toBe('tab1/0');
    expect(convsLabel('peer-a/0,peer-b/0', peerName)).toBe('batch of 2: tab1/0, tab2/0');
    expect(convsLabel(undefined, peerName)).toBe('');
  });

  it('describes an interval under the pointer', () => {
    const batch: Interval = {
      device: 'peer-b',
      kind: 'compute',
      startSec: 1.25,
      endSec: 1.2625,
      tokenIndex: 3,
      conv: 'peer-a/0,peer-b/0',
      label: 'batch of 2',
    };
    expect(describeInterval(batch, peerName)).toBe(
      'tab2: compute · batch of 2: tab1/0, tab2/0 · token 3 · 12.5 ms at 1.250 s',
    );
    const load: Interval = { device: 'peer-a', kind: 'load', startSec: 0, endSec: 0.5, layer: 2, bytes: 2_500_000 };
    expect(describeInterval(load, peerName)).toBe('tab1: load · layer 2 · 500.0 ms at 0.000 s · 2.50 MB');
    const prefill: Interval = {
      device: 'peer-a',
      kind: 'send',
      startSec: 0,
      endSec: 0.001,
      tokenIndex: 0,
      bytes: 2048,
      conv: 'peer-a/0',
    };
    expect(describeInterval(prefill, peerName)).toBe('tab1: send · tab1/0 · prefill · 1.0 ms at 0.000 s · 2.0 kB');
  });

  it('status lines: plans from other tabs, rebuilt turns, peer ids replaced by names', () => {
    expect(planLine('tab2', 3, 2)).toBe('plan from tab2 (3 stages): 2 turns in flight continue on it');
    expect(planLine('tab2', 1, 1)).toBe('plan from tab2 (1 stage): 1 turn in flight continues on it');
    expect(planLine('tab2', 2, 0)).toBe('plan from tab2 (2 stages): no turn in flight');
    expect(restartLine('tab1/0', 412, 'a new plan from tab2')).toBe(
      'tab1/0: rebuilding 412 positions: a new plan from tab2',
    );
    expect(lostLine('tab2', 1)).toBe(
      'tab2 left while holding layers: 1 turn here waits; re-planning over the remaining tabs',
    );
    expect(lostLine('tab2', 0)).toMatch(/no turn here was in flight/);
    expect(resumedLine('tab1/0', 8)).toBe('tab1/0: resumed at token 9');
    expect(namePeers('a new plan from peer-b (peer-b)', [{ peerId: 'peer-b', name: 'tab2' }])).toBe(
      'a new plan from tab2 (tab2)',
    );
    expect(namePeers('unchanged', [{ peerId: '', name: 'x' }])).toBe('unchanged');
  });
});

describe('conversation palette', () => {
  it('hands out distinct palette colours in order of first sight, stable after', () => {
    const p = new ConvPalette();
    expect(p.coloursOf(undefined)).toEqual([]);
    expect(p.coloursOf('a/0')).toEqual([CONV_PALETTE[0]]);
    expect(p.coloursOf('a/0,b/0')).toEqual([CONV_PALETTE[0], CONV_PALETTE[1]]);
    expect(p.colourOf('b/0')).toBe(CONV_PALETTE[1]);
    expect(p.seen()).toEqual(['a/0', 'b/0']);
    expect(p.size).toBe(2);
    expect(new Set(CONV_PALETTE).size).toBe(CONV_PALETTE.length);
  });

  it('past the palette: a hue from the id, the same in every page', () => {
    const p = new ConvPalette();
    for (let i = 0; i < CONV_PALETTE.length; i++) p.colourOf(`t/${i}`);
    const late = p.colourOf('late/0');
    expect(late).toMatch(/^hsl\(\d+ 65% 42%\)$/);
    const q = new ConvPalette();
    for (let i = 0; i < CONV_PALETTE.length; i++) q.colourOf(`u/${i}`);
    expect(q.colourOf('late/0')).toBe(late);
  });

  it('the per-field memo stays bounded and keeps colours', () => {
    const p = new ConvPalette();
    const first = p.coloursOf('a/0')[0];
    for (let i = 0; i < 5000; i++) p.coloursOf(`a/0,x/${i}`);
    expect(p.coloursOf('a/0')).toEqual([first]);
  });
});
