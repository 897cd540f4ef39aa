// Assertions the Node tests share: the ShoalError a promise rejects with, and byte equality of large buffers.
import { expect } from 'vitest';
import { ShoalError } from '../errors.ts';

/** Await a promise that must reject with a ShoalError, and return that error. */
export async function caught(p: Promise<unknown>): Promise<ShoalError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ShoalError);
  return e as ShoalError;
}

/** Byte equality without vitest's element-by-element diffing (slow on 100k-element arrays). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
  );
}
