import type { WeightSource } from '../../src/model/builder/source.js';

/**
 * Plain-JS Llama forward over one causal token path (positions 0..n-1), written straight from the maths,
 * to pin down the graph's conventions (RoPE styles, GQA head grouping, SwiGLU, tied heads).
 * Returns logits [n, vocab].
 */
export function referenceForward(src: WeightSource, tokens: number[]): Float32Array {
  const c = src.config;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const n = tokens.length;
  const embed = src.tensor('model.embed_tokens.weight');
  let x = tokens.map((t) => Array.from(embed.subarray(t * H, (t + 1) * H)));

  const matvec = (w: Float32Array, v: number[], out: number, bias?: Float32Array) => {
    const r = new Array<number>(out).fill(0);
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < v.length; i++) s += w[o * v.length + i] * v[i];
      r[o] = s;
    }
    return r;
  };
  const rms = (v: number[], w: Float32Array) => {
    const ms = v.reduce((a, b) => a + b * b, 0) / v.length;
    const inv = 1 / Math.sqrt(ms + c.rmsNormEps);
    return v.map((a, i) => a * inv * w[i]);
  };
  const rope = (v: number[], heads: number, pos: number) => {
    const out = v.slice();
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < hd / 2; j++) {
        const angle = pos * Math.pow(c.ropeTheta, (-2 * j) / hd);
        const [a, b] = c.ropeStyle === 'half' ? [h * hd + j, h * hd + j + hd / 2] : [h * hd + 2 * j, h * hd + 2 * j + 1];
        out[a] = v[a] * Math.cos(angle) - v[b] * Math.sin(angle);
        out[b] = v[b] * Math.cos(angle) + v[a] * Math.sin(angle);
      }
    }
    return out;
  };

  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const t = (name: string) => src.tensor(`${p}.${name}`);
    const bias = (name: string) => (c.attentionBias ? t(name) : undefined);
    const qs: number[][] = [];
    const ks: number[][] = [];
    const vs: number[][] = [];
    for (let s = 0; s < n; s++) {
      const h = rms(x[s], t('input_layernorm.weight'));
      qs.push(rope(matvec(t('self_attn.q_proj.weight'), h, c.numHeads * hd, bias('self_attn.q_proj.bias')), c.numHeads, s));
      ks.push(rope(matvec(t('self_attn.k_proj.weight'), h, c.numKvHeads * hd, bias('self_attn.k_proj.bias')), c.numKvHeads, s));
      vs.push(matvec(t('self_attn.v_proj.weight'), h, c.numKvHeads * hd, bias('self_attn.v_proj.bias')));
    }
    const group = c.numHeads / c.numKvHeads;
    x = x.map((xs, s) => {
      const att = new Array<number>(c.numHeads * hd).fill(0);
      for (let h = 0; h < c.numHeads; h++) {
        const kv = Math.floor(h / group);
        const scores = [];
        for (let j = 0; j <= s; j++) {
          let d = 0;
          for (let e = 0; e < hd; e++) d += qs[s][h * hd + e] * ks[j][kv * hd + e];
          scores.push(d / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const w = scores.map((a) => Math.exp(a - m));
        const z = w.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= s; j++) for (let e = 0; e < hd; e++) att[h * hd + e] += (w[j] / z) * vs[j][kv * hd + e];
      }
      const x1 = xs.map((a, i) => a + matvec(t('self_attn.o_proj.weight'), att, H)[i]);
      const h2 = rms(x1, t('post_attention_layernorm.weight'));
      const gate = matvec(t('mlp.gate_proj.weight'), h2, c.intermediateSize);
      const up = matvec(t('mlp.up_proj.weight'), h2, c.intermediateSize);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matvec(t('mlp.down_proj.weight'), act, H);
      return x1.map((a, i) => a + down[i]);
    });
  }
  const head = c.tiedEmbeddings ? embed : src.tensor('lm_head.weight');
  const logits = new Float32Array(n * c.vocabSize);
  x.forEach((xs, s) => logits.set(matvec(head, rms(xs, src.tensor('model.norm.weight')), c.vocabSize), s * c.vocabSize));
  return logits;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
