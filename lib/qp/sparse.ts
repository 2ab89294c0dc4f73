/**
 * Sparse helpers of lib/qp: a growable triplet (row, column, value) list, its assembly into a
 * CSC matrix with sorted row indices, the CSC ↔ CSR transpose, and the shape check of a
 * QuadraticProgram's arrays (CSC structure included) that the writers and solvers rely on.
 */
import type { CscMatrix, QuadraticProgram } from './types.js';

/** Triplets appended one at a time; the typed arrays double when full. */
export class GrowableTriplets {
  rows = new Int32Array(1024);
  cols = new Int32Array(1024);
  values = new Float64Array(1024);
  length = 0;

  push(row: number, col: number, value: number): void {
    if (this.length === this.rows.length) {
      const capacity = this.length * 2;
      const rows = new Int32Array(capacity);
      rows.set(this.rows);
      this.rows = rows;
      const cols = new Int32Array(capacity);
      cols.set(this.cols);
      this.cols = cols;
      const values = new Float64Array(capacity);
      values.set(this.values);
      this.values = values;
    }
    this.rows[this.length] = row;
    this.cols[this.length] = col;
    this.values[this.length] = value;
    this.length++;
  }
}

/** Builds a CSC matrix from triplets that have no duplicate (row, col) pairs. */
export function tripletsToCsc(t: GrowableTriplets, nrows: number, ncols: number): CscMatrix {
  const colPtr = new Int32Array(ncols + 1);
  for (let k = 0; k < t.length; k++) colPtr[t.cols[k] + 1]++;
  for (let j = 0; j < ncols; j++) colPtr[j + 1] += colPtr[j];
  const next = colPtr.slice(0, ncols);
  const rowIndex = new Int32Array(t.length);
  const values = new Float64Array(t.length);
  for (let k = 0; k < t.length; k++) {
    const p = next[t.cols[k]]++;
    rowIndex[p] = t.rows[k];
    values[p] = t.values[k];
  }
  sortColumns(colPtr, rowIndex, values);
  return { nrows, ncols, colPtr, rowIndex, values };
}

/** Sorts the row indices within each column (insertion sort: columns are short and mostly sorted). */
function sortColumns(colPtr: Int32Array, rowIndex: Int32Array, values: Float64Array): void {
  const ncols = colPtr.length - 1;
  for (let j = 0; j < ncols; j++) {
    const start = colPtr[j];
    const end = colPtr[j + 1];
    for (let p = start + 1; p < end; p++) {
      const r = rowIndex[p];
      if (r >= rowIndex[p - 1]) continue;
      const v = values[p];
      let k = p - 1;
      while (k >= start && rowIndex[k] > r) {
        rowIndex[k + 1] = rowIndex[k];
        values[k + 1] = values[k];
        k--;
      }
      rowIndex[k + 1] = r;
      values[k + 1] = v;
    }
  }
}

/**
 * Transposes a compressed sparse matrix (CSC ↔ CSR): `outer` pointers (outerCount + 1), `inner`
 * indices in [0, innerCount), values. Entries of each output line come in input-line order.
 */
export function transposeCompressed(
  outer: Int32Array,
  inner: Int32Array,
  values: ArrayLike<number>,
  innerCount: number,
): { ptr: Int32Array; index: Int32Array; values: Float64Array } {
  const outerCount = outer.length - 1;
  const nnz = outer[outerCount];
  const ptr = new Int32Array(innerCount + 1);
  for (let p = 0; p < nnz; p++) {
    const i = inner[p];
    if (!(i >= 0 && i < innerCount)) throw new RangeError(`index ${i} out of range [0, ${innerCount})`);
    ptr[i + 1]++;
  }
  for (let i = 0; i < innerCount; i++) ptr[i + 1] += ptr[i];
  const next = ptr.slice(0, innerCount);
  const index = new Int32Array(nnz);
  const out = new Float64Array(nnz);
  for (let o = 0; o < outerCount; o++) {
    for (let p = outer[o]; p < outer[o + 1]; p++) {
      const k = next[inner[p]]++;
      index[k] = o;
      out[k] = values[p];
    }
  }
  return { ptr, index, values: out };
}

/** Checks the shapes of a QuadraticProgram (writers and solvers rely on them). */
export function checkProblemShape(problem: QuadraticProgram): void {
  if (problem === null || typeof problem !== 'object') throw new TypeError('problem must be a QuadraticProgram object');
  const n = problem.q?.length;
  if (!(problem.q instanceof Float64Array)) throw new TypeError('problem.q must be a Float64Array');
  const m = problem.rowLower?.length;
  if (!(problem.rowLower instanceof Float64Array) || !(problem.rowUpper instanceof Float64Array))
    throw new TypeError('problem.rowLower and problem.rowUpper must be Float64Arrays');
  if (problem.rowUpper.length !== m) throw new RangeError(`problem.rowUpper has length ${problem.rowUpper.length}, expected ${m}`);
  if (!(problem.varLower instanceof Float64Array) || !(problem.varUpper instanceof Float64Array))
    throw new TypeError('problem.varLower and problem.varUpper must be Float64Arrays');
  if (problem.varLower.length !== n || problem.varUpper.length !== n)
    throw new RangeError(`problem.varLower/varUpper must have length ${n} (the length of q)`);
  for (const [label, M, rows] of [['P', problem.P, n], ['A', problem.A, m]] as const) {
    if (!M || !(M.colPtr instanceof Int32Array) || !(M.rowIndex instanceof Int32Array) || !(M.values instanceof Float64Array))
      throw new TypeError(`problem.${label} must be a CscMatrix with Int32Array colPtr/rowIndex and Float64Array values`);
    if (M.nrows !== rows || M.ncols !== n) throw new RangeError(`problem.${label} is ${M.nrows}×${M.ncols}, expected ${rows}×${n}`);
    if (M.colPtr.length !== n + 1) throw new RangeError(`problem.${label}.colPtr has length ${M.colPtr.length}, expected ${n + 1}`);
    const nnz = M.colPtr[n];
    if (M.rowIndex.length < nnz || M.values.length < nnz) throw new RangeError(`problem.${label} has fewer entries than colPtr says`);
    for (let j = 0; j < n; j++) {
      if (M.colPtr[j + 1] < M.colPtr[j]) throw new RangeError(`problem.${label}.colPtr is not non-decreasing at column ${j}`);
      for (let p = M.colPtr[j]; p < M.colPtr[j + 1]; p++) {
        const i = M.rowIndex[p];
        if (i < 0 || i >= rows) throw new RangeError(`problem.${label} has row index ${i} out of range in column ${j}`);
        if (label === 'P' && i > j) throw new RangeError(`problem.P must hold the upper triangle only (entry (${i}, ${j}))`);
      }
    }
  }
  if (!Number.isFinite(problem.r)) throw new RangeError('problem.r must be a finite number');
}
