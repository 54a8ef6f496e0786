/**
 * A minimal protobuf writer. A message is a list of byte chunks plus its total length, so that large
 * raw tensor bytes are never copied while nesting: only small headers (tag + length) are allocated.
 */
export class Message {
  readonly chunks: Uint8Array[] = [];
  length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private header(field: number, wireType: number, len?: number): void {
    const tag = varint(field * 8 + wireType);
    if (len === undefined) {
      this.push(tag);
      return;
    }
    const l = varint(len);
    const h = new Uint8Array(tag.length + l.length);
    h.set(tag, 0);
    h.set(l, tag.length);
    this.push(h);
  }

  uint(field: number, value: number | bigint): this {
    this.header(field, 0);
    this.push(varint(value));
    return this;
  }

  /** Negative int64 values are encoded in ten bytes, as protobuf requires. */
  int(field: number, value: number | bigint): this {
    const v = BigInt(value);
    return this.uint(field, v < 0n ? v + (1n << 64n) : v);
  }

  float(field: number, value: number): this {
    this.header(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.header(field, 2, value.length);
    if (value.length > 0) this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, msg: Message): this {
    this.header(field, 2, msg.length);
    for (const c of msg.chunks) this.push(c);
    return this;
  }
}

function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError('varint: negative value');
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}
