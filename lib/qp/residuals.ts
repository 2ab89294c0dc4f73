/**
 * Independent evaluation of a QP solution: objective, constraint violation and KKT residuals,
 * computed here from the problem data alone (no solver code), so the benchmark's success
 * criterion and `qp compare` do not trust what a solver says about itself.
 *
 * Problem: minimise ½ xᵀPx + qᵀx + r  s.t.  l ≤ Ax ≤ u,  lb ≤ x ≤ ub  (P stored as upper triangle).
 * Multipliers follow the OSQP sign convention: y_i > 0 when the upper side of row i is active,
 * y_i < 0 when the lower side is; z likewise for variable bounds.
 *
 * All three residuals are ABSOLUTE ∞-norms, as qpbenchmark defines them (see docs/qp-formats.md):
 *   primal = max( max_i dist(a_iᵀx, [l_i, u_i]), max_j dist(x_j, [lb_j, ub_j]) )
 *   dual   = ‖Px + q + Aᵀy + z‖∞
 *   gap    = | xᵀPx + qᵀx + Σ_i σ_i(y_i) + Σ_j σ_j(z_j) |,  σ(v) = u·v for v > 0, l·v for v < 0
 *            (the difference of the primal and the Lagrangian dual objective; multipliers on an
 *            infinite side contribute nothing here — they show up in the dual residual instead).
 */
import type { QpResiduals, QpStatus, QuadraticProgram } from './types.js';

/** y = A x. */
export function multiplyA(problem: QuadraticProgram, x: ArrayLike<number>): Float64Array {
  const { A } = problem;
  const y = new Float64Array(A.nrows);
  for (let j = 0; j < A.ncols; j++) {
    const xj = x[j];
    if (xj === 0) continue;
    for (let p = A.colPtr[j]; p < A.colPtr[j + 1]; p++) y[A.rowIndex[p]] += A.values[p] * xj;
  }
  return y;
}

/** out += Aᵀ y. */
function addATransposeTimes(problem: QuadraticProgram, y: ArrayLike<number>, out: Float64Array): void {
  const { A } = problem;
  for (let j = 0; j < A.ncols; j++) {
    let s = 0;
    for (let p = A.colPtr[j]; p < A.colPtr[j + 1]; p++) s += A.values[p] * y[A.rowIndex[p]];
    out[j] += s;
  }
}

/** P x with the full symmetric P (only its upper triangle is stored). */
export function multiplyP(problem: QuadraticProgram, x: ArrayLike<number>): Float64Array {
  const { P } = problem;
  const n = P.ncols;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let p = P.colPtr[j]; p < P.colPtr[j + 1]; p++) {
      const i = P.rowIndex[p];
      const v = P.values[p];
      out[i] += v * x[j];
      if (i !== j) out[j] += v * x[i];
    }
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function checkVector(name: string, v: unknown, length: number): asserts v is ArrayLike<number> {
  if (v === null || typeof v !== 'object' || typeof (v as ArrayLike<number>).length !== 'number')
    throw new TypeError(`${name} must be an array or typed array of numbers`);
  if ((v as ArrayLike<number>).length !== length)
    throw new RangeError(`${name} has length ${(v as ArrayLike<number>).length}, expected ${length}`);
}

/** ½ xᵀPx + qᵀx + r. */
export function objectiveValue(problem: QuadraticProgram, x: ArrayLike<number>): number {
  checkVector('x', x, problem.q.length);
  const Px = multiplyP(problem, x);
  return 0.5 * dot(x, Px) + dot(problem.q, x) + problem.r;
}

export interface PrimalEvaluation {
  objective: number;
  /** max(rowViolation, boundViolation). */
  primal: number;
  /** Largest distance of a_iᵀx from [l_i, u_i]. */
  rowViolation: number;
  /** Largest distance of x_j from [lb_j, ub_j]. */
  boundViolation: number;
  /** Index of the most violated row (−1 when none is violated). */
  worstRow: number;
  /** Index of the most violated variable bound (−1 when none is violated). */
  worstVariable: number;
}

/** Objective and constraint violation of a bare point x (no multipliers needed). */
export function evaluatePrimal(problem: QuadraticProgram, x: ArrayLike<number>): PrimalEvaluation {
  const n = problem.q.length;
  checkVector('x', x, n);
  const Ax = multiplyA(problem, x);
  const Px = multiplyP(problem, x);
  let rowViolation = 0;
  let worstRow = -1;
  for (let i = 0; i < Ax.length; i++) {
    const v = Math.max(problem.rowLower[i] - Ax[i], Ax[i] - problem.rowUpper[i], 0);
    if (v > rowViolation || Number.isNaN(v)) {
      rowViolation = Number.isNaN(v) ? Infinity : v;
      worstRow = i;
    }
  }
  let boundViolation = 0;
  let worstVariable = -1;
  for (let j = 0; j < n; j++) {
    const v = Math.max(problem.varLower[j] - x[j], x[j] - problem.varUpper[j], 0);
    if (v > boundViolation || Number.isNaN(v)) {
      boundViolation = Number.isNaN(v) ? Infinity : v;
      worstVariable = j;
    }
  }
  return {
    objective: 0.5 * dot(x, Px) + dot(problem.q, x) + problem.r,
    primal: Math.max(rowViolation, boundViolation),
    rowViolation,
    boundViolation,
    worstRow,
    worstVariable,
  };
}

export interface KktEvaluation extends QpResiduals, PrimalEvaluation {
  /** Lagrangian dual objective −½xᵀPx − Σσ(y) − Σσ(z) + r. */
  dualObjective: number;
}

/** Support term σ(v) of one multiplier against its interval [lo, up]. */
function support(v: number, lo: number, up: number): number {
  if (v > 0) return up < Infinity ? up * v : 0;
  if (v < 0) return lo > -Infinity ? lo * v : 0;
  return 0;
}

/**
 * KKT residuals of (x, y, z). z may be omitted for problems solved without separate bound
 * multipliers only if every variable is free; otherwise pass it.
 */
export function kktResiduals(
  problem: QuadraticProgram,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  z: ArrayLike<number>,
): KktEvaluation {
  const n = problem.q.length;
  const m = problem.rowLower.length;
  checkVector('x', x, n);
  checkVector('y', y, m);
  checkVector('z', z, n);
  const primal = evaluatePrimal(problem, x);
  const Px = multiplyP(problem, x);
  const stationarity = new Float64Array(n);
  for (let j = 0; j < n; j++) stationarity[j] = Px[j] + problem.q[j] + z[j];
  addATransposeTimes(problem, y, stationarity);
  let dual = 0;
  for (let j = 0; j < n; j++) {
    const a = Math.abs(stationarity[j]);
    if (a > dual || Number.isNaN(a)) dual = Number.isNaN(a) ? Infinity : a;
  }
  let supportSum = 0;
  for (let i = 0; i < m; i++) supportSum += support(y[i], problem.rowLower[i], problem.rowUpper[i]);
  for (let j = 0; j < n; j++) supportSum += support(z[j], problem.varLower[j], problem.varUpper[j]);
  const xPx = dot(x, Px);
  const qx = dot(problem.q, x);
  let gap = Math.abs(xPx + qx + supportSum);
  if (Number.isNaN(gap)) gap = Infinity;
  return {
    ...primal,
    dual,
    gap,
    dualObjective: -0.5 * xPx - supportSum + problem.r,
  };
}

/** Statuses that count as "found a solution" for the success criterion. */
export function isSolvedStatus(status: QpStatus): boolean {
  return status === 'solved';
}

/**
 * qpbenchmark-style success: status `solved` AND primal ≤ tol AND dual ≤ tol AND gap ≤ tol,
 * all absolute (residuals from {@link kktResiduals}).
 */
export function isSuccess(status: QpStatus, residuals: QpResiduals, tolerance: number): boolean {
  if (!(tolerance > 0)) throw new RangeError('tolerance must be a positive number');
  return isSolvedStatus(status) && residuals.primal <= tolerance && residuals.dual <= tolerance && residuals.gap <= tolerance;
}

/** Euclidean and max distance between two points. */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): { l2: number; linf: number } {
  if (a.length !== b.length) throw new RangeError(`vectors have lengths ${a.length} and ${b.length}`);
  let s = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d * d;
    if (d > m) m = d;
  }
  return { l2: Math.sqrt(s), linf: m };
}
