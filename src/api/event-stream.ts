// GET /v1/events/stream: resource changes as server-sent events (`event: MODIFIED`, `data: {...}`),
// optionally for one kind (`?kind=Volume`). A client that does not keep up is cut off rather than
// buffered without bound; it reconnects and refetches. Longhorn's UI uses websockets for this;
// SSE needs no extra protocol and works through plain HTTP proxies.
import type { FastifyInstance } from 'fastify';
import { isKindName } from '../control/resources/resource-kinds.ts';
import { ApiError } from './api-error.ts';
import { apiStreamBacklogMax, apiStreamClientsMax, apiStreamPingIntervalMs } from '../lib/limits.ts';
import type { ChangeEvent, EventHub } from './event-hub.ts';

export function registerEventStream(app: FastifyInstance, hub: EventHub): void {
  let clients = 0;
  app.get<{ Querystring: Record<string, unknown> }>('/v1/events/stream', (request, reply) => {
    const kind = request.query['kind'];
    if (kind !== undefined && (typeof kind !== 'string' || !isKindName(kind))) {
      throw new ApiError('bad_request', `?kind= must name one kind such as Volume or Node, not ${JSON.stringify(kind).slice(0, 80)}`);
    }
    if (clients >= apiStreamClientsMax) throw new ApiError('unavailable', `${apiStreamClientsMax} event streams are open already; try again later`);
    clients++;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    let unacknowledged = 0;
    const write = (text: string): void => {
      if (raw.destroyed) return;
      if (raw.write(text)) return;
      unacknowledged++;
      // The socket's buffer is full and stays full: this client cannot keep up; let it go.
      if (unacknowledged > apiStreamBacklogMax) raw.destroy();
    };
    raw.on('drain', () => {
      unacknowledged = 0;
    });
    const send = (event: ChangeEvent): void => {
      if (kind !== undefined && event.kind !== kind) return;
      write(`id: ${event.resourceVersion}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    write('retry: 2000\n: connected\n\n');
    const unsubscribe = hub.subscribe(send);
    const ping = setInterval(() => write(': ping\n\n'), apiStreamPingIntervalMs);
    raw.on('close', () => {
      clients--;
      clearInterval(ping);
      unsubscribe();
    });
  });
}
