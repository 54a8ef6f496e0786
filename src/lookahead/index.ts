/** The lookahead package: tries, scopes, draft trees, masks, verification, adaptive budget. */
export { MAX_GRAM_LENGTH, TokenTrie, TrieSnapshotError, type TrieOptions } from './trie.js';
export { CopyIndex, MIN_MATCH } from './copy-index.js';
export { OutputStreamInserter } from './stream-insert.js';
export { RequestScope, RequestTrie, SessionStore, GlobalTries, recordExchange, type TrieSettings } from './scopes.js';
export { Proposer, type ProposerScopes } from './proposer.js';
export { RecycledTable, firstPromptRowRecycled, RECYCLED_K, topIds } from './recycled.js';
export { ORIGIN_REQUEST, ORIGIN_SESSION, ORIGIN_GLOBAL, ORIGIN_RECYCLED, sourceShares, type DraftOrigin } from './candidate-tree.js';
export { AcceptanceModel } from './acceptance.js';
export { writeTreeMask, clearTreeMask, writeTreePositions, isChain } from './mask.js';
export { verifyDraft, pickUnder, createVerifyResult, acceptedIsPrefix, acceptedDepth, type VerifyResult, type PickToken } from './verify.js';
export { CostCurve, type CostPoint } from './cost-curve.js';
export { BudgetController, JobBudget, type BudgetOptions, type PreparedGains } from './budget.js';
export { DraftCounters } from './stats.js';
export type { DraftTree, DraftBudget, DraftLayout, TokenFilter } from './types.js';
