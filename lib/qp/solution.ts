/**
 * Gurobi-style solution files (`.sol`): comment lines starting with '#', blank lines, and one
 * `name value` line per variable. We write `# Objective value = …` first, as Gurobi does, and
 * every value as the shortest decimal that reads back as the same double.
 */
import { writeFile } from 'node:fs/promises';
import { AdvcorrectError } from '../errors.js';
import { readFileCapped } from '../util/files.js';
import { QPS_MAX_BYTES } from './qps-reader.js';

/** Largest .sol file read (the same as a QPS file's text). */
export const SOLUTION_MAX_BYTES = QPS_MAX_BYTES;
import { formatNumber } from './qps-writer.js';
import { chooseNames } from './names.js';
import { isValidLpName } from './lp-writer.js';
import type { QuadraticProgram } from './types.js';

export interface SolutionFile {
  /** Variable names in file order. */
  names: string[];
  /** Values in file order. */
  values: Float64Array;
  /** From a `# Objective value = …` comment, when present. */
  objective?: number;
}

/** Text of a `.sol` file for the given variable names and values. */
export function writeSolution(names: readonly string[], x: ArrayLike<number>, objective?: number, comment?: string): string {
  if (!Array.isArray(names)) throw new TypeError('names must be an array of strings');
  if (x === null || typeof x !== 'object' || typeof x.length !== 'number') throw new TypeError('x must be an array of numbers');
  if (names.length !== x.length) throw new RangeError(`names has length ${names.length} but x has length ${x.length}`);
  if (objective !== undefined && typeof objective !== 'number') throw new TypeError('objective must be a number');
  const lines: string[] = [];
  if (comment !== undefined) for (const line of comment.split('\n')) lines.push(`# ${line}`);
  if (objective !== undefined) lines.push(`# Objective value = ${formatNumber(objective)}`);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (typeof name !== 'string' || name === '' || /\s/.test(name)) throw new RangeError(`names[${i}] must be a non-empty name without whitespace`);
    const v = x[i];
    if (typeof v !== 'number') throw new TypeError(`x[${i}] must be a number`);
    lines.push(`${name} ${formatNumber(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes a `.sol` file. */
export async function writeSolutionFile(
  file: string,
  names: readonly string[],
  x: ArrayLike<number>,
  objective?: number,
  comment?: string,
): Promise<void> {
  const text = writeSolution(names, x, objective, comment);
  try {
    await writeFile(file, text);
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

const OBJECTIVE_RE = /^#\s*objective\s+value\s*[=:]\s*(\S+)/i;
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?(?:inf|infinity|nan)$/i;

/** Parses `.sol` text; malformed lines raise AdvcorrectError('ERR_PARSE', 'FILE:LINE: …'). */
export function readSolution(text: string, options: { fileName?: string } = {}): SolutionFile {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const fileName = options.fileName ?? '<input>';
  const names: string[] = [];
  const values: number[] = [];
  const seen = new Map<string, number>();
  let objective: number | undefined;
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k].trim();
    const lineNo = k + 1;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const match = OBJECTIVE_RE.exec(line);
      if (match) {
        const v = Number(match[1]);
        if (Number.isFinite(v)) objective = v;
      }
      continue;
    }
    const tokens = line.split(/\s+/);
    if (tokens.length !== 2) throw new AdvcorrectError('ERR_PARSE', `${fileName}:${lineNo}: expected 'NAME VALUE', got ${tokens.length} fields`);
    const [name, valueText] = tokens;
    if (!NUMBER_RE.test(valueText)) throw new AdvcorrectError('ERR_PARSE', `${fileName}:${lineNo}: value '${valueText}' of '${name}' is not a number`);
    const value = Number(valueText);
    // A solution is a point: 'inf', 'nan' and overflowing decimals such as 1e400 are no value of one.
    if (!Number.isFinite(value))
      throw new AdvcorrectError('ERR_PARSE', `${fileName}:${lineNo}: value '${valueText}' of '${name}' is not a finite number`);
    const previous = seen.get(name);
    if (previous !== undefined) throw new AdvcorrectError('ERR_PARSE', `${fileName}:${lineNo}: duplicate variable '${name}' (first on line ${previous})`);
    seen.set(name, lineNo);
    names.push(name);
    values.push(value);
  }
  return { names, values: Float64Array.from(values), objective };
}

/** Reads a `.sol` file from disk. */
export async function readSolutionFile(file: string): Promise<SolutionFile> {
  if (typeof file !== 'string' || file === '') throw new TypeError('file must be a non-empty string');
  const text = (await readFileCapped(file, '.sol file', SOLUTION_MAX_BYTES)).toString('utf8');
  return readSolution(text, { fileName: file });
}

function listSome(names: string[], limit = 5): string {
  const shown = names.slice(0, limit).map((n) => `'${n}'`).join(', ');
  return names.length > limit ? `${shown} and ${names.length - limit} more` : shown;
}

/**
 * Maps a solution onto the problem's variables, by name. Accepts the problem's own names, or the
 * names our QPS/LP writers used for it when they had to replace them (x0…). Throws
 * AdvcorrectError('ERR_DATA') naming the unknown and the missing variables otherwise.
 */
export function solutionVector(problem: QuadraticProgram, solution: SolutionFile, fileName = '<solution>'): Float64Array {
  const n = problem.q.length;
  const candidates: string[][] = [problem.varNames];
  const lpNames = chooseNames(problem, isValidLpName).varNames;
  if (lpNames.some((name, j) => name !== problem.varNames[j])) candidates.push(lpNames);
  let best: { unknown: string[]; missing: string[] } | undefined;
  for (const varNames of candidates) {
    const index = new Map<string, number>();
    varNames.forEach((name, j) => index.set(name, j));
    const x = new Float64Array(n);
    const set = new Uint8Array(n);
    const unknown: string[] = [];
    for (let k = 0; k < solution.names.length; k++) {
      const j = index.get(solution.names[k]);
      if (j === undefined) unknown.push(solution.names[k]);
      else {
        x[j] = solution.values[k];
        set[j] = 1;
      }
    }
    const missing: string[] = [];
    for (let j = 0; j < n; j++) if (!set[j]) missing.push(varNames[j]);
    if (unknown.length === 0 && missing.length === 0) return x;
    if (!best || unknown.length + missing.length < best.unknown.length + best.missing.length) best = { unknown, missing };
  }
  const parts: string[] = [];
  if (best!.unknown.length > 0) parts.push(`${best!.unknown.length} name(s) that are not variables of the problem: ${listSome(best!.unknown)}`);
  if (best!.missing.length > 0) parts.push(`no value for ${best!.missing.length} variable(s): ${listSome(best!.missing)}`);
  throw new AdvcorrectError('ERR_DATA', `${fileName} does not match problem '${problem.name}': it has ${parts.join('; and ')}`);
}
