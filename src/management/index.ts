export { ManagementServer, startManagement } from './server.js';
export type { ManagementOptions } from './server.js';
export { StatsCollector } from './stats.js';
export { exportDefinitions, importDefinitions } from './controllers/definitions.js';
export type { Definitions } from './controllers/definitions.js';
export { renderMetrics } from './metrics.js';
