/**
 * Names in the interchange formats: which variable, row and objective names a writer (QPS, LP,
 * .sol) uses. A problem's own names are kept when every one is valid in the format and unique
 * (rows not clashing with variables); otherwise generic `x0…`, `c0…` (or `row0…`) replace them.
 */
import type { QuadraticProgram } from './types.js';

/** A name that free MPS/QPS can hold: printable ASCII, no blanks. */
export const MPS_NAME_RE = /^[!-~]+$/;

/** Stable replacement names when a problem's own names cannot be written. */
export function genericNames(prefix: string, count: number): string[] {
  const names = new Array<string>(count);
  for (let i = 0; i < count; i++) names[i] = `${prefix}${i}`;
  return names;
}

function namesUsable(names: readonly string[], count: number, valid: (name: string) => boolean, reserved: Set<string>): boolean {
  if (names.length !== count) return false;
  const seen = new Set<string>();
  for (const name of names) {
    if (typeof name !== 'string' || !valid(name) || seen.has(name) || reserved.has(name)) return false;
    seen.add(name);
  }
  return true;
}

/**
 * The names a writer uses: the problem's own when they are valid and unique in the format,
 * otherwise `x0…x(n−1)` for variables and `c0…c(m−1)` for rows.
 */
export function chooseNames(
  problem: QuadraticProgram,
  valid: (name: string) => boolean,
): { varNames: string[]; rowNames: string[]; objectiveName: string } {
  const n = problem.q.length;
  const m = problem.rowLower.length;
  const varNames = namesUsable(problem.varNames, n, valid, new Set()) ? problem.varNames.slice() : genericNames('x', n);
  const varSet = new Set(varNames);
  let rowNames = namesUsable(problem.rowNames, m, valid, varSet) ? problem.rowNames.slice() : genericNames('c', m);
  if (rowNames.some((r) => varSet.has(r))) rowNames = genericNames('row', m); // generic rows clashing with own var names
  const rowSet = new Set(rowNames);
  let objectiveName = problem.objectiveName && valid(problem.objectiveName) ? problem.objectiveName : 'obj';
  while (rowSet.has(objectiveName) || varSet.has(objectiveName)) objectiveName = `${objectiveName}_`;
  return { varNames, rowNames, objectiveName };
}
