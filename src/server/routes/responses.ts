import type { Context } from 'hono';
import { AbortedError } from '../../errors.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { mapError } from '../errors.js';
import { collect, lookaheadOf, samplingOf, usageOf, type ChoiceJob, type GenerationPlan } from '../generation.js';
import { forwardIfRemote } from '../passthrough.js';
import { literalBound } from '../response-format.js';
import { readJson, sessionIdOf, tenantOf, type RequestAbort } from '../request.js';
import { record, startJobs } from '../respond.js';
import {
  functionCallItem,
  itemId,
  outputText,
  reasoningText,
  responseObject,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ReasoningItem,
  type ResponseHead,
} from '../responses/output.js';
import { conversationOf } from '../responses/conversation.js';
import { messagesOf, rejectUnsupported, responsesRequestSchema, textConstraintOf, type Conversation } from '../responses/request.js';
import { ResponseStore } from '../responses/response-store.js';
import { truncated } from '../responses/truncation.js';
import { effortOf, reasoningSetupOf, reasoningTokens, splitThinking, thinkingKwargs, ThinkingStream, type ReasoningPiece, type ReasoningSetup } from '../reasoning.js';
import { SseStream } from '../sse.js';
import { collectToolOutput, type ParsedCall, type ToolEvent, type ToolTurn } from '../tools/parse.js';
import { renderWithTools } from '../tools/prompt.js';
import { toolSetupOf } from '../tools/request.js';
import { outputConstraint, toolTurn } from '../tools/turn.js';

/**
 * `POST /v1/responses`: one generation whose output becomes a reasoning item (a thinking template's think block),
 * a message item and/or function_call items, streamed as the documented typed events. Responses are stored per
 * tenant unless `store` is false, so `previous_response_id` and `item_reference`s continue them (on any replica,
 * through Redis, when replicas share one).
 */
export function responses(deps: ServerDeps) {
  const { storeMbPerTenant, ttlSeconds } = deps.config.responses;
  const store = new ResponseStore({ bytesPerTenant: storeMbPerTenant * 1024 * 1024, ttlMs: ttlSeconds * 1000 }, deps.replication?.responses);
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const forwarded = await forwardIfRemote(deps, c, raw, text, 'responses');
    if (forwarded) return forwarded;
    const body = responsesRequestSchema.parse(raw);
    rejectUnsupported(body);
    const bound = literalBound(deps.engine, body.model);
    const tools = toolSetupOf(body, 'responses', bound);
    const format = textConstraintOf(body, bound);
    const constraint = outputConstraint(tools, format, 'text.format');

    const tok = deps.engine.tokenizer(body.model);
    const tenant = tenantOf(c);
    const kwargs = thinkingKwargs(tok, effortOf(body.reasoning?.effort, 'reasoning.effort'), undefined);
    const render = (conversation: Conversation) => renderWithTools(tok, messagesOf(body.instructions, conversation), tools, kwargs);
    const encode = (prompt: string) => tok.encode(prompt, { addSpecialTokens: !tok.chatTemplateAddsBos });
    const conversation = await conversationOf(body, store, tenant);
    const contextLength = deps.engine.models.find((m) => m.id === body.model)?.contextLength ?? Number.POSITIVE_INFINITY;
    const room = contextLength - (body.max_output_tokens ?? 1);
    const sent = body.truncation === 'auto' ? truncated(conversation, (c) => encode(render(c)).length <= room) : conversation;
    const prompt = render(sent);
    const head: ResponseHead = { id: itemId('resp'), createdAt: Math.floor(Date.now() / 1000), body };
    // The whole conversation is kept, truncated or not: a later turn may fit more of it.
    const keep = (output: OutputItem[]) => body.store !== false && store.keep(tenant, { id: head.id, history: conversation.items, output });
    const plan: GenerationPlan = {
      modelId: body.model,
      prompts: [encode(prompt)],
      n: 1,
      maxTokens: body.max_output_tokens ?? null,
      maxTokensParam: 'max_output_tokens',
      promptParam: 'input',
      sampling: samplingOf(body),
      stop: [],
      logprobs: null,
      lookahead: lookaheadOf(body.lookahead, deps.config.lookahead),
      ...(constraint && { constraint }),
      sessionId: sessionIdOf(c, body),
      tenant,
    };
    const { choices, abort } = await startJobs(c, deps, plan);
    const reading: OutputReading = { turn: toolTurn(tools, format !== undefined), thinking: thinkingOf(reasoningSetupOf(tok, prompt)) };
    const thought = (tokens: readonly number[]) => (reading.thinking ? reasoningTokens(tok, tokens, reading.thinking) : 0);
    if (body.stream === true) return streamed(c, deps, head, choices[0], abort, reading, thought, keep);

    try {
      const output = await collect(choices[0]);
      const piece = splitThinking(reading.thinking, output.text, true);
      const { content, calls } = collectToolOutput([...reading.turn.push(piece.content), ...reading.turn.end()]);
      const items: OutputItem[] = [];
      if (piece.reasoning) items.push({ type: 'reasoning', id: itemId('rs'), status: 'completed', summary: [], content: [reasoningText(piece.reasoning)] });
      if (content) items.push({ type: 'message', id: itemId('msg'), status: 'completed', role: 'assistant', content: [outputText(content)] });
      for (const call of calls) items.push(functionCallItem(call, 'completed'));
      const { usage, lookahead } = usageOf([{ ...output, reasoningTokens: thought(output.tokens) }]);
      record(c, deps, { model: body.model, stream: false }, [output], usage.prompt_tokens, lookahead.tokens_per_step);
      const status = output.result.finishReason === 'length' ? 'incomplete' : 'completed';
      keep(items);
      return c.json(responseObject(head, { status, output: items, usage, lookahead }));
    } catch (err) {
      abort.abort(err as Error);
      throw abort.reason ?? err;
    } finally {
      abort.dispose();
    }
  };
}

/** How output is read: thinking first (for a thinking template), the rest through the request's tools. */
interface OutputReading {
  turn: ToolTurn;
  thinking: ThinkingStream | null;
}

function thinkingOf(setup: ReasoningSetup | null): ThinkingStream | null {
  return setup && new ThinkingStream(setup);
}

/**
 * The event sequence of a streamed response: created, in_progress; per output item added → (reasoning text deltas,
 * reasoning text done | content part added, text deltas, text done, part done | arguments delta, arguments done) →
 * item done; then completed (or incomplete when max_output_tokens cut it). Every event carries its sequence_number.
 */
function streamed(
  c: Context<AppEnv>,
  deps: ServerDeps,
  head: ResponseHead,
  choice: ChoiceJob,
  abort: RequestAbort,
  reading: OutputReading,
  thought: (tokens: readonly number[]) => number,
  keep: (items: OutputItem[]) => void,
): Response {
  const requestId = c.get('requestId');
  const sse = new SseStream(() => abort.abort(new AbortedError('the client closed the stream')), { 'x-request-id': requestId });
  let sequence = 0;
  const send = (type: string, fields: object) => sse.sendEvent(type, { type, sequence_number: sequence++, ...fields });
  const output: OutputItem[] = [];
  let message: MessageItem | null = null;
  let text = '';
  let reasoning: ReasoningItem | null = null;
  let thinking = '';

  const think = (delta: string) => {
    if (!reasoning) {
      reasoning = { type: 'reasoning', id: itemId('rs'), status: 'in_progress', summary: [], content: [] };
      output.push(reasoning);
      send('response.output_item.added', { output_index: output.length - 1, item: { ...reasoning, content: [] } });
    }
    thinking += delta;
    send('response.reasoning_text.delta', { item_id: reasoning.id, output_index: output.indexOf(reasoning), content_index: 0, delta });
  };
  const closeReasoning = () => {
    if (!reasoning || reasoning.status === 'completed') return;
    const index = output.indexOf(reasoning);
    send('response.reasoning_text.done', { item_id: reasoning.id, output_index: index, content_index: 0, text: thinking });
    reasoning.status = 'completed';
    reasoning.content = [reasoningText(thinking)];
    send('response.output_item.done', { output_index: index, item: reasoning });
  };

  const openMessage = (): MessageItem => {
    message = { type: 'message', id: itemId('msg'), status: 'in_progress', role: 'assistant', content: [] };
    output.push(message);
    send('response.output_item.added', { output_index: output.length - 1, item: { ...message, content: [] } });
    send('response.content_part.added', { item_id: message.id, output_index: output.length - 1, content_index: 0, part: outputText('') });
    return message;
  };
  const closeMessage = () => {
    if (!message) return;
    const index = output.indexOf(message);
    send('response.output_text.done', { item_id: message.id, output_index: index, content_index: 0, text, logprobs: [] });
    send('response.content_part.done', { item_id: message.id, output_index: index, content_index: 0, part: outputText(text) });
    message.status = 'completed';
    message.content = [outputText(text)];
    send('response.output_item.done', { output_index: index, item: message });
    message = null;
  };
  /** Function calls by id, with their output index; one begun is streamed into until it ends. */
  const calls = new Map<string, { item: FunctionCallItem; index: number }>();
  const beginCall = (id: string, name: string) => {
    closeMessage();
    const item = functionCallItem({ id, name, arguments: '' }, 'in_progress');
    output.push(item);
    calls.set(id, { item, index: output.length - 1 });
    send('response.output_item.added', { output_index: output.length - 1, item: { ...item } });
  };
  const argumentsDelta = (id: string, delta: string) => {
    const { item, index } = calls.get(id)!;
    send('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta });
  };
  const endCall = (call: ParsedCall) => {
    if (!calls.has(call.id)) {
      beginCall(call.id, call.name);
      argumentsDelta(call.id, call.arguments);
    }
    const { item, index } = calls.get(call.id)!;
    send('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: call.name, arguments: call.arguments });
    item.arguments = call.arguments;
    item.status = 'completed';
    send('response.output_item.done', { output_index: index, item });
  };
  const emit = (events: ToolEvent[]) => {
    if (events.length > 0) closeReasoning();
    for (const e of events) {
      if (e.type === 'text') {
        const m = message ?? openMessage();
        text += e.text;
        send('response.output_text.delta', { item_id: m.id, output_index: output.indexOf(m), content_index: 0, delta: e.text, logprobs: [] });
      } else if (e.type === 'call_begin') beginCall(e.id, e.name);
      else if (e.type === 'arguments') argumentsDelta(e.id, e.delta);
      else endCall(e.call);
    }
  };

  let ended!: () => void;
  c.set('streamDone', new Promise<void>((resolve) => (ended = resolve)));
  void (async () => {
    try {
      send('response.created', { response: responseObject(head, { status: 'in_progress', output: [], usage: null, lookahead: null }) });
      send('response.in_progress', { response: responseObject(head, { status: 'in_progress', output: [], usage: null, lookahead: null }) });
      const tokens: number[] = [];
      const read = (piece: ReasoningPiece) => {
        if (piece.reasoning) think(piece.reasoning);
        if (piece.content) emit(reading.turn.push(piece.content));
      };
      for await (const part of choice.job) {
        for (const t of part.tokens) tokens.push(t);
        if (part.text) read(splitThinking(reading.thinking, part.text, false));
      }
      read(splitThinking(reading.thinking, '', true));
      emit(reading.turn.end());
      closeReasoning();
      closeMessage();
      const result = await choice.job.result;
      const finished = [{ promptIndex: 0, tokens, result, reasoningTokens: thought(tokens) }];
      const { usage, lookahead } = usageOf(finished);
      record(c, deps, { model: head.body.model, stream: true }, finished, usage.prompt_tokens, lookahead.tokens_per_step);
      const status = result.finishReason === 'length' ? 'incomplete' : 'completed';
      keep(output);
      send(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: responseObject(head, { status, output, usage, lookahead }) });
      sse.close();
    } catch (err) {
      abort.abort(err as Error);
      if (sse.closed) return;
      const mapped = mapError(abort.reason ?? err, requestId);
      if (mapped.internal) deps.log.error({ err, requestId }, 'generation failed mid-stream');
      const { message: msg, code, param } = mapped.body.error;
      send('error', { code, message: msg, param });
      sse.close();
    } finally {
      abort.dispose();
      ended();
    }
  })();
  return sse.response;
}
