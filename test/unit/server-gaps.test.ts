import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { loadHfTokenizer } from '../../src/model/tokenizer/hf-tokenizer.js';
import { createApp } from '../../src/server/app.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../helpers/scripted-engine.js';

function app(flags: string[] = []) {
  const engine = new ScriptedEngine({ contextLength: 64 });
  return createApp({ engine, config: loadConfig(flags, {}) });
}
const post = (a: ReturnType<typeof app>, body: object) =>
  a.request('/v1/chat/completions', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

describe('CORS (opt-in)', () => {
  const preflight = { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os' } };

  it('is off by default: no CORS headers', async () => {
    const res = await app().request('/v1/models', { headers: { origin: 'https://app.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('--cors-origins answers preflights (before auth) and marks responses for the listed origins only', async () => {
    const a = app(['--cors-origins', 'https://app.example, https://other.example', '--api-key', 'sk-x']);
    const res = await a.request('/v1/chat/completions', preflight);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization,content-type,x-stainless-os');
    const models = await a.request('/v1/models', { headers: { origin: 'https://app.example', authorization: 'Bearer sk-x' } });
    expect(models.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const stranger = await a.request('/v1/models', { headers: { origin: 'https://evil.example', authorization: 'Bearer sk-x' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('* allows any origin', async () => {
    const res = await app(['--cors-origins', '*']).request('/v1/chat/completions', preflight);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('error messages', () => {
  it('more than 4 stop sequences gets the schema\'s own message', async () => {
    const res = await post(app(), { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ param: 'stop', message: expect.stringContaining('at most 4 stop sequences') });
  });

  it('a prompt over the context without max_tokens quotes no negative completion size', async () => {
    const res = await post(app(), { model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'x'.repeat(200) }] });
    const { error } = (await res.json()) as any;
    expect(error.code).toBe('context_length_exceeded');
    expect(error.message).toMatch(/maximum context length is 64 tokens\. However, your messages resulted in \d+ tokens, which leaves no room for the completion/);
    expect(error.message).not.toMatch(/-\d/);
  });
});

describe('token bytes (logprobs[].bytes)', () => {
  it('are the raw bytes of each token: they concatenate to the UTF-8 of the text, lone bytes of characters included', () => {
    const tok = loadHfTokenizer('models/chat-llama-5m');
    const text = 'Café – 東京 🎉 naïve <|im_end|>';
    const ids = tok.encode(text, { addSpecialTokens: false });
    const bytes = Buffer.concat(ids.map((id) => tok.tokenBytes(id) ?? Buffer.from(tok.decode([id]))));
    expect(bytes.toString('utf8')).toBe(text);
    // Some token here is part of a character: its text is U+FFFD but its bytes are the real ones.
    expect(ids.some((id) => tok.decode([id]).includes('\uFFFD') && tok.tokenBytes(id)!.every((b) => b >= 0x80))).toBe(true);
  });
});
