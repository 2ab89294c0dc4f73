/**
 * The QP step (docs/correction.md, step 3): solve min ½‖w − w₀‖² over every cut in force, and when
 * the cuts contradict each other drop the support of the Farkas certificate and solve again.
 */
import type { QpResult } from '../qp/types.js';
import type { CorrectionOptions } from './options.js';
import type { DumpRow, LiveCuts } from './cuts.js';
import type { CutRecord } from './state.js';
import type { InfeasibleEvent } from './types.js';

/** Re-solves after dropping infeasible cuts, at most this many. */
export const INFEASIBLE_RETRIES = 3;

export const INFEASIBLE_RULE =
  'drop the margin cuts with a positive Farkas multiplier (the clean-loss cuts are kept); if only loss cuts carry the certificate, drop the oldest of them';

/** One cut QP as --dump-qp writes it. Rows are given in CSR. */
export interface CutQpSnapshot {
  round: number;
  iteration: number;
  /** Solve attempt within the iteration (re-solves after dropping infeasible cuts count up). */
  attempt: number;
  rowPtr: Int32Array;
  colIndex: Int32Array;
  values: Float64Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  w0: Float64Array;
}

/** Ids of the cuts to drop after an infeasible QP (see INFEASIBLE_RULE). */
export function dropInfeasible(cuts: readonly CutRecord[], certificate: Float64Array | undefined): number[] {
  if (!certificate || certificate.length !== cuts.length) {
    // No usable certificate: drop the newest margin cuts (those of the last point).
    const last = Math.max(...cuts.map((c) => c.point));
    return cuts.filter((c) => c.point === last && c.example >= 0).map((c) => c.id);
  }
  let scale = 0;
  for (let i = 0; i < certificate.length; i++) scale = Math.max(scale, Math.abs(certificate[i]!));
  const support = cuts.filter((_, i) => scale > 0 && Math.abs(certificate[i]!) > 1e-9 * scale);
  const margin = support.filter((c) => c.example >= 0).map((c) => c.id);
  if (margin.length > 0) return margin;
  const loss = support.filter((c) => c.example < 0).sort((a, b) => a.id - b.id);
  return loss.length > 0 ? [loss[0]!.id] : [];
}

/** Whether a QP result gives a point the line search can move towards. */
export function usableStatus(status: string): boolean {
  return status === 'solved' || status === 'solved_inaccurate' || status === 'iteration_limit_reached' || status === 'time_limit_reached';
}

/** The cuts as a CSR matrix with row bounds (−∞, upper], in the cuts' order. */
export function snapshotQp(
  cuts: readonly CutRecord[],
  rows: ReadonlyMap<number, DumpRow>,
  w0: Float64Array,
  round: number,
  iteration: number,
  attempt: number,
): CutQpSnapshot {
  const m = cuts.length;
  const rowPtr = new Int32Array(m + 1);
  cuts.forEach((c, i) => (rowPtr[i + 1] = rowPtr[i]! + rows.get(c.id)!.index.length));
  const colIndex = new Int32Array(rowPtr[m]!);
  const values = new Float64Array(rowPtr[m]!);
  const rowLower = new Float64Array(m).fill(-Infinity);
  const rowUpper = new Float64Array(m);
  cuts.forEach((c, i) => {
    const r = rows.get(c.id)!;
    colIndex.set(r.index, rowPtr[i]!);
    values.set(r.value, rowPtr[i]!);
    rowUpper[i] = r.upper;
  });
  return { round, iteration, attempt, rowPtr, colIndex, values, rowLower, rowUpper, w0 };
}

export interface QpStepOutcome {
  /** The last solve's result (after any re-solves). */
  qp: QpResult;
  /** Whether qp.x is a usable step target (usableStatus). */
  usable: boolean;
  /** Cuts removed because of infeasibility. */
  removed: number;
  /** Sum of the solve times of every attempt. */
  solveTimeMs: number;
  /** One event per infeasible solve. */
  infeasible: InfeasibleEvent[];
}

/**
 * Solves the cut QP centred at w₀ (warm-started), dropping the certificate's support and re-solving
 * up to INFEASIBLE_RETRIES times while it is primal infeasible. `onInfeasible` sees each event as it
 * happens; `onQp` each QP before it is solved (needs `cuts.dumpRows`). An aborted solve calls
 * checkAbort (which throws).
 */
export async function solveCutQp(
  cuts: LiveCuts,
  w0: Float64Array,
  options: Pick<CorrectionOptions, 'solver' | 'qpTolerance' | 'qpTimeLimitMs'>,
  at: { round: number; iteration: number },
  hooks: {
    signal?: AbortSignal;
    checkAbort: () => void;
    onQp?: (qp: CutQpSnapshot) => Promise<void> | void;
    onInfeasible?: (event: InfeasibleEvent) => void;
  },
): Promise<QpStepOutcome> {
  let qp: QpResult | undefined;
  let removed = 0;
  let solveTimeMs = 0;
  const infeasible: InfeasibleEvent[] = [];
  for (let attempt = 0; attempt <= INFEASIBLE_RETRIES; attempt++) {
    if (hooks.onQp) await hooks.onQp(snapshotQp(cuts.records, cuts.dumpRows!, w0, at.round, at.iteration, attempt));
    qp = await cuts.cutPool.solve(w0, {
      solver: options.solver,
      tolerance: options.qpTolerance,
      ...(options.qpTimeLimitMs > 0 ? { timeLimitMs: options.qpTimeLimitMs } : {}),
      warmStart: true,
      signal: hooks.signal,
    });
    solveTimeMs += qp.solveTimeMs;
    if (qp.status === 'aborted') hooks.checkAbort();
    if (qp.status !== 'primal_infeasible') break;
    const dropped = dropInfeasible(cuts.records, qp.certificate);
    removed += cuts.remove(dropped);
    const event: InfeasibleEvent = { round: at.round, iteration: at.iteration, dropped: dropped.length, rule: INFEASIBLE_RULE };
    infeasible.push(event);
    hooks.onInfeasible?.(event);
    if (dropped.length === 0) break;
  }
  return { qp: qp!, usable: usableStatus(qp!.status), removed, solveTimeMs, infeasible };
}
