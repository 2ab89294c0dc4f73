/**
 * Free-format MPS/QPS reader and writer for convex QPs
 * (minimise ½ xᵀPx + qᵀx + r subject to rowLower ≤ Ax ≤ rowUpper, varLower ≤ x ≤ varUpper).
 *
 * Conventions (see docs/qp-formats.md): the first N row is the objective; its RHS is minus the
 * objective constant; |value| ≥ 1e19 in RHS/RANGES/BOUNDS means infinite; QUADOBJ lists one
 * triangle of P, QMATRIX the full matrix; `UP` < 0 on a variable whose lower bound was never set
 * makes the lower bound −∞ (the CPLEX/HiGHS rule). Every malformed input raises
 * AdvcorrectError('ERR_PARSE', 'FILE:LINE: …').
 */
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { AdvcorrectError } from '../errors.js';
import { formatBytes, readFileCapped } from '../util/files.js';
import type { CscMatrix, QuadraticProgram } from './types.js';

/**
 * Largest QPS text read (after gunzip), in bytes: the longest string V8 holds (512 MiB on 64-bit
 * Node). Larger files, and endless ones such as /dev/zero, end in ERR_TOO_LARGE.
 */
export const QPS_MAX_BYTES: number = Math.min(2 ** 30, bufferConstants.MAX_STRING_LENGTH);

/** Magnitudes at or above this are read as infinite in RHS, RANGES and BOUNDS. */
export const QPS_INFINITY = 1e19;

export interface ReadQpsOptions {
  /** Shown in error messages as `FILE:LINE: …` (default `<input>`). */
  fileName?: string;
  /** Largest file and largest text after gunzip, in bytes (default {@link QPS_MAX_BYTES}). */
  maxBytes?: number;
}

function checkMaxBytes(maxBytes: unknown): number {
  if (maxBytes === undefined) return QPS_MAX_BYTES;
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes <= 0 || maxBytes > QPS_MAX_BYTES)
    throw new RangeError(`options.maxBytes must be an integer in [1, ${QPS_MAX_BYTES}], got ${String(maxBytes)}`);
  return maxBytes;
}

function inflateError(fileName: string, error: unknown, maxBytes: number): AdvcorrectError {
  if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError)
    return new AdvcorrectError('ERR_TOO_LARGE', `${fileName}: the gzipped QPS text is larger than ${formatBytes(maxBytes)}, the limit for a QPS file`, { cause: error });
  return new AdvcorrectError('ERR_PARSE', `${fileName}: corrupt gzip data: ${(error as Error).message}`, { cause: error });
}

const gunzipAsync = promisify(gunzip);

function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** Reads a QPS (free MPS + QUADOBJ/QMATRIX) file, gzipped or not (detected by its magic bytes). */
export async function readQpsFile(file: string, options: { maxBytes?: number } = {}): Promise<QuadraticProgram> {
  if (typeof file !== 'string' || file === '') throw new TypeError('file must be a non-empty string');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const maxBytes = checkMaxBytes(options.maxBytes);
  let data: Buffer = await readFileCapped(file, 'QPS file', maxBytes);
  if (isGzip(data)) {
    try {
      data = await gunzipAsync(data, { maxOutputLength: maxBytes });
    } catch (error) {
      throw inflateError(file, error, maxBytes);
    }
  }
  return parseQps(data.toString('latin1'), file);
}

/** Parses QPS text (or a Buffer, gzipped or not). */
export function readQps(source: string | Uint8Array, options: ReadQpsOptions = {}): QuadraticProgram {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const fileName = options.fileName ?? '<input>';
  if (typeof fileName !== 'string') throw new TypeError('options.fileName must be a string');
  const maxBytes = checkMaxBytes(options.maxBytes);
  if (typeof source === 'string') return parseQps(source, fileName);
  if (!(source instanceof Uint8Array)) throw new TypeError('source must be a string or a Buffer');
  let data = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  if (isGzip(data)) {
    try {
      data = gunzipSync(data, { maxOutputLength: maxBytes });
    } catch (error) {
      throw inflateError(fileName, error, maxBytes);
    }
  }
  if (data.length > maxBytes)
    throw new AdvcorrectError('ERR_TOO_LARGE', `${fileName}: ${formatBytes(data.length)} of QPS text is more than the limit of ${formatBytes(maxBytes)}`);
  return parseQps(data.toString('latin1'), fileName);
}

// ---------------------------------------------------------------------------------------------
// Reader

type Section = 'NAME' | 'OBJSENSE' | 'ROWS' | 'COLUMNS' | 'RHS' | 'RANGES' | 'BOUNDS' | 'QUADOBJ' | 'QMATRIX';

const SECTIONS = new Set<string>(['NAME', 'OBJSENSE', 'ROWS', 'COLUMNS', 'RHS', 'RANGES', 'BOUNDS', 'QUADOBJ', 'QMATRIX', 'QSECTION', 'ENDATA']);
const UNSUPPORTED_SECTIONS: Record<string, string> = {
  SOS: 'special ordered sets are not supported (continuous convex QPs only)',
  QCMATRIX: 'quadratic constraints are not supported',
  CSECTION: 'conic constraints are not supported',
  INDICATORS: 'indicator constraints are not supported',
};

/** A decimal number as MPS writes it (no hex, no 'Infinity' words, no empty strings). */
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$/;
const INF_WORD_RE = /^[+-]?inf(?:inity)?$/i;

class GrowableTriplets {
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
function tripletsToCsc(t: GrowableTriplets, nrows: number, ncols: number): CscMatrix {
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

type RowType = 'N' | 'E' | 'L' | 'G';

function parseQps(text: string, fileName: string): QuadraticProgram {
  let lineNo = 0;
  const fail = (message: string, line = lineNo): never => {
    throw new AdvcorrectError('ERR_PARSE', `${fileName}:${line}: ${message}`);
  };
  const num = (token: string, what: string): number => {
    if (!NUMBER_RE.test(token)) {
      if (INF_WORD_RE.test(token)) return token.startsWith('-') ? -Infinity : Infinity;
      fail(`${what}: '${token}' is not a number`);
    }
    const value = Number(token.replace(/[dD]/, 'e'));
    if (Number.isNaN(value)) fail(`${what}: '${token}' is not a number`);
    return value;
  };
  /** A bound/RHS value: |v| ≥ 1e19 → ±∞. */
  const boundValue = (token: string, what: string): number => {
    const v = num(token, what);
    if (v >= QPS_INFINITY) return Infinity;
    if (v <= -QPS_INFINITY) return -Infinity;
    return v;
  };
  /** A matrix or objective coefficient: must be finite and below the infinity threshold. */
  const coefficient = (token: string, what: string): number => {
    const v = num(token, what);
    if (!(Math.abs(v) < QPS_INFINITY)) fail(`${what}: coefficient ${token} is infinite or too large (|value| ≥ 1e19)`);
    return v;
  };

  let name = '';
  let section: Section | '' = '' as Section | '';
  const seen = new Set<string>();
  let ended = false;
  let objSenseSeen = false;

  // ROWS
  const rowIndexByName = new Map<string, number>();
  const rowNames: string[] = [];
  const rowTypes: RowType[] = [];
  let objectiveName = '';
  let objectiveRow = -1; // position in rowNames of the objective N row
  // Indices into the constraint list (objective excluded) for each ROWS row; -1 for the objective.
  const constraintOf: number[] = [];
  const freeRowNames = new Set<string>(); // extra N rows: kept as free constraints

  // COLUMNS
  const colIndexByName = new Map<string, number>();
  const varNames: string[] = [];
  const qList: number[] = [];
  const aTriplets = new GrowableTriplets();
  let currentCol = -1;
  let currentColName = '';
  let rowMark = new Int32Array(0); // last column that touched each constraint row
  let objMark = -1;

  // RHS / RANGES
  let rhs: Float64Array = new Float64Array(0);
  let ranges: Float64Array = new Float64Array(0);
  let hasRange: Uint8Array = new Uint8Array(0);
  let objectiveConstant = 0;
  let rhsSetName: string | undefined;
  let rangeSetName: string | undefined;

  // BOUNDS
  let varLower = new Float64Array(0);
  let varUpper = new Float64Array(0);
  let lowerSet = new Uint8Array(0);
  let boundSetName: string | undefined;

  // QUADOBJ / QMATRIX
  const pTriplets = new GrowableTriplets();
  const quadSeen = new Map<number, number>(); // key → +1 listed as (i ≤ j), −1 listed as (i > j), or value index
  const qmatrixLower = new Map<number, { value: number; line: number }>();
  let quadSectionName = '';

  let nConstraints = 0;

  const startColumns = (): void => {
    nConstraints = rowNames.length - 1;
    rowMark = new Int32Array(rowNames.length).fill(-1);
    rhs = new Float64Array(nConstraints);
    ranges = new Float64Array(nConstraints);
    hasRange = new Uint8Array(nConstraints);
  };
  const finishColumns = (): void => {
    const n = varNames.length;
    varLower = new Float64Array(n);
    varUpper = new Float64Array(n).fill(Infinity);
    lowerSet = new Uint8Array(n);
  };

  const rowOf = (token: string): number => {
    const r = rowIndexByName.get(token);
    if (r === undefined) fail(`unknown row '${token}'`);
    return r as number;
  };
  const colOf = (token: string): number => {
    const c = colIndexByName.get(token);
    if (c === undefined) fail(`unknown column '${token}'`);
    return c as number;
  };

  const order: Record<string, number> = { NAME: 0, OBJSENSE: 1, ROWS: 2, COLUMNS: 3, RHS: 4, RANGES: 5, BOUNDS: 6, QUADOBJ: 7, QMATRIX: 7 };

  const enterSection = (keyword: string, rest: string[]): void => {
    if (keyword === 'QSECTION') keyword = 'QUADOBJ';
    if (seen.has(keyword) || (keyword === 'QUADOBJ' && seen.has('QMATRIX')) || (keyword === 'QMATRIX' && seen.has('QUADOBJ')))
      fail(`duplicate section ${keyword}`);
    if (keyword !== 'NAME' && keyword !== 'OBJSENSE' && keyword !== 'ROWS' && !seen.has('ROWS'))
      fail(`section ${keyword} before ROWS (missing ROWS section)`);
    if ((order[keyword] ?? 0) > order.COLUMNS && !seen.has('COLUMNS')) fail(`section ${keyword} before COLUMNS (missing COLUMNS section)`);
    if (keyword === 'NAME' && seen.size > 0) fail('NAME must be the first section');
    if (section === 'ROWS') {
      if (objectiveRow < 0) fail('ROWS section has no objective (N) row');
    }
    if (section === 'COLUMNS') finishColumns();
    seen.add(keyword);
    section = keyword as Section;
    if (keyword === 'NAME') name = rest.join(' ');
    if (keyword === 'COLUMNS') startColumns();
    if (keyword === 'OBJSENSE') {
      objSenseSeen = false;
      if (rest.length > 0) handleObjSense(rest[0]);
    }
    if (keyword === 'QUADOBJ' || keyword === 'QMATRIX') quadSectionName = keyword;
  };

  const handleObjSense = (token: string): void => {
    const sense = token.toUpperCase();
    if (sense === 'MAX' || sense === 'MAXIMIZE') fail('OBJSENSE MAX is not supported: write the problem as a minimisation');
    if (sense !== 'MIN' && sense !== 'MINIMIZE') fail(`unknown OBJSENSE '${token}'`);
    objSenseSeen = true;
  };

  const addRow = (tokens: string[]): void => {
    if (tokens.length !== 2) fail(`ROWS line must be 'TYPE NAME', got ${tokens.length} fields`);
    const type = tokens[0].toUpperCase();
    const rowName = tokens[1];
    if (type !== 'N' && type !== 'E' && type !== 'L' && type !== 'G') fail(`unknown row type '${tokens[0]}' (expected N, E, L or G)`);
    if (rowIndexByName.has(rowName)) fail(`duplicate row name '${rowName}'`);
    const index = rowNames.length;
    rowIndexByName.set(rowName, index);
    rowNames.push(rowName);
    rowTypes.push(type as RowType);
    if (type === 'N' && objectiveRow < 0) {
      objectiveRow = index;
      objectiveName = rowName;
      constraintOf.push(-1);
    } else {
      if (type === 'N') freeRowNames.add(rowName);
      constraintOf.push(constraintOf.length - (objectiveRow >= 0 ? 1 : 0));
    }
  };

  const addColumnEntry = (col: number, rowToken: string, valueToken: string): void => {
    const row = rowOf(rowToken);
    const value = coefficient(valueToken, `column '${currentColName}', row '${rowToken}'`);
    if (row === objectiveRow) {
      if (objMark === col) fail(`duplicate entry for column '${currentColName}' in row '${rowToken}'`);
      objMark = col;
      qList[col] = value;
      return;
    }
    if (rowMark[row] === col) fail(`duplicate entry for column '${currentColName}' in row '${rowToken}'`);
    rowMark[row] = col;
    if (value !== 0) aTriplets.push(constraintOf[row], col, value);
  };

  const addColumns = (tokens: string[]): void => {
    if (tokens.length >= 2 && (tokens[1] === "'MARKER'" || tokens[1].toUpperCase() === 'MARKER' || tokens[0] === 'MARKER')) {
      fail("integer MARKER lines are not supported: advcorrect solves continuous QPs only");
    }
    if (tokens.length !== 3 && tokens.length !== 5) fail(`COLUMNS line must be 'COLUMN ROW VALUE [ROW VALUE]', got ${tokens.length} fields`);
    const colName = tokens[0];
    if (colName !== currentColName || currentCol < 0) {
      if (colIndexByName.has(colName))
        fail(`column '${colName}' appears again after other columns (duplicate column name, or its entries are not contiguous)`);
      currentCol = varNames.length;
      currentColName = colName;
      colIndexByName.set(colName, currentCol);
      varNames.push(colName);
      qList.push(0);
    }
    addColumnEntry(currentCol, tokens[1], tokens[2]);
    if (tokens.length === 5) addColumnEntry(currentCol, tokens[3], tokens[4]);
  };

  const rhsEntry = (rowToken: string, valueToken: string, seenRows: Set<number>, kind: 'RHS' | 'RANGES'): void => {
    const row = rowOf(rowToken);
    if (seenRows.has(row)) fail(`duplicate ${kind} entry for row '${rowToken}'`);
    seenRows.add(row);
    if (kind === 'RHS') {
      if (row === objectiveRow) {
        const v = coefficient(valueToken, `RHS of objective row '${rowToken}'`);
        objectiveConstant = v === 0 ? 0 : -v;
        return;
      }
      const value = boundValue(valueToken, `RHS of row '${rowToken}'`);
      if (rowTypes[row] === 'N') return; // RHS on a free row has no meaning; ignored as other readers do
      rhs[constraintOf[row]] = value;
    } else {
      if (row === objectiveRow || rowTypes[row] === 'N') fail(`RANGES entry for N row '${rowToken}'`);
      const value = boundValue(valueToken, `RANGES value of row '${rowToken}'`);
      ranges[constraintOf[row]] = value;
      hasRange[constraintOf[row]] = 1;
    }
  };

  const rhsSeen = new Set<number>();
  const rangeSeen = new Set<number>();
  const addRhsLike = (tokens: string[], kind: 'RHS' | 'RANGES'): void => {
    let start = 0;
    if (tokens.length === 3 || tokens.length === 5) {
      const set = tokens[0];
      const current = kind === 'RHS' ? rhsSetName : rangeSetName;
      if (current === undefined) {
        if (kind === 'RHS') rhsSetName = set;
        else rangeSetName = set;
      } else if (current !== set) fail(`more than one ${kind} set ('${current}' and '${set}') is not supported`);
      start = 1;
    } else if (tokens.length !== 2 && tokens.length !== 4) {
      fail(`${kind} line must be '[SET] ROW VALUE [ROW VALUE]', got ${tokens.length} fields`);
    }
    const seenRows = kind === 'RHS' ? rhsSeen : rangeSeen;
    rhsEntry(tokens[start], tokens[start + 1], seenRows, kind);
    if (tokens.length - start === 4) rhsEntry(tokens[start + 2], tokens[start + 3], seenRows, kind);
  };

  const addBound = (tokens: string[]): void => {
    const type = tokens[0].toUpperCase();
    const noValue = type === 'FR' || type === 'MI' || type === 'PL' || type === 'BV';
    let colToken: string;
    let valueToken: string | undefined;
    let setName: string | undefined;
    if (noValue) {
      if (tokens.length === 3) {
        setName = tokens[1];
        colToken = tokens[2];
      } else if (tokens.length === 2) colToken = tokens[1];
      else if (tokens.length === 4 && type !== 'BV') {
        // some writers put a (ignored) value after FR/MI/PL
        setName = tokens[1];
        colToken = tokens[2];
      } else {
        fail(`BOUNDS line '${type}' must be '${type} [SET] COLUMN', got ${tokens.length} fields`);
        return;
      }
    } else if (tokens.length === 4) {
      setName = tokens[1];
      colToken = tokens[2];
      valueToken = tokens[3];
    } else if (tokens.length === 3) {
      colToken = tokens[1];
      valueToken = tokens[2];
    } else {
      fail(`BOUNDS line must be 'TYPE [SET] COLUMN VALUE', got ${tokens.length} fields`);
      return;
    }
    if (setName !== undefined) {
      if (boundSetName === undefined) boundSetName = setName;
      else if (boundSetName !== setName) fail(`more than one BOUNDS set ('${boundSetName}' and '${setName}') is not supported`);
    }
    if (type === 'BV' || type === 'LI' || type === 'UI' || type === 'SC')
      fail(`bound type ${type} makes a variable integer or semi-continuous: advcorrect solves continuous QPs only`);
    const col = colOf(colToken);
    switch (type) {
      case 'UP': {
        const v = boundValue(valueToken as string, `UP bound of '${colToken}'`);
        varUpper[col] = v;
        // CPLEX/HiGHS rule: a negative upper bound on a variable whose lower bound was never set
        // makes the lower bound −∞ (a later LO overrides it).
        if (v < 0 && !lowerSet[col] && varLower[col] === 0) varLower[col] = -Infinity;
        break;
      }
      case 'LO':
        varLower[col] = boundValue(valueToken as string, `LO bound of '${colToken}'`);
        lowerSet[col] = 1;
        break;
      case 'FX': {
        const v = boundValue(valueToken as string, `FX bound of '${colToken}'`);
        if (!Number.isFinite(v)) fail(`FX bound of '${colToken}' is infinite`);
        varLower[col] = v;
        varUpper[col] = v;
        lowerSet[col] = 1;
        break;
      }
      case 'FR':
        varLower[col] = -Infinity;
        varUpper[col] = Infinity;
        lowerSet[col] = 1;
        break;
      case 'MI':
        varLower[col] = -Infinity;
        lowerSet[col] = 1;
        break;
      case 'PL':
        varUpper[col] = Infinity;
        break;
      default:
        fail(`unknown bound type '${tokens[0]}' (expected UP, LO, FX, FR, MI or PL)`);
    }
  };

  const n = (): number => varNames.length;
  const addQuad = (tokens: string[]): void => {
    if (tokens.length !== 3) fail(`${quadSectionName} line must be 'COLUMN COLUMN VALUE', got ${tokens.length} fields`);
    const i = colOf(tokens[0]);
    const j = colOf(tokens[1]);
    const value = coefficient(tokens[2], `${quadSectionName} entry (${tokens[0]}, ${tokens[1]})`);
    const lo = i < j ? i : j;
    const hi = i < j ? j : i;
    const key = lo * n() + hi;
    if (quadSectionName === 'QMATRIX') {
      if (i > j) {
        if (qmatrixLower.has(key)) fail(`duplicate QMATRIX entry (${tokens[0]}, ${tokens[1]})`);
        qmatrixLower.set(key, { value, line: lineNo });
        return;
      }
      if (quadSeen.has(key)) fail(`duplicate QMATRIX entry (${tokens[0]}, ${tokens[1]})`);
      quadSeen.set(key, value);
      if (value !== 0) pTriplets.push(lo, hi, value);
      return;
    }
    if (quadSeen.has(key)) {
      if (i === j || quadSeen.get(key) === (i < j ? 1 : -1)) fail(`duplicate QUADOBJ entry (${tokens[0]}, ${tokens[1]})`);
      fail(
        `QUADOBJ lists both (${tokens[0]}, ${tokens[1]}) and (${tokens[1]}, ${tokens[0]}): QUADOBJ must list one triangle ` +
          '(use QMATRIX for the full matrix)',
      );
    }
    quadSeen.set(key, i < j ? 1 : -1);
    if (value !== 0) pTriplets.push(lo, hi, value);
  };

  // ---- the line loop
  const length = text.length;
  let pos = 0;
  while (pos < length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = length;
    lineNo++;
    let line = text.slice(pos, end);
    pos = end + 1;
    if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if (first === 42 /* '*' */) continue; // comment
    const tokens = line.trim().split(/\s+/);
    if (tokens.length === 1 && tokens[0] === '') continue;
    if (ended) fail(`text after ENDATA`);
    const header = first !== 32 && first !== 9;
    if (header) {
      const keyword = tokens[0].toUpperCase();
      if (keyword === 'ENDATA') {
        if (section === 'ROWS' && objectiveRow < 0) fail('ROWS section has no objective (N) row');
        if (section === 'COLUMNS') finishColumns();
        ended = true;
        continue;
      }
      if (Object.hasOwn(UNSUPPORTED_SECTIONS, keyword)) fail(`section ${keyword}: ${UNSUPPORTED_SECTIONS[keyword]}`);
      if (!SECTIONS.has(keyword)) fail(`unknown section '${tokens[0]}'`);
      enterSection(keyword, tokens.slice(1));
      continue;
    }
    switch (section) {
      case '':
        fail('data line before any section header');
        break;
      case 'NAME':
        fail('unexpected data line in NAME section');
        break;
      case 'OBJSENSE':
        if (objSenseSeen || tokens.length !== 1) fail('OBJSENSE section must hold one word, MIN or MAX');
        handleObjSense(tokens[0]);
        break;
      case 'ROWS':
        addRow(tokens);
        break;
      case 'COLUMNS':
        addColumns(tokens);
        break;
      case 'RHS':
        addRhsLike(tokens, 'RHS');
        break;
      case 'RANGES':
        addRhsLike(tokens, 'RANGES');
        break;
      case 'BOUNDS':
        addBound(tokens);
        break;
      case 'QUADOBJ':
      case 'QMATRIX':
        addQuad(tokens);
        break;
    }
  }

  if (!ended) {
    if (!seen.has('ROWS')) fail('missing ROWS section', lineNo);
    if (!seen.has('COLUMNS')) fail('missing COLUMNS section', lineNo);
    fail('missing ENDATA: the file is truncated', lineNo);
  }
  if (!seen.has('ROWS')) fail('missing ROWS section');
  if (!seen.has('COLUMNS')) fail('missing COLUMNS section');

  for (const [key, entry] of qmatrixLower) {
    const upper = quadSeen.get(key);
    if (upper === undefined || upper !== entry.value) {
      const nn = n();
      const lo = Math.floor(key / nn);
      const hi = key - lo * nn;
      fail(`QMATRIX is not symmetric: entry (${varNames[hi]}, ${varNames[lo]}) has no equal mirror (${varNames[lo]}, ${varNames[hi]})`, entry.line);
    }
  }
  if (quadSectionName === 'QMATRIX') {
    for (const [key, value] of quadSeen) {
      if (!qmatrixLower.has(key)) {
        const nn = n();
        const lo = Math.floor(key / nn);
        const hi = key - lo * nn;
        if (lo !== hi && value !== 0)
          fail(`QMATRIX is not symmetric: entry (${varNames[lo]}, ${varNames[hi]}) has no mirror (${varNames[hi]}, ${varNames[lo]})`);
      }
    }
  }

  // ---- assemble rows
  const m = nConstraints;
  const rowLower = new Float64Array(m);
  const rowUpper = new Float64Array(m);
  const consNames: string[] = new Array(m);
  for (let r = 0; r < rowNames.length; r++) {
    if (r === objectiveRow) continue;
    const k = constraintOf[r];
    consNames[k] = rowNames[r];
    const b = rhs[k];
    const type = rowTypes[r];
    let lo: number;
    let up: number;
    switch (type) {
      case 'E':
        lo = b;
        up = b;
        break;
      case 'L':
        lo = -Infinity;
        up = b;
        break;
      case 'G':
        lo = b;
        up = Infinity;
        break;
      default:
        lo = -Infinity;
        up = Infinity;
    }
    if (hasRange[k]) {
      const R = ranges[k];
      if (type === 'G') up = b + Math.abs(R);
      else if (type === 'L') lo = b - Math.abs(R);
      else if (type === 'E') {
        if (R > 0) up = b + R;
        else if (R < 0) lo = b + R;
      }
    }
    rowLower[k] = lo;
    rowUpper[k] = up;
  }

  const nVars = varNames.length;
  return {
    name,
    P: tripletsToCsc(pTriplets, nVars, nVars),
    q: Float64Array.from(qList),
    r: objectiveConstant,
    A: tripletsToCsc(aTriplets, m, nVars),
    rowLower,
    rowUpper,
    varLower,
    varUpper,
    varNames,
    rowNames: consNames,
    objectiveName,
  };
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

// ---------------------------------------------------------------------------------------------
// Writer

/** Shortest decimal text that reads back as the same double (JavaScript's Number→String). */
export function formatNumber(value: number): string {
  if (Object.is(value, -0)) return '0';
  return String(value);
}

const MPS_NAME_RE = /^[!-~]+$/; // printable ASCII, no spaces

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
