import type { Engine, EngineStats, Job, JobSpec, ServedModel } from '../engine/types.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';

/**
 * The engine the server talks to when replication is on: documents posted to this replica are applied here, as
 * always, and handed to replication for the others. Everything else passes through.
 */
export class ReplicatedEngine implements Engine {
  constructor(
    private readonly inner: Engine,
    private readonly share: (tenant: string, texts: string[]) => void,
  ) {}

  get models(): readonly ServedModel[] {
    return this.inner.models;
  }

  tokenizer(modelId: string): TextTokenizer {
    return this.inner.tokenizer(modelId);
  }

  submit(modelId: string, spec: JobSpec): Job {
    return this.inner.submit(modelId, spec);
  }

  async addDocuments(tenant: string, texts: string[]): Promise<number> {
    const tokens = await this.inner.addDocuments(tenant, texts);
    this.share(tenant, texts);
    return tokens;
  }

  dropSession(tenant: string, sessionId: string): Promise<boolean> {
    return this.inner.dropSession(tenant, sessionId);
  }

  stats(): EngineStats {
    return this.inner.stats();
  }

  close(graceMs?: number): Promise<void> {
    return this.inner.close(graceMs);
  }

  terminate(): Promise<void> {
    return this.inner.terminate();
  }
}
