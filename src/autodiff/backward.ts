/**
 * The reverse pass: walks the values reached from the outputs in reverse topological order, sums
 * each value's gradient contributions once (in as few launches as it can) and hands the sum to the
 * value's VJP (the rules in ops-*.ts). Also the entry points built on it: gradients and H·v.
 */
import { InputError } from '../errors.ts';
import { SUM_MAX_TERMS, sumTensors } from '../kernels/autodiff.ts';
import { fill } from '../kernels/elementwise.ts';
import { product, sameShape } from '../kernels/shapes.ts';
import type { Tensor } from '../tensor/engine.ts';
import { productPlus } from './ops-linear.ts';
import type { Tape } from './tape.ts';
import type { Var } from './value.ts';

/** Gradients of `output` (one value per replica, or seeded with `seed`) with respect to `wrt`. */
export function gradients(t: Tape, output: Var, wrt: readonly Var[], seed?: Var): Var[] {
  if (product(output.shape) !== 1 && !seed)
    throw new InputError('grad', `output must be one value per replica, got [${output.shape}]; pass a seed`);
  let start = seed;
  if (!start) {
    const ones = t.adopt(t.engine.empty(output.shape, { batch: output.batch }));
    fill(t.engine, ones, 1);
    start = t.constant(ones);
  }
  return t.backward([[output, start]], wrt);
}

/** H·v per replica from gradients already on the tape: one reverse pass seeded with the vectors. */
export function hessianVectorProducts(
  t: Tape,
  gradients: readonly Var[],
  params: readonly Var[],
  vectors: readonly Tensor[],
): Var[] {
  if (vectors.length !== params.length)
    throw new InputError('hvp', `${vectors.length} vectors for ${params.length} parameters`);
  if (gradients.length !== params.length)
    throw new InputError('hvp', `${gradients.length} gradients for ${params.length} parameters`);
  const seeds: [Var, Var][] = [];
  gradients.forEach((g, i) => {
    const v = vectors[i];
    if (v.size !== product(g.shape) || (v.batch !== g.batch && g.batch !== 1))
      throw new InputError(`hvp.vectors[${i}]`, `expected batch ${g.batch} of [${g.shape}], got ${v}`);
    // A gradient that does not depend on the parameters contributes nothing (H = 0 there).
    if (g.requiresGrad) seeds.push([g, t.constant(t.engine.view(v, g.shape, v.batch))]);
  });
  return t.backward(seeds, params);
}

/**
 * H_pp·v of one parameter p: the diagonal block of H at p applied to v (p's shape, batch of the
 * gradient or 1), from gradients already on the tape. The same pass as `hessianVectorProducts` with
 * v zero outside p, but seeded at p's gradient only and pruned to the values that lead to p.
 */
export function hessianBlockProduct(
  t: Tape,
  gradients: readonly Var[],
  params: readonly Var[],
  index: number,
  vector: Tensor,
): Var {
  const g = gradients[index];
  const p = params[index];
  if (!g || !p) throw new InputError('hvp.block', `no parameter ${index} (${params.length} parameters)`);
  if (vector.size !== product(g.shape) || (vector.batch !== g.batch && g.batch !== 1))
    throw new InputError('hvp.block', `expected batch ${g.batch} of [${g.shape}], got ${vector}`);
  if (!g.requiresGrad) return zerosLike(t, p);
  return t.backward([[g, t.constant(t.engine.view(vector, g.shape, vector.batch))]], [p])[0];
}

/**
 * The gradients of Σ_k ⟨outputs_k, seeds_k⟩ with respect to `wrt`, recorded on the tape. Only the
 * values from which some `wrt` can be reached get gradients: a pass with respect to one parameter
 * skips the branches that lead only to the others (the rest of the graph costs nothing).
 */
export function reversePass(t: Tape, seeds: readonly (readonly [Var, Var])[], wrt: readonly Var[]): Var[] {
  const targets = new Set(wrt);
  const order: Var[] = [];
  const seen = new Set<Var>();
  // Values with a path to a target through their parents, found after their parents (post-order).
  const reaching = new Set<Var>();
  const visit = (v: Var) => {
    if (seen.has(v) || !v.requiresGrad) return;
    seen.add(v);
    for (const p of v.parents) visit(p);
    if (targets.has(v) || v.parents.some((p) => reaching.has(p))) reaching.add(v);
    order.push(v);
  };
  // Contributions per node, summed once when the node is reached (reverse topological order: all
  // of them have arrived by then).
  const contributions = new Map<Var, Var[]>();
  const contribute = (v: Var, g: Var) => {
    const list = contributions.get(v);
    if (list) list.push(g);
    else contributions.set(v, [g]);
  };
  for (const [output, seed] of seeds) {
    visit(output);
    contribute(output, seed);
  }
  t.pruned(reaching, () => {
    for (let i = order.length - 1; i >= 0; i--) {
      const v = order[i];
      const list = contributions.get(v);
      if (!list || !v.backward || !reaching.has(v)) continue;
      const parentGrads = v.backward(addAll(t, list));
      v.parents.forEach((p, k) => {
        const pg = parentGrads[k];
        if (pg && reaching.has(p)) contribute(p, pg);
      });
    }
  });
  return wrt.map((w) => {
    const list = contributions.get(w);
    return list ? addAll(t, list) : zerosLike(t, w);
  });
}

/** Σ of gradient contributions: up to six of the same shape and batch in one launch, else pairwise. */
function addAll(t: Tape, terms: readonly Var[]): Var {
  if (terms.length === 1) return terms[0];
  const first = terms[0];
  const uniform = terms.every((v) => v.batch === first.batch && sameShape(v.shape, first.shape));
  // A product nobody has read yet absorbs the others as its addend: one launch for both.
  const k = uniform ? terms.findIndex((v) => v.pending && v.product) : -1;
  if (k >= 0) {
    const rest = terms.filter((_, i) => i !== k);
    return productPlus(t, terms[k], addAll(t, rest));
  }
  if (!uniform || terms.length === 2) return terms.slice(1).reduce((acc, v) => t.add(acc, v), first);
  const more = SUM_MAX_TERMS - 1;
  let acc = sumOf(t, terms.slice(0, SUM_MAX_TERMS));
  for (let start = SUM_MAX_TERMS; start < terms.length; start += more)
    acc = sumOf(t, [acc, ...terms.slice(start, start + more)]);
  return acc;
}

/** One launch summing 2…6 same-shaped terms; each term's VJP is the incoming gradient. */
function sumOf(t: Tape, terms: readonly Var[]): Var {
  const first = terms[0];
  const compute = () => {
    // The output is taken from the pool before the terms are made, as when the launch was inline.
    const out = t.engine.empty(first.shape, { batch: first.batch });
    return sumTensors(
      t.engine,
      out,
      terms.map((v) => v.value),
    );
  };
  const result = () => ({ shape: first.shape, batch: first.batch });
  return t.deferrable(result, compute, [...terms], (h) => terms.map(() => h));
}

function zerosLike(t: Tape, x: Var): Var {
  const zeros = t.adopt(t.engine.empty(x.shape, { batch: x.batch }));
  fill(t.engine, zeros, 0);
  return t.constant(zeros);
}
