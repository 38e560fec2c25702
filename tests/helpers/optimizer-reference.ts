/** Float64 reference of the optimizers: the formulas of src/train/optimizer.ts written out again, in float64. */
import type { OptimizerSpec } from '../../src/train/optimizer.ts';

/** One optimizer over flat parameters; `step(g, η_s, t)` applies the update of step t = s + 1. */
export class ReferenceOptimizer {
  private readonly first: Float64Array;
  private readonly second: Float64Array;
  constructor(
    private readonly spec: OptimizerSpec,
    readonly theta: Float64Array,
  ) {
    this.first = new Float64Array(theta.length);
    this.second = new Float64Array(theta.length);
  }

  step(grad: ArrayLike<number>, learningRate: number, t: number): void {
    const { spec, theta } = this;
    const lambda = spec.weightDecay;
    for (let i = 0; i < theta.length; i++) {
      let g = grad[i];
      if (spec.decoupledWeightDecay) theta[i] -= learningRate * lambda * theta[i];
      else g += lambda * theta[i];
      if (spec.kind === 'sgd') theta[i] -= learningRate * g;
      else if (spec.kind === 'momentum') {
        this.first[i] = spec.momentum * this.first[i] + g;
        theta[i] -= learningRate * (spec.nesterov ? g + spec.momentum * this.first[i] : this.first[i]);
      } else {
        this.first[i] = spec.beta1 * this.first[i] + (1 - spec.beta1) * g;
        this.second[i] = spec.beta2 * this.second[i] + (1 - spec.beta2) * g * g;
        const mHat = this.first[i] / (1 - spec.beta1 ** t);
        const vHat = this.second[i] / (1 - spec.beta2 ** t);
        theta[i] -= (learningRate * mHat) / (Math.sqrt(vHat) + spec.epsilon);
      }
    }
  }
}
