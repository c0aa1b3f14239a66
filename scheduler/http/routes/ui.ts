import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { QY_ERR_ROUTE_NOT_FOUND } from '../../../src/errors';

/** The console's own files (HTML, CSS, JavaScript modules), served as they are: there is no build step. */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const require = createRequire(import.meta.url);
/** A package's folder: its main file lies one folder down (dist/) in each of the packages below. */
const packageDir = (name: string) => dirname(dirname(require.resolve(name)));

/** The npm packages' files the console loads, by the name it asks for under /ui/vendor/: nothing else of node_modules is served. */
export const UI_VENDOR_FILES: Record<string, { dir: string; file: string }> = {
  'preact.mjs': { dir: packageDir('preact'), file: 'dist/preact.mjs' },
  'preact-hooks.mjs': { dir: packageDir('preact'), file: 'hooks/dist/hooks.mjs' },
  'htm.mjs': { dir: packageDir('htm'), file: 'dist/htm.module.js' },
  'uPlot.iife.min.js': { dir: packageDir('uplot'), file: 'dist/uPlot.iife.min.js' },
  'uPlot.min.css': { dir: packageDir('uplot'), file: 'dist/uPlot.min.css' },
};

/** Every file the console may load: its path under /ui/ and where it is on disk (the size budget and the load benchmark read this). */
export function consoleFiles(): { urlPath: string; file: string }[] {
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  const own = walk(UI_DIR).map((file) => ({ urlPath: `/ui/${relative(UI_DIR, file).split(sep).join('/')}`, file }));
  const vendor = Object.entries(UI_VENDOR_FILES).map(([name, v]) => ({ urlPath: `/ui/vendor/${name}`, file: join(v.dir, v.file) }));
  return [...own, ...vendor].sort((a, b) => (a.urlPath < b.urlPath ? -1 : 1));
}

/**
 * The Content-Security-Policy of the console. Scripts come from the console's origin only, plus the one
 * inline script of index.html (the import map), allowed by its hash: an injected script could read the
 * token in sessionStorage, so nothing else may run. The page talks only to its own origin.
 */
export function consoleCsp(indexHtml: string): string {
  const inline = [...indexHtml.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`);
  return [
    "default-src 'self'",
    `script-src 'self' ${inline.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The web console at /ui/: static files with @fastify/static. It uses only the public /v1 API with the
 * token the user signs in with, so serving it needs no token (the files hold no data).
 */
export const uiRoutes: FastifyPluginAsync = async (app) => {
  const csp = consoleCsp(readFileSync(join(UI_DIR, 'index.html'), 'utf8'));
  app.addHook('onSend', async (_req, reply, payload) => {
    void reply.header('content-security-policy', csp);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    return payload;
  });
  // The console's files change with the scheduler: revalidated on each load (ETag), which costs little on a LAN.
  await app.register(fastifyStatic, { root: UI_DIR, prefix: '/ui/', index: ['index.html'], cacheControl: true, maxAge: 0, redirect: true });
  app.get('/ui', { schema: { hide: true, summary: 'The web console (static files under /ui/, no token)' } }, async (_req, reply) => reply.redirect('/ui/', 301));
  // Vendor files are fixed for a release (package-lock.json): cached for an hour.
  app.get('/ui/vendor/:file', { schema: { hide: true, params: z.object({ file: z.string().max(64) }) } }, async (req, reply) => {
    const { file } = req.params as { file: string };
    const vendor = Object.hasOwn(UI_VENDOR_FILES, file) ? UI_VENDOR_FILES[file] : undefined;
    if (!vendor) throw new QY_ERR_ROUTE_NOT_FOUND('GET', req.url.split('?')[0]);
    return reply.header('cache-control', 'public, max-age=3600').sendFile(vendor.file, vendor.dir, { maxAge: 3_600_000, cacheControl: false });
  });
};
