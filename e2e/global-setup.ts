// Before any browser test: the generated demo and tiny models the page serves under /models/ must exist.
import { resolve } from 'node:path';
import { ensureDemoModel } from '../scripts/ensure-demo-model.ts';

export default async function globalSetup(): Promise<void> {
  await ensureDemoModel(resolve(import.meta.dirname, '../public/models'));
}
