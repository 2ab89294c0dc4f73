/**
 * The cut pool of the cutting-plane method and its QP
 *
 *   minimise ½ (x − w₀)ᵀ D (x − w₀)  s.t.  lowerᵢ ≤ aᵢᵀx ≤ upperᵢ,  lb ≤ x ≤ ub,
 *
 * solved by the native dual active-set method (default) or ADMM (lib/qp/admm.ts).
 * Rows live natively (float32 rows stay float32, sparse rows as index/value pairs) with the Gram
 * matrix A D⁻¹ Aᵀ kept up to date incrementally. Arguments are checked here with exact
 * TypeError/RangeError messages, and again natively.
 */
import { AdvcorrectError, abortError, rejectRenamedKeys } from '../errors.js';
import { loadNative } from '../native.js';
import { solveCutPoolAdmm, solveCutPoolAdmmSync } from './admm.js';
import { checkPoolMemory } from './memory.js';
import type { QpResult, QpSolveControl } from './types.js';

export interface CutPoolOptions {
  /** D: one positive number for all variables, or n positive values. Default 1. */
  diagonal?: number | Float64Array;
  /** Variable lower bounds (n values, −Infinity allowed). */
  lower?: Float64Array;
  /** Variable upper bounds (n values, +Infinity allowed). */
  upper?: Float64Array;
}

export interface CutPoolSolveOptions extends QpSolveControl {
  /** 'dual' (default): exact dual active-set method; 'admm': OSQP-style ADMM to `tolerance`. */
  solver?: 'dual' | 'admm';
  /**
   * Feasibility tolerance: a row counts as violated beyond tolerance·max(1, |bound|) (dual); ADMM's
   * tolerance and relativeTolerance both. Default DEFAULT_DUAL_TOLERANCE (1e-9, dual),
   * DEFAULT_ADMM_TOLERANCE (1e-4, admm).
   */
  tolerance?: number;
  maxIterations?: number;
  /**
   * Wall-clock limit in ms for the whole solve, folding new rows into G included; reaching it
   * returns status 'time_limit_reached' (before the first iteration: x = w₀, zero multipliers).
   */
  timeLimitMs?: number;
  /** Start from the previous solve's working set (dual) or multipliers (ADMM). Default true. */
  warmStart?: boolean;
  /** Least time between two onProgress calls (dual solver), default 100 ms. */
  progressIntervalMs?: number;
}

export interface CutQpResult extends QpResult {
  /** Variable-bound part of the Farkas certificate when primal_infeasible. */
  boundCertificate?: Float64Array;
  /** Rows in the final working set (dual solver). */
  activeRows?: number;
  /** Variable bounds in the final working set (dual solver). */
  activeBounds?: number;
  /** The part of solveTimeMs spent recovering x from the multipliers and checking the residuals (dual solver). */
  residualTimeMs?: number;
}

export interface CsrRows {
  rowPtr: Int32Array;
  colIndex: Int32Array;
  values: Float64Array;
}

export const DEFAULT_DUAL_TOLERANCE = 1e-9;
export const DEFAULT_ADMM_TOLERANCE = 1e-4;

/** Solve option keys renamed in 0.2.0 (old → new); an old key throws a TypeError. */
const RENAMED_SOLVE_OPTIONS = { eps: 'tolerance' } as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NativePool = any;

function checkBoundPair(lower: unknown, upper: unknown): void {
  if (typeof lower !== 'number') throw new TypeError('lower must be a number');
  if (typeof upper !== 'number') throw new TypeError('upper must be a number');
  if (Number.isNaN(lower)) throw new RangeError('lower must not be NaN');
  if (Number.isNaN(upper)) throw new RangeError('upper must not be NaN');
  if (lower === Infinity) throw new RangeError('lower must not be Infinity');
  if (upper === -Infinity) throw new RangeError('upper must not be -Infinity');
  if (lower > upper) throw new RangeError(`lower (${lower}) must not exceed upper (${upper})`);
}

function checkFiniteValues(values: Float32Array | Float64Array, name: string): void {
  for (let k = 0; k < values.length; k++) {
    if (!Number.isFinite(values[k])) throw new RangeError(`${name}[${k}] must be finite, got ${values[k]}`);
  }
}

function wrapNativeError(error: unknown): unknown {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof AdvcorrectError) return error;
  const e = error as Error & { code?: string };
  if (e?.code === 'ERR_NO_MEMORY')
    return new AdvcorrectError('ERR_NO_MEMORY', 'cut pool: out of memory (the native code could not allocate what this pool needs)', { cause: error });
  if (e?.message === 'the cut pool was disposed') return disposedError();
  return new AdvcorrectError('ERR_NATIVE', `cut pool: ${e?.message ?? String(error)}`, { cause: error });
}

function disposedError(): AdvcorrectError {
  return new AdvcorrectError('ERR_DISPOSED', 'the cut pool was disposed: create a new CutPool');
}

/**
 * A growing set of constraint rows over n variables with its QP solvers. Not safe to change
 * while an asynchronous solve runs on it (appends and removals then throw).
 */
export class CutPool {
  /** The native pool (for other native solvers, e.g. lib/qp/admm.ts). */
  readonly nativeHandle: NativePool;
  readonly n: number;

  constructor(n: number, options: CutPoolOptions = {}) {
    if (typeof n !== 'number') throw new TypeError('n must be a number');
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { diagonal, lower, upper } = options;
    let d: Float64Array | undefined;
    if (typeof diagonal === 'number') {
      if (!(diagonal > 0) || !Number.isFinite(diagonal)) throw new RangeError(`diagonal must be positive and finite, got ${diagonal}`);
      if (diagonal !== 1) d = new Float64Array(n).fill(diagonal);
    } else if (diagonal !== undefined) {
      if (!(diagonal instanceof Float64Array)) throw new TypeError('diagonal must be a number or a Float64Array');
      if (diagonal.length !== n) throw new RangeError(`diagonal must have length ${n}, got ${diagonal.length}`);
      for (let j = 0; j < n; j++) {
        if (!(diagonal[j] > 0) || !Number.isFinite(diagonal[j]))
          throw new RangeError(`diagonal[${j}] must be positive and finite, got ${diagonal[j]}`);
      }
      d = diagonal;
    }
    for (const [name, b] of [
      ['lower', lower],
      ['upper', upper],
    ] as const) {
      if (b === undefined) continue;
      if (!(b instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
      if (b.length !== n) throw new RangeError(`${name} must have length ${n}, got ${b.length}`);
    }
    let lb: Float64Array | undefined;
    let ub: Float64Array | undefined;
    if (lower !== undefined || upper !== undefined) {
      lb = lower ?? new Float64Array(n).fill(-Infinity);
      ub = upper ?? new Float64Array(n).fill(Infinity);
      let any = false;
      for (let j = 0; j < n; j++) {
        if (Number.isNaN(lb[j])) throw new RangeError(`lower[${j}] must not be NaN`);
        if (Number.isNaN(ub[j])) throw new RangeError(`upper[${j}] must not be NaN`);
        if (lb[j] === Infinity) throw new RangeError(`lower[${j}] must not be Infinity`);
        if (ub[j] === -Infinity) throw new RangeError(`upper[${j}] must not be -Infinity`);
        if (lb[j] > ub[j]) throw new RangeError(`lower[${j}] (${lb[j]}) must not exceed upper[${j}] (${ub[j]})`);
        if (lb[j] > -Infinity || ub[j] < Infinity) any = true;
      }
      if (!any) lb = ub = undefined; // all free: no bounds
    }
    const native = loadNative();
    try {
      this.nativeHandle = new native.CutPool(n);
    } catch (error) {
      throw wrapNativeError(error);
    }
    this.n = n;
    if (d) this.nativeHandle.setDiagonal(d);
    if (lb && ub) this.nativeHandle.setBounds(lb, ub);
  }

  private disposed = false;

  /** Number of rows. */
  get size(): number {
    return this.call(() => this.nativeHandle.size) as number;
  }

  /** Appends the row lower ≤ rowᵀx ≤ upper and returns its id; a cut aᵀx ≤ b is `appendDense(a, -Infinity, b)`. */
  appendDense(row: Float32Array | Float64Array, lower: number, upper: number): number {
    if (!(row instanceof Float32Array) && !(row instanceof Float64Array)) throw new TypeError('row must be a Float32Array or Float64Array');
    if (row.length !== this.n) throw new RangeError(`row must have length ${this.n}, got ${row.length}`);
    checkBoundPair(lower, upper);
    checkFiniteValues(row, 'row');
    checkPoolMemory('cut pool: another stored row', this.memoryBytes(), row.BYTES_PER_ELEMENT * row.length);
    return this.call(() => this.nativeHandle.appendDense(row, lower, upper)) as number;
  }

  /** Appends a sparse row lower ≤ Σ value[k]·x[index[k]] ≤ upper (strictly increasing indices in [0, n)) and returns its id. */
  appendSparse(index: Int32Array, value: Float32Array | Float64Array, lower: number, upper: number): number {
    if (!(index instanceof Int32Array)) throw new TypeError('index must be an Int32Array');
    if (!(value instanceof Float32Array) && !(value instanceof Float64Array)) throw new TypeError('value must be a Float32Array or Float64Array');
    if (index.length !== value.length) throw new RangeError(`index and value must have the same length, got ${index.length} and ${value.length}`);
    checkBoundPair(lower, upper);
    for (let k = 0; k < index.length; k++) {
      const j = index[k];
      if (j < 0 || j >= this.n) throw new RangeError(`index[${k}] = ${j} is out of range [0, ${this.n})`);
      if (k > 0 && j <= index[k - 1]) throw new RangeError(`index must be strictly increasing (index[${k - 1}] = ${index[k - 1]}, index[${k}] = ${j})`);
    }
    checkFiniteValues(value, 'value');
    checkPoolMemory('cut pool: another stored row', this.memoryBytes(), (4 + value.BYTES_PER_ELEMENT) * value.length);
    return this.call(() => this.nativeHandle.appendSparse(index, value, lower, upper)) as number;
  }

  /** Appends several rows lower[i] ≤ rows[i]ᵀx ≤ upper[i]; each row is a dense array, or { index, value } for a sparse row. Returns their ids. */
  appendMany(
    rows: Array<Float32Array | Float64Array | { index: Int32Array; value: Float32Array | Float64Array }>,
    lower: ArrayLike<number>,
    upper: ArrayLike<number>,
  ): number[] {
    if (!Array.isArray(rows)) throw new TypeError('rows must be an array');
    for (const [name, bounds] of [
      ['lower', lower],
      ['upper', upper],
    ] as const) {
      if (bounds === null || typeof bounds !== 'object' || typeof bounds.length !== 'number') throw new TypeError(`${name} must be an array of numbers`);
      if (bounds.length !== rows.length) throw new RangeError(`${name} must have length ${rows.length}, got ${bounds.length}`);
    }
    return rows.map((row, i) => {
      if (row instanceof Float32Array || row instanceof Float64Array) return this.appendDense(row, lower[i], upper[i]);
      if (row === null || typeof row !== 'object') throw new TypeError(`rows[${i}] must be a typed array or { index, value }`);
      return this.appendSparse(row.index, row.value, lower[i], upper[i]);
    });
  }

  /** Row ids in row order. */
  ids(): number[] {
    return Array.from(this.nativeHandle.ids() as Float64Array);
  }

  /** Row bounds in row order. */
  rowBounds(): { lower: Float64Array; upper: Float64Array } {
    return this.nativeHandle.rowBounds();
  }

  /** Removes rows by id (unknown ids are ignored); returns how many went. */
  remove(ids: Iterable<number>): number {
    if (ids === null || typeof ids !== 'object' || typeof (ids as Iterable<number>)[Symbol.iterator] !== 'function')
      throw new TypeError('ids must be an iterable of numbers');
    const list = Float64Array.from(ids, (id, k) => {
      if (typeof id !== 'number' || !Number.isInteger(id)) throw new TypeError(`ids[${k}] must be an integer`);
      return id;
    });
    return this.call(() => this.nativeHandle.remove(list)) as number;
  }

  /** Removes rows whose multiplier was zero in each of the last k solves; returns how many went. */
  removeInactive(k: number): number {
    if (typeof k !== 'number') throw new TypeError('k must be a number');
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    return this.call(() => this.nativeHandle.removeInactive(k)) as number;
  }

  /**
   * Removes exact and near duplicates: a row whose direction has cosine ≥ 1 − tol (in the D⁻¹
   * metric) with an earlier row and whose bounds, rescaled, agree within tol; and all-zero rows
   * that every x satisfies. Returns how many went.
   */
  removeDuplicates(tol = 1e-9): number {
    if (typeof tol !== 'number') throw new TypeError('tol must be a number');
    if (!(tol >= 0 && tol < 1)) throw new RangeError(`tol must be in [0, 1), got ${tol}`);
    return this.call(() => this.nativeHandle.removeDuplicates(tol)) as number;
  }

  /** Bytes held natively (rows, Gram matrix, caches). */
  memoryBytes(): number {
    return this.call(() => this.nativeHandle.memoryBytes()) as number;
  }

  /** G = A D⁻¹ Aᵀ, row-major m×m (brings it up to date first). */
  gram(): Float64Array {
    return this.call(() => this.nativeHandle.gram()) as Float64Array;
  }

  /** A x (length size). */
  rowActivity(x: Float64Array): Float64Array {
    this.checkVector(x, 'x');
    return this.call(() => this.nativeHandle.rowActivity(x)) as Float64Array;
  }

  /** The rows in CSR form (dense rows keep only their non-zeros). */
  toCsr(): CsrRows {
    return this.call(() => this.nativeHandle.toCsr()) as CsrRows;
  }

  /** Frees the native memory now (the pool is unusable afterwards). */
  dispose(): void {
    if (this.disposed) return;
    this.call(() => this.nativeHandle.dispose());
    this.disposed = true;
  }

  /**
   * Solves the cut QP off the main thread. Infeasibility, limits and an abort during the solve
   * are statuses; an already aborted signal rejects with ERR_ABORTED.
   */
  async solve(w0: Float64Array, options: CutPoolSolveOptions = {}): Promise<CutQpResult> {
    const o = this.checkSolve(w0, options);
    if (o.solver === 'admm') return this.solveAdmm(w0, o, false);
    if (o.signal?.aborted) throw abortError(o.signal);
    const native = loadNative();
    const token = new native.CancelToken();
    const onAbort = (): void => token.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await this.nativeHandle.solveDual(w0, this.settings(o), o.onProgress, token)) as CutQpResult;
    } catch (error) {
      throw wrapNativeError(error);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** `solve` on the calling thread (blocks it: for worker threads and scripts). */
  solveSync(w0: Float64Array, options: CutPoolSolveOptions = {}): CutQpResult {
    const o = this.checkSolve(w0, options);
    if (o.solver === 'admm') return this.solveAdmm(w0, o, true) as CutQpResult;
    if (o.signal?.aborted) throw abortError(o.signal);
    const native = loadNative();
    const token = new native.CancelToken();
    return this.call(() => this.nativeHandle.solveDualSync(w0, this.settings(o), o.onProgress, token)) as CutQpResult;
  }

  private solveAdmm(w0: Float64Array, o: CutPoolSolveOptions, sync: true): CutQpResult;
  private solveAdmm(w0: Float64Array, o: CutPoolSolveOptions, sync: false): Promise<CutQpResult>;
  private solveAdmm(w0: Float64Array, o: CutPoolSolveOptions, sync: boolean): CutQpResult | Promise<CutQpResult> {
    const tolerance = o.tolerance ?? DEFAULT_ADMM_TOLERANCE;
    const options = {
      tolerance,
      relativeTolerance: tolerance,
      maxIterations: o.maxIterations,
      timeLimitMs: o.timeLimitMs,
      warmStart: o.warmStart ?? true,
      signal: o.signal,
      onProgress: o.onProgress,
    };
    return sync ? solveCutPoolAdmmSync(this, w0, options) : solveCutPoolAdmm(this, w0, options);
  }

  private settings(o: CutPoolSolveOptions): Record<string, unknown> {
    return {
      tolerance: o.tolerance ?? DEFAULT_DUAL_TOLERANCE,
      maxIterations: o.maxIterations,
      timeLimitMs: o.timeLimitMs,
      warmStart: o.warmStart ?? true,
      progressIntervalMs: o.progressIntervalMs,
    };
  }

  private checkSolve(w0: Float64Array, options: CutPoolSolveOptions): CutPoolSolveOptions {
    if (this.disposed) throw disposedError();
    this.checkVector(w0, 'w0');
    for (let j = 0; j < w0.length; j++) if (!Number.isFinite(w0[j])) throw new RangeError(`w0[${j}] must be finite, got ${w0[j]}`);
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    rejectRenamedKeys(options, RENAMED_SOLVE_OPTIONS);
    const { solver, tolerance, maxIterations, timeLimitMs, warmStart, signal, onProgress } = options;
    if (solver !== undefined && solver !== 'dual' && solver !== 'admm')
      throw new RangeError(`options.solver must be 'dual' or 'admm', got '${String(solver)}'`);
    if (tolerance !== undefined) {
      if (typeof tolerance !== 'number') throw new TypeError('options.tolerance must be a number');
      if (!(tolerance > 0) || !Number.isFinite(tolerance)) throw new RangeError(`options.tolerance must be a positive number, got ${tolerance}`);
    }
    if (maxIterations !== undefined) {
      if (typeof maxIterations !== 'number') throw new TypeError('options.maxIterations must be a number');
      if (!Number.isInteger(maxIterations) || maxIterations < 1)
        throw new RangeError(`options.maxIterations must be a positive integer, got ${maxIterations}`);
    }
    if (timeLimitMs !== undefined) {
      if (typeof timeLimitMs !== 'number') throw new TypeError('options.timeLimitMs must be a number');
      if (!(timeLimitMs > 0)) throw new RangeError(`options.timeLimitMs must be a positive number, got ${timeLimitMs}`);
    }
    if (warmStart !== undefined && typeof warmStart !== 'boolean') throw new TypeError('options.warmStart must be a boolean');
    const interval = options.progressIntervalMs;
    if (interval !== undefined && (typeof interval !== 'number' || !(interval >= 0)))
      throw new RangeError(`options.progressIntervalMs must be a number ≥ 0, got ${String(interval)}`);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('options.onProgress must be a function');
    if (this.size === 0) throw new RangeError('the cut pool is empty: append at least one row before solving');
    return options;
  }

  private checkVector(v: Float64Array, name: string): void {
    if (!(v instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
    if (v.length !== this.n) throw new RangeError(`${name} must have length ${this.n}, got ${v.length}`);
  }

  private call(fn: () => unknown): unknown {
    if (this.disposed) throw disposedError();
    try {
      return fn();
    } catch (error) {
      throw wrapNativeError(error);
    }
  }
}
