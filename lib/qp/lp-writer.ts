/**
 * CPLEX LP format writer (read by Gurobi, CPLEX, HiGHS, SCIP).
 *
 *   Minimize
 *    obj: q'x + [ Σ P_ii x_i ^ 2 + Σ 2 P_ij x_i * x_j ] / 2 + r
 *   Subject To
 *    c1: a'x >= l          (E rows as '=', one-sided rows as '<=' or '>=')
 *    c2_lo: a'x >= l       (a ranged row l < u becomes two rows NAME_lo and NAME_hi)
 *    c2_hi: a'x <= u
 *   Bounds
 *    -inf <= x1 <= 3 / x2 free / x3 = 1.5 / x4 >= -2 ...
 *   End
 *
 * Names are the problem's own when they are valid LP names and unique (and NAME_lo/NAME_hi do
 * not clash), else generic `x0…`, `c0…` (see docs/qp-formats.md). Rows free on both sides are
 * left out (they constrain nothing). Numbers are written as the shortest decimal that reads
 * back as the same double.
 */
import { chooseNames } from './names.js';
import { formatNumber } from './qps-writer.js';
import { checkProblemShape, transposeCompressed } from './sparse.js';
import type { QuadraticProgram } from './types.js';

const LP_RESERVED = new Set([
  'inf', 'infinity', 'free', 'st', 's.t.', 'st.', 'subject', 'such', 'that', 'to', 'bound', 'bounds', 'end',
  'minimize', 'maximize', 'minimise', 'maximise', 'minimum', 'maximum', 'min', 'max', 'general', 'generals', 'gen',
  'binary', 'binaries', 'bin', 'semi', 'semis', 'semi-continuous', 'sos', 'obj',
]);

/** A name every LP reader accepts: letters, digits, '_' and '.', not starting with a digit or '.', not e<digit>. */
export function isValidLpName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) return false;
  if (/^[eE]([0-9]|[eE]|$)/.test(name)) return false;
  return !LP_RESERVED.has(name.toLowerCase());
}

/** Appends terms to lines no longer than ~200 characters (CPLEX truncates lines at 510). */
class LineWriter {
  readonly lines: string[] = [];
  private current = '';

  start(text: string): void {
    this.flush();
    this.current = text;
  }

  term(text: string): void {
    if (this.current.length + text.length + 1 > 200) {
      this.lines.push(this.current);
      this.current = '  ';
    }
    this.current += this.current.endsWith(' ') || this.current === '' ? text : ` ${text}`;
  }

  flush(): void {
    if (this.current !== '') this.lines.push(this.current);
    this.current = '';
  }
}

function signed(value: number, name: string, first: boolean): string {
  const text = formatNumber(Math.abs(value));
  if (value < 0) return `- ${text} ${name}`;
  return first ? `${text} ${name}` : `+ ${text} ${name}`;
}

function bound(value: number): string {
  if (value === Infinity) return '+inf';
  if (value === -Infinity) return '-inf';
  return formatNumber(value);
}

/** Writes a problem in CPLEX LP format. */
export function writeLp(problem: QuadraticProgram): string {
  checkProblemShape(problem);
  const n = problem.q.length;
  const m = problem.rowLower.length;
  let { varNames, rowNames } = chooseNames(problem, isValidLpName);
  // NAME_lo/NAME_hi of ranged rows must not clash with other names.
  const taken = new Set([...varNames, ...rowNames]);
  for (let i = 0; i < m; i++) {
    const lo = problem.rowLower[i];
    const up = problem.rowUpper[i];
    if (lo > -Infinity && up < Infinity && lo !== up && (taken.has(`${rowNames[i]}_lo`) || taken.has(`${rowNames[i]}_hi`))) {
      rowNames = rowNames.map((_, k) => `c${k}`);
      if (varNames.some((v) => /^c\d+(_lo|_hi)?$/.test(v))) rowNames = rowNames.map((_, k) => `row${k}`);
      break;
    }
  }
  const objectiveLabel = 'obj';

  // Rows as lists of (column, value): transpose A once.
  const { A, P, q } = problem;
  const rows = transposeCompressed(A.colPtr, A.rowIndex, A.values, m);
  const rowCount = rows.ptr;
  const rowCols = rows.index;
  const rowVals = rows.values;

  const used = new Uint8Array(n);
  const w = new LineWriter();
  w.lines.push(`\\ Problem: ${problem.name || 'unnamed'} (written by advcorrect)`);
  w.lines.push('Minimize');
  w.start(` ${objectiveLabel}:`);
  let first = true;
  for (let j = 0; j < n; j++) {
    if (q[j] === 0) continue;
    w.term(signed(q[j], varNames[j], first));
    first = false;
    used[j] = 1;
  }
  if (P.colPtr[n] > 0) {
    w.term(first ? '[' : '+ [');
    let firstQ = true;
    for (let j = 0; j < n; j++) {
      for (let p = P.colPtr[j]; p < P.colPtr[j + 1]; p++) {
        const i = P.rowIndex[p];
        const v = P.values[p];
        if (v === 0) continue;
        const term = i === j ? `${varNames[j]} ^ 2` : `${varNames[i]} * ${varNames[j]}`;
        w.term(signed(i === j ? v : 2 * v, term, firstQ));
        firstQ = false;
        used[i] = 1;
        used[j] = 1;
      }
    }
    if (firstQ) w.term(`0 ${varNames[0]} ^ 2`);
    w.term('] / 2');
    first = false;
  }
  if (problem.r !== 0) {
    w.term(problem.r < 0 ? `- ${formatNumber(-problem.r)}` : first ? formatNumber(problem.r) : `+ ${formatNumber(problem.r)}`);
    first = false;
  }
  if (first && n > 0) {
    w.term(`0 ${varNames[0]}`);
  }
  w.flush();

  w.lines.push('Subject To');
  const writeRow = (label: string, i: number, sense: string, rhs: number): void => {
    w.start(` ${label}:`);
    let firstTerm = true;
    for (let k = rowCount[i]; k < rowCount[i + 1]; k++) {
      w.term(signed(rowVals[k], varNames[rowCols[k]], firstTerm));
      firstTerm = false;
      used[rowCols[k]] = 1;
    }
    if (firstTerm) w.term(`0 ${varNames[0]}`); // an empty row keeps its name and its (possibly infeasible) bounds
    w.term(`${sense} ${formatNumber(rhs)}`);
    w.flush();
  };
  for (let i = 0; i < m; i++) {
    const lo = problem.rowLower[i];
    const up = problem.rowUpper[i];
    const loFinite = lo > -Infinity;
    const upFinite = up < Infinity;
    if (loFinite && upFinite && lo === up) writeRow(rowNames[i], i, '=', lo);
    else if (loFinite && upFinite) {
      writeRow(`${rowNames[i]}_lo`, i, '>=', lo);
      writeRow(`${rowNames[i]}_hi`, i, '<=', up);
    } else if (upFinite) writeRow(rowNames[i], i, '<=', up);
    else if (loFinite) writeRow(rowNames[i], i, '>=', lo);
  }

  w.lines.push('Bounds');
  for (let j = 0; j < n; j++) {
    const lo = problem.varLower[j];
    const up = problem.varUpper[j];
    const name = varNames[j];
    if (lo === -Infinity && up === Infinity) w.lines.push(` ${name} free`);
    else if (lo === up) w.lines.push(` ${name} = ${bound(lo)}`);
    else if (up === Infinity) {
      if (lo !== 0 || !used[j]) w.lines.push(` ${name} >= ${bound(lo)}`);
    } else w.lines.push(` ${bound(lo)} <= ${name} <= ${bound(up)}`);
  }
  w.lines.push('End');
  return `${w.lines.join('\n')}\n`;
}
