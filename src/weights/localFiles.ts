// ModelFiles over a local folder (Node only: uses node:fs; kept apart so the browser bundle never pulls it in).
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { ShoalError, errorMessage } from '../errors.ts';
import { fileSource } from './fileSource.ts';
import { FileNotFoundError, type ByteSource } from './source.ts';
import type { ModelFiles } from './model.ts';

export function localModelFiles(dir: string): ModelFiles {
  const base = resolve(dir);
  const sources = new Map<string, ByteSource>();
  return {
    base,
    async text(name) {
      const path = join(base, name);
      try {
        return await fsp.readFile(path, 'utf8');
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOENT') throw new FileNotFoundError(`${path}: no such file`);
        throw new ShoalError('ERR_FETCH', `${path}: ${errorMessage(e)}`, { cause: e });
      }
    },
    bytes(name) {
      let s = sources.get(name);
      if (!s) sources.set(name, (s = fileSource(join(base, name))));
      return s;
    },
  };
}

/** True when `dir` is an existing folder (used to tell a local path from a Hub repo id). */
export async function isLocalDir(dir: string): Promise<boolean> {
  try {
    return (await fsp.stat(dir)).isDirectory();
  } catch {
    return false;
  }
}
