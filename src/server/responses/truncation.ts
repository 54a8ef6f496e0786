import type { Conversation } from './request.js';

/** Items a conversation may not begin with: a tool result whose call was dropped, or thinking without its turn. */
const DEPENDENT = new Set(['function_call_output', 'reasoning']);

/**
 * `truncation: "auto"`: the conversation without its oldest items, as few dropped as make it fit (found by
 * bisection; fewer items never render longer). The last item always stays; when even that does not fit, the
 * conversation comes back whole and the request fails as with `"disabled"`.
 */
export function truncated(conversation: Conversation, fits: (c: Conversation) => boolean): Conversation {
  if (fits(conversation)) return conversation;
  const { items } = conversation;
  const from = (dropped: number): Conversation => {
    let start = dropped;
    while (start < items.length - 1 && DEPENDENT.has(items[start].type ?? 'message')) start++;
    // `history` may go negative: the request's own items keep the numbers the client gave them.
    return { items: items.slice(start), history: conversation.history - start };
  };
  let lo = 1;
  let hi = items.length - 1;
  if (hi < lo || !fits(from(hi))) return conversation;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (fits(from(mid))) hi = mid;
    else lo = mid + 1;
  }
  return from(lo);
}
