/**
 * The ADMM solver (OSQP algorithm, native/qp/admm.h) for
 *   - general convex QPs (`solveAdmm`): sparse quasi-definite KKT system, LDLᵀ under AMD;
 *   - the cut QP of a cut pool (`solveCutPoolAdmm`): P = D diagonal, Woodbury reduction to
 *     the m×m Schur complement, dense Cholesky.
 * Arguments are validated here with exact TypeError/RangeError messages (and again natively).
 * Solver outcomes (infeasible, limits, aborted, non-convex) are statuses, never exceptions.
 */
import { AdvcorrectError, abortError, rejectRenamedKeys } from '../errors.js';
import { loadNative } from '../native.js';
import type { CscMatrix, QpResult, QpSolveControl, QuadraticProgram } from './types.js';

export interface AdmmWarmStart {
  /** Primal start (length n). */
  x?: Float64Array;
  /** Row multipliers (length m). */
  y?: Float64Array;
  /** Variable-bound multipliers (length n). */
  z?: Float64Array;
}

/**
 * OSQP-like settings (OSQP's eps_abs, eps_rel, eps_prim_inf and eps_dual_inf are `tolerance`,
 * `relativeTolerance`, `primalInfeasibilityTolerance` and `dualInfeasibilityTolerance` here, as
 * in the C++ code). Defaults: `admmDefaults()`.
 */
export interface AdmmOptions {
  /** Absolute tolerance (OSQP's eps_abs; default 1e-3). */
  tolerance?: number;
  /** Relative tolerance (OSQP's eps_rel; default 1e-3). */
  relativeTolerance?: number;
  /** Tolerance of the primal infeasibility test (OSQP's eps_prim_inf). */
  primalInfeasibilityTolerance?: number;
  /** Tolerance of the dual infeasibility test (OSQP's eps_dual_inf). */
  dualInfeasibilityTolerance?: number;
  /** Initial step ρ (default 0.1); equality rows use 1e3·ρ, free rows 1e-6. */
  rho?: number;
  sigma?: number;
  /** Relaxation α in (0, 2) (default 1.6). */
  alpha?: number;
  adaptiveRho?: boolean;
  /** ρ changes only when the new value differs by more than this factor (default 5). */
  adaptiveRhoTolerance?: number;
  /** Least iterations between ρ updates; 0 = automatic (default). */
  adaptiveRhoInterval?: number;
  /** Ruiz equilibration passes (default 10; 0 = no scaling). */
  scalingIterations?: number;
  polish?: boolean;
  /** Also require the duality gap within tolerance + relativeTolerance·(objective terms) to stop (default true; OSQP does not). */
  gapTermination?: boolean;
  polishRefineIterations?: number;
  /** Regularisation δ of the polishing system (default 1e-6). */
  delta?: number;
  /** Residuals are checked every this many iterations (default 25). */
  checkTermination?: number;
  maxIterations?: number;
  /** Wall-clock limit in ms (0 = none). */
  timeLimitMs?: number;
  warmStart?: AdmmWarmStart;
}

export interface AdmmResult extends QpResult {
  solver: 'admm';
  /** True when the returned solution comes from polishing (active-set KKT solve). */
  polished: boolean;
  rhoUpdates: number;
  /** Final scalar ρ. */
  rho: number;
  /** Variable-bound part of the Farkas certificate (primal_infeasible). */
  boundCertificate?: Float64Array;
  /** dual_infeasible: a direction d with Pd ≈ 0, qᵀd < 0 and Ad in the recession cone of the bounds. */
  ray?: Float64Array;
  /** Detail for non_convex. */
  message?: string;
}

/** Anything holding a native cut pool (lib/qp/cut-pool.ts `CutPool`). */
export interface CutPoolHandle {
  readonly nativeHandle: object;
}

export interface CutPoolAdmmOptions extends Omit<AdmmOptions, 'warmStart'> {
  /** Explicit start, or true (default) to start from the multipliers of the pool's last solve, false for a cold start. */
  warmStart?: AdmmWarmStart | boolean;
}

export type AdmmDefaults = Required<Omit<AdmmOptions, 'warmStart'>>;

/** The solver's defaults, as compiled into the addon (native/qp/admm.h, one place). */
export function admmDefaults(): AdmmDefaults {
  return loadNative().admmDefaults() as AdmmDefaults;
}

const NUMBER_OPTIONS: Array<[keyof AdmmOptions, 'positive' | 'nonNegative' | 'alpha' | 'count' | 'positiveCount' | 'atLeastOne']> = [
  ['tolerance', 'nonNegative'],
  ['relativeTolerance', 'nonNegative'],
  ['primalInfeasibilityTolerance', 'positive'],
  ['dualInfeasibilityTolerance', 'positive'],
  ['rho', 'positive'],
  ['sigma', 'positive'],
  ['alpha', 'alpha'],
  ['adaptiveRhoTolerance', 'atLeastOne'],
  ['adaptiveRhoInterval', 'count'],
  ['scalingIterations', 'count'],
  ['polishRefineIterations', 'count'],
  ['delta', 'positive'],
  ['checkTermination', 'positiveCount'],
  ['maxIterations', 'positiveCount'],
  ['timeLimitMs', 'nonNegative'],
];

/** Option keys renamed in 0.2.0 (old → new); an old key throws a TypeError. */
const RENAMED_OPTIONS = {
  epsAbs: 'tolerance',
  epsRel: 'relativeTolerance',
  epsPrimalInfeasible: 'primalInfeasibilityTolerance',
  epsDualInfeasible: 'dualInfeasibilityTolerance',
} as const;

function checkOptions(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const o = options as Record<string, unknown>;
  rejectRenamedKeys(o, RENAMED_OPTIONS);
  for (const [key, kind] of NUMBER_OPTIONS) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number') throw new TypeError(`options.${key} must be a number`);
    switch (kind) {
      case 'positive':
        if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`options.${key} must be a positive finite number, got ${v}`);
        break;
      case 'nonNegative':
        if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`options.${key} must be a finite number ≥ 0, got ${v}`);
        break;
      case 'alpha':
        if (!(v > 0 && v < 2)) throw new RangeError(`options.alpha must be in (0, 2), got ${v}`);
        break;
      case 'atLeastOne':
        if (!(v >= 1) || !Number.isFinite(v)) throw new RangeError(`options.${key} must be a finite number ≥ 1, got ${v}`);
        break;
      case 'count':
        if (!Number.isInteger(v) || v < 0 || v > 2e9) throw new RangeError(`options.${key} must be an integer ≥ 0, got ${v}`);
        break;
      case 'positiveCount':
        if (!Number.isInteger(v) || v < 1 || v > 2e9) throw new RangeError(`options.${key} must be a positive integer, got ${v}`);
        break;
    }
  }
  if (o.tolerance === 0 && o.relativeTolerance === 0) throw new RangeError('options.tolerance and options.relativeTolerance must not both be 0');
  for (const key of ['adaptiveRho', 'polish', 'gapTermination'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new TypeError(`options.${key} must be a boolean`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new TypeError('options.onProgress must be a function');
  return o;
}

function checkVector(v: unknown, name: string, length: number): Float64Array {
  if (!(v instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
  if (v.length !== length) throw new RangeError(`${name} must have length ${length}, got ${v.length}`);
  for (let i = 0; i < length; i++)
    if (!Number.isFinite(v[i])) throw new RangeError(`${name}[${i}] must be finite, got ${v[i]}`);
  return v;
}

function checkWarmStart(warm: unknown, n: number, m: number): Record<string, Float64Array> {
  if (warm === undefined) return {};
  if (warm === null || typeof warm !== 'object') throw new TypeError('options.warmStart must be an object {x?, y?, z?}');
  const w = warm as AdmmWarmStart;
  const out: Record<string, Float64Array> = {};
  if (w.x !== undefined) out.warmX = checkVector(w.x, 'options.warmStart.x', n);
  if (w.y !== undefined) out.warmY = checkVector(w.y, 'options.warmStart.y', m);
  if (w.z !== undefined) out.warmZ = checkVector(w.z, 'options.warmStart.z', n);
  return out;
}

function checkCsc(M: unknown, name: string, nrows: number, ncols: number, upper: boolean): CscMatrix {
  const c = M as CscMatrix;
  if (M === null || typeof M !== 'object' || !(c.colPtr instanceof Int32Array) || !(c.rowIndex instanceof Int32Array) || !(c.values instanceof Float64Array))
    throw new TypeError(`problem.${name} must be a CscMatrix with Int32Array colPtr/rowIndex and Float64Array values`);
  if (c.nrows !== nrows || c.ncols !== ncols) throw new RangeError(`problem.${name} is ${c.nrows}×${c.ncols}, expected ${nrows}×${ncols}`);
  if (c.colPtr.length !== ncols + 1) throw new RangeError(`problem.${name}.colPtr must have length ${ncols + 1}, got ${c.colPtr.length}`);
  if (c.colPtr[0] !== 0) throw new RangeError(`problem.${name}.colPtr[0] must be 0`);
  const nnz = c.colPtr[ncols];
  if (c.rowIndex.length < nnz || c.values.length < nnz)
    throw new RangeError(`problem.${name}.rowIndex and .values must hold colPtr[${ncols}] = ${nnz} entries`);
  for (let j = 0; j < ncols; j++) {
    const begin = c.colPtr[j];
    const end = c.colPtr[j + 1];
    if (end < begin) throw new RangeError(`problem.${name}.colPtr must be non-decreasing (column ${j})`);
    for (let p = begin; p < end; p++) {
      const i = c.rowIndex[p];
      if (i < 0 || i >= nrows) throw new RangeError(`problem.${name}.rowIndex[${p}] = ${i} is out of range [0, ${nrows})`);
      if (p > begin && i <= c.rowIndex[p - 1]) throw new RangeError(`problem.${name}.rowIndex must be strictly increasing within column ${j}`);
      if (upper && i > j) throw new RangeError(`problem.${name} must hold the upper triangle only (entry (${i}, ${j}))`);
      if (!Number.isFinite(c.values[p])) throw new RangeError(`problem.${name}.values[${p}] must be finite, got ${c.values[p]}`);
    }
  }
  // The native side wants exactly nnz entries.
  return { nrows, ncols, colPtr: c.colPtr, rowIndex: c.rowIndex.subarray(0, nnz), values: c.values.subarray(0, nnz) };
}

function checkBounds(lower: unknown, upper: unknown, what: string, names: [string, string], length: number): void {
  if (!(lower instanceof Float64Array) || !(upper instanceof Float64Array)) throw new TypeError(`problem.${names[0]} and problem.${names[1]} must be Float64Arrays`);
  if (lower.length !== length || upper.length !== length)
    throw new RangeError(`problem.${names[0]} and problem.${names[1]} must have length ${length}`);
  for (let i = 0; i < length; i++) {
    const lo = lower[i];
    const hi = upper[i];
    if (Number.isNaN(lo) || Number.isNaN(hi)) throw new RangeError(`${what} ${i} has a NaN bound`);
    if (lo > hi) throw new RangeError(`${what} ${i} has lower bound ${lo} > upper bound ${hi}`);
    if (lo === Infinity || hi === -Infinity) throw new RangeError(`${what} ${i} has an infinite bound on the wrong side`);
  }
}

/** Validates a QuadraticProgram for the ADMM; returns the object the addon reads. */
function nativeProblem(problem: QuadraticProgram): Record<string, unknown> {
  if (problem === null || typeof problem !== 'object') throw new TypeError('problem must be a QuadraticProgram object');
  if (!(problem.q instanceof Float64Array)) throw new TypeError('problem.q must be a Float64Array');
  const n = problem.q.length;
  for (let j = 0; j < n; j++) if (!Number.isFinite(problem.q[j])) throw new RangeError(`problem.q[${j}] must be finite, got ${problem.q[j]}`);
  if (typeof problem.r !== 'number' || !Number.isFinite(problem.r)) throw new RangeError('problem.r must be a finite number');
  if (!(problem.rowLower instanceof Float64Array)) throw new TypeError('problem.rowLower and problem.rowUpper must be Float64Arrays');
  const m = problem.rowLower.length;
  checkBounds(problem.rowLower, problem.rowUpper, 'row', ['rowLower', 'rowUpper'], m);
  checkBounds(problem.varLower, problem.varUpper, 'variable', ['varLower', 'varUpper'], n);
  const P = checkCsc(problem.P, 'P', n, n, true);
  const A = checkCsc(problem.A, 'A', m, n, false);
  return { P, A, q: problem.q, r: problem.r, rowLower: problem.rowLower, rowUpper: problem.rowUpper, varLower: problem.varLower, varUpper: problem.varUpper };
}

function nativeSettings(o: Record<string, unknown>, warm: Record<string, Float64Array>): Record<string, unknown> {
  const settings: Record<string, unknown> = { ...warm };
  for (const [key] of NUMBER_OPTIONS) if (o[key] !== undefined) settings[key] = o[key];
  for (const key of ['adaptiveRho', 'polish', 'gapTermination']) if (o[key] !== undefined) settings[key] = o[key];
  return settings;
}

function wrapNativeError(error: unknown): unknown {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof AdvcorrectError) return error;
  const e = error as Error & { code?: string };
  if (e?.code === 'ERR_NO_MEMORY') return new AdvcorrectError('ERR_NO_MEMORY', 'ADMM solver: out of memory (the native code could not allocate what this problem needs)', { cause: error });
  if (e?.message === 'the cut pool was disposed') return new AdvcorrectError('ERR_DISPOSED', 'the cut pool was disposed: create a new CutPool', { cause: error });
  return new AdvcorrectError('ERR_NATIVE', `ADMM solver failed: ${e?.message ?? String(error)}`, { cause: error });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NativeCall = (native: any, token: unknown) => unknown;

async function runAsync(call: NativeCall, signal: AbortSignal | undefined): Promise<AdmmResult> {
  const native = loadNative();
  if (signal?.aborted) throw abortError(signal);
  const token = new native.CancelToken();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return (await call(native, token)) as AdmmResult;
  } catch (error) {
    throw wrapNativeError(error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function runSync(call: NativeCall, signal: AbortSignal | undefined): AdmmResult {
  const native = loadNative();
  if (signal?.aborted) throw abortError(signal);
  const token = new native.CancelToken();
  try {
    return call(native, token) as AdmmResult;
  } catch (error) {
    throw wrapNativeError(error);
  }
}

/**
 * Solves minimise ½xᵀPx + qᵀx + r s.t. rowLower ≤ Ax ≤ rowUpper, varLower ≤ x ≤ varUpper by ADMM
 * off the main thread. An abort during the solve resolves with status 'aborted' (an already
 * aborted signal rejects with ERR_ABORTED).
 */
export async function solveAdmm(problem: QuadraticProgram, options: AdmmOptions & QpSolveControl = {}): Promise<AdmmResult> {
  const data = nativeProblem(problem);
  const o = checkOptions(options);
  const settings = nativeSettings(o, checkWarmStart(o.warmStart, problem.q.length, problem.rowLower.length));
  return runAsync((native, token) => native.admmSolve(data, settings, options.onProgress, token), options.signal);
}

/** Synchronous `solveAdmm` (blocks the calling thread: for worker threads and scripts). */
export function solveAdmmSync(problem: QuadraticProgram, options: AdmmOptions & QpSolveControl = {}): AdmmResult {
  const data = nativeProblem(problem);
  const o = checkOptions(options);
  const settings = nativeSettings(o, checkWarmStart(o.warmStart, problem.q.length, problem.rowLower.length));
  return runSync((native, token) => native.admmSolveSync(data, settings, options.onProgress, token), options.signal);
}

function poolArgs(pool: CutPoolHandle, w0: Float64Array, options: CutPoolAdmmOptions): { handle: object; settings: Record<string, unknown> } {
  if (pool === null || typeof pool !== 'object' || pool.nativeHandle === null || typeof pool.nativeHandle !== 'object')
    throw new TypeError('pool must be a CutPool');
  const n = (pool as unknown as { n?: number }).n;
  if (!(w0 instanceof Float64Array)) throw new TypeError('w0 must be a Float64Array');
  if (typeof n === 'number' && w0.length !== n) throw new RangeError(`w0 must have length ${n}, got ${w0.length}`);
  for (let j = 0; j < w0.length; j++) if (!Number.isFinite(w0[j])) throw new RangeError(`w0[${j}] must be finite, got ${w0[j]}`);
  const o = checkOptions(options);
  let warm: Record<string, Float64Array> = {};
  let warmFlag = true;
  if (typeof o.warmStart === 'boolean') warmFlag = o.warmStart;
  else if (o.warmStart !== undefined) {
    const m = (pool as unknown as { size?: number }).size;
    const ws = o.warmStart as AdmmWarmStart;
    if (ws === null || typeof ws !== 'object') throw new TypeError('options.warmStart must be a boolean or an object {x?, y?, z?}');
    warm = checkWarmStart(ws, w0.length, typeof m === 'number' ? m : (ws.y?.length ?? 0));
  }
  return { handle: pool.nativeHandle, settings: { ...nativeSettings(o, warm), warmStart: warmFlag } };
}

/**
 * Solves the cut QP of a pool, minimise ½(x − w₀)ᵀD(x − w₀) s.t. the pool's rows and bounds, by
 * ADMM with the m×m Schur complement (off the main thread; the pool is held busy meanwhile).
 * Records the multipliers in the pool (warm start of the next solve, inactive-cut pruning).
 */
export async function solveCutPoolAdmm(pool: CutPoolHandle, w0: Float64Array, options: CutPoolAdmmOptions & QpSolveControl = {}): Promise<AdmmResult> {
  const { handle, settings } = poolArgs(pool, w0, options);
  return runAsync((native, token) => native.admmSolveCutPool(handle, w0, settings, options.onProgress, token), options.signal);
}

/** Synchronous `solveCutPoolAdmm`. */
export function solveCutPoolAdmmSync(pool: CutPoolHandle, w0: Float64Array, options: CutPoolAdmmOptions & QpSolveControl = {}): AdmmResult {
  const { handle, settings } = poolArgs(pool, w0, options);
  return runSync((native, token) => native.admmSolveCutPoolSync(handle, w0, settings, options.onProgress, token), options.signal);
}
