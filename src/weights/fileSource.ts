// ByteSource over a local file (Node only: uses node:fs; never import this from browser code).
import { promises as fsp } from 'node:fs';
import { ShoalError, errorMessage } from '../errors.ts';
import { FileNotFoundError, checkSpan, type ByteSource } from './source.ts';

function fsError(path: string, e: unknown): ShoalError {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return new FileNotFoundError(`${path}: no such file`);
  const why = code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(e);
  return new ShoalError('ERR_FETCH', `${path}: ${why}`, { cause: e });
}

/** Each read opens the file, so no handle outlives a read (layers are read rarely and in big pieces). */
export function fileSource(path: string): ByteSource {
  return {
    name: path,
    async size() {
      try {
        const st = await fsp.stat(path);
        if (!st.isFile()) throw new ShoalError('ERR_FETCH', `${path}: not a regular file`);
        return st.size;
      } catch (e) {
        throw e instanceof ShoalError ? e : fsError(path, e);
      }
    },
    async read(offset, length) {
      checkSpan(path, offset, length);
      const out = new Uint8Array(length);
      if (length === 0) return out;
      let fh;
      try {
        fh = await fsp.open(path, 'r');
      } catch (e) {
        throw fsError(path, e);
      }
      try {
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(out, got, length - got, offset + got);
          if (bytesRead === 0)
            throw new ShoalError(
              'ERR_FETCH',
              `${path}: bytes ${offset}..${offset + length} lie past the end of the file (read ${got} of ${length})`,
            );
          got += bytesRead;
        }
        return out;
      } catch (e) {
        throw e instanceof ShoalError ? e : fsError(path, e);
      } finally {
        await fh.close();
      }
    },
  };
}
