// The plan CLI contract: JSON shape on stdout, layers from 1; bad input gives one line on stderr and a non-zero exit.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'scripts/plan.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('plan CLI', () => {
  it('prints every strategy as {predictedSeconds, stages[{device, first, last}]}', () => {
    const r = run('--scenario', 'scripts/scenarios/csgo-paper-t1024.json', '--strategy', 'all', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<
      string,
      { predictedSeconds: number; stages: { device: string; first: number; last: number }[]; method?: string }
    >;
    expect(Object.keys(out)).toEqual(['csgo', 'even', 'harmonic', 'memory', 'single', 'compute']);
    for (const pl of Object.values(out)) {
      expect(pl.predictedSeconds).toBeGreaterThan(0);
      expect(pl.stages[0].first).toBe(1);
      expect(pl.stages[pl.stages.length - 1].last).toBe(40);
    }
    expect(out.csgo.method).toBe('exact');
    expect(out.csgo.predictedSeconds).toBeCloseTo(2.85, 1);
  });

  it('fails in one line, without a stack, on bad input', () => {
    for (const args of [
      ['--scenario', 'missing.json', '--json'],
      ['--scenario', 'scripts/scenarios/browser-4tabs.json', '--strategy', 'nope'],
      ['--json'],
    ]) {
      const r = run(...args);
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^plan: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
