import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import { Random } from '../data/random.js';
import { marginsFromLogits, predictLogitsAsync } from '../models/index.js';
import { bounds, exampleSeed, forwardLogits, prepare, yieldToEventLoop, type AttackOptions, type AttackResult } from './attacks.js';

/**
 * The Square attack (Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a query-efficient
 * black-box adversarial attack via random search", ECCV 2020), L∞, untargeted, margin loss.
 * It only evaluates the model (no gradients), so it is a check for gradient masking.
 */
export interface SquareOptions extends Omit<AttackOptions, 'targets'> {
  /** Query budget per example: model evaluations, the initial point included (default 5000). */
  queries?: number;
  /** Initial fraction p of the image area a square covers (default 0.8, the paper's L∞ value). */
  pInit?: number;
  /** Seed of the random search (default 0). */
  seed?: number;
}

/** Result of {@link square}: also the queries each example used. */
export interface SquareResult extends AttackResult {
  /** Model evaluations per example (1 for an example misclassified at the start). */
  queries: Int32Array;
}

export const SQUARE_DEFAULTS = { queries: 5000, pInit: 0.8 } as const;

/**
 * The paper's schedule of p, the fraction of pixels a square covers, at iteration `iteration` of
 * `queries`: p_init halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a
 * 10,000-query run, the iteration rescaled to ⌊iteration·10000/queries⌋ for other budgets.
 */
export function squareFraction(pInit: number, iteration: number, queries: number): number {
  const it = Math.floor((iteration * 10000) / queries);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((t) => it > t).length;
  return pInit / 2 ** halvings;
}

/**
 * Square attack under L∞: starts from vertical stripes x₀ + ε·(±1 per column and channel), then
 * per iteration draws a square window of side s = round(√(p·H·W)) (at least 1, at most
 * min(H, W) − 1) at a uniform position, sets it to x₀ ± ε with one random sign per channel, and
 * keeps the change when the margin f_y − max_{j≠y} f_j decreases. Every point stays in the
 * ε-ball ∩ clip range. An example stops at its first negative margin or when its budget is spent.
 * One random stream per (seed, example): results do not depend on the batch size.
 */
export async function square(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: SquareOptions): Promise<SquareResult> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const queries = options.queries ?? SQUARE_DEFAULTS.queries;
  if (!Number.isInteger(queries) || queries < 1) throw new RangeError('queries must be a positive integer');
  const pInit = options.pInit ?? SQUARE_DEFAULTS.pInit;
  if (typeof pInit !== 'number' || !(pInit > 0 && pInit <= 1)) throw new RangeError('pInit must be a number in (0, 1]');
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
  const { targets: _ignored, ...rest } = options as SquareOptions & { targets?: unknown };
  const p = await prepare(model, images, labels, rest);
  const [H, W, C] = p.graph.inputShape.length === 3 ? p.graph.inputShape : [1, p.graph.inputSize, 1];
  const d = p.graph.inputSize;
  const classes = p.graph.numClasses;
  const out = Float32Array.from(images);
  const outMargins = new Float64Array(p.n);
  const used = new Int32Array(p.n);
  const maxSide = Math.max(1, Math.min(H, W) - 1);
  for (let start = 0; start < p.n; start += p.batchSize) {
    const end = Math.min(p.n, start + p.batchSize);
    const b = end - start;
    const x0 = images.subarray(start * d, end * d);
    const { lower, upper } = bounds(x0, p);
    const labelsB = p.lossLabels.subarray(start, end);
    const rngs = Array.from({ length: b }, (_, r) => new Random(exampleSeed(seed, 0x5a, start + r)));
    // Initial point: vertical stripes.
    const xCur = new Float32Array(b * d);
    for (let r = 0; r < b; r++) {
      for (let w = 0; w < W; w++) {
        for (let c = 0; c < C; c++) {
          const sign = rngs[r].next() < 0.5 ? -1 : 1;
          for (let h = 0; h < H; h++) {
            const e = r * d + (h * W + w) * C + c;
            xCur[e] = clamp(x0[e] + sign * p.epsC[c], lower[e], upper[e]);
          }
        }
      }
    }
    const margin = marginsFromLogits(await predictLogitsAsync(model, xCur, { batchSize: p.batchSize, signal: options.signal }), labelsB, classes);
    used.fill(1, start, end);
    let rows = Int32Array.from({ length: b }, (_, r) => r).filter((r) => margin[r] >= 0);
    const signs = new Float64Array(C);
    for (let it = 1; it < queries && rows.length > 0; it++) {
      if (options.signal?.aborted) throw abortError(options.signal);
      const side = Math.min(maxSide, Math.max(1, Math.round(Math.sqrt(squareFraction(pInit, it, queries) * H * W))));
      const m = rows.length;
      const candidate = new Float32Array(m * d);
      for (let q = 0; q < m; q++) {
        const r = rows[q];
        const rng = rngs[r];
        candidate.set(xCur.subarray(r * d, (r + 1) * d), q * d);
        const top = rng.nextInt(H - side + 1);
        const left = rng.nextInt(W - side + 1);
        // Draw signs until the window changes (at most 10 draws: a window can be pinned by the clip range).
        for (let attempt = 0; attempt < 10; attempt++) {
          for (let c = 0; c < C; c++) signs[c] = rng.next() < 0.5 ? -1 : 1;
          let changed = false;
          for (let h = top; h < top + side && !changed; h++) {
            for (let w = left; w < left + side && !changed; w++) {
              for (let c = 0; c < C; c++) {
                const e = r * d + (h * W + w) * C + c;
                if (Math.fround(clamp(x0[e] + signs[c] * p.epsC[c], lower[e], upper[e])) !== xCur[e]) {
                  changed = true;
                  break;
                }
              }
            }
          }
          if (changed) break;
        }
        for (let h = top; h < top + side; h++) {
          for (let w = left; w < left + side; w++) {
            for (let c = 0; c < C; c++) {
              const local = (h * W + w) * C + c;
              const e = r * d + local;
              candidate[q * d + local] = clamp(x0[e] + signs[c] * p.epsC[c], lower[e], upper[e]);
            }
          }
        }
      }
      const logits = forwardLogits(model, p, candidate);
      const newMargin = marginsFromLogits(logits, Int32Array.from(rows, (r) => labelsB[r]), classes);
      const keep: number[] = [];
      for (let q = 0; q < m; q++) {
        const r = rows[q];
        used[start + r]++;
        if (newMargin[q] < margin[r]) {
          margin[r] = newMargin[q];
          xCur.set(candidate.subarray(q * d, (q + 1) * d), r * d);
        }
        if (margin[r] >= 0) keep.push(r);
      }
      rows = Int32Array.from(keep);
      if (it % 16 === 0) await yieldToEventLoop();
    }
    out.set(xCur, start * d);
    outMargins.set(margin, start);
    options.onProgress?.(end, p.n);
    await yieldToEventLoop();
  }
  let margins: Float64Array = outMargins;
  const given = Int32Array.from(labels);
  if (given.some((y, i) => y !== p.lossLabels[i])) {
    margins = marginsFromLogits(await predictLogitsAsync(model, out, { batchSize: p.batchSize, signal: options.signal }), given, classes);
  }
  return { images: out, margins, queries: used };
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
