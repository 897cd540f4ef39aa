// Error classes with stable codes: every failure a user can meet has a code and a message they can act on.

export type ErrorCode =
  | 'ERR_UNSUPPORTED_ARCH'
  | 'ERR_BAD_CONFIG'
  | 'ERR_BAD_SAFETENSORS'
  | 'ERR_BAD_GGUF'
  | 'ERR_MISSING_TENSOR'
  | 'ERR_FETCH'
  | 'ERR_NO_RANGE_SUPPORT'
  | 'ERR_TOKENIZER'
  | 'ERR_BAD_ARGS'
  | 'ERR_BACKEND'
  | 'ERR_WEBGPU_UNAVAILABLE'
  | 'ERR_DEVICE_LOST'
  | 'ERR_DOES_NOT_FIT'
  | 'ERR_INFEASIBLE_PLAN'
  | 'ERR_BAD_SCENARIO'
  | 'ERR_BAD_MESSAGE'
  | 'ERR_PEER_GONE'
  | 'ERR_SIGNALING'
  | 'ERR_PIPELINE'
  | 'ERR_BUSY';

export class ShoalError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ShoalError';
  }
}

/** True for errors we raised on purpose (bad input, unsupported model): print the message, not a stack. */
export function isShoalError(e: unknown): e is ShoalError {
  return (
    e instanceof ShoalError ||
    (typeof e === 'object' &&
      e !== null &&
      typeof (e as { code?: unknown }).code === 'string' &&
      String((e as { code: string }).code).startsWith('ERR_'))
  );
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
