// The web UI's built files (ui/dist, made by `npm run build:ui`) served under /ui/ on the API's
// port. No token is needed for them: they hold no data, and the login page must load before the
// user has given one. Paths are checked before the disk is touched: no `..` or `.` segments
// (also percent-encoded), no NUL or backslash, and the resolved real path must stay inside the
// UI folder, so a symlink cannot lead out either. Any path without a file extension gets
// index.html, so the UI's own routes (/ui/volumes/vol-a) survive a reload.
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { uiStaticFileMaxBytes } from '../lib/limits.ts';
import { ApiError } from './api-error.ts';

export const uiPathPrefix = '/ui';

/** ui/dist of this checkout: the compiled file is dist/src/api/ui-static.js. */
export const defaultUiDir = resolve(import.meta.dirname, '../../../ui/dist');

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

// The UI loads only its own files and talks only to this server.
const contentSecurityPolicy =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** True for /ui and everything under /ui/: the public part of the server. */
export function isUiPath(urlPath: string): boolean {
  return urlPath === uiPathPrefix || urlPath.startsWith(`${uiPathPrefix}/`);
}

export type UiFileChoice =
  | { readonly kind: 'file'; readonly relativePath: string }
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Which file of the UI folder a request path names (pure: no disk). `urlPath` is the raw path
 * under /ui/, without the query, still percent-encoded.
 */
export function chooseUiFile(urlPath: string): UiFileChoice {
  const rest = urlPath.slice(uiPathPrefix.length + 1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return { kind: 'refused', reason: 'the path is not valid percent-encoding' };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { kind: 'refused', reason: 'NUL and backslash are not allowed in a path' };
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return { kind: 'refused', reason: "'.' and '..' segments are not allowed in a path" };
  const relative = segments.filter((s) => s !== '').join('/');
  const last = segments[segments.length - 1] ?? '';
  // A UI route (no extension) gets the app; a missing asset is a 404, not the app.
  if (relative === '' || !last.includes('.')) return { kind: 'file', relativePath: 'index.html' };
  return { kind: 'file', relativePath: relative };
}

function cacheControl(relativePath: string): string {
  // Vite names bundles after their content hash: they never change under one name.
  return relativePath.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
}

async function sendUiFile(reply: FastifyReply, root: string, relativePath: string): Promise<FastifyReply> {
  const notBuilt = (): ApiError =>
    new ApiError('not_found', `the web UI is not built here (${root} has no index.html): run \`npm run build:ui\``);
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notBuilt();
    throw error;
  }
  let real: string;
  try {
    real = await realpath(join(realRoot, relativePath));
  } catch (error) {
    // A name that cannot exist (too long, a file used as a folder, a symlink loop) is a 404 too.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG' && code !== 'ELOOP') throw error;
    if (relativePath === 'index.html') throw notBuilt();
    throw new ApiError('not_found', `no UI file ${relativePath.slice(0, 200)}`);
  }
  if (!real.startsWith(realRoot + sep)) throw new ApiError('bad_request', 'the path leads outside the UI folder');
  const info = await stat(real);
  if (!info.isFile()) throw new ApiError('not_found', `no UI file ${relativePath.slice(0, 200)}`);
  if (info.size > uiStaticFileMaxBytes) throw new ApiError('too_large', `UI file ${relativePath.slice(0, 200)} is ${info.size} bytes; at most ${uiStaticFileMaxBytes} are served`);
  const body = await readFile(real);
  const type = contentTypes[extname(real).toLowerCase()] ?? 'application/octet-stream';
  void reply.header('cache-control', cacheControl(relativePath)).header('x-content-type-options', 'nosniff');
  if (type.startsWith('text/html')) void reply.header('content-security-policy', contentSecurityPolicy).header('x-frame-options', 'DENY');
  return reply.type(type).send(body);
}

export function registerUiStatic(app: FastifyInstance, options: { readonly dir: string }): void {
  app.get(uiPathPrefix, (_request, reply) => reply.redirect(`${uiPathPrefix}/`, 302));
  app.get(`${uiPathPrefix}/*`, async (request, reply) => {
    const choice = chooseUiFile(request.url.split('?')[0] ?? '');
    if (choice.kind === 'refused') throw new ApiError('bad_request', `UI path refused: ${choice.reason}`);
    return sendUiFile(reply, options.dir, choice.relativePath);
  });
}
