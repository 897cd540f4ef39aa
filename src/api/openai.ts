// The OpenAI wire format as the server speaks it: requests checked (valibot) into one ApiTurnRequest, and the
// response, stream-chunk and error objects built from a turn's text. Pure: the relay and its tests share it.
import * as v from 'valibot';
import { isPlainObject } from '../wire/schema.ts';

/** Tokens generated when a request names no max_tokens (OpenAI's own default is the whole context). */
export const DEFAULT_MAX_TOKENS = 256;
/** Most tokens one request may ask for (a stage's KV cache is capped at 4096 positions anyway). */
export const MAX_MAX_TOKENS = 4096;
export const MAX_MESSAGES = 256;
/** Longest prompt or message text, characters (the context limit is checked in tokens by the host tab). */
export const MAX_TEXT_CHARS = 1_000_000;
export const MAX_STOPS = 4;
const MAX_STOP_CHARS = 64;

export type ApiKind = 'chat' | 'completion';
export type Role = 'system' | 'user' | 'assistant';
export type FinishReason = 'stop' | 'length';

/** What a host tab needs to run one request, whichever endpoint it came from. */
export interface ApiTurnRequest {
  kind: ApiKind;
  model: string;
  messages?: { role: Role; content: string }[];
  prompt?: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  user?: string;
}

export interface ApiError {
  status: number;
  message: string;
  type: 'invalid_request_error' | 'server_error' | 'rate_limit_error' | 'authentication_error';
  param?: string;
  code?: string;
}

export const badRequest = (message: string, param?: string, code?: string): ApiError => ({
  status: 400,
  message,
  type: 'invalid_request_error',
  param,
  code,
});

/** The body OpenAI clients parse an error from. */
export function errorBody(e: ApiError): { error: Record<string, unknown> } {
  return { error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } };
}

const text = (what: string) =>
  v.pipe(v.string(`${what} must be a string`), v.maxLength(MAX_TEXT_CHARS, `${what} is too long`));
/** A message's content: a string, or text parts (the only kind a text model takes). */
const content = v.union(
  [
    text('content'),
    v.array(
      v.object({ type: v.literal('text', 'only text content parts are supported'), text: text('content text') }),
      'content must be a string or a list of text parts',
    ),
  ],
  'content must be a string or a list of {"type":"text","text":...} parts',
);
const role = v.picklist(
  ['system', 'developer', 'user', 'assistant'],
  'role must be one of system, developer, user, assistant (tool messages are not supported)',
);
const intIn = (what: string, min: number, max: number) => {
  const rule = `${what} must be an integer from ${min} to ${max}`;
  return v.optional(v.nullable(v.pipe(v.number(rule), v.integer(rule), v.minValue(min, rule), v.maxValue(max, rule))));
};
const numIn = (what: string, min: number, max: number) => {
  const rule = `${what} must be a number from ${min} to ${max}`;
  return v.optional(v.nullable(v.pipe(v.number(rule), v.finite(rule), v.minValue(min, rule), v.maxValue(max, rule))));
};
const stop = v.optional(
  v.nullable(
    v.union(
      [
        v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_STOP_CHARS)),
        v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_STOP_CHARS))), v.maxLength(MAX_STOPS)),
      ],
      `stop must be a string or a list of at most ${MAX_STOPS} strings of 1-${MAX_STOP_CHARS} characters`,
    ),
  ),
);
/** Fields both endpoints share; unknown fields are ignored, as OpenAI-compatible servers do. */
const common = {
  model: v.pipe(v.string('model must be a string'), v.minLength(1, 'model is required')),
  max_tokens: intIn('max_tokens', 1, MAX_MAX_TOKENS),
  max_completion_tokens: intIn('max_completion_tokens', 1, MAX_MAX_TOKENS),
  temperature: numIn('temperature', 0, 2),
  top_p: numIn('top_p', 0, 1),
  seed: v.optional(v.nullable(v.pipe(v.number('seed must be an integer'), v.integer('seed must be an integer')))),
  stop,
  stream: v.optional(v.nullable(v.boolean('stream must be true or false'))),
  stream_options: v.optional(v.nullable(v.object({ include_usage: v.optional(v.boolean()) }))),
  user: v.optional(v.string('user must be a string')),
  n: intIn('n (only 1 is supported)', 1, 1),
};
const ChatSchema = v.object({
  ...common,
  messages: v.pipe(
    v.array(v.object({ role, content }), 'messages must be a list of {role, content}'),
    v.minLength(1, 'messages must not be empty'),
    v.maxLength(MAX_MESSAGES, `at most ${MAX_MESSAGES} messages`),
  ),
});
const CompletionSchema = v.object({
  ...common,
  prompt: v.union(
    [text('prompt'), v.pipe(v.array(text('prompt')), v.length(1, 'only one prompt per request is supported'))],
    'prompt must be a string',
  ),
  echo: v.optional(v.nullable(v.literal(false, 'echo is not supported'))),
  suffix: v.optional(v.nullable(v.literal('', 'suffix is not supported'))),
});

/** The field a refusal is about, for the error's `param`. */
function paramOf(issue: v.BaseIssue<unknown>): string | undefined {
  return v.getDotPath(issue) ?? undefined;
}

/** A parsed JSON body checked for one endpoint: the turn to run, or a 400 naming the field. */
export function parseApiRequest(kind: ApiKind, body: unknown): ApiTurnRequest | ApiError {
  if (!isPlainObject(body)) return badRequest('the request body must be a JSON object');
  const schema = kind === 'chat' ? ChatSchema : CompletionSchema;
  const res = v.safeParse(schema, body, {
    abortEarly: true,
    message: (issue) => (issue.received === 'undefined' ? 'is missing' : `has the wrong type (${issue.received})`),
  });
  if (!res.success) {
    const issue = res.issues[0];
    const param = paramOf(issue);
    const msg =
      issue.message.startsWith('is missing') || issue.message.startsWith('has the wrong')
        ? `${param ?? 'the body'} ${issue.message}`
        : issue.message;
    return badRequest(msg, param);
  }
  const b = res.output;
  const stops = b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  const out: ApiTurnRequest = {
    kind,
    model: b.model,
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_MAX_TOKENS,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    // A request without a seed samples differently each time, as OpenAI's does.
    seed: (b.seed ?? Math.floor(Math.random() * 2 ** 31)) >>> 0,
    stop: stops,
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false,
    user: b.user,
  };
  if ('messages' in b)
    out.messages = b.messages.map((m) => ({
      // A developer message is a system message to a chat template that knows only those.
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    }));
  else out.prompt = typeof b.prompt === 'string' ? b.prompt : b.prompt[0];
  return out;
}

export const isApiError = (x: unknown): x is ApiError =>
  isPlainObject(x) && typeof x.status === 'number' && typeof x.message === 'string';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const usage = (promptTokens: number, completionTokens: number): Usage => ({
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
  total_tokens: promptTokens + completionTokens,
});

/** Identity of one response: every chunk of a stream carries the same. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function responseHead(kind: ApiKind, model: string, now = Date.now()): ResponseHead {
  const prefix = kind === 'chat' ? 'chatcmpl-' : 'cmpl-';
  return { id: prefix + Math.random().toString(36).slice(2, 14), created: Math.floor(now / 1000), model };
}

/** The whole answer (stream: false). */
export function completionBody(
  kind: ApiKind,
  head: ResponseHead,
  text: string,
  finish: FinishReason,
  use: Usage,
): Record<string, unknown> {
  const choice =
    kind === 'chat'
      ? { index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish }
      : { index: 0, text, logprobs: null, finish_reason: finish };
  return {
    ...head,
    object: kind === 'chat' ? 'chat.completion' : 'text_completion',
    choices: [choice],
    usage: use,
  };
}

/**
 * One server-sent event's object. A chat stream's first chunk carries the role; the last carries finish_reason
 * (and no text); with include_usage a final chunk has no choices and the usage.
 */
export function chunkBody(
  kind: ApiKind,
  head: ResponseHead,
  part: { text?: string; role?: boolean; finish?: FinishReason; usage?: Usage },
): Record<string, unknown> {
  const finish = part.finish ?? null;
  const choices = part.usage
    ? []
    : kind === 'chat'
      ? [
          {
            index: 0,
            delta: {
              ...(part.role ? { role: 'assistant' } : {}),
              ...(part.text !== undefined ? { content: part.text } : {}),
            },
            logprobs: null,
            finish_reason: finish,
          },
        ]
      : [{ index: 0, text: part.text ?? '', logprobs: null, finish_reason: finish }];
  return {
    ...head,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    choices,
    ...(part.usage ? { usage: part.usage } : {}),
  };
}
