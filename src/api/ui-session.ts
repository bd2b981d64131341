// A cookie that lets the browser's EventSource open the event stream: EventSource cannot send an
// Authorization header. The UI calls POST /v1/session with its bearer token and gets back an
// HttpOnly, SameSite=Strict cookie whose path is the stream's, so the browser sends it there and
// nowhere else. The cookie is not the token: it is an HMAC of a fixed label keyed by the token,
// accepted only for GET /v1/events/stream. A stolen cookie therefore reads events and can change
// nothing; a new token (new data dir) voids every cookie. Every other call still needs the header.
import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { tokenMatches } from './api-token.ts';

export const streamPath = '/v1/events/stream';
export const streamCookieName = 'shorthorn-stream';

/** The cookie value for a token: HMAC-SHA256 of a label, as 64 hex characters. */
export function streamCookieValue(token: string): string {
  return createHmac('sha256', token).update('shorthorn event stream v1').digest('hex');
}

/** The value of one cookie in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** True when a request to the event stream carries the right stream cookie. */
export function streamCookieMatches(method: string, urlPath: string, cookieHeader: string | undefined, token: string): boolean {
  if (method !== 'GET' || urlPath !== streamPath) return false;
  const presented = cookieValue(cookieHeader, streamCookieName);
  return presented !== undefined && tokenMatches(presented, streamCookieValue(token));
}

/** POST /v1/session sets the cookie (the bearer token was checked already); DELETE clears it. */
export function registerUiSession(app: FastifyInstance, token: string): void {
  const attributes = `Path=${streamPath}; HttpOnly; SameSite=Strict`;
  app.post('/v1/session', (_request, reply) =>
    reply.header('set-cookie', `${streamCookieName}=${streamCookieValue(token)}; ${attributes}`).header('cache-control', 'no-store').code(204).send(),
  );
  app.delete('/v1/session', (_request, reply) =>
    reply.header('set-cookie', `${streamCookieName}=; ${attributes}; Max-Age=0`).code(204).send(),
  );
}
