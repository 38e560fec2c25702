// Per-layer sharpness: the trace and largest eigenvalue of each layer's Hessian block, for four
// networks (replicas) at once. Run: node per-layer.mjs
import { buildModel, createNodeEngine, hessian, initParameters } from 'sharpness-lab/node';

const model = buildModel({ kind: 'mlp', inputDim: 8, hidden: [12, 12], outputDim: 2, activation: 'tanh' });
const rows = 64;
const x = Array.from({ length: rows }, (_, r) => Array.from({ length: 8 }, (_, j) => Math.cos(r * 0.37 + j)));
const y = x.map((row) => [row[0] - row[1], row[2] * row[3]]);

const engine = await createNodeEngine();
const replicas = 4; // four initialisations (seeds), measured in the same batched HVPs
const params = initParameters(engine, model, { kind: 'kaiming' }, { replicas, seed: 7 });
const H = hessian({ engine, model, loss: 'mse', params, data: { x, y } });
try {
  const layers = await H.blocks([
    ['W1', 'b1'],
    ['W2', 'b2'],
    ['W3', 'b3'],
  ]);
  for (const layer of layers) {
    const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
    console.log(
      `${layer.names.join('+').padEnd(6)} ${String(layer.size).padStart(5)} parameters: ` +
        `Tr H = ${mean(layer.trace).toFixed(4)}, λmax = ${mean(layer.lambdaMax).toFixed(4)} (mean of ${replicas} replicas)`,
    );
  }
} finally {
  H.dispose();
  for (const p of params) p.dispose();
  engine.destroy();
}
