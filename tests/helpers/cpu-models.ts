/**
 * Float64 CPU reference implementations of every model spec and loss, independent of the GPU code:
 * plain loops over flat parameter vectors (parameters in `buildModel` order, each row-major).
 */
import type { LossKind } from '../../src/models/losses.ts';
import type { ModelSpec } from '../../src/models/model.ts';
import { buildModel } from '../../src/models/model.ts';

type Vec = Float64Array;

/** Reads the model's parameters out of a flat vector by name. */
function unpack(spec: ModelSpec, theta: Vec): Map<string, Vec> {
  const map = new Map<string, Vec>();
  let offset = 0;
  for (const p of buildModel(spec).parameters) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    map.set(p.name, theta.subarray(offset, offset + n));
    offset += n;
  }
  return map;
}

/** y = W x (+ b), W [out, in] row-major. */
function affine(W: Vec, x: Vec, out: number, b?: Vec): Vec {
  const inp = x.length;
  const y = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    let s = b ? b[i] : 0;
    for (let k = 0; k < inp; k++) s += W[i * inp + k] * x[k];
    y[i] = s;
  }
  return y;
}

const relu = (v: Vec) => v.map((x) => Math.max(x, 0));
const tanh = (v: Vec) => v.map(Math.tanh);
const add = (a: Vec, b: Vec) => a.map((x, i) => x + b[i]);

/** Model output for one input row. */
export function cpuForward(spec: ModelSpec, theta: Vec, row: Vec): Vec {
  const p = unpack(spec, theta);
  switch (spec.kind) {
    case 'deep-linear': {
      const widths = [...spec.hidden, spec.outputDim];
      return widths.reduce((h, out, i) => affine(p.get(`W${i + 1}`)!, h, out), row);
    }
    case 'mlp': {
      const widths = [...spec.hidden, spec.outputDim];
      return widths.reduce((h, out, i) => {
        const z = affine(p.get(`W${i + 1}`)!, h, out, p.get(`b${i + 1}`));
        return i === widths.length - 1 ? z : spec.activation === 'relu' ? relu(z) : tanh(z);
      }, row);
    }
    case 'rnn': {
      let h: Vec = new Float64Array(spec.hidden);
      for (let t = 0; t < spec.sequenceLength; t++) {
        const xt = row.subarray(t * spec.inputDim, (t + 1) * spec.inputDim);
        h = tanh(
          add(affine(p.get('Wx')!, xt, spec.hidden, p.get('b')), affine(p.get('Wh')!, h, spec.hidden)),
        );
      }
      return affine(p.get('Wo')!, h, spec.outputDim, p.get('bo'));
    }
    case 'transformer': {
      const { sequenceLength: T, modelDim: D, heads: H } = spec;
      const dh = D / H;
      const pos = p.get('pos')!;
      const e = Array.from({ length: T }, (_, t) =>
        add(
          affine(p.get('Win')!, row.subarray(t * spec.inputDim, (t + 1) * spec.inputDim), D, p.get('bin')),
          pos.subarray(t * D, (t + 1) * D),
        ),
      );
      const attention = Array.from({ length: T }, () => new Float64Array(D));
      for (let h = 0; h < H; h++) {
        const q = e.map((et) => affine(p.get(`Wq${h}`)!, et, dh));
        const k = e.map((et) => affine(p.get(`Wk${h}`)!, et, dh));
        const v = e.map((et) => affine(p.get(`Wv${h}`)!, et, dh));
        for (let t = 0; t < T; t++) {
          const scores = k.map((ks) => ks.reduce((s, x, i) => s + x * q[t][i], 0) / Math.sqrt(dh));
          const max = Math.max(...scores);
          const w = scores.map((s) => Math.exp(s - max));
          const z = w.reduce((a, b) => a + b, 0);
          const o = new Float64Array(dh);
          v.forEach((vs, s) => {
            for (let i = 0; i < dh; i++) o[i] += (w[s] / z) * vs[i];
          });
          const projected = affine(p.get(`Wo${h}`)!, o, D);
          for (let i = 0; i < D; i++) attention[t][i] += projected[i];
        }
      }
      const pooled = new Float64Array(D);
      for (let t = 0; t < T; t++) {
        const h1 = add(e[t], attention[t]);
        const h2 = add(
          h1,
          affine(p.get('W2')!, relu(affine(p.get('W1')!, h1, spec.mlpHidden, p.get('b1'))), D, p.get('b2')),
        );
        for (let i = 0; i < D; i++) pooled[i] += h2[i] / T;
      }
      return affine(p.get('Wout')!, pooled, spec.outputDim, p.get('bout'));
    }
  }
}

/** Loss of one replica, mean over rows: ½‖f − y‖² or softmax cross-entropy against soft targets. */
export function cpuLoss(spec: ModelSpec, loss: LossKind, theta: Vec, xs: Vec[], ys: Vec[]): number {
  let total = 0;
  xs.forEach((x, r) => {
    const f = cpuForward(spec, theta, x);
    if (loss === 'mse') {
      total += 0.5 * f.reduce((s, v, j) => s + (v - ys[r][j]) ** 2, 0);
    } else {
      const max = Math.max(...f);
      const lse = max + Math.log(f.reduce((s, v) => s + Math.exp(v - max), 0));
      total += f.reduce((s, v, j) => s + ys[r][j] * (lse - v), 0);
    }
  });
  return total / xs.length;
}

export function centralGradient(loss: (theta: Vec) => number, theta: Vec, h = 1e-6): Vec {
  const g = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    const p = Float64Array.from(theta);
    const m = Float64Array.from(theta);
    p[i] += h;
    m[i] -= h;
    g[i] = (loss(p) - loss(m)) / (2 * h);
  }
  return g;
}

/** Dense Hessian column by column, by second central differences in float64 (error O(h²) + O(u/h²)). */
export function centralHessian(loss: (theta: Vec) => number, theta: Vec, h = 1e-4): Vec[] {
  const n = theta.length;
  const at = (i: number, si: number, j: number, sj: number) => {
    const t = Float64Array.from(theta);
    t[i] += si * h;
    t[j] += sj * h;
    return loss(t);
  };
  const H = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const value = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (4 * h * h);
      H[i][j] = value;
      H[j][i] = value;
    }
  }
  return H;
}
