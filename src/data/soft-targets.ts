/**
 * Cross-entropy against regression data: the target becomes softmax(y) of the noisy label, as the
 * paper does for MNIST (noise added to the label, then softmax), so label-noise geometry carries over.
 */
import { Tape } from '../autodiff/tape.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { DataSource, SampleRequest } from './source.ts';

export class SoftmaxTargets implements DataSource {
  readonly inputFeatures: number;
  readonly outputDim: number;

  constructor(
    private readonly engine: Engine,
    /** The regression data whose noisy labels become the targets (the fused RNN kernel reads its streams). */
    readonly inner: DataSource,
  ) {
    this.inputFeatures = inner.inputFeatures;
    this.outputDim = inner.outputDim;
  }

  sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    const { x, y } = this.inner.sample(request);
    const tape = new Tape(this.engine);
    const target = tape.keep(tape.softmax(tape.constant(y)));
    tape.dispose();
    y.dispose();
    return { x, y: target };
  }

  dispose(): void {
    this.inner.dispose();
  }
}
