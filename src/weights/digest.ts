// SHA-256 of weight bytes, as lowercase hex: the integrity check of every cached or peer-served unit.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/**
 * WebCrypto where it exists (native, several times faster); @noble/hashes where it does not: a page served over
 * plain http from a LAN address is not a secure context and has no crypto.subtle, yet still checks peers' bytes.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const view = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    return bytesToHex(new Uint8Array(await subtle.digest('SHA-256', view as Uint8Array<ArrayBuffer>)));
  }
  return bytesToHex(sha256(bytes));
}

/** Bytes of several spans as one array (a unit's bytes), and back. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function splitBytes(bytes: Uint8Array, lengths: number[]): Uint8Array[] {
  let o = 0;
  return lengths.map((n) => bytes.subarray(o, (o += n)));
}
