// The planner across a worker boundary (Comlink): expose it in the worker, wrap it in the page. A ShoalError thrown in
// the worker arrives as a ShoalError with its code (ERR_INFEASIBLE_PLAN, ERR_BAD_SCENARIO...), not a bare Error.
import * as Comlink from 'comlink';
import { ShoalError, isShoalError, type ErrorCode } from '../errors.ts';
import { plannerApi, type PlannerApi } from './api.ts';

export type RemotePlanner = Comlink.Remote<PlannerApi>;

/** What crosses the channel for a thrown ShoalError (Comlink's own shape for errors, plus the code). */
interface SerializedShoalError {
  isError: true;
  value: { name: string; message: string; stack?: string; code: ErrorCode };
}

let registered = false;

/**
 * Replace Comlink's 'throw' transfer handler (which keeps an Error's name, message and stack only) with one that also
 * keeps a ShoalError's code and rebuilds a ShoalError. Both ends must register it: the worker serializes, the page
 * deserializes. Anything else is left to Comlink's handler.
 */
export function keepErrorCodesAcrossComlink(): void {
  if (registered) return;
  registered = true;
  const comlinks = Comlink.transferHandlers.get('throw')!;
  const handler: Comlink.TransferHandler<unknown, unknown> = {
    canHandle: (value): value is unknown => comlinks.canHandle(value),
    serialize(thrown) {
      const value = (thrown as { value: unknown }).value;
      if (!(value instanceof Error) || !isShoalError(value)) return comlinks.serialize(thrown);
      const serialized: SerializedShoalError = {
        isError: true,
        value: { name: value.name, message: value.message, stack: value.stack, code: value.code },
      };
      return [serialized, []];
    },
    deserialize(serialized) {
      const s = serialized as Partial<SerializedShoalError>;
      if (!s.isError || typeof s.value?.code !== 'string') return comlinks.deserialize(serialized);
      const e = new ShoalError(s.value.code, s.value.message);
      if (s.value.stack !== undefined) e.stack = s.value.stack;
      throw e;
    },
  };
  Comlink.transferHandlers.set('throw', handler);
}

/** In the worker (or at any endpoint): serve the planner API. */
export function exposePlanner(endpoint?: Comlink.Endpoint): void {
  keepErrorCodesAcrossComlink();
  Comlink.expose(plannerApi, endpoint);
}

/** In the page: the planner API of a worker (or any endpoint) that exposed it. */
export function wrapPlanner(endpoint: Comlink.Endpoint): RemotePlanner {
  keepErrorCodesAcrossComlink();
  return Comlink.wrap<PlannerApi>(endpoint);
}
