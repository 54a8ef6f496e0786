import { InvalidRequestError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';
import { partialLength } from './partial-tag.js';

const OPEN = '<think>';
const CLOSE = '</think>';

/** OpenAI's reasoning efforts; `none` turns thinking off through the template's `enable_thinking`. */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

/** What a piece of output holds: thinking, answer, or both (thinking first). */
export interface ReasoningPiece {
  reasoning: string;
  content: string;
}

/** How a request's output is read for thinking: null for a template that never thinks. */
export interface ReasoningSetup {
  /** The rendered prompt ends inside an open think block: the output begins as thinking. */
  startsInside: boolean;
}

/**
 * The template variables a request's effort sets: `none` asks a thinking template not to think. A variable the
 * client set itself (`chat_template_kwargs`) wins.
 */
export function thinkingKwargs(
  tok: TextTokenizer,
  effort: ReasoningEffort | null | undefined,
  given: Record<string, unknown> | null | undefined,
): Record<string, unknown> | undefined {
  if (effort !== 'none' || !tok.chatTemplateThinks) return given ?? undefined;
  return { enable_thinking: false, ...given };
}

/** For a template that thinks (`<think>…</think>`, as Qwen3, SmolLM3 and Phi-4-mini-reasoning write it). */
export function reasoningSetupOf(tok: TextTokenizer, prompt: string): ReasoningSetup | null {
  if (!tok.chatTemplateThinks) return null;
  return { startsInside: prompt.lastIndexOf(OPEN) > prompt.lastIndexOf(CLOSE) };
}

export function effortOf(value: unknown, param: string): ReasoningEffort | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' && (REASONING_EFFORTS as readonly string[]).includes(value)) return value as ReasoningEffort;
  throw new InvalidRequestError(`${param} must be one of ${REASONING_EFFORTS.join(', ')}`, param, 'invalid_value');
}

/**
 * Splits output into thinking and answer as it arrives: thinking is what stands inside the think block the prompt
 * opened, or one the output opens before anything else. Text that may be the start of a tag is held back until
 * decided, so neither part ever shows markup; each part goes out without leading or trailing blanks.
 */
export class ThinkingStream {
  private state: 'start' | 'thinking' | 'answer';
  private buffer = '';
  /** Whitespace held back until more of the same part follows. */
  private pendingSpace = '';
  /** Nothing of the current part went out yet: its leading whitespace is dropped. */
  private partStart = true;
  /** The output thought: a think block was open at some point. */
  entered: boolean;

  constructor(setup: ReasoningSetup) {
    this.state = setup.startsInside ? 'thinking' : 'start';
    this.entered = setup.startsInside;
  }

  push(text: string): ReasoningPiece {
    const piece: ReasoningPiece = { reasoning: '', content: '' };
    this.buffer += text;
    for (;;) {
      if (this.state === 'start') {
        const lead = this.buffer.trimStart();
        if (lead.length < OPEN.length && OPEN.startsWith(lead)) return piece;
        if (lead.startsWith(OPEN)) {
          this.buffer = lead.slice(OPEN.length);
          this.state = 'thinking';
          this.entered = true;
        } else this.state = 'answer';
        continue;
      }
      if (this.state === 'answer') {
        this.emit(this.buffer, piece, 'content');
        this.buffer = '';
        return piece;
      }
      const end = this.buffer.indexOf(CLOSE);
      if (end < 0) {
        const keep = partialLength(this.buffer, CLOSE);
        this.emit(this.buffer.slice(0, this.buffer.length - keep), piece, 'reasoning');
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        return piece;
      }
      this.emit(this.buffer.slice(0, end), piece, 'reasoning');
      this.buffer = this.buffer.slice(end + CLOSE.length);
      this.state = 'answer';
      this.pendingSpace = '';
      this.partStart = true;
    }
  }

  /** The output ended: text held back as a possible tag is what it is. */
  end(): ReasoningPiece {
    const piece: ReasoningPiece = { reasoning: '', content: '' };
    this.emit(this.buffer, piece, this.state === 'thinking' ? 'reasoning' : 'content');
    this.buffer = '';
    return piece;
  }

  private emit(text: string, piece: ReasoningPiece, part: keyof ReasoningPiece): void {
    const all = this.pendingSpace + text;
    const body = this.partStart ? all.trimStart() : all;
    const trimmed = body.trimEnd();
    this.pendingSpace = body.slice(trimmed.length);
    if (trimmed.length === 0) return;
    piece[part] += trimmed;
    this.partStart = false;
  }
}

/** Output split into thinking and answer (all answer without a thinking template); `ending` flushes what is held. */
export function splitThinking(thinking: ThinkingStream | null, text: string, ending: boolean): ReasoningPiece {
  if (!thinking) return { reasoning: '', content: text };
  const piece = thinking.push(text);
  if (!ending) return piece;
  const rest = thinking.end();
  return { reasoning: piece.reasoning + rest.reasoning, content: piece.content + rest.content };
}

/**
 * How many of the generated tokens were thinking: those up to the one that completes the closing tag (all of them
 * when the block never closed). Found by decoding prefixes, so a tag split over several tokens counts right.
 */
export function reasoningTokens(tok: TextTokenizer, tokens: readonly number[], stream: ThinkingStream): number {
  if (!stream.entered) return 0;
  if (!tok.decode(tokens).includes(CLOSE)) return tokens.length;
  let lo = 1;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tok.decode(tokens.slice(0, mid)).includes(CLOSE)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
