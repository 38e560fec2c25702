/**
 * The training peer: a straightforward tfjs implementation of our online SGD loop for a deep linear
 * network on a linear teacher — replicas as the leading axis of [R, …] tensors (tf.matMul batches
 * over it), fresh data every step from tf.randomNormal (x ~ N(0, I), y = V x + ε, ε ~ N(0, diag σ²)),
 * loss Σ_replicas ½‖f − y‖² / B so each replica's gradient is its own, tf.train.sgd's minimize.
 * Host-agnostic: it is handed tfjs (on Node's Dawn or in the page).
 */
import type { Tf } from './tfjs-session.ts';

type Tensor3D = ReturnType<Tf['tensor3d']>;

export interface TfjsSgdOptions {
  /** Layer widths h_0 = d, …, h_D = m; W_i is [h_i, h_{i−1}]. */
  widths: number[];
  replicas: number;
  batchSize: number;
  learningRate: number;
  /** Teacher V, m×d (rows). */
  V: number[][];
  /** √ of Σ_ε's diagonal. */
  noiseStd: number[];
  /** Initial weights, one per layer, replica-major [R, h_i, h_{i−1}] (e.g. ours, read back). */
  initial: Float32Array[];
  /** Data of each step come from tf.randomNormal seeded from (seed, step): fresh, reproducible. */
  seed: number;
}

export interface TfjsDeepLinearSgd {
  /**
   * One SGD step on fresh data; with `data` (x [R, B, d], y [R, B, m] row-major) on exactly those.
   * Nothing is read back.
   */
  step(data?: { x: Float32Array; y: Float32Array }): void;
  weights(): Promise<Float32Array[]>;
  dispose(): void;
}

export function tfjsDeepLinearSgd(tf: Tf, options: TfjsSgdOptions): TfjsDeepLinearSgd {
  const { widths, replicas: R, batchSize: B } = options;
  const d = widths[0];
  const m = widths[widths.length - 1];
  const weights = widths
    .slice(1)
    .map((out, i) => tf.variable(tf.tensor3d(options.initial[i], [R, out, widths[i]]), true, `W${i + 1}`));
  const teacherT = tf.transpose(tf.tensor2d(options.V)); // [d, m]: y = x Vᵀ
  const noiseStd = tf.tensor1d(options.noiseStd);
  const optimizer = tf.train.sgd(options.learningRate);
  let step = 0;
  const loss = (x: Tensor3D, y: Tensor3D) => () => {
    let h: Tensor3D = x;
    for (const W of weights) h = tf.matMul(h, W, false, true);
    return tf.mul(tf.sum(tf.square(tf.sub(h, y))), 0.5 / B) as ReturnType<Tf['scalar']>;
  };
  return {
    step(data) {
      tf.tidy(() => {
        let x: Tensor3D;
        let y: Tensor3D;
        if (data) {
          x = tf.tensor3d(data.x, [R, B, d]);
          y = tf.tensor3d(data.y, [R, B, m]);
        } else {
          const seed = 2 * (options.seed * 1_000_003 + step);
          x = tf.randomNormal([R, B, d], 0, 1, 'float32', seed) as Tensor3D;
          const eps = tf.mul(tf.randomNormal([R, B, m], 0, 1, 'float32', seed + 1), noiseStd);
          y = tf.add(tf.reshape(tf.matMul(tf.reshape(x, [R * B, d]), teacherT), [R, B, m]), eps) as Tensor3D;
        }
        optimizer.minimize(loss(x, y), false, weights);
      });
      step++;
    },
    async weights() {
      return Promise.all(weights.map((w) => w.data() as Promise<Float32Array>));
    },
    dispose() {
      for (const t of [...weights, teacherT, noiseStd]) t.dispose();
      optimizer.dispose();
    },
  };
}

/**
 * Population loss E ½‖W_D⋯W_1 x − y‖² per replica for x ~ N(0, I): ½‖P − V‖²_F + ½ Σ σ², in float64
 * on the CPU from replica-major weights. Its floor (P = V) is ½ Σ σ².
 */
export function deepLinearPopulationLoss(
  weights: readonly Float32Array[],
  widths: readonly number[],
  V: readonly (readonly number[])[],
  noiseStd: readonly number[],
  replicas: number,
): number[] {
  const floor = 0.5 * noiseStd.reduce((s, v) => s + v * v, 0);
  const d = widths[0];
  return Array.from({ length: replicas }, (_, r) => {
    // P = W_D ⋯ W_1 as rows of [h_i, d], starting from the identity.
    let P: number[][] = Array.from({ length: d }, (_, i) =>
      Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)),
    );
    weights.forEach((W, layer) => {
      const out = widths[layer + 1];
      const inp = widths[layer];
      const base = r * out * inp;
      P = Array.from({ length: out }, (_, i) =>
        Array.from({ length: d }, (_, j) => {
          let s = 0;
          for (let k = 0; k < inp; k++) s += W[base + i * inp + k] * P[k][j];
          return s;
        }),
      );
    });
    let excess = 0;
    P.forEach((row, i) => {
      row.forEach((p, j) => {
        excess += (p - V[i][j]) ** 2;
      });
    });
    return 0.5 * excess + floor;
  });
}
