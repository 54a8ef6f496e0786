import { LRUCache } from 'lru-cache';
import type { OutputItem } from './output.js';

/**
 * Recent output items by id, per tenant, so that clients which send `item_reference`s to earlier output instead
 * of the items themselves (the Vercel AI SDK does, unless store is false) get them resolved. Bounded and
 * short-lived: a reference to an evicted item is a 400, never a guess.
 */
export class ItemStore {
  private readonly items = new LRUCache<string, OutputItem>({ max: 10_000, ttl: 3_600_000 });

  keep(tenant: string, items: readonly OutputItem[]): void {
    for (const item of items) this.items.set(`${tenant}\u0000${item.id}`, item);
  }

  get(tenant: string, id: string): OutputItem | undefined {
    return this.items.get(`${tenant}\u0000${id}`);
  }
}
