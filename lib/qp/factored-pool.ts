/**
 * The factored (matrix-free) cut pool: the cut QP of {@link CutPool} with D = I and no variable
 * bounds, for rows whose Dense-layer kernel blocks are rank-one x ⊗ d (per-example gradients).
 * Such rows are kept as their factors and a compact rest vector; other rows (the clean-loss cut)
 * stay dense. The native pool forms G = A Aᵀ, A w and Aᵀ y from the factors
 * (docs/qp-engine.md, "Factored rows"); the dual active-set method runs on it unchanged.
 *
 * Appends are checked against the pool memory limit (lib/qp/memory.ts) and refused with
 * AdvcorrectError ERR_NO_MEMORY before anything is allocated.
 */
import { AdvcorrectError, abortError, rejectRenamedKeys } from '../errors.js';
import { loadNative } from '../native.js';
import { checkPoolMemory, poolMemoryLimit } from './memory.js';
import { DEFAULT_DUAL_TOLERANCE, type CutPoolSolveOptions, type CutQpResult } from './cut-pool.js';

/** A kernel block of the parameter vector: rows × cols values (row-major) at offset, kept as x ⊗ d. */
export interface FactorBlock {
  offset: number;
  rows: number;
  cols: number;
}

/** A factored row: per block x (rows values) then d (cols values), then the rest coordinates in increasing order. */
export interface FactoredRowValues {
  factors: Float32Array;
  rest: Float32Array;
}

export interface FactoredCutPoolOptions {
  /** Bytes the pool may hold (default: poolMemoryLimit(), $ADVCORRECT_MEMORY_LIMIT or half the memory). */
  memoryLimitBytes?: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NativeFactoredPool = any;

function checkBoundPair(lower: unknown, upper: unknown): void {
  if (typeof lower !== 'number') throw new TypeError('lower must be a number');
  if (typeof upper !== 'number') throw new TypeError('upper must be a number');
  if (Number.isNaN(lower)) throw new RangeError('lower must not be NaN');
  if (Number.isNaN(upper)) throw new RangeError('upper must not be NaN');
  if (lower === Infinity) throw new RangeError('lower must not be Infinity');
  if (upper === -Infinity) throw new RangeError('upper must not be -Infinity');
  if (lower > upper) throw new RangeError(`lower (${lower}) must not exceed upper (${upper})`);
}

function wrap(error: unknown): unknown {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof AdvcorrectError) return error;
  const e = error as Error & { code?: string };
  if (e?.code === 'ERR_NO_MEMORY')
    return new AdvcorrectError('ERR_NO_MEMORY', 'factored cut pool: out of memory (the native code could not allocate what this pool needs)', { cause: error });
  if (e?.message === 'the cut pool was disposed') return disposed();
  return new AdvcorrectError('ERR_NATIVE', `factored cut pool: ${e?.message ?? String(error)}`, { cause: error });
}

function disposed(): AdvcorrectError {
  return new AdvcorrectError('ERR_DISPOSED', 'the cut pool was disposed: create a new FactoredCutPool');
}

/** Rows over n variables kept as factors where they are rank-one per block; solved by the dual active-set method. */
export class FactoredCutPool {
  readonly nativeHandle: NativeFactoredPool;
  readonly n: number;
  readonly blocks: readonly FactorBlock[];
  /** Floats of a row's factors (Σ rows + cols) and of its rest. */
  readonly factorSize: number;
  readonly restSize: number;
  readonly memoryLimitBytes: number;
  private disposed = false;

  constructor(n: number, blocks: readonly FactorBlock[], options: FactoredCutPoolOptions = {}) {
    if (typeof n !== 'number') throw new TypeError('n must be a number');
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    if (!Array.isArray(blocks)) throw new TypeError('blocks must be an array of { offset, rows, cols }');
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const flat = new Float64Array(blocks.length * 3);
    let end = 0;
    blocks.forEach((b, k) => {
      if (b === null || typeof b !== 'object') throw new TypeError(`blocks[${k}] must be an object { offset, rows, cols }`);
      for (const key of ['offset', 'rows', 'cols'] as const) {
        const v = b[key];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < (key === 'offset' ? 0 : 1)) {
          throw new RangeError(`blocks[${k}].${key} must be an integer ≥ ${key === 'offset' ? 0 : 1}, got ${String(v)}`);
        }
      }
      if (b.offset < end) throw new RangeError(`blocks[${k}] overlaps the block before it (blocks must be in offset order)`);
      end = b.offset + b.rows * b.cols;
      if (end > n) throw new RangeError(`blocks[${k}] ends at ${end}, beyond n = ${n}`);
      flat.set([b.offset, b.rows, b.cols], 3 * k);
    });
    const limit = options.memoryLimitBytes ?? poolMemoryLimit();
    if (typeof limit !== 'number' || !(limit > 0)) throw new RangeError(`memoryLimitBytes must be a positive number, got ${String(limit)}`);
    try {
      this.nativeHandle = new (loadNative().FactoredCutPool)(n, flat);
    } catch (error) {
      throw wrap(error);
    }
    this.n = n;
    this.blocks = blocks.map((b) => ({ offset: b.offset, rows: b.rows, cols: b.cols }));
    this.factorSize = this.nativeHandle.factorSize;
    this.restSize = this.nativeHandle.restSize;
    this.memoryLimitBytes = limit;
  }

  get size(): number {
    return this.call(() => this.nativeHandle.size) as number;
  }

  /** Appends the factored row lower ≤ aᵀx ≤ upper (a cut: lower = −Infinity); returns its id. */
  appendFactored(row: FactoredRowValues, lower: number, upper: number): number {
    if (row === null || typeof row !== 'object') throw new TypeError('row must be an object { factors, rest }');
    if (!(row.factors instanceof Float32Array)) throw new TypeError('row.factors must be a Float32Array');
    if (!(row.rest instanceof Float32Array)) throw new TypeError('row.rest must be a Float32Array');
    if (row.factors.length !== this.factorSize) throw new RangeError(`row.factors must have length ${this.factorSize}, got ${row.factors.length}`);
    if (row.rest.length !== this.restSize) throw new RangeError(`row.rest must have length ${this.restSize}, got ${row.rest.length}`);
    checkBoundPair(lower, upper);
    this.checkMemory('a factored row', 4 * (row.factors.length + row.rest.length));
    return this.call(() => this.nativeHandle.appendFactored(row.factors, row.rest, lower, upper)) as number;
  }

  /** Appends a dense row (n values; float32 rows stay float32). */
  appendDense(row: Float32Array | Float64Array, lower: number, upper: number): number {
    if (!(row instanceof Float32Array) && !(row instanceof Float64Array)) throw new TypeError('row must be a Float32Array or Float64Array');
    if (row.length !== this.n) throw new RangeError(`row must have length ${this.n}, got ${row.length}`);
    checkBoundPair(lower, upper);
    this.checkMemory('a dense row', row.BYTES_PER_ELEMENT * row.length);
    return this.call(() => this.nativeHandle.appendDense(row, lower, upper)) as number;
  }

  /** Appends a sparse row, kept as a dense float64 row (the factored pool has no sparse kind). */
  appendSparse(index: Int32Array, value: Float32Array | Float64Array, lower: number, upper: number): number {
    if (!(index instanceof Int32Array)) throw new TypeError('index must be an Int32Array');
    if (!(value instanceof Float32Array) && !(value instanceof Float64Array)) throw new TypeError('value must be a Float32Array or Float64Array');
    if (index.length !== value.length) throw new RangeError(`index and value must have the same length, got ${index.length} and ${value.length}`);
    this.checkMemory('a dense row', 8 * this.n);
    const dense = new Float64Array(this.n);
    for (let k = 0; k < index.length; k++) {
      const j = index[k]!;
      if (j < 0 || j >= this.n) throw new RangeError(`index[${k}] = ${j} is out of range [0, ${this.n})`);
      dense[j] = value[k]!;
    }
    return this.appendDense(dense, lower, upper);
  }

  ids(): number[] {
    return Array.from(this.call(() => this.nativeHandle.ids()) as Float64Array);
  }

  rowBounds(): { lower: Float64Array; upper: Float64Array } {
    return this.call(() => this.nativeHandle.rowBounds()) as { lower: Float64Array; upper: Float64Array };
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

  removeInactive(k: number): number {
    if (typeof k !== 'number') throw new TypeError('k must be a number');
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    return this.call(() => this.nativeHandle.removeInactive(k)) as number;
  }

  /** Bytes held natively (rows, G, caches). */
  memoryBytes(): number {
    return this.call(() => this.nativeHandle.memoryBytes()) as number;
  }

  /** G = A Aᵀ, row-major m×m. */
  gram(): Float64Array {
    return this.call(() => this.nativeHandle.gram()) as Float64Array;
  }

  /** A x. */
  rowActivity(x: Float64Array): Float64Array {
    this.checkVector(x, 'x');
    return this.call(() => this.nativeHandle.rowActivity(x)) as Float64Array;
  }

  /** Row `position` (0-based, row order) as n float64 values. */
  expandRow(position: number): Float64Array {
    if (typeof position !== 'number') throw new TypeError('position must be a number');
    if (!Number.isInteger(position) || position < 0 || position >= this.size) throw new RangeError(`position must be an integer in [0, ${this.size}), got ${position}`);
    return this.call(() => this.nativeHandle.expandRow(position)) as Float64Array;
  }

  dispose(): void {
    if (this.disposed) return;
    this.call(() => this.nativeHandle.dispose());
    this.disposed = true;
  }

  /** The dual active-set solve off the main thread (solver 'admm' is refused: ERR_UNSUPPORTED). */
  async solve(w0: Float64Array, options: CutPoolSolveOptions = {}): Promise<CutQpResult> {
    const o = this.checkSolve(w0, options);
    if (o.signal?.aborted) throw abortError(o.signal);
    const native = loadNative();
    const token = new native.CancelToken();
    const onAbort = (): void => token.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await this.nativeHandle.solveDual(w0, this.settings(o), o.onProgress, token)) as CutQpResult;
    } catch (error) {
      throw wrap(error);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  solveSync(w0: Float64Array, options: CutPoolSolveOptions = {}): CutQpResult {
    const o = this.checkSolve(w0, options);
    if (o.signal?.aborted) throw abortError(o.signal);
    const token = new (loadNative().CancelToken)();
    return this.call(() => this.nativeHandle.solveDualSync(w0, this.settings(o), o.onProgress, token)) as CutQpResult;
  }

  private settings(o: CutPoolSolveOptions): Record<string, unknown> {
    return { tolerance: o.tolerance ?? DEFAULT_DUAL_TOLERANCE, maxIterations: o.maxIterations, timeLimitMs: o.timeLimitMs, warmStart: o.warmStart ?? true, progressIntervalMs: o.progressIntervalMs };
  }

  private checkSolve(w0: Float64Array, options: CutPoolSolveOptions): CutPoolSolveOptions {
    if (this.disposed) throw disposed();
    this.checkVector(w0, 'w0');
    for (let j = 0; j < w0.length; j++) if (!Number.isFinite(w0[j])) throw new RangeError(`w0[${j}] must be finite, got ${w0[j]}`);
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (options.solver !== undefined && options.solver !== 'dual') {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `the factored cut pool solves with the dual active-set method only (got solver '${String(options.solver)}'); use rows: 'stored' for ADMM`);
    }
    rejectRenamedKeys(options, { eps: 'tolerance' });
    if (options.tolerance !== undefined && (typeof options.tolerance !== 'number' || !(options.tolerance > 0) || !Number.isFinite(options.tolerance)))
      throw new RangeError(`options.tolerance must be a positive number, got ${String(options.tolerance)}`);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
    if (this.size === 0) throw new RangeError('the cut pool is empty: append at least one row before solving');
    return options;
  }

  private checkMemory(what: string, bytes: number): void {
    if (this.disposed) throw disposed();
    const held = this.memoryBytes();
    checkPoolMemory(`factored cut pool: ${what} of ${bytes} bytes on top of the ${held} held`, held, bytes, this.memoryLimitBytes, 'fewer cuts (correction option maxCuts) or a larger limit');
  }

  private checkVector(v: Float64Array, name: string): void {
    if (!(v instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
    if (v.length !== this.n) throw new RangeError(`${name} must have length ${this.n}, got ${v.length}`);
  }

  private call(fn: () => unknown): unknown {
    if (this.disposed) throw disposed();
    try {
      return fn();
    } catch (error) {
      throw wrap(error);
    }
  }
}
