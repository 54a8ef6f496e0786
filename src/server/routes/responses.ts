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
  responseObject,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ResponseHead,
} from '../responses/output.js';
import { messagesOf, rejectUnsupported, responsesRequestSchema, textConstraintOf } from '../responses/request.js';
import { ItemStore } from '../responses/item-store.js';
import { SseStream } from '../sse.js';
import { collectToolOutput, type ParsedCall, type ToolEvent, type ToolTurn } from '../tools/parse.js';
import { renderWithTools } from '../tools/prompt.js';
import { toolSetupOf } from '../tools/request.js';
import { outputConstraint, toolTurn } from '../tools/turn.js';

/**
 * `POST /v1/responses`: one generation whose output becomes a message item and/or function_call items, streamed
 * as the documented typed events. No response is stored (previous_response_id is refused); output items are kept
 * briefly for clients that refer back to them (item_reference).
 */
export function responses(deps: ServerDeps) {
  const store = new ItemStore();
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const forwarded = await forwardIfRemote(deps, c, raw, text, 'responses');
    if (forwarded) return forwarded;
    const body = responsesRequestSchema.parse(raw);
    rejectUnsupported(body);
    const bound = literalBound(deps.engine, body.model);
    const tools = toolSetupOf(body, 'responses', bound);
    const constraint = outputConstraint(tools, textConstraintOf(body, bound), 'text.format');

    const tok = deps.engine.tokenizer(body.model);
    const tenant = tenantOf(c);
    const messages = messagesOf(body, (id) => store.get(tenant, id));
    const promptIds = tok.encode(renderWithTools(tok, messages, tools), { addSpecialTokens: !tok.chatTemplateAddsBos });
    const keep = (items: OutputItem[]) => body.store !== false && store.keep(tenant, items);
    const plan: GenerationPlan = {
      modelId: body.model,
      prompts: [promptIds],
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
    const head: ResponseHead = { id: itemId('resp'), createdAt: Math.floor(Date.now() / 1000), body };
    if (body.stream === true) return streamed(c, deps, head, choices[0], abort, toolTurn(tools), keep);

    try {
      const output = await collect(choices[0]);
      const turn = toolTurn(tools);
      const { content, calls } = collectToolOutput([...turn.push(output.text), ...turn.end()]);
      const items: OutputItem[] = [];
      if (content) items.push({ type: 'message', id: itemId('msg'), status: 'completed', role: 'assistant', content: [outputText(content)] });
      for (const call of calls) items.push(functionCallItem(call, 'completed'));
      const { usage, lookahead } = usageOf([output]);
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

/**
 * The event sequence of a streamed response: created, in_progress; per output item added → (content part added,
 * text deltas, text done, part done | arguments delta, arguments done) → item done; then completed (or incomplete
 * when max_output_tokens cut it). Every event carries its sequence_number.
 */
function streamed(
  c: Context<AppEnv>,
  deps: ServerDeps,
  head: ResponseHead,
  choice: ChoiceJob,
  abort: RequestAbort,
  turn: ToolTurn,
  keep: (items: OutputItem[]) => void,
): Response {
  const requestId = c.get('requestId');
  const sse = new SseStream(() => abort.abort(new AbortedError('the client closed the stream')), { 'x-request-id': requestId });
  let sequence = 0;
  const send = (type: string, fields: object) => sse.sendEvent(type, { type, sequence_number: sequence++, ...fields });
  const output: OutputItem[] = [];
  let message: MessageItem | null = null;
  let text = '';

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
      for await (const part of choice.job) {
        for (const t of part.tokens) tokens.push(t);
        if (part.text) emit(turn.push(part.text));
      }
      emit(turn.end());
      closeMessage();
      const result = await choice.job.result;
      const finished = [{ promptIndex: 0, tokens, result }];
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
