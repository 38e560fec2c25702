// Trains 4 replicas of a small tanh MLP with AdamW and a cosine schedule on data of your own (a .npy
// pair written here for the example), logs the loss at log points, saves the weights as
// safetensors and loads them back as the start of a second run.
//   node train-adam.mjs            (after `npm install sharpness-lab`)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel, encodeSafetensors, train } from 'sharpness-lab';
import { createNodeEngine, readNpyFile, readWeightsFile } from 'sharpness-lab/node';

/** A little-endian float32 .npy file (format 1.0), as numpy.save writes it. */
function saveNpy(path, shape, values) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  const header = dict.padEnd(Math.ceil((10 + dict.length + 1) / 64) * 64 - 11, ' ') + '\n';
  const bytes = new Uint8Array(10 + header.length + 4 * values.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0x93, 78, 85, 77, 80, 89, 1, 0]);
  view.setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 10);
  values.forEach((v, i) => {
    view.setFloat32(10 + header.length + 4 * i, v, true);
  });
  writeFileSync(path, bytes);
}

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-example-'));
const rows = 256;
const x = Array.from({ length: rows * 2 }, (_, i) => Math.sin(0.37 * i + 1));
const y = Array.from({ length: rows }, (_, r) => Math.tanh(x[2 * r] - 2 * x[2 * r + 1]));
saveNpy(join(dir, 'x.npy'), [rows, 2], x);
saveNpy(join(dir, 'y.npy'), [rows, 1], y);

const engine = await createNodeEngine();
const model = buildModel({ kind: 'mlp', inputDim: 2, hidden: [8], outputDim: 1, activation: 'tanh' });
const request = {
  engine,
  model,
  loss: 'mse',
  data: { x: readNpyFile(join(dir, 'x.npy')), y: readNpyFile(join(dir, 'y.npy')) },
  learningRate: 0.02,
  optimizer: { kind: 'adam', weightDecay: 1e-4, decoupledWeightDecay: true },
  schedule: { kind: 'cosine', warmupSteps: 20 },
  batchSize: 32,
  steps: 300,
  replicas: 4,
  logEvery: 100,
  onLogPoint: ({ step, loss }) =>
    console.log(`step ${step}: loss ${Array.from(loss, (l) => l.toFixed(4)).join(' ')}`),
};
const first = await train(request);
const file = join(dir, 'weights.safetensors');
writeFileSync(file, encodeSafetensors(first.weights));
console.log(
  `wrote ${first.weights.length} tensors (${first.weights.map((w) => w.name).join(', ')}) to ${file}`,
);

// Continue from the saved weights at a lower rate.
const second = await train({ ...request, learningRate: 0.005, initialWeights: readWeightsFile(file) });
for (const p of [...first.parameters, ...second.parameters]) p.dispose();
engine.destroy();
rmSync(dir, { recursive: true, force: true });
