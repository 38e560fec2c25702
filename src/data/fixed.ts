/**
 * A finite training set on the GPU: minibatches are drawn with replacement by GPU-generated indices
 * from (seed, replica, step), and full-batch gradient descent sees every row.
 */
import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { checkRows, type DataSource, drawRows, type SampleRequest } from './source.ts';

export class FixedDataset implements DataSource {
  readonly inputFeatures: number;
  readonly outputDim: number;
  readonly size: number;

  /** `x` [n, features] and `y` [n, outputs], batch 1 (shared) or one set per replica; the dataset owns them. */
  constructor(
    private readonly engine: Engine,
    readonly x: Tensor,
    readonly y: Tensor,
  ) {
    if (x.shape.length !== 2 || y.shape.length !== 2 || x.shape[0] !== y.shape[0]) {
      throw new InputError('data', `inputs ${x} and targets ${y} must be [n, features] and [n, outputs]`);
    }
    this.size = x.shape[0];
    this.inputFeatures = x.shape[1];
    this.outputDim = y.shape[1];
  }

  /** Draws n rows once from another source (at its step 0 of `seed`) and keeps them. */
  static fromSource(engine: Engine, source: DataSource, rows: number, seed: number): FixedDataset {
    checkRows(rows, 'data.trainingSetSize');
    const { x, y } = source.sample({ seed, step: 0, rows, replicas: 1 });
    return new FixedDataset(engine, x, y);
  }

  /** A minibatch drawn with replacement; rows must not exceed the dataset (a config error otherwise). */
  sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    checkRows(request.rows);
    if (request.rows > this.size) {
      throw new InputError(
        'train.batchSize',
        `${request.rows} is larger than the training set (${this.size} rows)`,
      );
    }
    const [x, y] = drawRows(this.engine, [this.x, this.y], this.size, request);
    return { x, y };
  }

  /** Every row, as non-owning views (disposing them is a no-op). */
  fullBatch(): { x: Tensor; y: Tensor } {
    return {
      x: this.engine.view(this.x, this.x.shape, this.x.batch),
      y: this.engine.view(this.y, this.y.shape, this.y.batch),
    };
  }

  dispose(): void {
    this.x.dispose();
    this.y.dispose();
  }
}
