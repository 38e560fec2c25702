// The Hessian's eigenvalue density by stochastic Lanczos quadrature, plotted to density.svg.
// Run: node density.mjs
import { writeFileSync } from 'node:fs';
import { buildModel, createNodeEngine, hessian, initParameters, renderSvg } from 'sharpness-lab/node';

const model = buildModel({ kind: 'mlp', inputDim: 6, hidden: [16], outputDim: 3, activation: 'relu' });
const rows = 100;
const x = Array.from({ length: rows }, (_, r) =>
  Array.from({ length: 6 }, (_, j) => Math.sin(r * 1.3 + j * 0.7)),
);
const y = x.map((row) => [row[0], row[1] * row[2], -row[3]]);

const engine = await createNodeEngine();
const params = initParameters(engine, model, { kind: 'kaiming' }, { replicas: 1, seed: 3 });
const H = hessian({ engine, model, loss: 'mse', params, data: { x, y } });
try {
  const { grid, density, sigma } = await H.density({ runs: 6, steps: 40, seed: 2 });
  const values = grid[0].map((eigenvalue, i) => ({ eigenvalue, density: density[0][i] }));
  const svg = await renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Hessian eigenvalue density (SLQ, σ = ${sigma[0].toPrecision(2)})`,
    width: 480,
    height: 240,
    data: { values },
    mark: 'line',
    encoding: {
      x: { field: 'eigenvalue', type: 'quantitative' },
      y: { field: 'density', type: 'quantitative', scale: { type: 'symlog', constant: 0.01 } },
    },
  });
  writeFileSync('density.svg', svg);
  console.log(
    `density.svg: ${values.length} points over [${grid[0][0].toFixed(3)}, ${grid[0].at(-1).toFixed(3)}]`,
  );
} finally {
  H.dispose();
  for (const p of params) p.dispose();
  engine.destroy();
}
