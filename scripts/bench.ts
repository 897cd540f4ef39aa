// `npm run bench -- NAME`: runs scripts/bench/NAME.ts, which prints its figures. Benchmarks, not tests.
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(import.meta.dirname, 'bench');
const name = process.argv[2];
const available = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
  : [];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]   (available: ${available.join(', ') || 'none'})`);
  process.exit(2);
}
process.argv.splice(2, 1);
await import(pathToFileURL(resolve(dir, `${name}.ts`)).href);
