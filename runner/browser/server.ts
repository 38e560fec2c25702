/**
 * A static file server for the page bundle: bound to 127.0.0.1 (a secure context for WebGPU) on a
 * free port, GET/HEAD only, and only files inside its root folder: `..` segments, absolute paths,
 * backslashes, NUL bytes and symbolic links leading outside are refused.
 */
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, isAbsolute, join, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wgsl': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
};

export interface StaticServer {
  /** e.g. http://127.0.0.1:41234/ */
  url: string;
  port: number;
  root: string;
  close(): Promise<void>;
}

/**
 * Maps a request path to a file under `root`, or returns why not. Exported for the tests.
 * `/` is index.html; the path is percent-decoded once, then checked segment by segment.
 */
export function resolveRequestPath(
  root: string,
  urlPath: string,
): { file: string } | { status: number; reason: string } {
  const rawPath = urlPath.split(/[?#]/, 1)[0];
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { status: 400, reason: 'malformed percent-encoding' };
  }
  if (!decoded.startsWith('/')) return { status: 400, reason: 'path must start with /' };
  if (decoded.includes('\0') || decoded.includes('\\'))
    return { status: 400, reason: 'NUL or backslash in path' };
  const relative = decoded.slice(1) || 'index.html';
  if (relative.startsWith('/') || isAbsolute(relative) || /^[a-zA-Z]:/.test(relative))
    return { status: 403, reason: 'absolute paths are not served' };
  const segments = relative.split('/');
  if (segments.some((s) => s === '..' || s === '.'))
    return { status: 403, reason: "'..' and '.' segments are not served" };
  if (segments.some((s) => s === '')) return { status: 404, reason: 'empty path segment' };
  let realRoot: string;
  let real: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(join(realRoot, ...segments));
  } catch {
    return { status: 404, reason: 'not found' };
  }
  if (!real.startsWith(realRoot + sep)) return { status: 403, reason: 'outside the served folder' };
  if (!statSync(real).isFile()) return { status: 404, reason: 'not a file' };
  return { file: real };
}

function handle(root: string, request: IncomingMessage, response: ServerResponse): void {
  response.setHeader('Cache-Control', 'no-store');
  response.setHeader('X-Content-Type-Options', 'nosniff');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  const resolved = resolveRequestPath(root, request.url ?? '/');
  if ('status' in resolved) {
    response.writeHead(resolved.status, { 'Content-Type': 'text/plain' }).end(`${resolved.reason}\n`);
    return;
  }
  const type = CONTENT_TYPES[extname(resolved.file)] ?? 'application/octet-stream';
  response.writeHead(200, { 'Content-Type': type, 'Content-Length': statSync(resolved.file).size });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(resolved.file)
    .on('error', () => response.destroy())
    .pipe(response);
}

/** Serves `root` on http://127.0.0.1 at a free port (or `port`). */
export async function serveStatic(root: string, port = 0): Promise<StaticServer> {
  const server = createServer((request, response) => handle(root, request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${address.port}/`,
    port: address.port,
    root,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
