// distil serve driven by the official OpenAI Node client (issue 4, item 11): models,
// completions and chat with logprobs, both streamed, an auth failure and a 429, as a client
// application sees them. Run by tests/cli/test_serve_openai.c:
//   node check.mjs BASE_URL KEY LIMITED_KEY MODEL
// LIMITED_KEY allows one request per minute. Prints "openai client: N checks passed" or fails.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [base, key, limitedKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 60000 });
let checks = 0;
const check = (cond, what) => { assert.ok(cond, what); checks++; };

// models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === model, 'models.list names the served model');

// completions, greedy, with logprobs
const comp = await client.completions.create({ model, prompt: 'the cat', max_tokens: 8, temperature: 0, logprobs: 2 });
const lp = comp.choices[0].logprobs;
check(comp.object === 'text_completion' && typeof comp.choices[0].text === 'string', 'completion shape');
check(lp.tokens.length === comp.usage.completion_tokens && lp.token_logprobs.length === lp.tokens.length, 'one logprob per token');
check(lp.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2), 'top_logprobs has up to 2');
check(lp.token_logprobs.every((x, i) => x <= 0 && Math.abs(x - Math.max(...Object.values(lp.top_logprobs[i]))) < 1e-5),
  'greedy tokens are the most likely');
check(comp.usage.total_tokens === comp.usage.prompt_tokens + comp.usage.completion_tokens, 'usage adds up');

// the same completion streamed gives the same text
let streamed = '';
for await (const chunk of await client.completions.create({ model, prompt: 'the cat', max_tokens: 8, temperature: 0, stream: true }))
  streamed += chunk.choices[0]?.text ?? '';
check(streamed === comp.choices[0].text, `streamed completion equals the whole one ('${streamed}' vs '${comp.choices[0].text}')`);

// chat with logprobs and a seed, then the same chat streamed with usage
const msgs = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }];
const chat = await client.chat.completions.create({ model, messages: msgs, max_tokens: 10, seed: 7, logprobs: true, top_logprobs: 3 });
const content = chat.choices[0].logprobs.content;
check(chat.object === 'chat.completion' && chat.choices[0].message.role === 'assistant', 'chat shape');
check(content.length === chat.usage.completion_tokens, 'chat logprobs: one entry per token');
check(content.every((t) => Array.isArray(t.bytes) && t.top_logprobs.length === 3 && t.logprob <= 0), 'chat token entries');
let chatStreamed = '', usage = null, role = null, finish = null;
const stream = await client.chat.completions.create({
  model, messages: msgs, max_tokens: 10, seed: 7, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  role ??= c.delta.role;
  chatStreamed += c.delta.content ?? '';
  finish = c.finish_reason ?? finish;
}
check(role === 'assistant' && finish === 'length', 'chat stream: role first, finish_reason last');
check(chatStreamed === chat.choices[0].message.content, 'streamed chat equals the whole one');
check(usage && usage.completion_tokens === chat.usage.completion_tokens, 'stream usage chunk');

// errors as the client's typed exceptions
const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'dk-not-a-key', maxRetries: 0 });
await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
checks++;
await assert.rejects(client.completions.create({ model, prompt: 'x', temperature: 5 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
checks++;
await assert.rejects(client.completions.create({ model: 'no-such-model', prompt: 'x' }),
  (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
checks++;
const limited = new OpenAI({ baseURL: `${base}/v1`, apiKey: limitedKey, maxRetries: 0 });
await limited.completions.create({ model, prompt: 'x', max_tokens: 2 });
await assert.rejects(limited.completions.create({ model, prompt: 'x', max_tokens: 2 }),
  (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && Number(e.headers.get('retry-after')) >= 1);
checks++;

console.log(`openai client: ${checks} checks passed`);
