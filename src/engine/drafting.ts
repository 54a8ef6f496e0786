import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BudgetController,
  CostCurve,
  DRAFT_CONTEXTS,
  GlobalTries,
  Proposer,
  RequestScope,
  recordExchange,
  SessionStore,
  type CostPoint,
  type DraftTree,
  type TrieSettings,
} from '../lookahead/index.js';
import type { ModelInfo } from '../model/types.js';
import type { DraftSource } from './generation.js';
import type { Exchange, TrieStats, WorkerJob } from './protocol.js';
import type { EngineOptions } from './types.js';

/** One job's view of the tries: its request scope plus its session's and tenant's tries, merged by a Proposer. */
class JobDrafts implements DraftSource {
  constructor(
    readonly scope: RequestScope,
    private readonly proposer: Proposer,
    private readonly job: WorkerJob,
    private readonly chainOnly: boolean,
  ) {}

  classify(context: Int32Array, length: number): number {
    return this.proposer.match(context, length);
  }

  propose(context: Int32Array, length: number, maxNodes: number, maxDepth: number): DraftTree {
    return this.proposer.propose(
      context,
      { decodingLength: maxNodes, branchLength: maxDepth, layout: this.job.lookahead.layout },
      this.chainOnly,
      length,
    );
  }

  accepted(tokens: Int32Array): void {
    this.scope.pushOutput(tokens);
  }
}

/**
 * The worker's lookahead state: the tenants' global tries, the session tries, and the cost curve the adaptive
 * budget reads. Requests open a JobDrafts at start and hand their answer back at the end.
 */
export class DraftingState {
  private readonly settings: TrieSettings;
  private readonly globals: GlobalTries;
  private readonly sessions: SessionStore;
  private readonly curve: CostCurve;
  private readonly open = new Map<number, JobDrafts>();
  /**
   * One adaptive budget per (decodingLength, branchLength): what drafts achieve is a property of the model and the
   * traffic, so a request starts from what earlier ones learnt rather than re-probing every size in its first steps.
   * Jobs step one at a time, so each next() is followed by its own observe().
   */
  private readonly budgets = new Map<string, BudgetController>();

  constructor(
    private readonly options: EngineOptions,
    private readonly info: ModelInfo,
    costCurve: CostPoint[],
  ) {
    this.settings = { gramLength: options.lookahead.branchLength + 1, eosIds: info.eosTokenIds };
    this.globals = new GlobalTries({ ...this.settings, maxNodes: options.globalTrie.maxNodes });
    this.sessions = new SessionStore(
      { ...this.settings, maxNodes: Math.max(1, Math.floor(options.globalTrie.maxNodes / 16)) },
      { maxSessions: options.sessions.max, ttlMs: options.sessions.ttlSeconds * 1000 },
    );
    this.curve = new CostCurve(costCurve);
  }

  /** Drafting for a job, or null when its lookahead is off. */
  start(job: WorkerJob): { source: DraftSource; budget: BudgetController } | null {
    if (!job.lookahead.enabled || job.lookahead.decodingLength <= 1 || job.lookahead.branchLength <= 0) return null;
    const scope = new RequestScope(
      { ...this.settings, gramLength: job.lookahead.branchLength + 1 },
      job.promptIds,
      job.predictionIds,
      job.constraintHints,
    );
    const session = job.sessionId ? this.sessions.acquire(job.tenant, job.sessionId) : null;
    const proposer = new Proposer(
      { request: scope.trie, session, global: this.globals.get(job.tenant), copies: [scope.copy, this.globals.copyIndex(job.tenant)] },
      job.lookahead.decodingLength,
    );
    const drafts = new JobDrafts(scope, proposer, job, !this.info.treeMask);
    this.open.set(job.jobId, drafts);
    const key = `${job.lookahead.decodingLength}/${job.lookahead.branchLength}`;
    let budget = this.budgets.get(key);
    if (!budget) {
      budget = new BudgetController(this.curve, {
        decodingLength: job.lookahead.decodingLength,
        branchLength: job.lookahead.branchLength,
        contexts: DRAFT_CONTEXTS,
      });
      this.budgets.set(key, budget);
    }
    return { source: drafts, budget };
  }

  /**
   * The job ended: its prompt and answer teach the session, its answer the tenant's global trie — also when the
   * job itself did not draft, since every answer is material for later requests. Aborted answers are cut short
   * at an arbitrary point and teach nothing.
   */
  finish(job: WorkerJob, answer: Int32Array, aborted: boolean): void {
    const drafts = this.open.get(job.jobId);
    this.open.delete(job.jobId);
    if (aborted) return;
    const session = job.sessionId ? this.sessions.acquire(job.tenant, job.sessionId) : null;
    const global = this.globals.get(job.tenant);
    const copy = this.globals.copyIndex(job.tenant);
    if (drafts) drafts.scope.finish(answer, session, global, copy);
    else recordExchange(job.promptIds, answer, session, global, copy);
  }

  /** Documents (token ids) for a tenant's global trie; returns the n-grams inserted. */
  addDocuments(tenant: string, docs: number[][]): number {
    const trie = this.globals.get(tenant);
    const copy = this.globals.copyIndex(tenant);
    let grams = 0;
    for (const doc of docs) {
      grams += trie.insert(doc);
      copy.append(doc);
      copy.endSequence();
    }
    return grams;
  }

  dropSession(tenant: string, sessionId: string): boolean {
    return this.sessions.delete(tenant, sessionId);
  }

  /**
   * Exchanges finished elsewhere (another replica), taught exactly as `finish` teaches a local one: to the tenant's
   * global trie and copy index, or, for a session's earlier turns, to that session's trie.
   */
  addExchanges(tenant: string, sessionId: string | null, exchanges: Exchange[]): void {
    const session = sessionId ? this.sessions.acquire(tenant, sessionId) : null;
    for (const { prompt, answer } of exchanges) {
      if (session) recordExchange(prompt, answer, session);
      else recordExchange(prompt, answer, null, this.globals.get(tenant), this.globals.copyIndex(tenant));
    }
  }

  /** Every tenant's global trie as one blob (the snapshot file's format), and which tenants it holds. */
  exportGlobals(): { bytes: Uint8Array; tenants: string[] } {
    return { bytes: this.globals.snapshot(), tenants: this.globals.tenants() };
  }

  /** Replaces the tenants found in `bytes` (from exportGlobals); others are left alone. */
  importGlobals(bytes: Uint8Array): void {
    this.globals.restore(bytes);
  }

  trieStats(): TrieStats {
    return { global: this.globals.nodeCount(), sessions: this.sessions.nodeCount() };
  }

  /** Restores the global tries from the snapshot file, if configured and present. */
  restore(): string | null {
    const path = this.options.globalTrie.snapshotPath;
    if (!path || !existsSync(path)) return null;
    this.globals.restore(readFileSync(path));
    return `global tries restored from ${path} (${this.globals.nodeCount()} nodes)`;
  }

  /** Writes the global tries atomically (temp file + rename), so a crash never leaves half a snapshot. */
  snapshot(): string | null {
    const path = this.options.globalTrie.snapshotPath;
    if (!path) return null;
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, this.globals.snapshot());
    renameSync(tmp, path);
    return `global tries saved to ${path}`;
  }
}
