import { RecordStore, type RecordLimits, type SharedRecords } from './store.js';
import type { OutputItem } from './output.js';

/** An input item as the client sent it (item references already resolved). */
export type InputItem = { type?: string; [key: string]: unknown };

/**
 * A response as `previous_response_id` continues it: the items it answered (its own predecessor's history and
 * output, then its input; never its instructions, which OpenAI does not carry over) and its output.
 */
export interface StoredResponse {
  id: string;
  history: InputItem[];
  output: OutputItem[];
}

const responseKey = (id: string) => `resp:${id}`;
const itemKey = (id: string) => `item:${id}`;

/**
 * Stored responses and their output items (for `item_reference`), per tenant, bounded by bytes and age. A response
 * holds its whole history, so continuing one is a single lookup wherever it was made.
 */
export class ResponseStore {
  private readonly records: RecordStore;

  constructor(limits: RecordLimits, shared?: SharedRecords) {
    this.records = new RecordStore(limits, shared);
  }

  keep(tenant: string, response: StoredResponse): void {
    this.records.put(tenant, [
      { key: responseKey(response.id), json: JSON.stringify(response) },
      ...response.output.map((item) => ({ key: itemKey(item.id), json: JSON.stringify(item) })),
    ]);
  }

  async response(tenant: string, id: string): Promise<StoredResponse | undefined> {
    const json = (await this.records.get(tenant, [responseKey(id)])).get(responseKey(id));
    return json === undefined ? undefined : (JSON.parse(json) as StoredResponse);
  }

  async items(tenant: string, ids: readonly string[]): Promise<Map<string, OutputItem>> {
    const found = await this.records.get(tenant, ids.map(itemKey));
    const items = new Map<string, OutputItem>();
    for (const id of ids) {
      const json = found.get(itemKey(id));
      if (json !== undefined) items.set(id, JSON.parse(json) as OutputItem);
    }
    return items;
  }
}
