/**
 * The stream entry format. One entry is one global-trie input of one tenant: a posted document, a corpus document
 * (identified by its hash, so replicas loading the same corpus apply it once), or an answer (the prompt's tail and
 * the answer, as token ids). Every entry names its format version, the tokenizer it was made with and the replica
 * that wrote it; anything else in a stream is refused by `decodeEntry`, never applied.
 */
export const FORMAT_VERSION = '1';

/** Prompt tokens sent before an answer: what the receiving tries key the answer on (see recordExchange). */
export const PROMPT_TAIL = 16;

export type EntryBody =
  | { kind: 'doc'; text: string }
  | { kind: 'corpus'; text: string; hash: string }
  | { kind: 'answer'; prompt: number[]; answer: number[] };

export type Entry = EntryBody & {
  /** The replica that wrote it (a random id per process). */
  origin: string;
  /** Unix ms on the writer when the input was learnt: sync lag is measured from here. */
  at: number;
};

export interface EntryContext {
  /** The tokenizer identity (see modelTag) entries must carry to be applied here. */
  model: string;
  vocabSize: number;
}

/** Field-value pairs for XADD. */
export function encodeEntry(entry: Entry, model: string): (string | Buffer)[] {
  const head = ['v', FORMAT_VERSION, 'm', model, 'o', entry.origin, 'k', entry.kind, 't', String(entry.at)];
  switch (entry.kind) {
    case 'doc':
      return [...head, 'text', entry.text];
    case 'corpus':
      return [...head, 'text', entry.text, 'h', entry.hash];
    case 'answer':
      return [...head, 'p', idsToBuffer(entry.prompt), 'a', idsToBuffer(entry.answer)];
  }
}

export class EntryError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** An entry as XREAD returns it (flat field-value buffers), checked field by field; throws EntryError. */
export function decodeEntry(fields: Buffer[], context: EntryContext): Entry {
  if (fields.length % 2 !== 0) throw new EntryError('odd number of fields');
  const map = new Map<string, Buffer>();
  for (let i = 0; i < fields.length; i += 2) map.set(fields[i].toString('latin1'), fields[i + 1]);
  const text = (name: string): string => {
    const value = map.get(name);
    if (value === undefined) throw new EntryError(`field '${name}' is missing`);
    try {
      return utf8.decode(value);
    } catch {
      throw new EntryError(`field '${name}' is not UTF-8`);
    }
  };
  const version = text('v');
  if (version !== FORMAT_VERSION) throw new EntryError(`format version '${version.slice(0, 20)}' is not ${FORMAT_VERSION}`);
  const model = text('m');
  if (model !== context.model) throw new EntryError(`written for another model or tokenizer (${model.slice(0, 40)}, this one is ${context.model})`);
  const origin = text('o');
  const at = Number(text('t'));
  if (!origin || !Number.isFinite(at)) throw new EntryError('origin or time is missing');
  const kind = text('k');
  switch (kind) {
    case 'doc':
      return { kind, text: text('text'), origin, at };
    case 'corpus': {
      const hash = text('h');
      if (!/^[0-9a-f]{16,64}$/.test(hash)) throw new EntryError('corpus hash is malformed');
      return { kind, text: text('text'), hash, origin, at };
    }
    case 'answer': {
      const prompt = bufferToIds(map.get('p'), 'p', context.vocabSize);
      const answer = bufferToIds(map.get('a'), 'a', context.vocabSize);
      if (prompt.length > PROMPT_TAIL) throw new EntryError(`prompt tail longer than ${PROMPT_TAIL} tokens`);
      return { kind, prompt, answer, origin, at };
    }
    default:
      throw new EntryError(`unknown kind '${kind.slice(0, 20)}'`);
  }
}

/** Token ids as little-endian int32: 4 bytes a token, no parsing on the hot side. */
export function idsToBuffer(ids: ArrayLike<number>): Buffer {
  const out = Buffer.allocUnsafe(ids.length * 4);
  for (let i = 0; i < ids.length; i++) out.writeInt32LE(ids[i], i * 4);
  return out;
}

export function bufferToIds(value: Buffer | undefined, name: string, vocabSize: number): number[] {
  if (value === undefined) throw new EntryError(`field '${name}' is missing`);
  if (value.length % 4 !== 0) throw new EntryError(`field '${name}' is not a list of int32 token ids`);
  const ids = new Array<number>(value.length / 4);
  for (let i = 0; i < ids.length; i++) {
    const id = value.readInt32LE(i * 4);
    if (id < 0 || id >= vocabSize) throw new EntryError(`field '${name}' holds token id ${id}, outside the vocabulary`);
    ids[i] = id;
  }
  return ids;
}
