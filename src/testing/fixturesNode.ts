// Node-side access to the reference fixtures vendored in test/fixtures (never edited, never regenerated).
// A fixture name is a folder (tiny-llama) or a folder and a GGUF quant (tiny-q-llama/Q8_0: model-Q8_0.gguf, checked
// against expected-Q8_0.json).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FixtureCase } from './allClose.ts';
import { openModelAt } from '../weights/locate.ts';
import type { ModelSource } from '../weights/model.ts';

export const FIXTURES_DIR = resolve(import.meta.dirname, '../../test/fixtures');

function parts(name: string): { folder: string; quant: string | null } {
  const [folder, quant] = name.split('/');
  return { folder, quant: quant ?? null };
}

export function fixtureDir(name: string): string {
  return resolve(FIXTURES_DIR, parts(name).folder);
}

/** What openModelAt takes for this fixture: its folder, or its GGUF file. */
export function fixtureLocation(name: string): string {
  const { quant } = parts(name);
  return quant ? resolve(fixtureDir(name), `model-${quant}.gguf`) : fixtureDir(name);
}

export function openFixture(name: string): Promise<ModelSource> {
  return openModelAt(fixtureLocation(name));
}

export function fixtureCases(name: string): FixtureCase[] {
  const { quant } = parts(name);
  const file = quant ? `expected-${quant}.json` : 'expected.json';
  return (JSON.parse(readFileSync(resolve(fixtureDir(name), file), 'utf8')) as { cases: FixtureCase[] }).cases;
}
