// The relay between the server's OpenAI endpoints and the host tabs that run requests on the mesh: JSON text over one
// WebSocket per host tab (path API_HOST_PATH). Both sides validate what arrives against these schemas.
import * as v from 'valibot';
import { checkMessage, list, nonEmptyText, positiveInt, text, uint, finite } from '../wire/schema.ts';
import { MAX_MESSAGES, MAX_STOPS, MAX_TEXT_CHARS } from './openai.ts';

export const API_HOST_VERSION = 1;
export const API_HOST_PATH = '/api-host';
/** Largest relay message, bytes: a request carries the whole conversation. */
export const MAX_HOST_MESSAGE_BYTES = 4 * 1024 * 1024;
const MAX_ID_CHARS = 64;
const MAX_MODELS = 16;

const id = nonEmptyText(MAX_ID_CHARS);
const rule = 'must be 1-64 of [A-Za-z0-9_.-]';
const room = v.pipe(v.string(rule), v.regex(/^[\w.-]{1,64}$/, rule));

/** A model a host tab serves: the id clients name, where the tab loads it from, and its context in tokens. */
export const HostModelSchema = v.object({
  id: nonEmptyText(256),
  location: nonEmptyText(2048),
  contextTokens: positiveInt,
});
export type HostModel = v.InferOutput<typeof HostModelSchema>;

const status = v.pipe(v.number(), v.integer(), v.minValue(400), v.maxValue(599));

export const HostMessageSchema = v.variant('type', [
  /** First message: this tab serves the API for its room. */
  v.object({
    type: v.literal('hello'),
    v: v.literal(API_HOST_VERSION, `must be ${API_HOST_VERSION}`),
    room,
    name: text(64),
    secret: v.optional(text(256)),
    models: list(HostModelSchema, MAX_MODELS),
  }),
  /** The prompt is tokenized and fits: the answer follows. */
  v.object({ type: v.literal('started'), id, promptTokens: uint }),
  /** Text that follows what was sent before. */
  v.object({ type: v.literal('delta'), id, text: text(MAX_TEXT_CHARS) }),
  v.object({
    type: v.literal('done'),
    id,
    finish: v.picklist(['stop', 'length']),
    promptTokens: uint,
    completionTokens: uint,
  }),
  /** The request could not run; `status` 400 for the client's fault (too long), 5xx otherwise. */
  v.object({ type: v.literal('failed'), id, status, message: text(1000), code: v.optional(text(64)) }),
]);
export type HostMessage = v.InferOutput<typeof HostMessageSchema>;

export const RelayRequestSchema = v.object({
  type: v.literal('request'),
  id,
  kind: v.picklist(['chat', 'completion']),
  /** Where the host tab loads the model from (its own HostModel.location). */
  location: nonEmptyText(2048),
  messages: v.optional(
    list(v.object({ role: v.picklist(['system', 'user', 'assistant']), content: text(MAX_TEXT_CHARS) }), MAX_MESSAGES),
  ),
  prompt: v.optional(text(MAX_TEXT_CHARS)),
  maxTokens: positiveInt,
  temperature: finite,
  topP: finite,
  seed: uint,
  /** Stop strings end the answer at the server; the host may end early when one is in its text. */
  stop: list(text(64), MAX_STOPS),
});
export type RelayRequest = v.InferOutput<typeof RelayRequestSchema>;

export const ServerToHostSchema = v.variant('type', [
  v.object({ type: v.literal('welcome'), room }),
  RelayRequestSchema,
  /** The client went away or a stop string arrived: end the turn. */
  v.object({ type: v.literal('cancel'), id }),
  /** The hello was refused (bad secret, bad message); the socket closes after it. */
  v.object({ type: v.literal('refused'), message: text(1000) }),
]);
export type ServerToHost = v.InferOutput<typeof ServerToHostSchema>;

/** Validate a host tab's message at the server: the message, or why it was refused. */
export function parseHostMessage(x: unknown): HostMessage | string {
  const res = checkMessage(HostMessageSchema, x, 'message');
  return res.ok ? res.value : res.reason;
}

/** Validate a server message in the host tab (a buggy server must not break the tab). */
export function parseServerToHost(x: unknown): ServerToHost | string {
  const res = checkMessage(ServerToHostSchema, x, 'message');
  return res.ok ? res.value : res.reason;
}
