// The entry of every worker thread: starts the worker module whose URL (without extension) is the last argv entry,
// compiled (`.js` beside it) when there is a build, else from source with tsx registered here, so vitest and
// `tsx src/main.ts` alike can spawn it.
import { existsSync } from 'node:fs';

const base = process.argv.at(-1);
const compiled = new URL(`${base}.js`);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(`${base}.ts`);
}
