import type { RouteOptions } from 'fastify';
import type { z } from 'zod';
import { buildHttpApp, type HttpDeps } from '../../scheduler/http/app';
import type { SchedulerOperations } from '../../scheduler/operations';
import type { TenantDirectory } from '../../scheduler/tenants';
import { createLogger } from '../../src/telemetry/logger';
import { cell, table } from './markdown';

interface RouteSchema {
  summary?: string;
  description?: string;
  hide?: boolean;
  security?: unknown[];
  querystring?: z.ZodObject;
}

/**
 * The HTTP routes as the scheduler registers them (fastify's onRoute), in registration order: every route
 * with a summary, its query parameters from its zod schema, who may call it (its `config.roles`; no
 * `security`: no token), and its description (else its summary). The app is built with inert dependencies:
 * registration reads none of them.
 */
export async function registeredRoutes(): Promise<RouteOptions[]> {
  const routes: RouteOptions[] = [];
  const inert = {} as never;
  const deps: HttpDeps = { ready: false, notReadyReason: '', leadership: inert, metrics: inert, tenants: inert as TenantDirectory, config: { prometheusUrl: undefined } };
  const app = await buildHttpApp(deps, inert as SchedulerOperations, { log: createLogger({ name: 'gen-docs', level: 'silent' }), bodyLimitBytes: 1024, onRoute: (r) => void routes.push(r) });
  await app.ready();
  await app.close();
  return routes;
}

/** The README's route table: the routes that have a summary (the others are internal: /docs/json, the console's files). */
export async function routeTable(): Promise<string> {
  const rows: string[][] = [];
  for (const route of await registeredRoutes()) {
    const schema = (route.schema ?? {}) as RouteSchema;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    if (!schema.summary || methods.length === 0) continue;
    const query = schema.querystring ? `?${Object.keys(schema.querystring.shape).map((k) => `${k}=`).join('&')}` : '';
    const roles = (route.config as { roles?: string[] } | undefined)?.roles;
    const who = !schema.security ? 'no token' : roles ? roles.map((r) => `${r}s`).join(', ') : 'tenants, operators';
    rows.push([methods.join(', '), `\`${route.url}${query}\``, who, cell(schema.description ?? schema.summary)]);
  }
  return table(['method', 'path', 'who', 'what'], rows);
}
