// The app's side of the sidecar: the OpenAI SDK, pointed at the proxy by OPENAI_BASE_URL (set in docker-compose.yml).
import OpenAI from 'openai';

const client = new OpenAI();
const model = (await client.models.list()).data[0].id;
const answer = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 48 });
console.log(`${model}: ${answer.choices[0].message.content}`);
