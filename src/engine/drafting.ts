import { existsSync, readFileSync } from 'node:fs';
import {
  AcceptanceModel,
  BudgetController,
  CostCurve,
  GlobalTries,
  JobBudget,
  MAX_GRAM_LENGTH,
  Proposer,
  RecycledTable,
  RequestScope,
  RequestTrie,
  recordExchange,
  SessionStore,
  sourceShares,
  type CostPoint,
  type DraftOrigin,
  type DraftTree,
  type TrieSettings,
} from '../lookahead/index.js';
import type { ModelInfo } from '../model/types.js';
import type { DraftSource } from './generation.js';
import type { Exchange, TrieStats, WorkerJob } from './protocol.js';
import { decodeSnapshot, encodeSnapshot, identityMismatch, removeStaleTemps, setAside, writeSnapshotFile, type SnapshotIdentity } from './snapshot-file.js';
import type { EngineOptions } from './types.js';

/**
 * Positions of a request trie inserted when its first job starts (a few milliseconds at most): an ordinary prompt's
 * trie is whole from the first step; a larger one (a prediction or schema hints near a long context) is filled in
 * slices between decode steps.
 */
const FILL_AT_START = 4096;

/** One job's view of the tries: its request scope plus its session's and tenant's tries, merged by a Proposer. */
class JobDrafts implements DraftSource {
  constructor(
    readonly scope: RequestScope,
    private readonly proposer: Proposer,
    private readonly sizer: JobBudget,
    private readonly job: WorkerJob,
    private readonly chainOnly: boolean,
    private readonly table: RecycledTable,
  ) {}

  /** Prepares the step's candidates, whose expected gains the job's sizer reads next. */
  prepare(context: Int32Array, length: number): void {
    const { decodingLength, branchLength, layout } = this.job.lookahead;
    this.sizer.prepare(context, length, decodingLength, branchLength, this.chainOnly || layout === 'one');
  }

  propose(context: Int32Array, length: number, maxNodes: number, maxDepth: number): DraftTree {
    return this.proposer.propose(
      context,
      { decodingLength: maxNodes, branchLength: maxDepth, layout: this.job.lookahead.layout },
      this.chainOnly,
      length,
    );
  }

  get predictionTokens(): { drafted: number; accepted: number } {
    return this.proposer.predictionTokens;
  }

  accepted(tokens: Int32Array): void {
    this.proposer.accepted(tokens);
    this.scope.pushOutput(tokens);
  }

  acceptedBySource(): Record<DraftOrigin, number> {
    const out = { request: 0, session: 0, global: 0, recycled: 0 };
    for (const { source, proposed } of sourceShares(this.proposer.acceptedByOrigin)) out[source] = proposed;
    return out;
  }

  recycle(tokens: Int32Array, before: Int32Array, top: Int32Array, rows: number, k: number): void {
    for (let r = 0; r < rows; r++) this.table.record(tokens[r], top, r * k, k, before[2 * r], before[2 * r + 1], this.job.jobId);
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
  /** The forward cost measured at load, the start of every batch size's own curve. */
  private readonly costPoints: CostPoint[];
  private readonly open = new Map<number, JobDrafts>();
  /** The request tries of running jobs, by WorkerJob.group, and how many of the group's jobs draft from each. */
  private readonly requests = new Map<number, { trie: RequestTrie; users: number }>();
  /** A request trie's node bound: a session trie's (it holds what a session's turns hold, and a prediction). */
  private readonly requestNodes: number;
  /**
   * One adaptive budget per decodingLength and batch size (see JobBudget), and one acceptance model: what drafts
   * achieve is a property of the model and the traffic, so a request starts from what earlier ones learnt rather
   * than from priors.
   */
  private readonly budgets = new Map<number, BudgetController[]>();
  private readonly acceptance = new AcceptanceModel();
  /** Set when a rejected snapshot could not be moved aside: it must not be overwritten. */
  private snapshotsDisabled = false;

  constructor(
    private readonly options: EngineOptions,
    private readonly info: ModelInfo,
    costCurve: CostPoint[],
    private readonly fingerprint: string,
  ) {
    this.settings = { gramLength: options.lookahead.branchLength + 1, eosIds: info.eosTokenIds };
    // A trie needs room for one n-gram and its key; tiny configured budgets are raised to that, not a crash.
    const floor = 4 * (this.settings.gramLength + 1);
    const maxNodes = Math.max(options.globalTrie.maxNodes, floor);
    this.globals = new GlobalTries({ ...this.settings, maxNodes, maxTenants: options.globalTrie.maxTenants, vocabSize: info.vocabSize });
    const sessionNodes = Math.max(Math.floor(maxNodes / 16), floor);
    // A request's n-grams may be as long as any (its own branch_length): room for the longest one.
    this.requestNodes = Math.max(sessionNodes, 4 * (MAX_GRAM_LENGTH + 1));
    this.sessions = new SessionStore(
      { ...this.settings, maxNodes: sessionNodes },
      { maxSessions: options.sessions.max, ttlMs: options.sessions.ttlSeconds * 1000, maxPerTenant: options.sessions.maxPerTenant },
    );
    this.costPoints = costCurve;
  }

  /**
   * Drafting for a job, or null when its lookahead is off. `unfilled`: the job's request trie, when it is too large to
   * build at once; the caller fills it in slices (see IngestQueue) while the job runs.
   */
  start(job: WorkerJob): { source: DraftSource; budget: JobBudget; unfilled: RequestTrie | null } | null {
    if (!job.lookahead.enabled || job.lookahead.decodingLength <= 1 || job.lookahead.branchLength <= 0) return null;
    const settings = { ...this.settings, gramLength: job.lookahead.branchLength + 1 };
    let request = this.requests.get(job.group);
    let unfilled: RequestTrie | null = null;
    if (!request) {
      request = { trie: new RequestTrie({ ...settings, maxNodes: this.requestNodes }, job.promptIds, job.predictionIds, job.constraintHints), users: 0 };
      this.requests.set(job.group, request);
      if (!request.trie.fill(FILL_AT_START)) unfilled = request.trie;
    }
    request.users++;
    const scope = new RequestScope(settings, job.promptIds, job.predictionIds, job.constraintHints, request.trie);
    const session = job.sessionId ? this.sessions.acquire(job.tenant, job.sessionId) : null;
    const recycled = this.globals.recycled(job.tenant);
    const copies = scope.prediction ? [scope.copy, scope.prediction] : [scope.copy];
    copies.push(this.globals.copyIndex(job.tenant));
    const proposer = new Proposer(
      { request: scope.trie, session, global: this.globals.get(job.tenant), copies, prediction: scope.prediction, recycled, tag: job.jobId },
      job.lookahead.decodingLength,
      this.acceptance,
    );
    const decodingLength = job.lookahead.decodingLength;
    const budget = new JobBudget((items) => this.controller(decodingLength, items), proposer);
    const drafts = new JobDrafts(scope, proposer, budget, job, !this.info.treeMask, recycled);
    this.open.set(job.jobId, drafts);
    return { source: drafts, budget, unfilled };
  }

  /**
   * The shared controller of a draft setting for forwards of exactly `items` decode items. It prices draft tokens by
   * the lone controller's curve (see BudgetController): a forward's cost grows far more with a sequence than with a
   * token of one, and a curve learnt on forwards of 5 to 8 items priced a draft token at ~4× its measured cost
   * (~9 against ~2.4 ms on the 150M-cost model) and left 86 % of steps at 8 clients undrafted.
   */
  private controller(decodingLength: number, items: number): BudgetController {
    let byItems = this.budgets.get(decodingLength);
    if (!byItems) this.budgets.set(decodingLength, (byItems = []));
    const lone = (byItems[1] ??= new BudgetController(new CostCurve(this.costPoints), { decodingLength }));
    return (byItems[Math.max(1, items)] ??= new BudgetController(new CostCurve(this.costPoints), { decodingLength }, lone.tokenCosts));
  }

  /**
   * The job ended: its prompt and answer teach the session, its answer the tenant's global trie — also when the
   * job itself did not draft, since every answer is material for later requests. Aborted answers are cut short
   * at an arbitrary point and teach nothing.
   */
  finish(job: WorkerJob, answer: Int32Array, aborted: boolean): void {
    const drafts = this.open.get(job.jobId);
    this.open.delete(job.jobId);
    const request = drafts && this.requests.get(job.group);
    if (request && --request.users === 0) {
      request.trie.close();
      this.requests.delete(job.group);
    }
    if (aborted) return;
    const session = job.sessionId ? this.sessions.acquire(job.tenant, job.sessionId) : null;
    const global = this.globals.get(job.tenant);
    const copy = this.globals.copyIndex(job.tenant);
    if (drafts) drafts.scope.finish(answer, session, global, copy);
    else recordExchange(job.promptIds, answer, session, global, copy);
  }

  /**
   * Part of a document for a tenant's global trie, inserted in spans so bulk ingestion can be sliced between
   * decode steps (see IngestQueue): n-grams keyed at positions [from, to) of `ids`, each running on past `to` up to
   * the piece's end. The piece goes to the copy index when its first span does.
   */
  addDocumentSpan(tenant: string, ids: Int32Array, from: number, to: number, endOfDocument: boolean): void {
    this.globals.addDocumentSpan(tenant, ids, from, to, endOfDocument);
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
    this.globals.restore(bytes, this.info.vocabSize);
  }

  trieStats(): TrieStats {
    return {
      global: this.globals.nodeCount(),
      sessions: this.sessions.nodeCount(),
      tenants: this.globals.size,
      sessionCount: this.sessions.size,
      evictedTenants: this.globals.evicted,
    };
  }

  private identity(): SnapshotIdentity {
    return { fingerprint: this.fingerprint, vocabSize: this.info.vocabSize, gramLength: this.settings.gramLength };
  }

  /**
   * Restores the global tries from the snapshot file, if configured and present; returns what to log. A snapshot
   * that is unreadable, of another format, or of another model is set aside (renamed, never loaded nor
   * overwritten) and the server starts with empty tries; one of another n-gram length is rebuilt to this one.
   * Temp files that a writer killed mid-write left behind are removed.
   */
  restore(): string[] {
    const path = this.options.globalTrie.snapshotPath;
    if (!path) return [];
    const lines = removeStaleTemps(path).map((name) => `removed stale snapshot temp file ${name}`);
    if (!existsSync(path)) return lines;
    const ours = this.identity();
    let problem: string | null;
    try {
      const { identity, body } = decodeSnapshot(readFileSync(path));
      problem = identityMismatch(identity, ours);
      if (!problem) {
        this.globals.restore(body, this.info.vocabSize);
        if (identity.gramLength !== ours.gramLength) {
          lines.push(`global trie snapshot ${path}: n-grams were ${identity.gramLength} tokens long, now ${ours.gramLength} (branch length changed); rebuilt to the new length`);
        }
        lines.push(`global tries restored from ${path} (${this.globals.nodeCount()} nodes)`);
        return lines;
      }
    } catch (err) {
      problem = (err as Error).message;
    }
    let where: string;
    try {
      where = `set aside as ${setAside(path)}`;
    } catch (err) {
      // It cannot be moved: then it must not be overwritten either.
      this.snapshotsDisabled = true;
      where = `left in place (could not be moved: ${(err as Error).message}); snapshots are off for this run`;
    }
    lines.push(`global trie snapshot ${path} not loaded: ${problem}; ${where}; starting with empty tries`);
    return lines;
  }


  /** Writes the global tries with their identity header (see snapshot-file.ts); returns what to log. */
  snapshot(): string | null {
    const path = this.options.globalTrie.snapshotPath;
    if (!path || this.snapshotsDisabled) return null;
    try {
      writeSnapshotFile(path, encodeSnapshot(this.identity(), this.globals.snapshot()));
    } catch (err) {
      return `global trie snapshot ${path} could not be written: ${(err as Error).message}`;
    }
    return `global tries saved to ${path}`;
  }
}
