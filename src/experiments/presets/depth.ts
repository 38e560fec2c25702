import type { ExperimentConfigInput } from '../config.ts';
import { DEEP_LINEAR_METRICS, deepLinear, deepLinearRun } from './common.ts';

const DEPTHS = [2, 3, 4, 6, 8, 10];
const QUICK_DEPTHS = [2, 4, 6];
const NOISES = [
  { key: 'anisotropic', series: 'anisotropic Σ_ε = diag(0.09, 9)', noiseStd: [0.3, 3] },
  { key: 'isotropic', series: 'isotropic Σ_ε = 9 I', noiseStd: [3, 3] },
];

function groups(depths: number[]) {
  return NOISES.flatMap((noise) =>
    depths.map((depth) => ({
      name: `${noise.key}-D${depth}`,
      value: depth,
      series: noise.series,
      overrides: { model: deepLinear(depth), data: { noiseStd: noise.noiseStd } },
    })),
  );
}

/**
 * Fig 7: sharpness grows with depth, linearly (T* = 4D) for isotropic noise and faster for anisotropic
 * noise, as the closed form predicts. Σ_ε = diag(0.09, 9) has the shape of the paper's eqs 18 and 21
 * (diag(1, 100), κ = 100) and the same T* (T* does not change when Σ_ε is scaled); the smaller scale
 * keeps a 10-layer network from collapsing toward W = 0 under the noise at learning rate 0.01.
 * λ_max* ≤ 91 < 2/η at every depth.
 */
const preset: ExperimentConfigInput = {
  name: 'depth',
  figure: 'Fig 7',
  description:
    'Deep linear networks of depth D = 2 … 10 (V = I₂, widths 2) trained by online SGD (learning rate 0.01, ' +
    'batch 10) under anisotropic Σ_ε = diag(0.09, 9) (the shape of the paper’s eqs 18 and 21) and isotropic ' +
    'Σ_ε = 9 I label noise. Final sharpness and fluctuation against depth, with the closed form dashed ' +
    '(isotropic: T* = 4D).',
  ...deepLinearRun({
    noiseStd: [0.3, 3],
    init: { kind: 'normal', scale: 0.9 },
    learningRate: 0.01,
    metrics: DEEP_LINEAR_METRICS,
  }),
  groups: groups(DEPTHS),
  panels: [
    {
      name: 'depth',
      kind: 'final-vs-group',
      metrics: ['sharpness', 'fluctuation'],
      title: 'Final sharpness T and fluctuation S against depth',
      x: 'depth D',
      yScale: 'log',
    },
    {
      name: 'training',
      kind: 'timeseries',
      metrics: ['sharpness', 'fluctuation'],
      groups: ['anisotropic-*'],
      title: 'Sharpness T and fluctuation S during training (anisotropic noise)',
      yScale: 'log',
    },
  ],
  // λ_max* at D = 6 is 50.7, so η = 0.02 is stable; D ≤ 6 reaches most of T* in 5000 steps (CPU simulation).
  quick: {
    train: { learningRate: 0.02, steps: 20_000 },
    measure: { every: 1000 },
    seeds: 4,
    groups: groups(QUICK_DEPTHS),
  },
};

export default preset;
