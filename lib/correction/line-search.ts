/**
 * The line search (docs/correction.md, step 4): the candidates w(α) = w_k + α(ŵ − w_k) on the α
 * grid, each measured on the two criteria. Also the points of the closing segment w₀ → w*, which
 * are made the same way (a line between two points of the method).
 */
import type { PointCriteria } from './criteria.js';

/** a + t·(b − a), computed entry by entry. */
export function pointOnLine(a: Float64Array, b: Float64Array, t: number): Float64Array {
  const w = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) w[i] = a[i]! + t * (b[i]! - a[i]!);
  return w;
}

export interface LinePoint {
  /** The step (α, or t on the closing segment). */
  t: number;
  w: Float64Array;
  at: PointCriteria;
}

/**
 * Evaluates `from + t·(to − from)` for every t of `grid` in order. `evaluate` measures a point
 * (it owns the model); `checkAbort` runs before each point.
 */
export async function lineSearch(
  from: Float64Array,
  to: Float64Array,
  grid: readonly number[],
  evaluate: (w: Float64Array) => Promise<PointCriteria>,
  checkAbort: () => void = () => undefined,
): Promise<LinePoint[]> {
  const points: LinePoint[] = [];
  for (const t of grid) {
    checkAbort();
    const w = pointOnLine(from, to, t);
    points.push({ t, w, at: await evaluate(w) });
  }
  return points;
}
