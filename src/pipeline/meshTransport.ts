// The pipeline's Transport over the mesh: pipeline messages ride as `app` messages on one channel, activations as
// the binary payload; messages to this tab itself are delivered locally (a tab may coordinate and hold a stage).
import type { Mesh } from '../mesh/mesh.ts';
import { PIPELINE_CHANNEL, parsePipelineMessage } from './messages.ts';
import type { PipelineMessage, Transport } from './messages.ts';

type Handler = (from: string, msg: PipelineMessage, payload: Float32Array | undefined) => void;

function toF32(binary: Uint8Array): Float32Array {
  // Copy into a fresh, aligned buffer: the payload sits at some offset inside a reassembled frame, and it may be a
  // Node-style Buffer (simple-peer), whose slice() is a view over the whole frame, not a copy.
  return new Float32Array(new Uint8Array(binary).buffer);
}

export function meshTransport(mesh: Mesh): Transport {
  const handlers = new Set<Handler>();
  const deliver = (from: string, msg: PipelineMessage, payload: Float32Array | undefined) => {
    for (const h of handlers) {
      try {
        h(from, msg, payload);
      } catch (e) {
        console.error('pipeline handler failed', e);
      }
    }
  };
  mesh.registerChannel(PIPELINE_CHANNEL, (body, binary) => {
    const parsed = parsePipelineMessage(body);
    if (typeof parsed === 'string') throw new Error(parsed); // the mesh drops and reports it
    if (binary && binary.byteLength % 4 !== 0)
      throw new Error('activation payload is not a whole number of f32 values');
    return parsed;
  });
  mesh.on('message', (from, msg, binary) => {
    if (msg.channel !== PIPELINE_CHANNEL) return;
    // the channel validator above already parsed the body
    deliver(from, msg.body as PipelineMessage, binary ? toF32(binary) : undefined);
  });
  return {
    selfId: mesh.peerId,
    async send(to, msg, payload) {
      if (to === mesh.peerId) {
        const copy = payload?.slice();
        queueMicrotask(() => deliver(to, msg, copy));
        return;
      }
      const binary = payload ? new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) : undefined;
      await mesh.send(to, { type: 'app', channel: PIPELINE_CHANNEL, body: msg }, binary);
    },
    onMessage(h) {
      handlers.add(h);
      return () => handlers.delete(h);
    },
  };
}
