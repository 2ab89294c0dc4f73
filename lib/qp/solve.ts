/**
 * `solveQp`: one entry point for a general convex QP that dispatches to
 *   - 'dual': the cut pool's dual active-set solver, when P is a positive diagonal D
 *     (then ½xᵀDx + qᵀx + r = ½(x − w₀)ᵀD(x − w₀) + r − ½ w₀ᵀDw₀ with w₀ = −q/D, rows become
 *     cut-pool rows with lower/upper bounds, variable bounds become the pool's bounds);
 *   - 'admm': the OSQP-algorithm ADMM with a sparse KKT factorisation (any convex QP);
 *   - 'auto': 'dual' where it fits, else 'admm' (the reason is reported).
 * The answer is checked independently by lib/qp/residuals.ts.
 *
 * Also: `cutQpToProblem` / `dumpCutQp` turn a cut QP into a QuadraticProgram and write it as
 * QPS + LP with stable names (w0…w(n−1) for variables, c0…c(m−1) for cuts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AdvcorrectError, abortError, rejectRenamedKeys } from '../errors.js';
import { loadNative } from '../native.js';
import { writeLp } from './lp-writer.js';
import { genericNames } from './names.js';
import { writeQps } from './qps-writer.js';
import { checkProblemShape, transposeCompressed } from './sparse.js';
import { kktResiduals, type KktEvaluation } from './residuals.js';
import { solveAdmm } from './admm.js';
import { CutPool } from './cut-pool.js';
import type { QpProgress, QpResult, QpSolverName, QuadraticProgram } from './types.js';

export type QpSolverChoice = 'auto' | QpSolverName;

export interface SolveQpOptions {
  solver?: QpSolverChoice;
  /** Target absolute accuracy (dual: KKT tolerance; ADMM: its absolute tolerance). Default 1e-8. */
  tolerance?: number;
  /** ADMM's relative tolerance (default 0: pure absolute termination, as qpbenchmark runs OSQP). */
  relativeTolerance?: number;
  /** Wall-clock limit in ms (0 or absent: none). */
  timeLimitMs?: number;
  /** Iteration limit (absent: the solver's default). */
  maxIterations?: number;
  signal?: AbortSignal;
  onProgress?: (progress: QpProgress) => void;
}

export interface SolveQpResult extends QpResult {
  /** The solver that ran (the last one, when 'auto' handed over from the dual solver to ADMM). */
  solverUsed: QpSolverName;
  /** Why the status is what it is, when the residuals alone do not say (crossed bounds, a hand-over). */
  message?: string;
  /** Why 'auto' chose it, or why 'dual' does not apply (when 'auto' fell back to ADMM). */
  solverReason: string;
  /** Residuals and objective recomputed from the problem data by lib/qp/residuals.ts. */
  check: KktEvaluation;
}

export const DEFAULT_QP_TOLERANCE = 1e-8;

/** Option keys renamed in 0.2.0 (old → new); an old key throws a TypeError. */
const RENAMED_OPTIONS = { eps: 'tolerance', epsRel: 'relativeTolerance' } as const;

/**
 * Does P fit the dual solver (a positive diagonal)? Returns the diagonal, or a reason why not
 * ("Hessian has off-diagonal entries (x1, x2)", "zero diagonal entry at x17", …).
 */
export function positiveDiagonal(problem: QuadraticProgram): { diagonal: Float64Array } | { reason: string } {
  const { P } = problem;
  const n = problem.q.length;
  const d = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let p = P.colPtr[j]; p < P.colPtr[j + 1]; p++) {
      const i = P.rowIndex[p];
      const v = P.values[p];
      if (i !== j) {
        if (v !== 0)
          return { reason: `Hessian has off-diagonal entries (first at (${problem.varNames[i] ?? i}, ${problem.varNames[j] ?? j}))` };
      } else d[j] += v;
    }
  }
  for (let j = 0; j < n; j++) {
    if (d[j] < 0) return { reason: `negative diagonal entry ${d[j]} at ${problem.varNames[j] ?? j} (the problem is not convex)` };
    if (!(d[j] > 0)) return { reason: `zero diagonal entry at ${problem.varNames[j] ?? j} (the dual solver needs a positive diagonal Hessian)` };
  }
  return { diagonal: d };
}

/**
 * Rows up to which 'auto' picks the dual solver. It keeps a dense m × m Gram matrix and a
 * Cholesky factor of the working set, which suits the cut QPs it is made for (m up to a few
 * thousand); larger problems go to ADMM.
 */
export const DUAL_AUTO_MAX_ROWS = 5000;

/** Why the dual solver's dense Gram matrix would not fit (the native pool's limit, a quarter of the memory), if it would not. */
export function gramTooLarge(rows: number): string | undefined {
  const bytes = rows * rows * 8;
  const limit = loadNative().maxGramBytes() as number;
  if (bytes <= limit) return undefined;
  const gib = (b: number): string => (b / 2 ** 30).toFixed(1);
  return `its dense ${rows} × ${rows} Gram matrix needs ${gib(bytes)} GiB, more than a quarter of the memory (${gib(limit)} GiB)`;
}

function checkOptions(options: SolveQpOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  rejectRenamedKeys(options, RENAMED_OPTIONS);
  const { solver, tolerance, relativeTolerance, timeLimitMs, maxIterations, signal, onProgress } = options;
  if (solver !== undefined && solver !== 'auto' && solver !== 'dual' && solver !== 'admm')
    throw new RangeError(`options.solver must be 'auto', 'dual' or 'admm', got '${String(solver)}'`);
  if (tolerance !== undefined && (typeof tolerance !== 'number' || !(tolerance > 0) || !Number.isFinite(tolerance)))
    throw new RangeError('options.tolerance must be a positive finite number');
  if (relativeTolerance !== undefined && (typeof relativeTolerance !== 'number' || !(relativeTolerance >= 0) || !Number.isFinite(relativeTolerance)))
    throw new RangeError('options.relativeTolerance must be a finite number ≥ 0');
  if (timeLimitMs !== undefined && (typeof timeLimitMs !== 'number' || !(timeLimitMs >= 0)))
    throw new RangeError('options.timeLimitMs must be a number ≥ 0');
  if (maxIterations !== undefined && (!Number.isInteger(maxIterations) || maxIterations <= 0))
    throw new RangeError('options.maxIterations must be a positive integer');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('options.onProgress must be a function');
}

/**
 * Every number of the problem data is a number a solver can use: P, q, A finite, no NaN bound,
 * no bound infinite on the wrong side. RangeError naming the variable or row otherwise (every
 * solver path checks the same way, so a NaN never reaches one of them).
 */
export function checkProblemValues(problem: QuadraticProgram): void {
  const n = problem.q.length;
  const varName = (j: number): string => problem.varNames?.[j] ?? `x${j}`;
  const rowName = (i: number): string => problem.rowNames?.[i] ?? `row ${i}`;
  for (let j = 0; j < n; j++) if (!Number.isFinite(problem.q[j])) throw new RangeError(`the objective coefficient of ${varName(j)} is ${problem.q[j]}, not a finite number`);
  for (const [label, M] of [['P', problem.P], ['A', problem.A]] as const) {
    for (let j = 0; j < n; j++) {
      for (let p = M.colPtr[j]; p < M.colPtr[j + 1]; p++) {
        const v = M.values[p];
        if (Number.isFinite(v)) continue;
        const i = M.rowIndex[p];
        const where = label === 'P' ? `the Hessian entry (${varName(i)}, ${varName(j)})` : `the coefficient of ${varName(j)} in ${rowName(i)}`;
        throw new RangeError(`${where} is ${v}, not a finite number`);
      }
    }
  }
  const checkSides = (lo: number, up: number, what: string): void => {
    if (Number.isNaN(lo) || Number.isNaN(up)) throw new RangeError(`${what} has a NaN bound`);
    if (lo === Infinity) throw new RangeError(`${what} has the lower bound +Infinity`);
    if (up === -Infinity) throw new RangeError(`${what} has the upper bound -Infinity`);
  };
  for (let i = 0; i < problem.rowLower.length; i++) checkSides(problem.rowLower[i], problem.rowUpper[i], rowName(i));
  for (let j = 0; j < n; j++) checkSides(problem.varLower[j], problem.varUpper[j], `variable ${varName(j)}`);
}

/** The first row or variable whose lower bound exceeds its upper bound, as a message, if any. */
export function crossedBounds(problem: QuadraticProgram): { message: string; row?: number; variable?: number } | undefined {
  for (let i = 0; i < problem.rowLower.length; i++) {
    if (problem.rowLower[i] > problem.rowUpper[i])
      return { row: i, message: `row ${problem.rowNames[i] ?? i} has lower bound ${problem.rowLower[i]} > upper bound ${problem.rowUpper[i]}` };
  }
  for (let j = 0; j < problem.q.length; j++) {
    if (problem.varLower[j] > problem.varUpper[j])
      return { variable: j, message: `variable ${problem.varNames[j] ?? j} has lower bound ${problem.varLower[j]} > upper bound ${problem.varUpper[j]}` };
  }
  return undefined;
}

/** A primal_infeasible result for bounds that contradict themselves (no solver needed). */
function crossedResult(problem: QuadraticProgram, crossed: { message: string; row?: number; variable?: number }, solver: QpSolverName): QpResult & { message: string } {
  const n = problem.q.length;
  const m = problem.rowLower.length;
  const x = new Float64Array(n);
  for (let j = 0; j < n; j++) x[j] = Math.min(Math.max(0, problem.varLower[j]), problem.varUpper[j]);
  const crossing = crossed.row !== undefined ? problem.rowLower[crossed.row] - problem.rowUpper[crossed.row] : problem.varLower[crossed.variable!] - problem.varUpper[crossed.variable!];
  return {
    status: 'primal_infeasible',
    solver,
    x,
    y: new Float64Array(m),
    z: new Float64Array(n),
    objective: NaN,
    iterations: 0,
    solveTimeMs: 0,
    residuals: { primal: crossing, dual: NaN, gap: NaN },
    message: crossed.message,
  };
}

/** Solves a convex QP with the chosen (or automatically picked) solver. */
export async function solveQp(problem: QuadraticProgram, options: SolveQpOptions = {}): Promise<SolveQpResult> {
  checkProblemShape(problem);
  checkProblemValues(problem);
  checkOptions(options);
  const choice = options.solver ?? 'auto';
  if (options.signal?.aborted) throw abortError(options.signal);
  const crossed = crossedBounds(problem);
  if (crossed) {
    const solver: QpSolverName = choice === 'admm' ? 'admm' : 'dual';
    const result = crossedResult(problem, crossed, solver);
    const check = kktResiduals(problem, result.x, result.y, result.z);
    return { ...result, solverUsed: solver, solverReason: 'no solve: the bounds contradict each other', check };
  }
  const fit = positiveDiagonal(problem);
  let solverUsed: QpSolverName;
  let solverReason: string;
  const rows = problem.A.nrows;
  const tooLarge = gramTooLarge(rows);
  if (choice === 'dual') {
    const reason = 'reason' in fit ? fit.reason : tooLarge;
    if (reason !== undefined)
      throw new AdvcorrectError('ERR_UNSUPPORTED', `the dual solver does not apply to '${problem.name}': ${reason}; use --solver admm`);
    solverUsed = 'dual';
    solverReason = 'requested';
  } else if (choice === 'admm') {
    solverUsed = 'admm';
    solverReason = 'requested';
  } else if ('reason' in fit) {
    solverUsed = 'admm';
    solverReason = `auto: dual solver does not apply (${fit.reason})`;
  } else if (rows > DUAL_AUTO_MAX_ROWS) {
    solverUsed = 'admm';
    solverReason = `auto: the Hessian is a positive diagonal, but ${rows} rows exceed the dual solver's ${DUAL_AUTO_MAX_ROWS} (dense m × m Gram matrix)`;
  } else {
    solverUsed = 'dual';
    solverReason = 'auto: the Hessian is a positive diagonal';
  }
  let result =
    solverUsed === 'dual'
      ? await solveByCutPool(problem, (fit as { diagonal: Float64Array }).diagonal, options)
      : await solveByAdmm(problem, options);
  let check = kktResiduals(problem, result.x, result.y, result.z);
  let message: string | undefined;
  if (solverUsed === 'dual' && choice === 'auto' && result.status === 'solved_inaccurate' && !(check.primal <= inaccurateLimit(problem, options))) {
    // The dual method stopped at a point it could not make feasible (an infeasible problem whose
    // certificate did not verify, or one too badly conditioned): ADMM decides, with the time left.
    message = `the dual solver ended solved_inaccurate with primal residual ${check.primal.toExponential(2)}; handed over to ADMM`;
    const remaining = options.timeLimitMs ? Math.max(1, options.timeLimitMs - result.solveTimeMs) : undefined;
    const dualTime = result.solveTimeMs;
    result = await solveByAdmm(problem, { ...options, timeLimitMs: remaining });
    result = { ...result, solveTimeMs: result.solveTimeMs + dualTime };
    check = kktResiduals(problem, result.x, result.y, result.z);
    solverUsed = 'admm';
    solverReason = `${solverReason}; ${message}`;
  }
  return { ...result, solver: solverUsed, solverUsed, solverReason, check, ...(message ? { message } : {}) };
}

/** Largest recomputed primal residual that 'auto' accepts from a solved_inaccurate dual solve. */
function inaccurateLimit(problem: QuadraticProgram, options: SolveQpOptions): number {
  let scale = 1;
  for (const bounds of [problem.rowLower, problem.rowUpper])
    for (const b of bounds) if (Number.isFinite(b)) scale = Math.max(scale, Math.abs(b));
  return 1e3 * (options.tolerance ?? DEFAULT_QP_TOLERANCE) * scale;
}

async function solveByAdmm(problem: QuadraticProgram, options: SolveQpOptions): Promise<QpResult> {
  return solveAdmm(problem, {
    tolerance: options.tolerance ?? DEFAULT_QP_TOLERANCE,
    relativeTolerance: options.relativeTolerance ?? 0,
    timeLimitMs: options.timeLimitMs,
    maxIterations: options.maxIterations,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}

/** Rows of A as CSR (row pointers, column indices, values); entries keep column order. */
export function toCsr(problem: QuadraticProgram): { rowPtr: Int32Array; colIndex: Int32Array; values: Float64Array } {
  const { A } = problem;
  const t = transposeCompressed(A.colPtr, A.rowIndex, A.values, A.nrows);
  return { rowPtr: t.ptr, colIndex: t.index, values: t.values };
}

async function solveByCutPool(problem: QuadraticProgram, diagonal: Float64Array, options: SolveQpOptions): Promise<QpResult> {
  const n = problem.q.length;
  const m = problem.rowLower.length;
  const started = performance.now();
  const w0 = new Float64Array(n);
  // ½xᵀDx + qᵀx = ½(x − w₀)ᵀD(x − w₀) − ½ w₀ᵀDw₀ with w₀ = −q/D, and w₀ᵀDw₀ = Σ q_j²/d_j.
  let shift = problem.r;
  for (let j = 0; j < n; j++) {
    w0[j] = -problem.q[j] / diagonal[j];
    shift -= (0.5 * problem.q[j] * problem.q[j]) / diagonal[j];
  }

  const csr = toCsr(problem);
  // Rows with no entry are feasible or not on their own; the pool never sees them.
  const kept: number[] = [];
  for (let i = 0; i < m; i++) {
    const lo = problem.rowLower[i];
    const up = problem.rowUpper[i];
    if (csr.rowPtr[i + 1] > csr.rowPtr[i]) {
      if (lo > -Infinity || up < Infinity) kept.push(i);
    } else if (lo > 0 || up < 0) {
      return {
        status: 'primal_infeasible',
        solver: 'dual',
        x: w0,
        y: new Float64Array(m),
        z: new Float64Array(n),
        objective: NaN,
        iterations: 0,
        solveTimeMs: performance.now() - started,
        residuals: { primal: Math.max(lo, -up), dual: NaN, gap: NaN },
        certificate: Float64Array.from({ length: m }, (_, k) => (k === i ? (lo > 0 ? -1 : 1) : 0)),
      };
    }
  }
  if (kept.length === 0) return boxProjection(problem, diagonal, w0, shift, performance.now() - started);
  const pool = new CutPool(n, { diagonal, lower: problem.varLower, upper: problem.varUpper });
  try {
    for (const i of kept) {
      const a = csr.rowPtr[i];
      const b = csr.rowPtr[i + 1];
      pool.appendSparse(csr.colIndex.subarray(a, b), csr.values.subarray(a, b), problem.rowLower[i], problem.rowUpper[i]);
    }
    const result = await pool.solve(w0, {
      solver: 'dual',
      tolerance: options.tolerance ?? DEFAULT_QP_TOLERANCE,
      timeLimitMs: options.timeLimitMs,
      maxIterations: options.maxIterations,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const y = new Float64Array(m);
    kept.forEach((i, k) => (y[i] = result.y[k]));
    let certificate: Float64Array | undefined;
    if (result.certificate) {
      certificate = new Float64Array(m);
      kept.forEach((i, k) => (certificate![i] = result.certificate![k]));
    }
    return {
      ...result,
      solver: 'dual',
      y,
      certificate,
      objective: result.objective + shift,
    };
  } finally {
    pool.dispose();
  }
}

/**
 * The solution when no row constrains x (no rows, only free or empty rows, or no variables): with
 * a diagonal Hessian the problem separates, and x is w₀ clipped to the variable bounds, with
 * bound multipliers z = −D(x − w₀) (OSQP's signs: positive on an active upper bound).
 */
function boxProjection(problem: QuadraticProgram, diagonal: Float64Array, w0: Float64Array, shift: number, elapsedMs: number): QpResult {
  const n = problem.q.length;
  const x = new Float64Array(n);
  const z = new Float64Array(n);
  let objective = shift;
  for (let j = 0; j < n; j++) {
    x[j] = Math.min(Math.max(w0[j], problem.varLower[j]), problem.varUpper[j]);
    const d = x[j] - w0[j];
    z[j] = -diagonal[j] * d;
    objective += 0.5 * diagonal[j] * d * d;
  }
  return {
    status: 'solved',
    solver: 'dual',
    x,
    y: new Float64Array(problem.rowLower.length),
    z,
    objective,
    iterations: 0,
    solveTimeMs: elapsedMs,
    residuals: { primal: 0, dual: 0, gap: 0 },
  };
}

// ---------------------------------------------------------------------------------------------
// Cut QP → QuadraticProgram, and the dump used by the correction loop's --dump-qp.

export interface CutQpData {
  /** Rows in CSR: rowPtr (m+1), colIndex, values. */
  rowPtr: Int32Array;
  colIndex: Int32Array;
  values: Float64Array | Float32Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  w0: Float64Array;
  /** D (positive); identity when absent. */
  diagonal?: Float64Array;
  varLower?: Float64Array;
  varUpper?: Float64Array;
  name?: string;
}

/**
 * The cut QP  min ½(w − w₀)ᵀD(w − w₀)  s.t.  rowLower ≤ Aw ≤ rowUpper, varLower ≤ w ≤ varUpper
 * as a QuadraticProgram: P = D, q = −Dw₀, r = ½w₀ᵀDw₀ (so objectives agree exactly in exact
 * arithmetic). Variables are named w0…w(n−1), rows c0…c(m−1), the objective 'obj'.
 */
export function cutQpToProblem(data: CutQpData): QuadraticProgram {
  const n = data.w0?.length;
  if (!(data.w0 instanceof Float64Array)) throw new TypeError('w0 must be a Float64Array');
  const m = data.rowLower?.length;
  if (!(data.rowPtr instanceof Int32Array) || data.rowPtr.length !== m + 1)
    throw new RangeError(`rowPtr must be an Int32Array of length m + 1 = ${m + 1}`);
  if (!(data.rowUpper instanceof Float64Array) || data.rowUpper.length !== m) throw new RangeError(`rowUpper must have length ${m}`);
  const nnz = data.rowPtr[m];
  if (data.colIndex.length < nnz || data.values.length < nnz) throw new RangeError('colIndex/values are shorter than rowPtr says');
  for (const [label, v] of [['diagonal', data.diagonal], ['varLower', data.varLower], ['varUpper', data.varUpper]] as const)
    if (v !== undefined && v.length !== n) throw new RangeError(`${label} must have length n = ${n}`);
  const d = data.diagonal ?? new Float64Array(n).fill(1);
  // A in CSC (transpose of the CSR rows).
  const csc = transposeCompressed(data.rowPtr, data.colIndex, data.values, n);
  const colPtr = csc.ptr;
  const rowIndex = csc.index;
  const values = csc.values;
  const q = new Float64Array(n);
  let r = 0;
  for (let j = 0; j < n; j++) {
    q[j] = -d[j] * data.w0[j];
    r += 0.5 * d[j] * data.w0[j] * data.w0[j];
  }
  const pColPtr = new Int32Array(n + 1);
  for (let j = 0; j < n; j++) pColPtr[j + 1] = j + 1;
  return {
    name: data.name ?? 'CUTQP',
    P: { nrows: n, ncols: n, colPtr: pColPtr, rowIndex: Int32Array.from({ length: n }, (_, j) => j), values: Float64Array.from(d) },
    q,
    r,
    A: { nrows: m, ncols: n, colPtr, rowIndex, values },
    rowLower: Float64Array.from(data.rowLower),
    rowUpper: Float64Array.from(data.rowUpper),
    varLower: data.varLower ? Float64Array.from(data.varLower) : new Float64Array(n).fill(-Infinity),
    varUpper: data.varUpper ? Float64Array.from(data.varUpper) : new Float64Array(n).fill(Infinity),
    varNames: genericNames('w', n),
    rowNames: genericNames('c', m),
    objectiveName: 'obj',
  };
}

/** Writes `DIR/BASENAME.qps` and `DIR/BASENAME.lp` for a cut QP; returns the two paths. */
export async function dumpCutQpData(data: CutQpData, dir: string, basename: string): Promise<{ qps: string; lp: string }> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty string');
  if (typeof basename !== 'string' || basename === '' || /[\\/]/.test(basename))
    throw new TypeError('basename must be a non-empty file name without slashes');
  const problem = cutQpToProblem({ ...data, name: data.name ?? basename.replace(/\s+/g, '_') });
  const qps = path.join(dir, `${basename}.qps`);
  const lp = path.join(dir, `${basename}.lp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(qps, writeQps(problem));
    await writeFile(lp, writeLp(problem));
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot write the QP dump in ${dir}: ${(error as Error).message}`, { cause: error });
  }
  return { qps, lp };
}

/**
 * Writes the current cut QP of a pool as `DIR/BASENAME.qps` and `DIR/BASENAME.lp` (see
 * {@link cutQpToProblem} for the names). The pool does not expose D and the variable bounds, so
 * pass the ones it was built with (defaults: D = I, no bounds).
 */
export async function dumpCutQp(
  pool: CutPool,
  w0: Float64Array,
  dir: string,
  basename: string,
  options: { diagonal?: number | Float64Array; varLower?: Float64Array; varUpper?: Float64Array } = {},
): Promise<{ qps: string; lp: string }> {
  if (!(pool instanceof CutPool)) throw new TypeError('pool must be a CutPool');
  if (!(w0 instanceof Float64Array) || w0.length !== pool.n) throw new RangeError(`w0 must be a Float64Array of length ${pool.n}`);
  const csr = pool.toCsr();
  const { lower, upper } = pool.rowBounds();
  const diagonal = typeof options.diagonal === 'number' ? new Float64Array(pool.n).fill(options.diagonal) : options.diagonal;
  return dumpCutQpData(
    { rowPtr: csr.rowPtr, colIndex: csr.colIndex, values: csr.values, rowLower: lower, rowUpper: upper, w0, diagonal, varLower: options.varLower, varUpper: options.varUpper },
    dir,
    basename,
  );
}
