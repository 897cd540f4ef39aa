// The vendored reference fixtures are ground truth: this fails if any file under test/fixtures differs from the
// committed sha256 manifest (test/fixtures/SHA256SUMS), or if a file appears or goes missing. The README is the
// project's shared reference set's own, byte for byte, and in the manifest too. New fixtures arrive in that shared set
// first: copy them in unchanged, then
// `cd test/fixtures && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS`.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from './fixturesNode.ts';

const MANIFEST = 'SHA256SUMS';
/** The manifest itself is the one file of ours there. */
const OURS = new Set([MANIFEST]);

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [relative(FIXTURES_DIR, join(dir, e.name))],
  );
}

function manifest(): Map<string, string> {
  const lines = readFileSync(join(FIXTURES_DIR, MANIFEST), 'utf8').trim().split('\n');
  return new Map(
    lines.map((l) => {
      const [hash, path] = l.split(/\s+/);
      return [path.replace(/^\.\//, ''), hash];
    }),
  );
}

describe('reference fixtures', () => {
  const expected = manifest();

  it('lists every fixture folder of the reference set', () => {
    const folders = new Set([...expected.keys()].filter((p) => p.includes('/')).map((p) => p.split('/')[0]));
    expect([...folders].sort()).toEqual(['tiny-llama', 'tiny-q-llama', 'tiny-qwen2']);
  });

  it('holds exactly the files of the manifest', () => {
    const present = listFiles(FIXTURES_DIR)
      .filter((p) => !OURS.has(p))
      .sort();
    expect(present).toEqual([...expected.keys()].sort());
  });

  it.each([...expected.entries()])('%s matches its sha256', (path, hash) => {
    expect(
      createHash('sha256')
        .update(readFileSync(join(FIXTURES_DIR, path)))
        .digest('hex'),
    ).toBe(hash);
  });
});
