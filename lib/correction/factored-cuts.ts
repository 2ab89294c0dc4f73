/**
 * Cuts kept as factors (rows: 'factored', docs/correction.md): the margin cuts at a point with their
 * Dense kernel blocks as x ⊗ d (lib/models/factored-rows.ts) and the clean-loss cut as a dense
 * row, for the factored cut pool. The same cuts, selected by the same rule, as linearise in
 * cuts.ts makes for stored rows.
 */
import { AdvcorrectError } from '../errors.js';
import { cleanLossGradient } from '../models/index.js';
import { factoredMarginRows, factoredRowDot, type FactoredLayout, type FactoredRowData } from '../models/factored-rows.js';
import type { CorrectionProblem } from './state.js';

/** A cut aᵀw ≤ upper whose row is given as factors (margin cuts) or densely (the loss cut). */
export interface FactoredCut {
  example: number;
  cls: number;
  /** Empty: the row is in `factored` or `dense`. */
  index: Int32Array;
  value: Float32Array;
  upper: number;
  factored?: FactoredRowData;
  dense?: Float64Array;
}

const NONE_INDEX = new Int32Array(0);
const NONE_VALUE = new Float32Array(0);

/**
 * The cuts at point p (see linearise in cuts.ts): margin rows with g ≥ −activeTolerance at the
 * true δ (or exactly the keys of `only`), then the loss cut.
 */
export async function lineariseFactored(
  problem: CorrectionProblem,
  layout: FactoredLayout,
  p: Float64Array,
  advImages: Float32Array,
  advLabels: Uint8Array,
  targets: { deltaCut: number; etaCut: number },
  only?: ReadonlySet<string>,
): Promise<FactoredCut[]> {
  const { work, view, n, options, signal } = problem;
  view.write(p);
  const { deltaCut, etaCut } = targets;
  const rows = await factoredMarginRows(work, view, advImages, advLabels, { delta: deltaCut, classes: options.cutClasses, signal });
  const out: FactoredCut[] = [];
  for (let r = 0; r < rows.count; r++) {
    const g = rows.value[r]!;
    const example = rows.example[r]!;
    const cls = rows.wrongClass[r]!;
    if (only ? !only.has(`${example}:${cls}`) : g - (deltaCut - options.delta) < -options.activeTolerance) continue;
    const row = rows.rows[r]!;
    const dot = factoredRowDot(layout, row, p);
    if (!Number.isFinite(dot - g)) {
      throw new AdvcorrectError('ERR_MODEL', `the margin gradient of example ${example}, class ${cls} is not finite (g = ${g}); the gradient engine returned NaN/Infinity`);
    }
    out.push({ example, cls, index: NONE_INDEX, value: NONE_VALUE, upper: dot - g, factored: row });
  }
  if (!only || only.has('-1:-1')) {
    const { loss, gradient } = await cleanLossGradient(work, view, problem.cleanImages, problem.cleanLabels, { signal });
    let dot = 0;
    for (let i = 0; i < n; i++) dot += gradient[i]! * p[i]!;
    if (!Number.isFinite(dot - loss)) throw new AdvcorrectError('ERR_MODEL', `the clean-loss gradient is not finite (loss ${loss})`);
    out.push({ example: -1, cls: -1, index: NONE_INDEX, value: NONE_VALUE, upper: dot - (loss - etaCut), dense: gradient });
  }
  return out;
}
