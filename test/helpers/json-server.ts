import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface JsonRequest {
  /** 1 for the first request, and so on. */
  n: number;
  /** The path and query asked for. */
  path: string;
  headers: IncomingHttpHeaders;
}

export interface JsonServer {
  /** `http://127.0.0.1:<port>`, without a path. */
  url: string;
  /** The requests answered so far. */
  requests: () => JsonRequest[];
  close: () => Promise<void>;
}

/**
 * A loopback HTTP server standing in for a provider's JSON API (a carbon feed, a published forecast): each
 * request is answered with what `answer` gives for it (status 200 unless it says otherwise).
 */
export async function startJsonServer(answer: (request: JsonRequest) => { status?: number; body: unknown }): Promise<JsonServer> {
  const seen: JsonRequest[] = [];
  const server = createServer((req, res) => {
    const request = { n: seen.length + 1, path: req.url!, headers: req.headers };
    seen.push(request);
    const { status = 200, body } = answer(request);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
