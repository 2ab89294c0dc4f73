/**
 * Cuts (docs/correction.md, steps 1–2): linearise the near-active margin constraints and the clean
 * loss at a point, and keep the cuts in force — the native cut pool plus one CutRecord per row —
 * with the removal rules (maxCuts, dropInactiveAfter) and the rebuild of a resumed run.
 */
import { AdvcorrectError } from '../errors.js';
import { cleanLossGradient, marginRows } from '../models/index.js';
import type { QpResult } from '../qp/types.js';
import { expandFactoredRow, type FactoredLayout, type FactoredRowData } from '../models/factored-rows.js';
import { lineariseFactored } from './factored-cuts.js';
import type { CorrectionProblem, CutRecord } from './state.js';

/** The cut pool as the loop uses it (lib/qp/cut-pool.ts). */
export interface CutPoolLike {
  readonly size: number;
  appendDense(row: Float32Array | Float64Array, lower: number, upper: number): number;
  appendSparse(index: Int32Array, value: Float32Array | Float64Array, lower: number, upper: number): number;
  /** Factored pools (lib/qp/factored-pool.ts): a row kept as its factors. */
  appendFactored?(row: FactoredRowData, lower: number, upper: number): number;
  /** Removes the rows with these ids (the loop passes them as an Int32Array). */
  remove(ids: Int32Array): number;
  solve(
    w0: Float64Array,
    options: { solver?: 'dual' | 'admm'; tolerance?: number; timeLimitMs?: number; warmStart?: boolean; signal?: AbortSignal },
  ): Promise<QpResult>;
  dispose?(): void;
}

/** One cut aᵀw ≤ upper as a sparse row, with the constraint it linearises (example −1: the loss cut). */
export interface CutRow {
  example: number;
  cls: number;
  index: Int32Array;
  value: Float32Array | Float64Array;
  upper: number;
  /** Factored rows (rows: 'factored'): the row as factors; index and value are then empty. */
  factored?: FactoredRowData;
  /** The loss cut of factored rows: the dense row itself; index and value are then empty. */
  dense?: Float64Array;
}

/** The targets the cuts aim at: δ·(1 + slack) for margins, η − slack·(η − L₀) for the loss. */
export function cutTargets(problem: Pick<CorrectionProblem, 'options' | 'eta' | 'cleanLoss0'>): { deltaCut: number; etaCut: number } {
  const { options, eta, cleanLoss0 } = problem;
  return {
    deltaCut: options.delta * (1 + options.cutSlack),
    etaCut: eta - options.cutSlack * Math.max(0, eta - cleanLoss0),
  };
}

/**
 * The cuts at point p on the first advCount examples of X̃: the margin rows the rule selects
 * (g ≥ −activeTolerance at the true δ), then the loss row. With `only` (keys "example:class",
 * "-1:-1" for the loss) exactly those rows are made, whatever their value (the rebuild after a resume).
 */
export async function linearise(
  problem: CorrectionProblem,
  p: Float64Array,
  advImages: Float32Array,
  advLabels: Uint8Array,
  only?: ReadonlySet<string>,
): Promise<CutRow[]> {
  const { work, view, n, options, signal } = problem;
  const { deltaCut, etaCut } = cutTargets(problem);
  if (problem.factored) return lineariseFactored(problem, problem.factored, p, advImages, advLabels, { deltaCut, etaCut }, only);
  view.write(p);
  const rows = await marginRows(work, view, advImages, advLabels, { delta: deltaCut, classes: options.cutClasses, format: 'sparse', signal });
  const out: CutRow[] = [];
  for (let r = 0; r < rows.count; r++) {
    const g = rows.value[r]!;
    const example = rows.example[r]!;
    const cls = rows.wrongClass[r]!;
    const key = `${example}:${cls}`;
    if (only ? !only.has(key) : g - (deltaCut - options.delta) < -options.activeTolerance) continue;
    const { index, value } = rows.sparse![r]!;
    // upper = ∇gᵀp − g(p)
    let dot = 0;
    for (let t = 0; t < index.length; t++) dot += value[t]! * p[index[t]!]!;
    if (!Number.isFinite(dot - g)) {
      throw new AdvcorrectError('ERR_MODEL', `the margin gradient of example ${example}, class ${cls} is not finite (g = ${g}); the gradient engine returned NaN/Infinity`);
    }
    out.push({ example, cls, index, value, upper: dot - g });
  }
  if (!only || only.has('-1:-1')) {
    const { loss, gradient } = await cleanLossGradient(work, view, problem.cleanImages, problem.cleanLabels, { signal });
    let dot = 0;
    for (let i = 0; i < n; i++) dot += gradient[i]! * p[i]!;
    // Loss cut: L(p) + ∇Lᵀ(w − p) ≤ η'  ⇔  ∇Lᵀw ≤ ∇Lᵀp − (L(p) − η')
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    if (!Number.isFinite(dot - loss)) throw new AdvcorrectError('ERR_MODEL', `the clean-loss gradient is not finite (loss ${loss})`);
    out.push({ example: -1, cls: -1, index: all, value: gradient, upper: dot - (loss - etaCut) });
  }
  return out;
}

/** A cut row as the QP dump needs it. */
export interface DumpRow {
  index: Int32Array;
  value: Float64Array;
  upper: number;
}

/**
 * The cuts in force: the cut pool (rows and solver) and the records that say where each row came
 * from, in the same order. The records live in `holder.cuts` (the loop state), so a snapshot of the
 * state always holds the live list. `dumpRows` keeps JS copies of the rows when the QPs are dumped.
 */
export class LiveCuts {
  readonly dumpRows: Map<number, DumpRow> | undefined;

  constructor(
    readonly cutPool: CutPoolLike,
    readonly n: number,
    private readonly holder: { cuts: CutRecord[] },
    keepRows = false,
    /** The layout of factored rows (to expand them for QP dumps). */
    private readonly factoredLayout?: FactoredLayout,
  ) {
    this.dumpRows = keepRows ? new Map() : undefined;
  }

  get records(): CutRecord[] {
    return this.holder.cuts;
  }

  /** Appends a row made at point `point`: dense when more than half its entries are non-zero. */
  append(point: number, cut: CutRow): CutRecord {
    const n = this.n;
    let id: number;
    if (cut.factored || cut.dense) {
      id = cut.factored ? this.cutPool.appendFactored!(cut.factored, -Infinity, cut.upper) : this.cutPool.appendDense(cut.dense!, -Infinity, cut.upper);
      if (this.dumpRows) {
        const row = cut.dense ?? expandFactoredRow(this.factoredLayout!, cut.factored!);
        const index = new Int32Array(n).map((_, i) => i);
        this.dumpRows.set(id, { index, value: row, upper: cut.upper });
      }
    } else if (cut.index.length * 2 > n) {
      // Dense enough: store densely (4 or 8 bytes a value instead of index + value).
      const dense = cut.value instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
      for (let t = 0; t < cut.index.length; t++) dense[cut.index[t]!] = cut.value[t]!;
      id = this.cutPool.appendDense(dense, -Infinity, cut.upper);
    } else {
      id = this.cutPool.appendSparse(cut.index, cut.value, -Infinity, cut.upper);
    }
    if (!cut.factored && !cut.dense) this.dumpRows?.set(id, { index: cut.index, value: Float64Array.from(cut.value), upper: cut.upper });
    const record = { id, point, example: cut.example, cls: cut.cls, inactive: 0 };
    this.holder.cuts.push(record);
    return record;
  }

  /** Removes the cuts with these ids; returns how many. */
  remove(ids: number[]): number {
    if (ids.length === 0) return 0;
    const gone = new Set(ids);
    this.cutPool.remove(Int32Array.from(ids));
    this.holder.cuts = this.holder.cuts.filter((c) => !gone.has(c.id));
    if (this.dumpRows) for (const id of ids) this.dumpRows.delete(id);
    return ids.length;
  }
}

/** Over the limit: the ids of the longest-inactive cuts first, then the oldest; never those of point `keep`. */
export function cutsOverLimit(cuts: readonly CutRecord[], maxCuts: number, keep: number): number[] {
  if (cuts.length <= maxCuts) return [];
  const excess = cuts.length - maxCuts;
  const order = [...cuts].filter((c) => c.point !== keep).sort((a, b) => b.inactive - a.inactive || a.id - b.id);
  return order.slice(0, excess).map((c) => c.id);
}

/** Counts consecutive zero multipliers per cut (y in the cuts' order); returns false when y does not fit. */
export function trackInactivity(cuts: readonly CutRecord[], y: Float64Array): boolean {
  if (y.length !== cuts.length) return false;
  cuts.forEach((c, i) => {
    c.inactive = y[i] === 0 ? c.inactive + 1 : 0;
  });
  return true;
}

/** Ids of the cuts inactive for at least `after` solves, never those of point `keep`. */
export function longInactive(cuts: readonly CutRecord[], after: number, keep: number): number[] {
  return cuts.filter((c) => c.inactive >= after && c.point !== keep).map((c) => c.id);
}

/**
 * Rebuilds the cut pool of a resumed run: re-linearises at each stored point only the cuts that
 * were live, and appends them in the original order (the same QP row for row). `live` must be
 * empty; its records end up equal to `stored` with the new cut pool ids.
 */
export async function rebuildCuts(
  problem: CorrectionProblem,
  live: LiveCuts,
  stored: readonly CutRecord[],
  points: readonly Float64Array[],
  pointAdvCount: readonly number[],
  advImages: Float32Array,
  advLabels: Uint8Array,
  checkAbort: () => void,
): Promise<void> {
  const keysByPoint = new Map<number, Set<string>>();
  for (const c of stored) {
    const keys = keysByPoint.get(c.point) ?? new Set<string>();
    keys.add(`${c.example}:${c.cls}`);
    keysByPoint.set(c.point, keys);
  }
  const made = new Map<string, CutRow>();
  for (const [pointIndex, keys] of [...keysByPoint.entries()].sort((a, b) => a[0] - b[0])) {
    checkAbort();
    const count = pointAdvCount[pointIndex]!;
    const rows = await linearise(problem, points[pointIndex]!, advImages.subarray(0, count * problem.inputSize), advLabels.subarray(0, count), keys);
    for (const cut of rows) made.set(`${pointIndex}:${cut.example}:${cut.cls}`, cut);
  }
  for (const record of stored) {
    const cut = made.get(`${record.point}:${record.example}:${record.cls}`);
    if (!cut) throw new AdvcorrectError('ERR_PARSE', 'the checkpoint does not match the model: a stored cut could not be rebuilt');
    const appended = live.append(record.point, cut);
    appended.inactive = record.inactive;
  }
}
