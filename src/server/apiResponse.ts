// One API request's answer on its HTTP response: the whole JSON at the end, or server-sent events as text arrives
// (ending with `data: [DONE]`); stop strings cut the text; a client that goes away cancels the turn.
import type { ServerResponse } from 'node:http';
import {
  chunkBody,
  completionBody,
  errorBody,
  responseHead,
  usage,
  type ApiError,
  type ApiTurnRequest,
  type FinishReason,
} from '../api/openai.ts';
import { StopFilter } from '../api/stopFilter.ts';

/** What the relay tells a request's response; `delta` returns true when a stop string ended the answer. */
export interface TurnSink {
  started(promptTokens: number): void;
  delta(text: string): boolean;
  done(finish: FinishReason, promptTokens: number, completionTokens: number): void;
  failed(e: ApiError): void;
}

export function respondTo(
  res: ServerResponse,
  req: ApiTurnRequest,
  modelId: string,
  onClientGone: () => void,
): TurnSink {
  const head = responseHead(req.kind, modelId);
  const stops = new StopFilter(req.stop);
  let text = '';
  let over = false;
  res.on('close', () => {
    if (!over) onClientGone();
    over = true;
  });
  const event = (obj: unknown): void => void res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const emit = (t: string): void => {
    if (!t) return;
    text += t;
    if (req.stream) event(chunkBody(req.kind, head, { text: t }));
  };
  return {
    started() {
      if (over || !req.stream) return;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
      });
      if (req.kind === 'chat') event(chunkBody(req.kind, head, { role: true, text: '' }));
    },
    delta(t) {
      if (over) return false;
      emit(stops.push(t));
      return stops.stopped;
    },
    done(finish, promptTokens, completionTokens) {
      if (over) return;
      over = true;
      emit(stops.flush());
      const reason: FinishReason = stops.stopped ? 'stop' : finish;
      const use = usage(promptTokens, completionTokens);
      if (!req.stream) {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(completionBody(req.kind, head, text, reason, use)));
        return;
      }
      event(chunkBody(req.kind, head, { finish: reason }));
      if (req.includeUsage) event(chunkBody(req.kind, head, { usage: use }));
      res.end('data: [DONE]\n\n');
    },
    failed(e) {
      if (over) return;
      over = true;
      if (!res.headersSent) {
        res.statusCode = e.status;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(errorBody(e)));
        return;
      }
      // Mid-stream: OpenAI's clients raise an error event's object as an APIError.
      event(errorBody(e));
      res.end();
    },
  };
}
