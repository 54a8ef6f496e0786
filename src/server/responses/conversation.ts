import { InvalidRequestError } from '../../errors.js';
import type { Conversation, ResponsesRequest } from './request.js';
import type { InputItem, ResponseStore } from './response-store.js';

/**
 * The items a request continues from: the stored history and output of its `previous_response_id`, then its own
 * input with every `item_reference` replaced by the stored item. An unknown id is a 400 naming the field, never a
 * guess: the store is bounded, so old ids go.
 */
export async function conversationOf(body: ResponsesRequest, store: ResponseStore, tenant: string): Promise<Conversation> {
  const own: InputItem[] = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input;
  const references = own.flatMap((item, i) => {
    if (item.type !== 'item_reference') return [];
    const id = (item as { id?: unknown }).id;
    if (typeof id !== 'string') throw new InvalidRequestError('an item_reference needs the id of an earlier output item', `input[${i}].id`);
    return [id];
  });
  const previousId = body.previous_response_id;
  const [previous, found] = await Promise.all([previousId ? store.response(tenant, previousId) : undefined, store.items(tenant, references)]);
  if (previousId && !previous) {
    throw new InvalidRequestError(
      `Previous response with id '${previousId.slice(0, 80)}' not found: it was never stored here (store: false), or it is older or further back than this server keeps.`,
      'previous_response_id',
      'previous_response_not_found',
    );
  }
  const resolved = own.map((item, i) => {
    if (item.type !== 'item_reference') return item;
    const id = (item as { id: string }).id;
    const stored = found.get(id);
    if (!stored) {
      throw new InvalidRequestError(`Item with id '${id.slice(0, 80)}' not found: this server keeps output items as long as their response is stored; send the item itself.`, `input[${i}].id`);
    }
    // Stored messages carry output_text parts, which messagesOf reads like input text.
    return stored as unknown as InputItem;
  });
  const history = previous ? [...previous.history, ...(previous.output as unknown as InputItem[])] : [];
  return { items: [...history, ...resolved], history: history.length };
}
