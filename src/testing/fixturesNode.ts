// Node-side access to the reference fixtures vendored in test/fixtures (never edited, never regenerated).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FixtureCase } from './allClose.ts';

export const FIXTURES_DIR = resolve(import.meta.dirname, '../../test/fixtures');

export function fixtureDir(name: string): string {
  return resolve(FIXTURES_DIR, name);
}

export function fixtureCases(name: string): FixtureCase[] {
  return (JSON.parse(readFileSync(resolve(FIXTURES_DIR, name, 'expected.json'), 'utf8')) as { cases: FixtureCase[] })
    .cases;
}
