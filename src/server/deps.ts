import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/types.js';
import type { Embedder } from '../model/embedding/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Authenticate, Caller } from './auth.js';
import type { SharedRecords } from './responses/store.js';
import type { DocumentQuota } from './document-quota.js';
import type { TenantJobs } from './tenant-jobs.js';
import type { Upstream } from './upstream.js';

/** Shared with main.ts: set `draining` on SIGTERM and new work is answered 503 while running work finishes. */
export interface Lifecycle {
  draining: boolean;
}

/** Replicas sharing tries and sessions through Redis (src/sync), when configured: what the routes use of it. */
export interface ReplicaSync {
  /** Before a session's jobs: its turns served by other replicas are taught here first. Never throws. */
  prepareSession(tenant: string, sessionId: string): Promise<void>;
  /** A deleted session's turns leave Redis, so no replica learns them again; true when there were any. */
  dropSession(tenant: string, sessionId: string): Promise<boolean>;
  /** For /ready's body: connected or not, lag, what was applied. */
  status(): object;
  /** Stored responses, readable by every replica. */
  readonly responses: SharedRecords;
}

/** What every route may use. */
export interface ServerDeps {
  engine: Engine;
  config: Config;
  upstream?: Upstream;
  /** The local sentence-embedding model (--embedding-model), if any. */
  embedder?: Embedder;
  log: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  authenticate: Authenticate;
  tenantJobs: TenantJobs;
  /** Document bytes per tenant, for posted documents and the texts learnt from embeddings alike. */
  documentQuota: DocumentQuota;
  replication?: ReplicaSync;
}

/** What a generation route learnt, for the request's log line (never the prompt or the answer text). */
export interface GenerationRecord {
  model: string;
  promptTokens: number;
  completionTokens: number;
  tokensPerStep: number;
  stream: boolean;
}

/** Hono's per-request variables. */
export interface AppEnv {
  Variables: {
    requestId: string;
    caller: Caller;
    generation?: GenerationRecord;
    /** Set by a streaming route: the request ends when its stream does, not when the headers go out. */
    streamDone?: Promise<void>;
  };
}
