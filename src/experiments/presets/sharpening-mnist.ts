import type { ExperimentConfigInput } from '../config.ts';
import { LINEAR_METRICS, noiseGroup, PAPER_ESTIMATORS, QUICK_ESTIMATORS } from './common.ts';

const TEN_FIVE_ONE_FIVE = [10, 10, 10, 10, 10, 1, 1, 1, 1, 1];
const TEN = new Array(10).fill(10);

/** The panel both forms show (the quick form drops fluctuation from the other). */
const SHARPENING_PANEL = {
  name: 'sharpening',
  kind: 'timeseries' as const,
  metrics: ['sharpness', 'lambdaMax'],
  title: 'Sharpness Tr H (Hutchinson) and λ_max during training on MNIST',
  yScale: 'log' as const,
};

/**
 * Fig 2 (right): MNIST with label noise. Two-layer ReLU network (784 → 128 → 10), softmax
 * cross-entropy against softmax(one-hot + ε), SGD with learning rate 0.01 and batch 128 for 10⁴ steps,
 * √Σ_ε = diag(10 ×5, 1 ×5) vs 10·I, Hessian on a batch of 1024, five seeds.
 */
const preset: ExperimentConfigInput = {
  name: 'sharpening-mnist',
  figure: 'Fig 2 (right)',
  description:
    'Two-layer ReLU network (784 → 128 → 10) trained on MNIST by SGD (learning rate 0.01, batch 128) with ' +
    'softmax cross-entropy against noisy soft labels softmax(one-hot + ε), under isotropic √Σ_ε = 10·I and ' +
    'anisotropic √Σ_ε = diag(10 ×5, 1 ×5). Anisotropic label noise gives the sharper solution.',
  model: { kind: 'mlp', inputDim: 784, hidden: [128], outputDim: 10, activation: 'relu' },
  loss: 'cross-entropy',
  data: { kind: 'mnist', noiseStd: TEN },
  init: { kind: 'kaiming' },
  train: { learningRate: 0.01, batchSize: 128, steps: 10_000 },
  measure: { every: 250, evaluationSamples: 1024, metrics: [...LINEAR_METRICS], ...PAPER_ESTIMATORS },
  seeds: 5,
  seed: 1,
  groups: [noiseGroup('isotropic', 1, TEN), noiseGroup('anisotropic', 100, TEN_FIVE_ONE_FIVE)],
  panels: [
    SHARPENING_PANEL,
    {
      name: 'loss',
      kind: 'timeseries',
      metrics: ['loss', 'fluctuation'],
      title: 'Training loss and fluctuation S',
      yScale: 'log',
    },
  ],
  // Quick: the λ_max gap (about 3–4 vs 8) is there from step ~150, the Tr H gap (60 vs 80) from
  // ~500. On a 2-core CPU the 784-128-10 network's step (4 replicas) runs at the matmul kernel's rate,
  // ~0.1 s, and a log point (8 probes and 10 Lanczos steps on 256 rows) costs ~50 steps: 600 steps
  // and log points at 0, 200, 400, 600 (bench quick-presets; the target is about a minute and a half).
  quick: {
    train: { steps: 600 },
    measure: {
      every: 200,
      evaluationSamples: 256,
      metrics: ['loss', 'sharpness', 'lambdaMax'],
      ...QUICK_ESTIMATORS,
    },
    seeds: 2,
    panels: [
      SHARPENING_PANEL,
      { name: 'loss', kind: 'timeseries', metrics: ['loss'], title: 'Training loss', yScale: 'log' },
    ],
  },
};

export default preset;
