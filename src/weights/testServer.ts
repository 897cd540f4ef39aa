// Test support (Node only): a real HTTP server on an ephemeral port serving a folder with Range support,
// recording every request so tests can count them. Not a mock: the code under test speaks real HTTP to it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveFiles, type ServeOptions } from '../server/rangeFiles.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  range: string | undefined;
}

export interface TestServer {
  /** Base URL ending in '/'. */
  url: string;
  requests: RecordedRequest[];
  /** Requests whose path ends with `suffix`. */
  count(suffix: string): number;
  close(): Promise<void>;
}

export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({
      method: req.method ?? '',
      path: new URL(req.url ?? '/', 'http://x').pathname,
      range: req.headers.range,
    });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    count: (suffix) => requests.filter((r) => r.path.endsWith(suffix)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serve `dir` at the root with src/server/rangeFiles.ts, 404 for anything else. */
export function serveDir(dir: string, opts: ServeOptions = {}): Promise<TestServer> {
  const files = serveFiles('/', dir, opts);
  return startServer((req, res) => {
    void files(req, res, () => {
      res.statusCode = 404;
      res.end('not found');
    });
  });
}
