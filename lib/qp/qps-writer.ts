/**
 * Free-format QPS writer: a QuadraticProgram as free MPS plus QUADOBJ (the upper triangle of P),
 * with the conventions the reader (qps-reader.ts) uses, so that writing and reading back gives
 * the same problem. Numbers are written as the shortest decimal that reads back as the same
 * double; names are the problem's own when MPS can hold them (names.ts).
 */
import { chooseNames, MPS_NAME_RE } from './names.js';
import { checkProblemShape } from './sparse.js';
import type { QuadraticProgram } from './types.js';

/** Shortest decimal text that reads back as the same double (JavaScript's Number→String). */
export function formatNumber(value: number): string {
  if (Object.is(value, -0)) return '0';
  return String(value);
}

/** Writes a problem as free-format QPS (free MPS + QUADOBJ, upper triangle of P). */
export function writeQps(problem: QuadraticProgram): string {
  checkProblemShape(problem);
  const n = problem.q.length;
  const m = problem.rowLower.length;
  const { varNames, rowNames, objectiveName } = chooseNames(problem, (s) => MPS_NAME_RE.test(s));
  const out: string[] = [];
  const problemName = problem.name && MPS_NAME_RE.test(problem.name) ? problem.name : 'PROBLEM';
  out.push(`NAME ${problemName}`);
  out.push('ROWS');
  out.push(` N ${objectiveName}`);
  const { rowLower, rowUpper } = problem;
  const rhsValue = new Float64Array(m);
  const rangeValue = new Float64Array(m);
  const hasRange = new Uint8Array(m);
  for (let i = 0; i < m; i++) {
    const lo = rowLower[i];
    const up = rowUpper[i];
    const loFinite = lo > -Infinity;
    const upFinite = up < Infinity;
    let type: string;
    if (loFinite && upFinite && lo === up) {
      type = 'E';
      rhsValue[i] = lo;
    } else if (loFinite && upFinite) {
      // Ranged row: pick the form that reads back exactly when one does.
      const R = up - lo;
      if (up - R === lo || !(lo + R === up)) {
        type = 'L';
        rhsValue[i] = up;
      } else {
        type = 'G';
        rhsValue[i] = lo;
      }
      rangeValue[i] = R;
      hasRange[i] = 1;
    } else if (upFinite) {
      type = 'L';
      rhsValue[i] = up;
    } else if (loFinite) {
      type = 'G';
      rhsValue[i] = lo;
    } else type = 'N';
    out.push(` ${type} ${rowNames[i]}`);
  }
  out.push('COLUMNS');
  const { A, P, q } = problem;
  // Columns that appear in no row and no objective entry still need a line so readers create them.
  for (let j = 0; j < n; j++) {
    const name = varNames[j];
    let wrote = false;
    if (q[j] !== 0) {
      out.push(` ${name} ${objectiveName} ${formatNumber(q[j])}`);
      wrote = true;
    }
    for (let p = A.colPtr[j]; p < A.colPtr[j + 1]; p++) {
      out.push(` ${name} ${rowNames[A.rowIndex[p]]} ${formatNumber(A.values[p])}`);
      wrote = true;
    }
    if (!wrote) out.push(` ${name} ${objectiveName} 0`);
  }
  out.push('RHS');
  if (problem.r !== 0) out.push(` rhs ${objectiveName} ${formatNumber(-problem.r)}`);
  for (let i = 0; i < m; i++) if (rhsValue[i] !== 0) out.push(` rhs ${rowNames[i]} ${formatNumber(rhsValue[i])}`);
  if (hasRange.some((v) => v !== 0)) {
    out.push('RANGES');
    for (let i = 0; i < m; i++) if (hasRange[i]) out.push(` rng ${rowNames[i]} ${formatNumber(rangeValue[i])}`);
  }
  const bounds: string[] = [];
  const bnd = (value: number): string => (value === Infinity ? '1e30' : value === -Infinity ? '-1e30' : formatNumber(value));
  for (let j = 0; j < n; j++) {
    const lo = problem.varLower[j];
    const up = problem.varUpper[j];
    const name = varNames[j];
    const loFinite = lo > -Infinity && lo < Infinity;
    const upFinite = up < Infinity && up > -Infinity;
    if (lo === up && loFinite) bounds.push(` FX BND ${name} ${formatNumber(lo)}`);
    else if (lo === -Infinity && up === Infinity) bounds.push(` FR BND ${name}`);
    else {
      if (lo === -Infinity) bounds.push(` MI BND ${name}`);
      if (up !== Infinity) bounds.push(` UP BND ${name} ${bnd(up)}`);
      // LO after UP overrides the "UP < 0 ⇒ lower = −∞" rule; written whenever it differs from 0
      // or an UP < 0 came before.
      if (lo !== -Infinity && (lo !== 0 || (upFinite && up < 0) || up === -Infinity)) bounds.push(` LO BND ${name} ${bnd(lo)}`);
      void loFinite;
    }
  }
  if (bounds.length > 0) {
    out.push('BOUNDS');
    for (const line of bounds) out.push(line);
  }
  if (P.colPtr[n] > 0) {
    out.push('QUADOBJ');
    for (let j = 0; j < n; j++) {
      for (let p = P.colPtr[j]; p < P.colPtr[j + 1]; p++) {
        out.push(` ${varNames[P.rowIndex[p]]} ${varNames[j]} ${formatNumber(P.values[p])}`);
      }
    }
  }
  out.push('ENDATA');
  return `${out.join('\n')}\n`;
}
