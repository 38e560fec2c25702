import type { ExperimentConfigInput } from '../config.ts';
import { deepLinearRun, noiseGroup } from './common.ts';

/**
 * Fig 6: the condition number σ_max/σ_min of every weight matrix. Isotropic (balanced) noise keeps
 * the layers balanced (κ(W_i) → 1 for V = I); anisotropic (imbalanced) noise makes them
 * ill-conditioned, as the closed-form weights predict. Settings as Fig 2 (left).
 */
const preset: ExperimentConfigInput = {
  name: 'layer-balance',
  figure: 'Fig 6',
  description:
    'Condition number κ(W_i) = σ_max/σ_min of each layer of a deep linear network (D = 3, V = I₂) trained by ' +
    'online SGD (learning rate 0.01, batch 10) under balanced noise √Σ_ε = diag(10, 10) and imbalanced ' +
    'noise √Σ_ε = diag(10, 0.1), beside its sharpness T and fluctuation S. Dashed: the condition numbers ' +
    'of the closed-form minimum SGD selects.',
  ...deepLinearRun({
    noiseStd: [10, 10],
    init: { kind: 'xavier' },
    learningRate: 0.01,
    metrics: ['loss', 'sharpness', 'fluctuation', 'layerCondition'],
  }),
  groups: [noiseGroup('balanced', 1, [10, 10]), noiseGroup('imbalanced', 1e4, [10, 0.1])],
  panels: [
    {
      name: 'layers',
      kind: 'timeseries',
      metrics: ['layerCondition', 'sharpness', 'fluctuation'],
      title: 'Condition number of every layer, sharpness T and fluctuation S',
      yScale: 'log',
    },
  ],
  quick: {
    description:
      'Quick version: condition number κ(W_i) of each layer of a deep linear network (D = 3, V = I₂) under ' +
      'balanced √Σ_ε = diag(3, 3) and imbalanced √Σ_ε = diag(3, 0.3) label noise, learning rate 0.05.',
    // 2·10⁴ steps (seconds with the fused kernel) let the imbalanced layers reach their predicted
    // condition numbers instead of stopping on the way.
    train: { learningRate: 0.05, steps: 20_000 },
    measure: { every: 1000 },
    seeds: 5,
    groups: [noiseGroup('balanced', 1, [3, 3]), noiseGroup('imbalanced', 100, [3, 0.3])],
  },
};

export default preset;
