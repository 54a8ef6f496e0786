// Worker entry that works from source (tsx registered here, so vitest and `tsx src/main.ts` alike can spawn it)
// and from a compiled build (worker.js beside this file).
import { existsSync } from 'node:fs';

const compiled = new URL('./worker.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('./worker.ts', import.meta.url).href);
}
