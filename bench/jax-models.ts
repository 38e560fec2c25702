/**
 * The models of src/models/model.ts written in @jax-js/jax, for its Hessian-vector product
 * (jvp of grad) as a benchmark peer. Same parameter layout (W is [out, in], a dense layer is
 * act(h·Wᵀ + b)), same losses, same sequence layout (a row is T time steps, time-major). jax-js
 * takes ownership of every array it is handed, so an array used twice is passed as `a.ref` first.
 * Host-agnostic: runs on jax-js's wasm backend in Node and its webgpu backend in the page.
 */
import {
  blockUntilReady,
  type Device,
  defaultDevice,
  getWebGPUDevice,
  grad,
  init,
  jit,
  jvp,
  nn,
  numpy as np,
} from '@jax-js/jax';
import type { LossKind } from '../src/models/losses.ts';
import type { ModelSpec } from '../src/models/model.ts';

type A = np.Array;

/** Initialises jax-js's `device` backend and makes it the default; throws with jax-js's reason if absent. */
export async function initJax(device: Device): Promise<void> {
  const available = await init(device);
  if (!available.includes(device))
    throw new Error(`jax-js: backend '${device}' is not available here (init gave: ${available.join(', ')})`);
  defaultDevice(device);
}

/** The adapter jax-js's webgpu backend opened (to check it is the one our engine uses). */
export function jaxWebgpuAdapter(): { vendor: string; architecture: string } {
  const device = getWebGPUDevice() as GPUDevice & { adapterInfo?: GPUAdapterInfo };
  return { vendor: device.adapterInfo?.vendor ?? '?', architecture: device.adapterInfo?.architecture ?? '?' };
}

/** h·Wᵀ (+ b): consumes h, W and b. */
function dense(h: A, W: A, b?: A): A {
  const z = np.matmul(h, W.transpose());
  return b ? z.add(b) : z;
}

/**
 * Forward pass as a function of the parameter list; `xs` is the input as the model reads it: for
 * sequence models T arrays [rows, inputDim] (one per time step), else one [rows, features].
 * Consumes params and xs.
 */
export function jaxForward(spec: ModelSpec, params: A[], xs: A[]): A {
  switch (spec.kind) {
    case 'deep-linear':
      return params.reduce((h, W) => dense(h, W), xs[0]);
    case 'mlp': {
      let h = xs[0];
      const layers = params.length / 2;
      for (let i = 0; i < layers; i++) {
        h = dense(h, params[2 * i], params[2 * i + 1]);
        if (i < layers - 1) h = spec.activation === 'relu' ? nn.relu(h) : np.tanh(h);
      }
      return h;
    }
    case 'rnn': {
      // Elman: h_t = tanh(Wx x_t + Wh h_{t−1} + b), h_0 = 0; the output reads the last state.
      const [Wx, Wh, b, Wo, bo] = params;
      let h: A | undefined;
      const T = xs.length;
      for (let t = 0; t < T; t++) {
        const last = t === T - 1;
        let pre = dense(xs[t], last ? Wx : Wx.ref, last ? b : b.ref);
        if (h) pre = pre.add(dense(h, T - 1 === t ? Wh : Wh.ref));
        else if (T === 1) Wh.dispose();
        h = np.tanh(pre);
      }
      return dense(h as A, Wo, bo);
    }
    case 'transformer':
      return transformerForward(spec, params, xs);
  }
}

function transformerForward(spec: Extract<ModelSpec, { kind: 'transformer' }>, params: A[], xs: A[]): A {
  const { modelDim: D, heads: H, sequenceLength: T } = spec;
  const dh = D / H;
  const [Win, bin, pos] = params;
  // Tokens [rows, T, inputDim] → embedding [rows, T, D] + positions.
  const tokens = np.stack(xs, 1);
  let e = dense(tokens, Win, bin).add(pos);
  let attention: A | undefined;
  for (let h = 0; h < H; h++) {
    const [Wq, Wk, Wv, Wo] = params.slice(3 + 4 * h, 7 + 4 * h);
    const q = dense(e.ref, Wq);
    const k = dense(e.ref, Wk);
    const v = dense(e.ref, Wv);
    const scores = np.matmul(q, np.transpose(k, [0, 2, 1])).mul(1 / Math.sqrt(dh));
    const mixed = np.matmul(nn.softmax(scores, -1), v);
    const projected = dense(mixed, Wo);
    attention = attention ? attention.add(projected) : projected;
  }
  const base = 3 + 4 * H;
  const [W1, b1, W2, b2, Wout, bout] = params.slice(base, base + 6);
  e = e.add(attention as A);
  const h2 = e.ref.add(dense(nn.relu(dense(e, W1, b1)), W2, b2));
  // Read out the mean token of each sequence.
  return dense(h2.sum(1).mul(1 / T), Wout, bout);
}

/** The loss of src/models/losses.ts: MSE ½‖f − y‖² per row or soft cross-entropy, mean over rows. */
export function jaxLoss(kind: LossKind, prediction: A, target: A): A {
  const rows = prediction.shape[0];
  if (kind === 'mse') {
    const d = prediction.sub(target);
    return d.ref
      .mul(d)
      .sum()
      .mul(0.5 / rows);
  }
  const lse = nn.logsumexp(prediction.ref, -1).sum();
  return lse.sub(target.mul(prediction).sum()).mul(1 / rows);
}

export interface JaxHvpCase {
  spec: ModelSpec;
  loss: LossKind;
  /** Parameters in the model's order, each row-major in its shape. */
  params: Float32Array[];
  /** Input rows [rows, inputFeatures] and targets [rows, outputDim], row-major. */
  x: Float32Array;
  y: Float32Array;
  rows: number;
  /** Direction v, one array per parameter. */
  vector: Float32Array[];
  /** Parameter shapes (as ModelSpec's ParameterSpec.shape). */
  shapes: number[][];
}

export interface JaxHvp {
  /** One H·v: launch and wait until it is complete on the device (no readback). */
  run(): Promise<void>;
  /** One H·v read back, one array per parameter. */
  result(): Promise<Float32Array[]>;
  dispose(): void;
}

/** Input as the model reads it (see jaxForward): T time steps of [rows, inputDim] for sequences. */
function inputArrays(spec: ModelSpec, x: Float32Array, rows: number): A[] {
  if (spec.kind !== 'rnn' && spec.kind !== 'transformer')
    return [np.array(x).reshape([rows, x.length / rows])];
  const T = spec.sequenceLength;
  const d = spec.inputDim;
  return Array.from({ length: T }, (_, t) => {
    const step = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) step.set(x.subarray((r * T + t) * d, (r * T + t + 1) * d), r * d);
    return np.array(step).reshape([rows, d]);
  });
}

/**
 * H·v = jvp(grad(loss), params, v), jit-compiled once (jax-js's fastest form) on the default device.
 * The data stay on the device; each call passes new references to params, v and data.
 */
export function jaxHvp(c: JaxHvpCase): JaxHvp {
  const upload = (values: Float32Array[]) => values.map((a, i) => np.array(a).reshape(c.shapes[i]));
  const params = upload(c.params);
  const vector = upload(c.vector);
  const xs = inputArrays(c.spec, c.x, c.rows);
  const y = np.array(c.y).reshape([c.rows, c.y.length / c.rows]);
  const lossOf = (p: A[], x: A[], target: A) => jaxLoss(c.loss, jaxForward(c.spec, p, x), target);
  const hvp = jit((p: A[], v: A[], x: A[], target: A) => {
    const gradient = (q: A[]) =>
      grad(lossOf)(
        q,
        x.map((a) => a.ref),
        target.ref,
      );
    const [, tangent] = jvp(gradient, [p], [v]);
    for (const a of x) a.dispose();
    target.dispose();
    return tangent;
  });
  const launch = () =>
    hvp(
      params.map((a) => a.ref),
      vector.map((a) => a.ref),
      xs.map((a) => a.ref),
      y.ref,
    );
  return {
    async run() {
      const out = launch();
      await blockUntilReady(out);
      for (const a of out) a.dispose();
    },
    async result() {
      const out = launch();
      return Promise.all(out.map((a) => a.data() as Promise<Float32Array>));
    },
    dispose() {
      for (const a of [...params, ...vector, ...xs, y]) a.dispose();
      hvp.dispose();
    },
  };
}
