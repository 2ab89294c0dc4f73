import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { AdvcorrectError } from '../lib/errors.js';
import { packageRoot } from '../lib/native.js';
import { isValidLpName, writeLp } from '../lib/qp/lp-writer.js';
import { readQps, readQpsFile } from '../lib/qp/qps-reader.js';
import { writeQps } from '../lib/qp/qps-writer.js';
import { distance, evaluatePrimal, isSuccess, kktResiduals, multiplyA, objectiveValue } from '../lib/qp/residuals.js';
import { readSolution, solutionVector, writeSolution } from '../lib/qp/solution.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { cutQpToProblem, dumpCutQp, dumpCutQpData, positiveDiagonal } from '../lib/qp/solve.js';
import type { CscMatrix, QuadraticProgram } from '../lib/qp/types.js';

type HighsLoader = () => Promise<Highs>;
/** The parts of a HiGHS QP solution the residual test reads. */
interface HighsDuals {
  Rows: Array<{ Name: string; Dual: number }>;
  Columns: Record<string, { Primal: number; Dual: number }>;
}
/** The npm 'highs' loader (its ESM build exports it as default; the typings describe the CJS shape). */
async function highsLoader(): Promise<Highs> {
  const mod = highsModule as unknown as { default: HighsLoader | { default: HighsLoader } };
  const loader = typeof mod.default === 'function' ? mod.default : mod.default.default;
  return loader();
}

const sharedDir = path.resolve(packageRoot, '..', 'shared');
const marosDir = path.join(sharedDir, 'qp', 'maros-meszaros');

interface IndexRecord {
  name: string;
  n: number;
  m_constraints: number;
  nnz_A: number;
  nnz_P_lower: number;
  r: number;
  rows_E: number;
  rows_L: number;
  rows_G: number;
  rows_ranged: number;
  n_fixed: number;
  n_free: number;
  objective_ref: number;
  objective_check: { value: number; rel_diff: number };
}

function marosIndex(): Map<string, IndexRecord> | undefined {
  const file = path.join(marosDir, 'index.json');
  if (!existsSync(file)) return undefined;
  const data = JSON.parse(readFileSync(file, 'utf8')) as { problems: IndexRecord[] };
  return new Map(data.problems.map((p) => [p.name, p]));
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cscFromDense(rows: number, cols: number, entry: (i: number, j: number) => number): CscMatrix {
  const colPtr = new Int32Array(cols + 1);
  const rowIndex: number[] = [];
  const values: number[] = [];
  for (let j = 0; j < cols; j++) {
    for (let i = 0; i < rows; i++) {
      const v = entry(i, j);
      if (v !== 0) {
        rowIndex.push(i);
        values.push(v);
      }
    }
    colPtr[j + 1] = rowIndex.length;
  }
  return { nrows: rows, ncols: cols, colPtr, rowIndex: Int32Array.from(rowIndex), values: Float64Array.from(values) };
}

/** A random problem with every kind of row and bound, awkward decimals, empty rows and columns. */
function randomProblem(seed: number, n: number, m: number, names: 'plain' | 'odd' = 'plain'): QuadraticProgram {
  const r = rng(seed);
  const value = (): number => {
    const kind = r();
    if (kind < 0.3) return Math.round((r() - 0.5) * 20);
    if (kind < 0.6) return (r() - 0.5) * 10 ** Math.floor(r() * 12 - 6);
    return r() - 0.5;
  };
  const emptyCol = Math.floor(r() * n);
  const emptyRow = Math.floor(r() * m);
  const A = cscFromDense(m, n, (i, j) => (j === emptyCol || i === emptyRow || r() > 0.4 ? 0 : value()));
  const P = cscFromDense(n, n, (i, j) => (i > j || j === emptyCol ? 0 : i === j ? r() * 3 : r() > 0.7 ? value() : 0));
  const q = Float64Array.from({ length: n }, (_, j) => (j === emptyCol || r() < 0.2 ? 0 : value()));
  const rowLower = new Float64Array(m);
  const rowUpper = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const a = value();
    const b = a + Math.abs(value()) + 0.5;
    switch (i % 5) {
      case 0:
        rowLower[i] = a;
        rowUpper[i] = a;
        break;
      case 1:
        rowLower[i] = -Infinity;
        rowUpper[i] = b;
        break;
      case 2:
        rowLower[i] = a;
        rowUpper[i] = Infinity;
        break;
      case 3:
        rowLower[i] = a;
        rowUpper[i] = b;
        break;
      default:
        rowLower[i] = -Infinity;
        rowUpper[i] = Infinity;
    }
  }
  const varLower = new Float64Array(n);
  const varUpper = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const a = value();
    switch (j % 7) {
      case 0:
        varLower[j] = 0;
        varUpper[j] = Infinity;
        break;
      case 1:
        varLower[j] = -Infinity;
        varUpper[j] = Infinity;
        break;
      case 2:
        varLower[j] = a;
        varUpper[j] = a;
        break;
      case 3:
        varLower[j] = -Infinity;
        varUpper[j] = -Math.abs(a) - 1; // UP < 0 with no lower bound
        break;
      case 4:
        varLower[j] = -Math.abs(a) - 3;
        varUpper[j] = -Math.abs(a) - 1; // UP < 0 with a finite lower bound
        break;
      case 5:
        varLower[j] = a;
        varUpper[j] = Infinity;
        break;
      default:
        varLower[j] = 0;
        varUpper[j] = Math.abs(a) + 1;
    }
  }
  const odd = (prefix: string, k: number): string => [`${prefix}[${k}]`, `${prefix}#${k}`, `e${k}`, `${prefix}-${k}`][k % 4];
  return {
    name: `RAND${seed}`,
    P,
    q,
    r: seed % 2 === 0 ? value() : 0,
    A,
    rowLower,
    rowUpper,
    varLower,
    varUpper,
    varNames: Array.from({ length: n }, (_, j) => (names === 'plain' ? `x${j + 1}` : odd('v', j))),
    rowNames: Array.from({ length: m }, (_, i) => (names === 'plain' ? `r${i + 1}` : odd('row', i))),
    objectiveName: 'cost',
  };
}

/** Moves the row bounds (keeping each row's kind) so that a random point inside the variable bounds is feasible. */
function makeFeasible(p: QuadraticProgram, seed: number): void {
  const r = rng(seed);
  const x = Float64Array.from({ length: p.q.length }, (_, j) => {
    const lo = p.varLower[j];
    const up = p.varUpper[j];
    if (lo > -Infinity && up < Infinity) return lo + (up - lo) * r();
    if (lo > -Infinity) return lo + r();
    if (up < Infinity) return up - r();
    return r() * 4 - 2;
  });
  const ax = multiplyA(p, x);
  for (let i = 0; i < ax.length; i++) {
    const lo = p.rowLower[i];
    const up = p.rowUpper[i];
    const delta = 0.5 + r();
    if (lo === up) p.rowLower[i] = p.rowUpper[i] = ax[i];
    else {
      if (lo > -Infinity) p.rowLower[i] = ax[i] - delta;
      if (up < Infinity) p.rowUpper[i] = ax[i] + delta;
    }
  }
}

function assertSameArray(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, ulps = 0): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue;
    const tol = ulps * Number.EPSILON * Math.max(Math.abs(a), Math.abs(e));
    assert.ok(Math.abs(a - e) <= tol, `${label}[${i}]: ${a} !== ${e}`);
  }
}

function assertSameMatrix(actual: CscMatrix, expected: CscMatrix, label: string): void {
  assert.equal(actual.nrows, expected.nrows, `${label}.nrows`);
  assert.equal(actual.ncols, expected.ncols, `${label}.ncols`);
  assertSameArray(actual.colPtr, expected.colPtr, `${label}.colPtr`);
  const nnz = expected.colPtr[expected.ncols];
  assertSameArray(actual.rowIndex.subarray(0, nnz), expected.rowIndex.subarray(0, nnz), `${label}.rowIndex`);
  assertSameArray(actual.values.subarray(0, nnz), expected.values.subarray(0, nnz), `${label}.values`);
}

/** Equal problems (names included); ranged rows may differ by an ulp when neither MPS form is exact. */
function assertSameProblem(actual: QuadraticProgram, expected: QuadraticProgram): void {
  assertSameMatrix(actual.P, expected.P, 'P');
  assertSameMatrix(actual.A, expected.A, 'A');
  assertSameArray(actual.q, expected.q, 'q');
  assert.equal(actual.r, expected.r, 'r');
  assertSameArray(actual.rowLower, expected.rowLower, 'rowLower', 2);
  assertSameArray(actual.rowUpper, expected.rowUpper, 'rowUpper', 2);
  assertSameArray(actual.varLower, expected.varLower, 'varLower');
  assertSameArray(actual.varUpper, expected.varUpper, 'varUpper');
  assert.deepEqual(actual.varNames, expected.varNames);
  assert.deepEqual(actual.rowNames, expected.rowNames);
}

function expectParseError(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => readQps(text, { fileName: 'bad.qps' }),
    (error: unknown) => {
      assert.ok(error instanceof AdvcorrectError, `expected AdvcorrectError, got ${String(error)}`);
      assert.equal(error.code, 'ERR_PARSE');
      assert.match(error.message, new RegExp(`^bad\\.qps:${line}: `), error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

const SMALL = `NAME SMALL
ROWS
 N obj
 L lim
 E bal
COLUMNS
 x obj 1 lim 1
 x bal 1
 y obj -2
 y lim 1
RHS
 rhs lim 4
 rhs bal 1
BOUNDS
 UP bnd y 3
QUADOBJ
 x x 2
 x y 0.5
ENDATA
`;

describe('QPS reader', () => {
  it('reads sections, objective, bounds and the upper triangle of P', () => {
    const p = readQps(SMALL);
    assert.equal(p.name, 'SMALL');
    assert.deepEqual(p.varNames, ['x', 'y']);
    assert.deepEqual(p.rowNames, ['lim', 'bal']);
    assert.equal(p.objectiveName, 'obj');
    assert.deepEqual([...p.q], [1, -2]);
    assert.deepEqual([...p.rowLower], [-Infinity, 1]);
    assert.deepEqual([...p.rowUpper], [4, 1]);
    assert.deepEqual([...p.varLower], [0, 0]);
    assert.deepEqual([...p.varUpper], [Infinity, 3]);
    // P upper triangle: (0,0)=2, (0,1)=0.5 → column 1 holds row 0.
    assert.deepEqual([...p.P.colPtr], [0, 1, 2]);
    assert.deepEqual([...p.P.rowIndex], [0, 0]);
    assert.deepEqual([...p.P.values], [2, 0.5]);
    // ½xᵀPx + qᵀx at (1, 2): ½(2·1 + 2·0.5·1·2) + 1 − 4 = 2 − 3 = −1
    assert.equal(objectiveValue(p, [1, 2]), -1);
  });

  it('applies the RHS of the objective row as minus the constant, and RANGES sign rules', () => {
    const p = readQps(`NAME R
ROWS
 N obj
 E e1
 E e2
 E e3
 L l1
 G g1
COLUMNS
 x obj 1 e1 1
 x e2 1 e3 1
 x l1 1 g1 1
RHS
 rhs obj 2.5
 rhs e1 1 e2 1
 rhs e3 1 l1 10
 rhs g1 -3
RANGES
 rng e1 4 e2 -4
 rng l1 -2 g1 -5
ENDATA
`);
    assert.equal(p.r, -2.5);
    assert.deepEqual([...p.rowLower], [1, -3, 1, 8, -3]);
    assert.deepEqual([...p.rowUpper], [5, 1, 1, 10, 2]);
  });

  it('follows the Maros–Mészáros bound conventions (UP < 0, MI/PL/FR/FX, |v| ≥ 1e19 infinite)', () => {
    const p = readQps(`NAME B
ROWS
 N obj
 L c1
COLUMNS
 a c1 1
 b c1 1
 c c1 1
 d c1 1
 e c1 1
 f c1 1
 g c1 1
RHS
 rhs c1 1e19
BOUNDS
 UP BND a -1
 UP BND b -1
 LO BND b -5
 MI BND c
 UP BND c 2
 FR BND d
 FX BND e 1.5
 LO BND f -1e19
 UP BND f 9.999999999999998e19
 LO BND g 3
 UP BND g -2
ENDATA
`);
    assert.deepEqual([...p.varLower], [-Infinity, -5, -Infinity, -Infinity, 1.5, -Infinity, 3]);
    assert.deepEqual([...p.varUpper], [-1, -1, 2, Infinity, 1.5, Infinity, -2]);
    assert.deepEqual([...p.rowUpper], [Infinity]);
  });

  it('reads QMATRIX (full matrix) to the same P as QUADOBJ', () => {
    const head = 'NAME Q\nROWS\n N obj\nCOLUMNS\n x obj 1\n y obj 1\n';
    const a = readQps(`${head}QUADOBJ\n x x 2\n y x -1\n y y 3\nENDATA\n`);
    const b = readQps(`${head}QMATRIX\n x x 2\n x y -1\n y x -1\n y y 3\nENDATA\n`);
    assertSameMatrix(b.P, a.P, 'P');
    assert.deepEqual([...a.P.values], [2, -1, 3]);
  });

  it('detects gzip by its magic bytes (Buffer input and files)', async () => {
    const gz = gzipSync(SMALL);
    assertSameProblem(readQps(gz), readQps(SMALL));
    assertSameProblem(readQps(Buffer.from(SMALL)), readQps(SMALL));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qps-'));
    try {
      const file = path.join(dir, 'small.qps.gz');
      await import('node:fs/promises').then((fs) => fs.writeFile(file, gz));
      assertSameProblem(await readQpsFile(file), readQps(SMALL));
      await assert.rejects(readQpsFile(path.join(dir, 'missing.qps')), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_IO');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('malformed files give line-numbered ERR_PARSE errors', () => {
    const lines = SMALL.split('\n');
    const edit = (lineNo: number, replacement: string | null): string => {
      const copy = lines.slice();
      if (replacement === null) copy.splice(lineNo - 1, 1);
      else copy[lineNo - 1] = replacement;
      return copy.join('\n');
    };
    it('unknown section', () => expectParseError(edit(14, 'BOUNDZ'), 14, /unknown section 'BOUNDZ'/));
    it('missing ROWS section', () => expectParseError('NAME X\nCOLUMNS\n x obj 1\nENDATA\n', 2, /before ROWS/));
    it('missing COLUMNS section', () => expectParseError('NAME X\nROWS\n N obj\nRHS\n rhs obj 1\nENDATA\n', 4, /before COLUMNS/));
    it('no objective row', () => expectParseError('NAME X\nROWS\n L c\nCOLUMNS\n x c 1\nENDATA\n', 4, /no objective \(N\) row/));
    it('truncated file (no ENDATA)', () => expectParseError(lines.slice(0, 15).join('\n'), 15, /missing ENDATA/));
    it('unknown row in COLUMNS', () => expectParseError(edit(8, ' x bal 1 nope 2'), 8, /unknown row 'nope'/));
    it('unknown column in BOUNDS', () => expectParseError(edit(15, ' UP bnd z 3'), 15, /unknown column 'z'/));
    it('unknown column in QUADOBJ', () => expectParseError(edit(18, ' x w 0.5'), 18, /unknown column 'w'/));
    it('duplicate row name', () => expectParseError(edit(5, ' E lim'), 5, /duplicate row name 'lim'/));
    it('duplicate (non-contiguous) column', () => expectParseError(edit(10, ' x lim 1'), 10, /column 'x' appears again/));
    it('duplicate matrix entry', () => expectParseError(edit(8, ' x lim 1'), 8, /duplicate entry/));
    it('non-numeric value', () => expectParseError(edit(9, ' y obj -2x'), 9, /'-2x' is not a number/));
    it('NaN value', () => expectParseError(edit(12, ' rhs bal NaN'), 12, /'NaN' is not a number/));
    it('huge coefficient', () => expectParseError(edit(9, ' y obj 1e300'), 9, /infinite or too large/));
    it('QUADOBJ listing both triangles', () => expectParseError(edit(18, ' x y 0.5\n y x 0.5'), 19, /both \(y, x\) and \(x, y\)/));
    it('wrong field count', () => expectParseError(edit(7, ' x obj 1 lim'), 7, /COLUMNS line must be/));
    it('integer MARKER lines', () =>
      expectParseError(edit(9, " MARKER 'MARKER' 'INTORG'\n y obj -2"), 9, /MARKER lines are not supported/));
    it('integer bound types', () => expectParseError(edit(15, ' BV bnd y'), 15, /continuous QPs only/));
    it('RANGES on an N row', () => expectParseError(edit(14, 'RANGES\n rng obj 1\nBOUNDS'), 15, /RANGES entry for N row/));
    it('OBJSENSE MAX', () => expectParseError(`NAME X\nOBJSENSE\n MAX\n${lines.slice(1).join('\n')}`, 3, /MAX is not supported/));
    it('duplicate section', () => expectParseError(edit(14, 'RHS'), 14, /duplicate section RHS/));
    it('QMATRIX that is not symmetric', () =>
      expectParseError('NAME Q\nROWS\n N obj\nCOLUMNS\n x obj 1\n y obj 1\nQMATRIX\n x y 1\n y x 2\nENDATA\n', 9, /not symmetric/));
    it('text after ENDATA', () => expectParseError(`${SMALL}COLUMNS\n`, 20, /after ENDATA/));
  });
});

describe('QPS writer', () => {
  it('round-trips random problems exactly (write → read)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const p = randomProblem(seed, 5 + (seed % 9), 4 + ((seed * 7) % 11));
      const back = readQps(writeQps(p));
      assertSameProblem(back, p);
      assert.equal(back.objectiveName, 'cost');
    }
  });

  it('replaces names that cannot be written (whitespace, duplicates) by x0…/c0…', () => {
    const p = randomProblem(3, 6, 5);
    p.varNames[2] = 'has space';
    p.rowNames[1] = p.rowNames[0];
    const back = readQps(writeQps(p));
    assert.deepEqual(back.varNames, Array.from({ length: 6 }, (_, j) => `x${j}`));
    assert.deepEqual(back.rowNames, Array.from({ length: 5 }, (_, i) => `c${i}`));
    assertSameMatrix(back.A, p.A, 'A');
  });

  it('round-trips Maros–Mészáros files and matches index.json', async function () {
    const index = marosIndex();
    if (!index) {
      console.log(`skipped: ${marosDir} is absent (the Maros–Mészáros set of ../shared)`);
      this.skip();
    }
    for (const name of ['HS21', 'HS118', 'QAFIRO', 'DUAL1', 'QPCBOEI2', 'Q25FV47', 'QSHIP04S', 'POWELL20']) {
      const rec: IndexRecord = index!.get(name)!;
      const p = await readQpsFile(path.join(marosDir, `${name}.qps.gz`));
      const n = p.q.length;
      assert.equal(n, rec.n, `${name} n`);
      assert.equal(p.rowLower.length, rec.m_constraints, `${name} m`);
      assert.equal(p.A.colPtr[n], rec.nnz_A, `${name} nnz(A)`);
      assert.equal(p.P.colPtr[n], rec.nnz_P_lower, `${name} nnz(P)`);
      assert.equal(p.r, rec.r, `${name} r`);
      let eq = 0;
      let ranged = 0;
      for (let i = 0; i < p.rowLower.length; i++) {
        if (p.rowLower[i] === p.rowUpper[i]) eq++;
        else if (Number.isFinite(p.rowLower[i]) && Number.isFinite(p.rowUpper[i])) ranged++;
      }
      assert.equal(eq, rec.rows_E, `${name} E rows`);
      assert.equal(ranged, rec.rows_ranged, `${name} ranged rows`);
      let fixed = 0;
      let free = 0;
      for (let j = 0; j < n; j++) {
        if (p.varLower[j] === p.varUpper[j]) fixed++;
        if (p.varLower[j] === -Infinity && p.varUpper[j] === Infinity) free++;
        assert.ok(Math.abs(p.varLower[j]) < 1e19 || !Number.isFinite(p.varLower[j]));
      }
      assert.equal(fixed, rec.n_fixed, `${name} fixed`);
      assert.equal(free, rec.n_free, `${name} free`);
      assertSameProblem(readQps(writeQps(p)), p);
    }
  });
});

describe('LP writer', () => {
  let highs: Highs;
  before(async () => {
    highs = await highsLoader();
  });

  it('writes the documented layout', () => {
    const text = writeLp(readQps(SMALL));
    assert.match(text, /^Minimize$/m);
    assert.match(text, /^ obj: 1 x - 2 y \+ \[ 2 x \^ 2 \+ 1 x \* y \] \/ 2$/m);
    assert.match(text, /^ lim: 1 x \+ 1 y <= 4$/m);
    assert.match(text, /^ bal: 1 x = 1$/m);
    assert.match(text, /^ 0 <= y <= 3$/m);
    assert.match(text, /^End$/m);
  });

  it('only keeps names every LP reader accepts', () => {
    for (const ok of ['x1', 'c0', 'w_3', 'Ab.c']) assert.ok(isValidLpName(ok), ok);
    for (const bad of ['e1', 'E', 'ee', '1x', '.x', 'free', 'inf', 'a b', 'x[1]', 'x-1', '']) assert.ok(!isValidLpName(bad), bad);
  });

  it('HiGHS reads it and finds the optimum of random convex problems, checked by our residuals', () => {
    let solved = 0;
    for (let seed = 20; seed < 30; seed++) {
      const p = randomProblem(seed, 6, 5, seed % 2 === 0 ? 'plain' : 'odd');
      // make P positive definite (diagonally dominant) so the QP is convex
      const dense = new Float64Array(36);
      for (let j = 0; j < 6; j++)
        for (let k = p.P.colPtr[j]; k < p.P.colPtr[j + 1]; k++) dense[p.P.rowIndex[k] * 6 + j] = p.P.values[k];
      let rowSum = 0;
      for (let j = 0; j < 6; j++) for (let i = 0; i < j; i++) rowSum += Math.abs(dense[i * 6 + j]);
      p.P = cscFromDense(6, 6, (i, j) => (i > j ? 0 : i === j ? 1 + 2 * rowSum : dense[i * 6 + j]));
      makeFeasible(p, seed);
      let sol;
      try {
        sol = highs.solve(writeLp(p));
      } catch {
        // HiGHS's QP solver itself fails (error -1) on some degenerate instances, e.g. a row
        // −3x ≥ −7e-7; the same LP text with a larger right-hand side solves.
        continue;
      }
      assert.equal(sol.Status, 'Optimal', `seed ${seed}`);
      solved++;
      const names = Object.keys(sol.Columns);
      assert.equal(names.length, 6, 'HiGHS sees every column');
      const x = solutionVector(p, { names, values: Float64Array.from(names.map((c) => sol.Columns[c].Primal)) });
      const ev = evaluatePrimal(p, x);
      assert.ok(ev.primal < 1e-6, `seed ${seed}: violation ${ev.primal}`);
      assert.ok(Math.abs(ev.objective - sol.ObjectiveValue) <= 1e-7 * Math.max(1, Math.abs(ev.objective)), `seed ${seed} objective`);
    }
    assert.ok(solved >= 6, `HiGHS solved only ${solved} of 10`);
  });

  it('HiGHS solves Maros–Mészáros problems from our LP files to the reference objective', async function () {
    const index = marosIndex();
    if (!index) {
      console.log(`skipped: ${marosDir} is absent (the Maros–Mészáros set of ../shared)`);
      this.skip();
    }
    for (const name of ['HS21', 'HS118', 'QAFIRO', 'DUAL1', 'CVXQP1_S', 'QPCBOEI2']) {
      const rec: IndexRecord = index!.get(name)!;
      const p = await readQpsFile(path.join(marosDir, `${name}.qps.gz`));
      const sol = highs.solve(writeLp(p));
      assert.equal(sol.Status, 'Optimal', name);
      const names = Object.keys(sol.Columns);
      const x = solutionVector(p, { names, values: Float64Array.from(names.map((c) => sol.Columns[c].Primal)) });
      const ev = evaluatePrimal(p, x);
      const rel = Math.abs(ev.objective - rec.objective_ref) / Math.max(1, Math.abs(rec.objective_ref));
      assert.ok(rel < 1e-6, `${name}: objective ${ev.objective} vs ${rec.objective_ref}`);
      assert.ok(ev.primal < 1e-6 * Math.max(1, Math.abs(rec.objective_ref)), `${name}: violation ${ev.primal}`);
    }
  });
});

describe('.sol files', () => {
  it('round-trips values bit for bit and reads the objective comment', () => {
    const r = rng(5);
    const names = Array.from({ length: 50 }, (_, i) => `x${i}`);
    const x = Float64Array.from({ length: 50 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20));
    x[3] = 0;
    x[4] = -1e-300;
    const text = writeSolution(names, x, -12.345678901234567, 'Solution for model T');
    assert.match(text, /^# Solution for model T\n# Objective value = -12.345678901234567\n/);
    const back = readSolution(text);
    assert.deepEqual(back.names, names);
    assert.deepEqual([...back.values], [...x]);
    assert.equal(back.objective, -12.345678901234567);
  });

  it('reads Gurobi output (comments, blank lines, integers, exponents)', () => {
    const sol = readSolution('# Solution for model foo\n# Objective value = 3.5e+00\n\nx1 1\nx2 -2.5e-03\n  x3   7  \n');
    assert.deepEqual(sol.names, ['x1', 'x2', 'x3']);
    assert.deepEqual([...sol.values], [1, -0.0025, 7]);
    assert.equal(sol.objective, 3.5);
  });

  it('rejects malformed lines with line numbers', () => {
    const check = (text: string, pattern: RegExp): void =>
      assert.throws(
        () => readSolution(text, { fileName: 's.sol' }),
        (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_PARSE' && pattern.test(e.message),
      );
    check('x1 1\nx2 abc\n', /^s\.sol:2: value 'abc'/);
    check('x1 1\nx1 2\n', /^s\.sol:2: duplicate variable 'x1' \(first on line 1\)/);
    check('# c\nx1 1 2\n', /^s\.sol:2: expected 'NAME VALUE'/);
    check('x1 nan\n', /^s\.sol:1: value 'nan' of 'x1' is not a finite number/);
    check('x1 -inf\n', /^s\.sol:1: value '-inf' of 'x1' is not a finite number/);
  });

  it('maps solutions by name and says which names do not match', () => {
    const p = readQps(SMALL);
    assert.deepEqual([...solutionVector(p, readSolution('y 2\nx 1\n'))], [1, 2]);
    assert.throws(
      () => solutionVector(p, readSolution('x 1\nz 2\n'), 'o.sol'),
      (e: unknown) =>
        e instanceof AdvcorrectError && e.code === 'ERR_DATA' && /'z'/.test(e.message) && /no value for 1 variable\(s\): 'y'/.test(e.message),
    );
  });
});

describe('residuals', () => {
  it('measures bound and row violations of a bare point', () => {
    const p = readQps(SMALL); // lim: x + y ≤ 4; bal: x = 1; 0 ≤ x; 0 ≤ y ≤ 3
    const ev = evaluatePrimal(p, [1.5, 3.25]);
    assert.equal(ev.rowViolation, 0.75); // x + y = 4.75 vs ≤ 4 (bal: 0.5)
    assert.equal(ev.boundViolation, 0.25);
    assert.equal(ev.worstRow, 0);
    assert.equal(ev.worstVariable, 1);
    assert.equal(ev.primal, 0.75);
    assert.equal(evaluatePrimal(p, [1, 1]).primal, 0);
    assert.deepEqual([...multiplyA(p, [1, 2])], [3, 1]);
  });

  it('HiGHS duals give small KKT residuals (sign conventions agree) and a wrong sign does not', async function () {
    const index = marosIndex();
    if (!index) {
      console.log(`skipped: ${marosDir} is absent (the Maros–Mészáros set of ../shared)`);
      this.skip();
    }
    const highs = await highsLoader();
    for (const name of ['HS21', 'HS118', 'QAFIRO', 'CVXQP1_S']) {
      const p = await readQpsFile(path.join(marosDir, `${name}.qps.gz`));
      const sol = highs.solve(writeLp(p));
      assert.equal(sol.Status, 'Optimal');
      const { Rows: rows, Columns: cols } = sol as unknown as HighsDuals;
      const x = Float64Array.from(p.varNames.map((v) => cols[v].Primal));
      // HiGHS: reduced cost = ∇f − Aᵀλ; OSQP convention y = −λ. Ranged rows appear as NAME_lo + NAME_hi.
      const y = Float64Array.from(p.rowNames, (r) =>
        rows.filter((row) => [r, `${r}_lo`, `${r}_hi`].includes(row.Name)).reduce((sum, row) => sum - row.Dual, 0),
      );
      const z = Float64Array.from(p.varNames.map((v) => -cols[v].Dual));
      const res = kktResiduals(p, x, y, z);
      const scale = Math.max(1, Math.abs(res.objective));
      // The npm HiGHS returns duals rounded to ~7 significant digits, so the gap carries that
      // error times the bounds the multipliers act on; allow for exactly that.
      let boundMass = scale;
      p.rowNames.forEach((_, i) => (boundMass += y[i] > 0 ? Math.abs(p.rowUpper[i]) : y[i] < 0 ? Math.abs(p.rowLower[i]) : 0));
      p.varNames.forEach((_, j) => (boundMass += z[j] > 0 ? Math.abs(p.varUpper[j]) : z[j] < 0 ? Math.abs(p.varLower[j]) : 0));
      assert.ok(res.primal < 1e-7 * scale, `${name} primal ${res.primal}`);
      assert.ok(res.dual < 1e-5 * scale, `${name} dual ${res.dual}`);
      assert.ok(res.gap < 1e-5 * boundMass, `${name} gap ${res.gap} (bound mass ${boundMass})`);
      assert.ok(Math.abs(res.dualObjective - res.objective) < 1e-5 * boundMass);
      assert.ok(isSuccess('solved', res, 1e-5 * boundMass));
      assert.ok(!isSuccess('iteration_limit_reached', res, 1e-5 * boundMass));
      if (y.some((v) => Math.abs(v) > 1e-3)) {
        const wrong = kktResiduals(p, x, y.map((v) => -v), z);
        assert.ok(wrong.dual > 1e-4, `${name}: flipping y must break stationarity`);
      }
    }
  });
});

describe('cut-QP dump', () => {
  it('cutQpToProblem keeps the objective ½(w − w0)ᵀD(w − w0) and writes QPS + LP with w…/c… names', async () => {
    const r = rng(11);
    const n = 7;
    const m = 3;
    const dense = Array.from({ length: m * n }, () => (r() < 0.5 ? 0 : r() - 0.5));
    const rowPtr = new Int32Array(m + 1);
    const colIndex: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++)
        if (dense[i * n + j] !== 0) {
          colIndex.push(j);
          values.push(dense[i * n + j]);
        }
      rowPtr[i + 1] = colIndex.length;
    }
    const w0 = Float64Array.from({ length: n }, () => r() * 4 - 2);
    const diagonal = Float64Array.from({ length: n }, () => 0.5 + r());
    const data = {
      rowPtr,
      colIndex: Int32Array.from(colIndex),
      values: Float32Array.from(values),
      rowLower: Float64Array.from([-Infinity, -1, 0.25]),
      rowUpper: Float64Array.from([-0.5, 1, Infinity]),
      w0,
      diagonal,
      varLower: new Float64Array(n).fill(-3),
      varUpper: new Float64Array(n).fill(3),
    };
    const p = cutQpToProblem(data);
    assert.deepEqual(p.varNames.slice(0, 2), ['w0', 'w1']);
    assert.deepEqual(p.rowNames, ['c0', 'c1', 'c2']);
    assert.ok('diagonal' in positiveDiagonal(p));
    const w = Float64Array.from({ length: n }, () => r() * 2 - 1);
    let expected = 0;
    for (let j = 0; j < n; j++) expected += 0.5 * diagonal[j] * (w[j] - w0[j]) ** 2;
    assert.ok(Math.abs(objectiveValue(p, w) - expected) < 1e-12 * Math.max(1, expected));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cutqp-'));
    try {
      const files = await dumpCutQpData(data, dir, 'iter3');
      const back = readQps(await readFile(files.qps));
      assertSameProblem(back, p);
      const highs = await highsLoader();
      const sol = highs.solve(await readFile(files.lp, 'utf8'));
      assert.equal(sol.Status, 'Optimal');
      const x = Float64Array.from(p.varNames.map((v) => sol.Columns[v].Primal));
      const ev = evaluatePrimal(p, x);
      assert.ok(ev.primal < 1e-7);
      assert.ok(Math.abs(ev.objective - sol.ObjectiveValue) < 1e-7 * Math.max(1, ev.objective));
      assert.ok(distance(x, w0).l2 > 0); // the cuts moved the point: the dump is not trivial
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('dumpCutQp writes the QP of a live cut pool; HiGHS on the dump agrees with the pool\'s dual solve', async () => {
    const r = rng(17);
    const n = 12;
    const w0 = Float64Array.from({ length: n }, () => r() * 2 - 1);
    const diagonal = Float64Array.from({ length: n }, () => 0.5 + r());
    const varLower = new Float64Array(n).fill(-2);
    const varUpper = new Float64Array(n).fill(2);
    const pool = new CutPool(n, { diagonal, lower: varLower, upper: varUpper });
    try {
      for (let k = 0; k < 5; k++) {
        const index = Int32Array.from([k, k + 3, k + 6]);
        const value = Float64Array.from([1, r() - 0.5, -1]);
        pool.appendSparse(index, value, k === 2 ? -1 : -Infinity, -0.2 - r() * 0.3);
      }
      const ours = await pool.solve(w0, { tolerance: 1e-10 });
      assert.equal(ours.status, 'solved');
      const dir = await mkdtemp(path.join(os.tmpdir(), 'cutpool-'));
      try {
        const files = await dumpCutQp(pool, w0, dir, 'pool', { diagonal, varLower, varUpper });
        const problem = readQps(await readFile(files.qps));
        assert.deepEqual(problem.rowNames, ['c0', 'c1', 'c2', 'c3', 'c4']);
        const highs = await highsLoader();
        const sol = highs.solve(await readFile(files.lp, 'utf8'));
        assert.equal(sol.Status, 'Optimal');
        const x = Float64Array.from(problem.varNames.map((v) => (sol.Columns[v] as { Primal: number }).Primal));
        const ev = evaluatePrimal(problem, x);
        assert.ok(ev.primal < 1e-7);
        assert.ok(Math.abs(ev.objective - ours.objective) < 1e-7 * Math.max(1, ours.objective), `${ev.objective} vs ${ours.objective}`);
        assert.ok(Math.abs(objectiveValue(problem, ours.x) - ours.objective) < 1e-10 * Math.max(1, ours.objective));
        assert.ok(distance(x, ours.x).linf < 1e-5);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      pool.dispose();
    }
  });

  it('positiveDiagonal explains why a Hessian does not fit the dual solver', () => {
    const p = readQps(SMALL);
    const off = positiveDiagonal(p);
    assert.ok('reason' in off && /off-diagonal entries \(first at \(x, y\)\)/.test(off.reason));
    p.P = cscFromDense(2, 2, (i, j) => (i === j && i === 0 ? 1 : 0));
    const zero = positiveDiagonal(p);
    assert.ok('reason' in zero && /zero diagonal entry at y/.test(zero.reason));
  });
});
