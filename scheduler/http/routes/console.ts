import type { FastifyPluginAsync } from 'fastify';
import type { SchedulerOperations } from '../../operations';
import { auditVerifyRoutes } from './audit-verify';
import { greenRoutes } from './green';
import { seriesRoutes } from './series';
import { uiRoutes } from './ui';
import { whoamiRoutes } from './whoami';

/**
 * The web console (/ui/) and the reads it needs beyond the rest of /v1: who is signed in, the green page's
 * data, the audit chain's verification and charts from Prometheus. Registered by the app in one place.
 */
export const consoleRoutes: FastifyPluginAsync<{ ops: SchedulerOperations; prometheusUrl: string | undefined }> = async (app, { ops, prometheusUrl }) => {
  await app.register(whoamiRoutes);
  await app.register(greenRoutes, { ops });
  await app.register(auditVerifyRoutes, { ops });
  await app.register(seriesRoutes, { prometheusUrl });
  await app.register(uiRoutes);
};
