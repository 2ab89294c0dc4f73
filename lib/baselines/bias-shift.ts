/**
 * Bias shift: subtract one constant c from the biases of the model's first layer — the constant
 * is subtracted from every first-layer pre-activation, so fewer units fire on small perturbations.
 * When the first layer has no bias but feeds a BatchNormalization (ResNet8: conv1 → bn1), c is
 * subtracted from the normalisation's β, which is the same operation on the pre-activations
 * (bn1's output is what the ReLU sees). No data and no optimisation beyond the search for c.
 *
 * The search matches a target clean accuracy: accuracy falls as c grows, so the bracket [0, c]
 * is doubled from c = 0.05 until the accuracy drops below the target, then bisected (up to 40
 * halvings) keeping the largest c whose accuracy is still ≥ the target. The accuracy curve is a
 * step function of c and not guaranteed monotone; bisection finds one crossing.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import { ParameterView } from '../models/parameters.js';
import { accuracy, type LabelledImages } from './common.js';

/** The tensor a bias shift moves. */
export interface ShiftTarget {
  layer: string;
  tensor: 'bias' | 'beta';
  /** Why this tensor: 'first layer bias' or 'BatchNormalization after a bias-free first layer'. */
  reason: string;
}

interface LayerLike {
  name: string;
  getClassName(): string;
  trainableWeights: Array<{ name: string; originalName?: string }>;
  getConfig(): Record<string, unknown>;
}

function weightName(w: { name: string; originalName?: string }): string {
  const full = w.originalName ?? w.name;
  return full.slice(full.lastIndexOf('/') + 1).replace(/_\d+$/, '');
}

/**
 * The first layer's bias, or the β of the BatchNormalization right after a bias-free first
 * layer; a RangeError when the model has neither (the method does not apply).
 */
export function findShiftTarget(model: LayersModel): ShiftTarget {
  const layers = (model.layers as unknown as LayerLike[]).filter((l) => l.trainableWeights.length > 0);
  const first = layers[0];
  if (!first) throw new RangeError('bias-shift: the model has no trainable layer');
  if (first.trainableWeights.some((w) => weightName(w) === 'bias')) return { layer: first.name, tensor: 'bias', reason: 'first layer bias' };
  const next = layers[1];
  if (next && next.getClassName() === 'BatchNormalization' && next.trainableWeights.some((w) => weightName(w) === 'beta')) {
    return { layer: next.name, tensor: 'beta', reason: `BatchNormalization β after the bias-free first layer ${first.name}` };
  }
  throw new RangeError(`bias-shift does not apply: the first layer '${first.name}' has no bias and is not followed by a BatchNormalization`);
}

/** Sets the shifted tensor to original − c (original: the values when the shifter was made). */
export class BiasShifter {
  readonly target: ShiftTarget;
  private readonly view: ParameterView;
  private readonly original: Float64Array;
  private readonly offset: number;
  private readonly size: number;

  constructor(readonly model: LayersModel) {
    this.target = findShiftTarget(model);
    this.view = new ParameterView(model, [this.target.layer]);
    const entry = this.view.entry(this.target.layer, this.target.tensor)!;
    this.offset = entry.offset;
    this.size = entry.size;
    this.original = this.view.read();
  }

  /** Number of values shifted. */
  get count(): number {
    return this.size;
  }

  set(c: number): void {
    const w = Float64Array.from(this.original);
    for (let i = 0; i < this.size; i++) w[this.offset + i] -= c;
    this.view.write(w);
  }
}

export interface BiasShiftOptions {
  /** Clean accuracy to match, in [0, 1]. */
  targetAccuracy: number;
  /** Stop bisecting when the bracket is narrower than this (default 1e-5). */
  tolerance?: number;
  signal?: AbortSignal;
  /** Called after each accuracy measurement. */
  onStep?: (step: { shift: number; accuracy: number }) => void;
}

export interface BiasShiftResult {
  target: ShiftTarget;
  shift: number;
  /** Clean accuracy at the shift, on the data searched on. */
  accuracy: number;
  targetAccuracy: number;
  /** Whether the accuracy at the shift lies within one image (1/n) of the target. */
  matched: boolean;
  /** Every (shift, accuracy) measured. */
  steps: Array<{ shift: number; accuracy: number }>;
  timeMs: number;
}

/** Finds and applies (in place) the first-layer shift whose clean accuracy on `data` matches the target. */
export async function biasShift(model: LayersModel, data: LabelledImages, options: BiasShiftOptions): Promise<BiasShiftResult> {
  const started = Date.now();
  const target = options.targetAccuracy;
  if (typeof target !== 'number' || !(target >= 0 && target <= 1)) throw new RangeError(`targetAccuracy must be in [0, 1], got ${String(target)}`);
  const tolerance = options.tolerance ?? 1e-5;
  const shifter = new BiasShifter(model);
  const steps: Array<{ shift: number; accuracy: number }> = [];
  const measure = async (c: number): Promise<number> => {
    if (options.signal?.aborted) throw abortError(options.signal);
    shifter.set(c);
    const a = await accuracy(model, data, options.signal);
    steps.push({ shift: c, accuracy: a });
    options.onStep?.({ shift: c, accuracy: a });
    return a;
  };
  const n = data.labels.length;
  let lo = 0;
  let accLo = await measure(0);
  if (accLo > target) {
    let hi = 0.05;
    let accHi = await measure(hi);
    while (accHi >= target && hi < 1e3) {
      lo = hi;
      accLo = accHi;
      hi *= 2;
      accHi = await measure(hi);
    }
    if (accHi < target) {
      for (let k = 0; k < 40 && hi - lo > tolerance && accLo - target > 0.5 / n; k++) {
        const mid = (lo + hi) / 2;
        const a = await measure(mid);
        if (a >= target) {
          lo = mid;
          accLo = a;
        } else hi = mid;
      }
    }
  }
  shifter.set(lo);
  return { target: shifter.target, shift: lo, accuracy: accLo, targetAccuracy: target, matched: Math.abs(accLo - target) <= 1 / n + 1e-12, steps, timeMs: Date.now() - started };
}
