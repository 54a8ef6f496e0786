/** The tokenizer stored in a GGUF's metadata, by `tokenizer.ggml.model`: SentencePiece ("llama") or byte-level BPE ("gpt2"). */
import { ModelLoadError } from '../../errors.js';
import { GgufBpeTokenizer } from './gguf-bpe.js';
import { GgufSpmTokenizer } from './gguf-spm.js';
import { metaString } from './gguf-vocab.js';
import type { TextTokenizer } from './types.js';

/** The tokenizer stored in a GGUF's metadata (openGguf(...).metadata). */
export function createGgufTokenizer(metadata: Map<string, unknown>): TextTokenizer {
  const model = metaString(metadata, 'tokenizer.ggml.model');
  if (model === 'llama') return new GgufSpmTokenizer(metadata);
  if (model === 'gpt2') return new GgufBpeTokenizer(metadata);
  throw new ModelLoadError(
    `GGUF tokenizer model "${String(model)}" is not supported (only SentencePiece "llama" and byte-level BPE "gpt2" tokenizers)`,
  );
}
