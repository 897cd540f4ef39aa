// The infer CLI on GGUF files (the JSON contract of shared/ARCHITECTURE.md): the same JSON from a GGUF file alone,
// split across stages, matching the reference fixture; bad files get one line on stderr and a non-zero exit.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { assertAllClose } from '../src/testing/allClose.ts';
import { fixtureCases, fixtureLocation } from '../src/testing/fixturesNode.ts';

const run = promisify(execFile);
const infer = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'scripts/infer.ts', ...args], { cwd: join(import.meta.dirname, '..') });
const tmp = mkdtempSync(join(tmpdir(), 'shoal-infer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('infer --model FILE.gguf', () => {
  it('prints the contract JSON, split across stages, matching the reference', async () => {
    const c = fixtureCases('tiny-q-llama/Q4_K_M')[0];
    const model = fixtureLocation('tiny-q-llama/Q4_K_M');
    const { stdout } = await infer(
      ...['--model', model, '--ids', c.input_ids.join(','), '--steps', String(c.greedy.length)],
      ...['--stages', '0-1,1-2', '--json'],
    );
    const out = JSON.parse(stdout) as { input_ids: number[]; logits: number[][]; generated: number[]; backend: string };
    expect(Object.keys(out).sort()).toEqual(['backend', 'generated', 'input_ids', 'logits']);
    expect(out.input_ids).toEqual(c.input_ids);
    expect(out.backend).toBe('cpu');
    out.logits.forEach((row, i) => assertAllClose(row, c.logits[i], 1e-4, 1e-4, `pos ${i}`));
    expect(out.generated).toEqual(c.greedy);
  });

  it('a bad file: one line on stderr naming the problem, a non-zero exit', async () => {
    const bad = join(tmp, 'bad.gguf');
    writeFileSync(bad, readFileSync(fixtureLocation('tiny-q-llama/Q8_0')).subarray(0, 50_000));
    const err = await infer('--model', bad, '--ids', '1,2', '--json').then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err, 'should have failed').not.toBeNull();
    expect(err!.code).not.toBe(0);
    const lines = err!.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/bad\.gguf: tensor "[\w.]+" \[\d+, \d+\) is out of range/);
  });
});
