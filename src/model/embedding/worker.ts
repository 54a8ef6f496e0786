/**
 * The embedding model's own thread: its ORT session runs here, so embedding a batch never waits behind a decode
 * step nor holds one up, and the HTTP thread stays free. Requests run one after another in arrival order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWire } from '../../errors.js';
import { SentenceEncoder } from './encoder.js';
import type { EmbeddingWorkerData, FromEmbeddingWorker, ToEmbeddingWorker } from './protocol.js';

const port = parentPort!;
const { dir, threads } = workerData as EmbeddingWorkerData;
const send = (msg: FromEmbeddingWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

try {
  const encoder = await SentenceEncoder.load(dir, threads);
  let queue = Promise.resolve();
  port.on('message', (msg: ToEmbeddingWorker) => {
    queue = queue.then(async () => {
      try {
        const { vectors, tokens } = await encoder.embed(msg.inputs);
        send({ type: 'embedded', id: msg.id, vectors, tokens }, [vectors.buffer as ArrayBuffer]);
      } catch (err) {
        send({ type: 'failed', id: msg.id, error: toWire(err) });
      }
    });
  });
  send({ type: 'ready', info: encoder.info });
} catch (err) {
  send({ type: 'load-failed', error: toWire(err) });
}
