// The engine in your own web page: bundle with any bundler, e.g.
//   npx esbuild main.js --bundle --format=esm --outfile=bundle.js
// and serve index.html from https:// or http://127.0.0.1 (WebGPU needs a secure context).
import { buildModel, createBrowserEngine, hessian, initParameters } from 'sharpness-lab/browser';

const out = document.getElementById('out');
try {
  const engine = await createBrowserEngine();
  const model = buildModel({ kind: 'mlp', inputDim: 2, hidden: [8], outputDim: 1, activation: 'tanh' });
  const x = Array.from({ length: 64 }, (_, r) => [Math.cos(r), Math.sin(2 * r)]);
  const y = x.map(([a, b]) => [a * b]);
  const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 0 });
  const H = hessian({ engine, model, loss: 'mse', params, data: { x, y } });
  const top = await H.eigenvalues({ k: 3 });
  const trace = await H.trace({ probes: 100 });
  out.textContent =
    `${engine.context.adapterInfo.description || engine.context.adapterInfo.architecture}: ` +
    `top-3 eigenvalues ${top.values[0].map((v) => v.toPrecision(4)).join(', ')}; ` +
    `Tr H = ${trace.trace[0].toFixed(3)} ± ${trace.standardError[0].toFixed(3)}`;
  H.dispose();
  engine.destroy();
} catch (error) {
  out.textContent = `error: ${error.message}`;
}
