import { closeSync, openSync, writeSync } from 'node:fs';
import { Message } from './protobuf.js';

/** ONNX TensorProto.DataType codes for the element types the builder emits. */
export const DataType = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10 } as const;
export type DType = keyof typeof DataType;

export type Dim = number | string;

/** Attribute values are tagged so that 1.0 (float) and 1 (int) are never confused. */
export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { g: Message };

const AttrType = { f: 1, i: 2, s: 3, g: 5, floats: 6, ints: 7 } as const;

/** Builds a branch of an If node in `g` and returns the branch's outputs (values its own nodes produce). */
export type Branch = (g: OnnxGraph) => string[];

export interface ExternalDataOptions {
  /** Absolute path of the data file to write. */
  path: string;
  /** Its name as recorded in the model, relative to the model file. */
  location: string;
  /** Initializers smaller than this stay inline. */
  minBytes: number;
}

export interface ModelOptions {
  irVersion: number;
  opsets: Record<string, number>;
  producer: string;
  producerVersion: string;
}

/**
 * An ONNX graph being assembled. Initializers headed for external data are written to the data file as soon as
 * they are added, so a multi-gigabyte model is never held in memory.
 */
export class OnnxGraph {
  private readonly nodes: Message[] = [];
  private readonly initializers: Message[] = [];
  private readonly inputs: Message[] = [];
  private readonly outputs: Message[] = [];
  private readonly names = new Map<string, number>();
  private dataFd: number | null = null;
  private dataOffset = 0;

  /** `root`: the graph a subgraph belongs to, which names its values and holds its initializers. */
  constructor(
    readonly name: string,
    private readonly external: ExternalDataOptions | null = null,
    private readonly root: OnnxGraph | null = null,
  ) {}

  /** A fresh value name based on `base`. */
  fresh(base: string): string {
    if (this.root) return this.root.fresh(base);
    const n = this.names.get(base) ?? 0;
    this.names.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  input(name: string, dtype: DType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  output(name: string, dtype: DType, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  initializer(name: string, dtype: DType, dims: readonly number[], data: ArrayBufferView): string {
    if (this.root) return this.root.initializer(name, dtype, dims, data);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const t = new Message();
    for (const d of dims) t.int(1, d);
    t.uint(2, DataType[dtype]);
    t.string(8, name);
    if (this.external && bytes.length >= this.external.minBytes) {
      // 64-byte alignment lets ORT memory-map tensors with aligned access.
      const pad = (64 - (this.dataOffset % 64)) % 64;
      this.dataFd ??= openSync(this.external.path, 'w');
      if (pad) writeSync(this.dataFd, new Uint8Array(pad));
      this.dataOffset += pad;
      writeSync(this.dataFd, bytes);
      t.message(13, new Message().string(1, 'location').string(2, this.external.location));
      t.message(13, new Message().string(1, 'offset').string(2, String(this.dataOffset)));
      t.message(13, new Message().string(1, 'length').string(2, String(bytes.length)));
      t.uint(14, 1);
      this.dataOffset += bytes.length;
    } else {
      // Copy: callers may reuse their buffers after handing them over.
      t.bytes(9, bytes.slice());
    }
    this.initializers.push(t);
    return name;
  }

  constInt64(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(this.fresh(base), 'int64', dims, BigInt64Array.from(values.map(BigInt)));
  }

  constFloat(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(this.fresh(base), 'float32', dims, Float32Array.from(values));
  }

  /** Adds a node; `outputs` are either explicit names or a count of fresh names derived from op. */
  node(
    op: string,
    inputs: readonly string[],
    outputs: readonly string[] | number = 1,
    attrs: Record<string, Attr> = {},
    domain = '',
  ): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op)) : [...outputs];
    const n = new Message();
    for (const i of inputs) n.string(1, i);
    for (const o of outs) n.string(2, o);
    n.string(3, this.fresh(`node_${op}`));
    n.string(4, op);
    for (const [key, value] of Object.entries(attrs)) n.message(5, attribute(key, value));
    if (domain) n.string(7, domain);
    this.nodes.push(n);
    return outs;
  }

  /** Single-output convenience form of node(). */
  op(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.node(op, inputs, 1, attrs, domain)[0];
  }

  /**
   * An If node whose branches each yield `dtype` tensors of any shape. Branch nodes read the enclosing graph's
   * values by name, and their constants go to the root graph's initializers.
   */
  ifElse(cond: string, dtype: DType, thenBranch: Branch, elseBranch: Branch): string[] {
    const body = (base: string, build: Branch) => {
      const sub = new OnnxGraph(this.fresh(base), null, this.root ?? this);
      const outs = build(sub);
      const g = new Message();
      for (const n of sub.nodes) g.message(1, n);
      g.string(2, sub.name);
      for (const o of outs) g.message(12, valueInfo(o, dtype, null));
      return { graph: g, count: outs.length };
    };
    const [then, other] = [body('then_branch', thenBranch), body('else_branch', elseBranch)];
    if (then.count !== other.count) throw new Error(`If: the branches yield ${then.count} and ${other.count} values`);
    return this.node('If', [cond], then.count, { then_branch: { g: then.graph }, else_branch: { g: other.graph } });
  }

  /** Writes the model file (and closes the external data file, if any). */
  write(path: string, options: ModelOptions): void {
    if (this.dataFd !== null) {
      closeSync(this.dataFd);
      this.dataFd = null;
    }
    const g = new Message();
    for (const n of this.nodes) g.message(1, n);
    g.string(2, this.name);
    for (const t of this.initializers) g.message(5, t);
    for (const i of this.inputs) g.message(11, i);
    for (const o of this.outputs) g.message(12, o);
    const m = new Message().uint(1, options.irVersion).string(2, options.producer).string(3, options.producerVersion);
    m.message(7, g);
    for (const [domain, version] of Object.entries(options.opsets)) {
      const o = new Message();
      if (domain) o.string(1, domain);
      m.message(8, o.uint(2, version));
    }
    if (!this.external && m.length >= 2 ** 31) throw new RangeError('model exceeds 2 GB: use external data');
    const fd = openSync(path, 'w');
    try {
      for (const c of m.chunks) writeSync(fd, c);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether any initializer went to the external data file. */
  get usesExternalData(): boolean {
    return this.dataOffset > 0;
  }
}

/** `dims` null: a tensor of unknown shape. */
function valueInfo(name: string, dtype: DType, dims: readonly Dim[] | null): Message {
  const tensor = new Message().uint(1, DataType[dtype]);
  if (dims) {
    const shape = new Message();
    for (const d of dims) shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
    tensor.message(2, shape);
  }
  return new Message().string(1, name).message(2, new Message().message(1, tensor));
}

function attribute(name: string, value: Attr): Message {
  const a = new Message().string(1, name);
  if ('i' in value) a.int(3, value.i).uint(20, AttrType.i);
  else if ('f' in value) a.float(2, value.f).uint(20, AttrType.f);
  else if ('s' in value) a.string(4, value.s).uint(20, AttrType.s);
  else if ('ints' in value) {
    for (const v of value.ints) a.int(8, v);
    a.uint(20, AttrType.ints);
  } else if ('g' in value) a.message(6, value.g).uint(20, AttrType.g);
  else {
    for (const v of value.floats) a.float(7, v);
    a.uint(20, AttrType.floats);
  }
  return a;
}
