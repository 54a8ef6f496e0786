import { tmpdir } from 'node:os';
import { probe } from '../../src/model/runtime/session.js';

// Dawn warns without it; set before the first WebGPU session (worker threads inherit it).
process.env.XDG_RUNTIME_DIR ??= tmpdir();

/** Null when a WebGPU session opens here (a Vulkan adapter, e.g. Mesa lavapipe, which .ci/run installs); else why not. */
export const webgpuUnavailable = await probe('webgpu');
if (webgpuUnavailable) {
  console.warn(`SKIPPED WebGPU tests: no Vulkan adapter for the WebGPU EP (${webgpuUnavailable.message.split('\n')[0]}); .ci/run installs Mesa lavapipe`);
}
