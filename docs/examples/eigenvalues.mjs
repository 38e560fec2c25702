// Top-3 Hessian eigenvalues (with eigenvectors) and the trace (with its standard error) of a model
// and loss of your own, on your own data held in memory. Run: node eigenvalues.mjs
import { bias, createNodeEngine, dense, hessian, initParameters, weight } from 'sharpness-lab/node';

// Your data: 128 rows of 4 features and a ±1 label each (made up here; any Float32Array will do).
const rows = 128;
const features = 4;
const x = Float32Array.from({ length: rows * features }, (_, i) => Math.sin(1.7 * i + 0.3));
const y = Float32Array.from({ length: rows }, (_, r) =>
  x[r * features] + 0.5 * x[r * features + 1] > 0 ? 1 : -1,
);

// Your model: 4 → 8 (tanh) → 1, written with the public blocks. Parameters in forward's order.
const model = {
  parameters: [weight('W1', 8, features), bias('b1', 8), weight('W2', 1, 8), bias('b2', 1)],
  forward: (tape, [W1, b1, W2, b2], input) => dense(tape, dense(tape, input, W1, b1, 'tanh'), W2, b2),
};

// Your loss, from tape ops: logistic log(1 + exp(−y·f)), mean over rows (one value per replica).
const logistic = (tape, f, target) =>
  tape.scale(tape.sum(tape.log(tape.affine(tape.exp(tape.mul(target, f, -1)), 1, 1))), 1 / f.shape[0]);

const engine = await createNodeEngine();
const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 0 });
const H = hessian({
  engine,
  model,
  loss: logistic,
  params,
  data: { x: { values: x, shape: [rows, features] }, y: { values: y, shape: [rows, 1] } },
});
try {
  const top = await H.eigenvalues({ k: 3, vectors: true });
  const estimate = await H.trace({ probes: 100, seed: 1 });
  const exact = await H.trace({ method: 'exact' });
  console.log(`parameters: ${H.size}`);
  console.log(`top-3 eigenvalues: ${top.values[0].map((v) => v.toPrecision(5)).join(', ')}`);
  console.log(`Ritz residuals:    ${top.residuals[0].map((v) => v.toExponential(1)).join(', ')}`);
  console.log(
    `eigenvector 1 (first 4 entries): ${Array.from(top.vectors[0][0].slice(0, 4), (v) => v.toFixed(4)).join(', ')}`,
  );
  console.log(
    `Tr H = ${estimate.trace[0].toFixed(4)} ± ${estimate.standardError[0].toFixed(4)} (Hutchinson, 100 probes)`,
  );
  console.log(`Tr H = ${exact.trace[0].toFixed(4)} (exact, ${H.size} HVPs)`);
} finally {
  H.dispose();
  for (const p of params) p.dispose();
  engine.destroy();
}
