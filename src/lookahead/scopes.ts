import { LRUCache } from 'lru-cache';
import { CopyIndex } from './copy-index.js';
import { RecycledTable } from './recycled.js';
import { OutputStreamInserter } from './stream-insert.js';
import { TokenTrie, TrieSnapshotError, type TrieOptions } from './trie.js';

/** What every trie of a model shares: n-gram length, EOS ids, stop words. */
export type TrieSettings = Omit<TrieOptions, 'maxNodes'>;

/**
 * Prompt tokens stored in front of an answer in the global copy index: chat prompts all end with the same
 * template tokens, so a shorter tail would match every stored answer equally at the first step.
 */
const ANSWER_TAIL = 16;

/**
 * The trie of what a request brings: its prompt (RAG context included), the client's predicted output, and text the
 * output is known to contain (a structured output's keys and enum values). The request's n choices share one. It is
 * filled position by position (`fill`), so a large one can be built in slices between decode steps while its jobs
 * already run (drafts from a partial trie are only fewer); `close` drops what was not filled yet.
 */
export class RequestTrie {
  readonly trie: TokenTrie;
  /** The sequences to insert, and where each is cut (its first EOS). */
  private readonly sources: ArrayLike<number>[] = [];
  private readonly cuts: number[] = [];
  private source = 0;
  private at = 0;
  private closed = false;

  constructor(settings: TrieSettings & { maxNodes?: number }, prompt: ArrayLike<number>, prediction?: ArrayLike<number>, hints: readonly ArrayLike<number>[] = []) {
    this.trie = new TokenTrie(settings);
    const sources = [prompt, ...(prediction && prediction.length > 0 ? [withPrefix(lastTwo(prompt), prediction)] : []), ...hints];
    for (const ids of sources) {
      this.sources.push(ids);
      this.cuts.push(this.trie.eosCut(ids, 0, ids.length));
    }
  }

  get filled(): boolean {
    return this.closed || this.source === this.sources.length;
  }

  /** Inserts the n-grams of up to `positions` more positions (as TokenTrie.insert does); returns `filled`. */
  fill(positions: number): boolean {
    const trie = this.trie;
    for (let done = 0; done < positions && !this.filled; ) {
      const ids = this.sources[this.source];
      const cut = this.cuts[this.source];
      const end = Math.min(cut - 1, this.at + positions - done);
      trie.insertPositions(ids, this.at, end, cut);
      done += Math.max(0, end - this.at);
      this.at = end;
      if (this.at >= cut - 1) {
        this.source++;
        this.at = 0;
      }
    }
    return this.filled;
  }

  /** No job drafts from it any more: what is left unfilled never will be. */
  close(): void {
    this.closed = true;
  }
}

/**
 * The request scope of one job: the request's trie (shared with the request's other choices), its own output as it
 * streams into that trie, and what this job can copy from. Dropped with the job; `finish` hands what is worth keeping
 * to the longer-lived scopes.
 */
export class RequestScope {
  readonly trie: TokenTrie;
  /** Hints, then prompt and output as one sequence: what this request can copy from. */
  readonly copy: CopyIndex;
  /**
   * The client's predicted output, copied from on its own so that the drafts it yields can be counted (usage's
   * accepted/rejected prediction tokens); null without a prediction.
   */
  readonly prediction: CopyIndex | null = null;
  private readonly stream: OutputStreamInserter;

  /** Without `shared`, the request's trie is built (whole) for this scope alone. */
  constructor(
    settings: TrieSettings,
    private readonly prompt: ArrayLike<number>,
    prediction?: ArrayLike<number>,
    hints: readonly ArrayLike<number>[] = [],
    shared?: RequestTrie,
  ) {
    if (!shared) {
      shared = new RequestTrie(settings, prompt, prediction, hints);
      shared.fill(Infinity);
    }
    this.trie = shared.trie;
    this.stream = new OutputStreamInserter(this.trie);
    const tail = lastTwo(prompt);
    const predicted = prediction?.length ?? 0;
    let hinted = 0;
    for (const hint of hints) hinted += hint.length + 1;
    this.copy = new CopyIndex(2 * (prompt.length + hinted) + 8192, prompt.length + hinted + 1024);
    for (const hint of hints) {
      this.copy.append(hint);
      this.copy.endSequence();
    }
    if (predicted > 0) {
      const keyed = withPrefix(tail, prediction!);
      this.prediction = new CopyIndex(keyed.length + 1, keyed.length + 1);
      this.prediction.append(keyed);
    }
    this.copy.append(prompt);
  }

  /** Tokens committed by a decode step, in order. */
  pushOutput(tokens: ArrayLike<number>): void {
    this.stream.push(tokens);
    this.copy.append(tokens);
  }

  /** The request ended with `answer`: hand prompt and answer to the longer-lived scopes (see recordExchange). */
  finish(answer: ArrayLike<number>, session?: TokenTrie | null, global?: TokenTrie | null, globalCopy?: CopyIndex | null): void {
    this.stream.finish();
    recordExchange(this.prompt, answer, session, global, globalCopy);
  }
}

/**
 * What a finished request teaches the scopes that outlive it, whether or not it drafted itself: the session learns
 * the prompt and the answer, the tenant's global trie the answer, and the tenant's copy index the answer behind the
 * prompt's last tokens. Answers are keyed from the prompt's last two tokens on, so the next similar prompt drafts
 * from its first token.
 */
export function recordExchange(
  prompt: ArrayLike<number>,
  answer: ArrayLike<number>,
  session?: TokenTrie | null,
  global?: TokenTrie | null,
  globalCopy?: CopyIndex | null,
): void {
  if (globalCopy) {
    globalCopy.append(prompt, Math.max(0, prompt.length - ANSWER_TAIL));
    globalCopy.append(answer);
    globalCopy.endSequence();
  }
  const keyed = withPrefix(lastTwo(prompt), answer);
  if (session) {
    session.insert(prompt);
    session.insert(keyed, true);
  }
  if (global) global.insert(keyed, true);
}

function lastTwo(ids: ArrayLike<number>): Int32Array {
  const n = Math.min(2, ids.length);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = ids[ids.length - n + i];
  return out;
}

function withPrefix(prefix: Int32Array, ids: ArrayLike<number>): Int32Array {
  const out = new Int32Array(prefix.length + ids.length);
  out.set(prefix);
  for (let i = 0; i < ids.length; i++) out[prefix.length + i] = ids[i];
  return out;
}

/**
 * Conversation tries, per tenant and session id; least recently used ones go first, idle ones expire. Besides the
 * total, each tenant may hold at most `maxPerTenant`: one tenant inventing session ids evicts its own oldest
 * sessions, not everyone's.
 */
export class SessionStore {
  private readonly cache: LRUCache<string, TokenTrie> | null;
  /** Per tenant, its session ids oldest-used first (a Map keeps insertion order; use re-inserts). */
  private readonly byTenant = new Map<string, Map<string, true>>();
  private readonly maxPerTenant: number;

  constructor(
    private readonly settings: TrieSettings & { maxNodes: number },
    limits: { maxSessions: number; ttlMs: number; maxPerTenant?: number },
  ) {
    this.maxPerTenant = limits.maxPerTenant ?? Infinity;
    this.cache =
      limits.maxSessions > 0
        ? new LRUCache({
            max: limits.maxSessions,
            ttl: limits.ttlMs,
            updateAgeOnGet: true,
            dispose: (_trie, key) => this.forget(key),
          })
        : null;
  }

  /** The session's trie, created on first use; null when sessions are disabled (maxSessions 0). */
  acquire(tenant: string, id: string): TokenTrie | null {
    if (!this.cache) return null;
    const key = sessionKey(tenant, id);
    let trie = this.cache.get(key);
    let ids = this.byTenant.get(tenant);
    if (!ids) {
      ids = new Map();
      this.byTenant.set(tenant, ids);
    }
    ids.delete(id);
    ids.set(id, true);
    if (!trie) {
      trie = new TokenTrie(this.settings);
      this.cache.set(key, trie);
      while (ids.size > this.maxPerTenant) this.cache.delete(sessionKey(tenant, ids.keys().next().value!));
    }
    return trie;
  }

  peek(tenant: string, id: string): TokenTrie | undefined {
    return this.cache?.get(sessionKey(tenant, id), { updateAgeOnGet: false });
  }

  delete(tenant: string, id: string): boolean {
    return this.cache?.delete(sessionKey(tenant, id)) ?? false;
  }

  get size(): number {
    return this.cache?.size ?? 0;
  }

  nodeCount(): number {
    let nodes = 0;
    if (this.cache) for (const trie of this.cache.values()) nodes += trie.nodeCount;
    return nodes;
  }

  private forget(key: string): void {
    const cut = key.indexOf('\u0000');
    const tenant = key.slice(0, cut);
    const ids = this.byTenant.get(tenant);
    if (!ids) return;
    ids.delete(key.slice(cut + 1));
    if (ids.size === 0) this.byTenant.delete(tenant);
  }
}

/** NUL cannot appear in a tenant name from an API key map, so keys of different tenants never collide. */
function sessionKey(tenant: string, id: string): string {
  return `${tenant}\u0000${id}`;
}

/**
 * One global trie per tenant: documents and every answer, each bounded by maxNodes. At most `maxTenants` tenants
 * are held; a new one evicts the least recently used (its trie and copy index are dropped), so memory stays bounded
 * by maxTenants × one tenant's bound however many names callers invent.
 */
export class GlobalTries {
  /** Least recently used first: a Map keeps insertion order, and a use re-inserts. */
  private readonly tries = new Map<string, TokenTrie>();
  /** Per tenant, earlier answers and documents to copy from; not part of the snapshot (rebuilt by traffic). */
  private readonly copies = new Map<string, CopyIndex>();
  /** Per tenant, the model's top-k successors per token (recycled.ts); like the copy index, rebuilt by traffic. */
  private readonly tables = new Map<string, RecycledTable>();
  /** Tenants dropped to make room for others since start. */
  evicted = 0;

  /** `vocabSize` sizes the tenants' recycled tables. */
  constructor(private readonly settings: TrieSettings & { maxNodes: number; maxTenants?: number; vocabSize?: number }) {}

  get(tenant: string): TokenTrie {
    let trie = this.tries.get(tenant);
    if (trie) this.tries.delete(tenant);
    else trie = new TokenTrie(this.settings);
    this.tries.set(tenant, trie);
    this.evictBeyondLimit();
    return trie;
  }

  peek(tenant: string): TokenTrie | undefined {
    return this.tries.get(tenant);
  }

  /** The tenant's copy index, bounded like its trie (maxNodes tokens); it lives and goes with the tenant's trie. */
  copyIndex(tenant: string): CopyIndex {
    this.get(tenant);
    let index = this.copies.get(tenant);
    if (!index) {
      index = new CopyIndex(Math.max(1024, Math.min(this.settings.maxNodes, 1 << 22)));
      this.copies.set(tenant, index);
    }
    return index;
  }

  /** The tenant's recycled table: what the model ranks after each token, learnt from its requests' forwards. */
  recycled(tenant: string): RecycledTable {
    this.get(tenant);
    let table = this.tables.get(tenant);
    if (!table) {
      table = new RecycledTable(this.settings.vocabSize ?? 1 << 15);
      this.tables.set(tenant, table);
    }
    return table;
  }

  /**
   * Positions [from, to) of a document's piece go into the tenant's trie (its n-grams stop at EOS); the piece's first
   * span also appends it to the copy index, and `endOfDocument` closes it there. Sliced by the caller.
   */
  addDocumentSpan(tenant: string, ids: Int32Array, from: number, to: number, endOfDocument: boolean): void {
    const trie = this.get(tenant);
    if (from === 0) {
      const copy = this.copyIndex(tenant);
      copy.append(ids);
      if (endOfDocument) copy.endSequence();
    }
    trie.insertPositions(ids, from, to, trie.eosCut(ids, 0, ids.length));
  }

  get size(): number {
    return this.tries.size;
  }

  private evictBeyondLimit(): void {
    const max = this.settings.maxTenants ?? Infinity;
    while (this.tries.size > max) {
      const oldest = this.tries.keys().next().value!;
      this.tries.delete(oldest);
      this.copies.delete(oldest);
      this.tables.delete(oldest);
      this.evicted++;
    }
  }

  tenants(): string[] {
    return [...this.tries.keys()];
  }

  nodeCount(): number {
    let nodes = 0;
    for (const trie of this.tries.values()) nodes += trie.nodeCount;
    return nodes;
  }

  /** All tenants' tries in one blob: count, then per tenant (name length, UTF-8 name, trie length, trie bytes). */
  snapshot(): Uint8Array {
    const encoder = new TextEncoder();
    const parts = [...this.tries].map(([name, trie]) => ({ name: encoder.encode(name), bytes: trie.snapshot() }));
    const total = 4 + parts.reduce((n, p) => n + 8 + p.name.length + p.bytes.length, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    view.setUint32(0, parts.length, true);
    let at = 4;
    for (const p of parts) {
      view.setUint32(at, p.name.length, true);
      out.set(p.name, at + 4);
      at += 4 + p.name.length;
      view.setUint32(at, p.bytes.length, true);
      out.set(p.bytes, at + 4);
      at += 4 + p.bytes.length;
    }
    return out;
  }

  /**
   * Replaces the tenants found in `bytes` (from `snapshot()`); others are left alone. Tries are rebuilt to this
   * store's n-gram length (see TokenTrie.restore) and every token id is checked against `vocabSize`. Nothing is
   * kept unless the whole blob is valid.
   */
  restore(bytes: Uint8Array, vocabSize?: number): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const decoder = new TextDecoder();
    const need = (at: number, n: number): void => {
      if (at + n > bytes.byteLength) throw new TrieSnapshotError('global trie snapshot is truncated');
    };
    need(0, 4);
    const count = view.getUint32(0, true);
    let at = 4;
    const restored: [string, TokenTrie][] = [];
    for (let t = 0; t < count; t++) {
      need(at, 4);
      const nameLength = view.getUint32(at, true);
      need(at + 4, nameLength + 4);
      const name = decoder.decode(bytes.subarray(at + 4, at + 4 + nameLength));
      at += 4 + nameLength;
      const length = view.getUint32(at, true);
      need(at + 4, length);
      restored.push([name, TokenTrie.restore(bytes.subarray(at + 4, at + 4 + length), { ...this.settings, vocabSize })]);
      at += 4 + length;
    }
    if (at !== bytes.byteLength) throw new TrieSnapshotError('global trie snapshot has trailing bytes');
    for (const [name, trie] of restored) {
      this.tries.delete(name);
      this.tries.set(name, trie);
    }
    this.evictBeyondLimit();
  }
}
