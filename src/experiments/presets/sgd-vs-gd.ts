import type { ExperimentConfigInput } from '../config.ts';
import { DEEP_LINEAR_METRICS, deepLinearRun } from './common.ts';

/**
 * Fig 4: switching from SGD to gradient descent (batch 1000) mid-run stops the sharpening, because the
 * drift along the minimum manifold is driven by gradient noise. Deep linear D = 3, anisotropic
 * √Σ_ε = diag(10, 0.1), learning rate 0.01, batch 10.
 */
const preset: ExperimentConfigInput = {
  name: 'sgd-vs-gd',
  figure: 'Fig 4',
  description:
    'Deep linear network (D = 3, V = I₂, anisotropic √Σ_ε = diag(10, 0.1)) trained by online SGD (learning ' +
    'rate 0.01, batch 10); one run switches to gradient descent on batches of 1000 halfway. SGD keeps ' +
    'sharpening toward T* ≈ 257.9; after the switch the sharpness stays where it was.',
  ...deepLinearRun({
    noiseStd: [10, 0.1],
    init: { kind: 'xavier' },
    learningRate: 0.01,
    metrics: DEEP_LINEAR_METRICS,
  }),
  groups: [
    { name: 'sgd', overrides: {} },
    { name: 'sgd-then-gd', overrides: { train: { switchToGdAt: 50_000, gdBatchSize: 1000 } } },
  ],
  panels: [
    {
      name: 'switch',
      kind: 'timeseries',
      metrics: ['sharpness', 'fluctuation'],
      title: 'Sharpness T and fluctuation S: SGD throughout vs SGD then GD',
      yScale: 'log',
    },
  ],
  // From a small initialisation GD first lands near the flattest minimum (T ≈ 12-16); from there SGD
  // sharpens within a few thousand steps at this learning rate while GD (batch 1000) stays put: in a
  // 6000-step CPU run SGD went 16 → 22 after step 1000 and GD held 16.0 ± 0.3.
  quick: {
    description:
      'Quick version: deep linear network (D = 3, V = I₂, anisotropic √Σ_ε = diag(3, 0.3), T* ≈ 31.6) from a ' +
      'small initialisation (N(0, 0.3²) weights), SGD with learning rate 0.05 and batch 10; one run switches ' +
      'to gradient descent on batches of 1000 at step 1000. SGD keeps sharpening; after the switch the ' +
      'sharpness stays where it was.',
    data: { noiseStd: [3, 0.3] },
    init: { kind: 'normal', scale: 0.3 },
    train: { learningRate: 0.05, steps: 6000 },
    measure: { every: 250 },
    seeds: 6,
    groups: [
      { name: 'sgd', overrides: {} },
      { name: 'sgd-then-gd', overrides: { train: { switchToGdAt: 1000, gdBatchSize: 1000 } } },
    ],
  },
};

export default preset;
