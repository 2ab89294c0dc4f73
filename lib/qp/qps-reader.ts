/**
 * Free-format MPS/QPS reader for convex QPs
 * (minimise ½ xᵀPx + qᵀx + r subject to rowLower ≤ Ax ≤ rowUpper, varLower ≤ x ≤ varUpper).
 *
 * Conventions (see docs/qp-formats.md): the first N row is the objective; its RHS is minus the
 * objective constant; |value| ≥ 1e19 in RHS/RANGES/BOUNDS means infinite; QUADOBJ lists one
 * triangle of P, QMATRIX the full matrix; `UP` < 0 on a variable whose lower bound was never set
 * makes the lower bound −∞ (the CPLEX/HiGHS rule). Every malformed input raises
 * AdvcorrectError('ERR_PARSE', 'FILE:LINE: …').
 *
 * Layout: `readQps`/`readQpsFile` check their arguments, gunzip and hand the text to `parseQps`.
 * `parseQps` walks the lines; a header line goes to `enterSection`, a data line to the reader of
 * the current section (`readObjSenseLine`, `readRowsLine`, `readColumnsLine`, `readRhsLine`,
 * `readRangesLine`, `readBoundsLine`, `readQuadLine`). All of them share one `ParserState`. At
 * ENDATA, `checkQmatrixSymmetry` and `assembleProblem` turn the state into a QuadraticProgram.
 */
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { AdvcorrectError } from '../errors.js';
import { formatBytes, readFileCapped } from '../util/files.js';
import { GrowableTriplets, tripletsToCsc } from './sparse.js';
import type { QuadraticProgram } from './types.js';

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
// Parser state

type Section = 'NAME' | 'OBJSENSE' | 'ROWS' | 'COLUMNS' | 'RHS' | 'RANGES' | 'BOUNDS' | 'QUADOBJ' | 'QMATRIX';
type RowType = 'N' | 'E' | 'L' | 'G';

const SECTIONS = new Set<string>(['NAME', 'OBJSENSE', 'ROWS', 'COLUMNS', 'RHS', 'RANGES', 'BOUNDS', 'QUADOBJ', 'QMATRIX', 'QSECTION', 'ENDATA']);
const UNSUPPORTED_SECTIONS: Record<string, string> = {
  SOS: 'special ordered sets are not supported (continuous convex QPs only)',
  QCMATRIX: 'quadratic constraints are not supported',
  CSECTION: 'conic constraints are not supported',
  INDICATORS: 'indicator constraints are not supported',
};
/** Position of each section in a file; QUADOBJ and QMATRIX are alternatives. */
const SECTION_ORDER: Record<string, number> = { NAME: 0, OBJSENSE: 1, ROWS: 2, COLUMNS: 3, RHS: 4, RANGES: 5, BOUNDS: 6, QUADOBJ: 7, QMATRIX: 7 };

/** A decimal number as MPS writes it (no hex, no 'Infinity' words, no empty strings). */
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$/;
const INF_WORD_RE = /^[+-]?inf(?:inity)?$/i;

/** Everything the section readers learn from the lines so far. */
interface ParserState {
  readonly fileName: string;
  /** 1-based number of the line being read. */
  lineNo: number;
  name: string;
  section: Section | '';
  /** Sections entered so far (QSECTION counted as QUADOBJ). */
  readonly seen: Set<string>;
  ended: boolean;
  objSenseSeen: boolean;

  // ROWS
  readonly rowIndexByName: Map<string, number>;
  readonly rowNames: string[];
  readonly rowTypes: RowType[];
  objectiveName: string;
  /** Position in rowNames of the objective (the first N row); −1 until one is read. */
  objectiveRow: number;
  /** For each ROWS row, its index in the constraint list (objective excluded); −1 for the objective. */
  readonly constraintOf: number[];
  nConstraints: number;

  // COLUMNS
  readonly colIndexByName: Map<string, number>;
  readonly varNames: string[];
  readonly q: number[];
  readonly aTriplets: GrowableTriplets;
  currentCol: number;
  currentColName: string;
  /** Last column that had an entry in each constraint row (duplicate check). */
  rowMark: Int32Array;
  /** Last column that had an objective entry. */
  objMark: number;

  // RHS / RANGES
  rhs: Float64Array;
  ranges: Float64Array;
  hasRange: Uint8Array;
  objectiveConstant: number;
  rhsSetName: string | undefined;
  rangeSetName: string | undefined;
  readonly rhsSeen: Set<number>;
  readonly rangeSeen: Set<number>;

  // BOUNDS
  varLower: Float64Array;
  varUpper: Float64Array;
  /** 1 where a bound line set the lower bound (then UP < 0 leaves it alone). */
  lowerSet: Uint8Array;
  boundSetName: string | undefined;

  // QUADOBJ / QMATRIX
  readonly pTriplets: GrowableTriplets;
  /** Key lo·n + hi → QUADOBJ: +1 listed as (i ≤ j), −1 as (i > j); QMATRIX: the upper entry's value. */
  readonly quadSeen: Map<number, number>;
  /** QMATRIX entries below the diagonal, kept to check that each mirrors an upper one. */
  readonly qmatrixLower: Map<number, { value: number; line: number }>;
  quadSectionName: string;
}

function newParserState(fileName: string): ParserState {
  return {
    fileName,
    lineNo: 0,
    name: '',
    section: '',
    seen: new Set(),
    ended: false,
    objSenseSeen: false,
    rowIndexByName: new Map(),
    rowNames: [],
    rowTypes: [],
    objectiveName: '',
    objectiveRow: -1,
    constraintOf: [],
    nConstraints: 0,
    colIndexByName: new Map(),
    varNames: [],
    q: [],
    aTriplets: new GrowableTriplets(),
    currentCol: -1,
    currentColName: '',
    rowMark: new Int32Array(0),
    objMark: -1,
    rhs: new Float64Array(0),
    ranges: new Float64Array(0),
    hasRange: new Uint8Array(0),
    objectiveConstant: 0,
    rhsSetName: undefined,
    rangeSetName: undefined,
    rhsSeen: new Set(),
    rangeSeen: new Set(),
    varLower: new Float64Array(0),
    varUpper: new Float64Array(0),
    lowerSet: new Uint8Array(0),
    boundSetName: undefined,
    pTriplets: new GrowableTriplets(),
    quadSeen: new Map(),
    qmatrixLower: new Map(),
    quadSectionName: '',
  };
}

function fail(s: ParserState, message: string, line: number = s.lineNo): never {
  throw new AdvcorrectError('ERR_PARSE', `${s.fileName}:${line}: ${message}`);
}

function parseNumber(s: ParserState, token: string, what: string): number {
  if (!NUMBER_RE.test(token)) {
    if (INF_WORD_RE.test(token)) return token.startsWith('-') ? -Infinity : Infinity;
    fail(s, `${what}: '${token}' is not a number`);
  }
  const value = Number(token.replace(/[dD]/, 'e'));
  if (Number.isNaN(value)) fail(s, `${what}: '${token}' is not a number`);
  return value;
}

/** A bound/RHS value: |v| ≥ 1e19 → ±∞. */
function boundValue(s: ParserState, token: string, what: string): number {
  const v = parseNumber(s, token, what);
  if (v >= QPS_INFINITY) return Infinity;
  if (v <= -QPS_INFINITY) return -Infinity;
  return v;
}

/** A matrix or objective coefficient: must be finite and below the infinity threshold. */
function coefficient(s: ParserState, token: string, what: string): number {
  const v = parseNumber(s, token, what);
  if (!(Math.abs(v) < QPS_INFINITY)) fail(s, `${what}: coefficient ${token} is infinite or too large (|value| ≥ 1e19)`);
  return v;
}

function rowOf(s: ParserState, token: string): number {
  const r = s.rowIndexByName.get(token);
  if (r === undefined) fail(s, `unknown row '${token}'`);
  return r;
}

function colOf(s: ParserState, token: string): number {
  const c = s.colIndexByName.get(token);
  if (c === undefined) fail(s, `unknown column '${token}'`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Section headers

/** A header line: checks the section order, closes the section being left and opens the next. */
function enterSection(s: ParserState, keyword: string, rest: string[]): void {
  if (keyword === 'QSECTION') keyword = 'QUADOBJ';
  const { seen } = s;
  if (seen.has(keyword) || (keyword === 'QUADOBJ' && seen.has('QMATRIX')) || (keyword === 'QMATRIX' && seen.has('QUADOBJ')))
    fail(s, `duplicate section ${keyword}`);
  if (keyword !== 'NAME' && keyword !== 'OBJSENSE' && keyword !== 'ROWS' && !seen.has('ROWS'))
    fail(s, `section ${keyword} before ROWS (missing ROWS section)`);
  if ((SECTION_ORDER[keyword] ?? 0) > SECTION_ORDER.COLUMNS && !seen.has('COLUMNS'))
    fail(s, `section ${keyword} before COLUMNS (missing COLUMNS section)`);
  if (keyword === 'NAME' && seen.size > 0) fail(s, 'NAME must be the first section');
  if (s.section === 'ROWS' && s.objectiveRow < 0) fail(s, 'ROWS section has no objective (N) row');
  if (s.section === 'COLUMNS') finishColumns(s);
  seen.add(keyword);
  s.section = keyword as Section;
  if (keyword === 'NAME') s.name = rest.join(' ');
  if (keyword === 'COLUMNS') startColumns(s);
  if (keyword === 'OBJSENSE') {
    s.objSenseSeen = false;
    if (rest.length > 0) readObjSense(s, rest[0]);
  }
  if (keyword === 'QUADOBJ' || keyword === 'QMATRIX') s.quadSectionName = keyword;
}

/** ENDATA: closes the section being left; every later non-blank, non-comment line is an error. */
function endData(s: ParserState): void {
  if (s.section === 'ROWS' && s.objectiveRow < 0) fail(s, 'ROWS section has no objective (N) row');
  if (s.section === 'COLUMNS') finishColumns(s);
  s.ended = true;
}

/** The rows are known: sizes the per-constraint arrays. */
function startColumns(s: ParserState): void {
  s.nConstraints = s.rowNames.length - 1;
  s.rowMark = new Int32Array(s.rowNames.length).fill(-1);
  s.rhs = new Float64Array(s.nConstraints);
  s.ranges = new Float64Array(s.nConstraints);
  s.hasRange = new Uint8Array(s.nConstraints);
}

/** The variables are known: default bounds [0, +∞). */
function finishColumns(s: ParserState): void {
  const n = s.varNames.length;
  s.varLower = new Float64Array(n);
  s.varUpper = new Float64Array(n).fill(Infinity);
  s.lowerSet = new Uint8Array(n);
}

// ---------------------------------------------------------------------------------------------
// Section data lines

/** OBJSENSE: MIN or MINIMIZE; MAX is refused (on the header line or on its own line). */
function readObjSense(s: ParserState, token: string): void {
  const sense = token.toUpperCase();
  if (sense === 'MAX' || sense === 'MAXIMIZE') fail(s, 'OBJSENSE MAX is not supported: write the problem as a minimisation');
  if (sense !== 'MIN' && sense !== 'MINIMIZE') fail(s, `unknown OBJSENSE '${token}'`);
  s.objSenseSeen = true;
}

function readObjSenseLine(s: ParserState, tokens: string[]): void {
  if (s.objSenseSeen || tokens.length !== 1) fail(s, 'OBJSENSE section must hold one word, MIN or MAX');
  readObjSense(s, tokens[0]);
}

/** ROWS: `TYPE NAME`. The first N row is the objective; later N rows become free constraints. */
function readRowsLine(s: ParserState, tokens: string[]): void {
  if (tokens.length !== 2) fail(s, `ROWS line must be 'TYPE NAME', got ${tokens.length} fields`);
  const type = tokens[0].toUpperCase();
  const rowName = tokens[1];
  if (type !== 'N' && type !== 'E' && type !== 'L' && type !== 'G') fail(s, `unknown row type '${tokens[0]}' (expected N, E, L or G)`);
  if (s.rowIndexByName.has(rowName)) fail(s, `duplicate row name '${rowName}'`);
  const index = s.rowNames.length;
  s.rowIndexByName.set(rowName, index);
  s.rowNames.push(rowName);
  s.rowTypes.push(type);
  if (type === 'N' && s.objectiveRow < 0) {
    s.objectiveRow = index;
    s.objectiveName = rowName;
    s.constraintOf.push(-1);
  } else {
    s.constraintOf.push(s.constraintOf.length - (s.objectiveRow >= 0 ? 1 : 0));
  }
}

/** COLUMNS: `COLUMN ROW VALUE [ROW VALUE]`; a column's lines must be contiguous. */
function readColumnsLine(s: ParserState, tokens: string[]): void {
  if (tokens.length >= 2 && (tokens[1] === "'MARKER'" || tokens[1].toUpperCase() === 'MARKER' || tokens[0] === 'MARKER')) {
    fail(s, 'integer MARKER lines are not supported: advcorrect solves continuous QPs only');
  }
  if (tokens.length !== 3 && tokens.length !== 5) fail(s, `COLUMNS line must be 'COLUMN ROW VALUE [ROW VALUE]', got ${tokens.length} fields`);
  const colName = tokens[0];
  if (colName !== s.currentColName || s.currentCol < 0) {
    if (s.colIndexByName.has(colName))
      fail(s, `column '${colName}' appears again after other columns (duplicate column name, or its entries are not contiguous)`);
    s.currentCol = s.varNames.length;
    s.currentColName = colName;
    s.colIndexByName.set(colName, s.currentCol);
    s.varNames.push(colName);
    s.q.push(0);
  }
  addColumnEntry(s, s.currentCol, tokens[1], tokens[2]);
  if (tokens.length === 5) addColumnEntry(s, s.currentCol, tokens[3], tokens[4]);
}

function addColumnEntry(s: ParserState, col: number, rowToken: string, valueToken: string): void {
  const row = rowOf(s, rowToken);
  const value = coefficient(s, valueToken, `column '${s.currentColName}', row '${rowToken}'`);
  if (row === s.objectiveRow) {
    if (s.objMark === col) fail(s, `duplicate entry for column '${s.currentColName}' in row '${rowToken}'`);
    s.objMark = col;
    s.q[col] = value;
    return;
  }
  if (s.rowMark[row] === col) fail(s, `duplicate entry for column '${s.currentColName}' in row '${rowToken}'`);
  s.rowMark[row] = col;
  if (value !== 0) s.aTriplets.push(s.constraintOf[row], col, value);
}

/** RHS: `[SET] ROW VALUE [ROW VALUE]`; on the objective row it is minus the constant. */
function readRhsLine(s: ParserState, tokens: string[]): void {
  readRhsLikeLine(s, tokens, 'RHS');
}

/** RANGES: `[SET] ROW VALUE [ROW VALUE]`; not on N rows. */
function readRangesLine(s: ParserState, tokens: string[]): void {
  readRhsLikeLine(s, tokens, 'RANGES');
}

/** RHS and RANGES lines share their layout: an optional set name (one set only), then pairs. */
function readRhsLikeLine(s: ParserState, tokens: string[], kind: 'RHS' | 'RANGES'): void {
  let start = 0;
  if (tokens.length === 3 || tokens.length === 5) {
    const set = tokens[0];
    const current = kind === 'RHS' ? s.rhsSetName : s.rangeSetName;
    if (current === undefined) {
      if (kind === 'RHS') s.rhsSetName = set;
      else s.rangeSetName = set;
    } else if (current !== set) fail(s, `more than one ${kind} set ('${current}' and '${set}') is not supported`);
    start = 1;
  } else if (tokens.length !== 2 && tokens.length !== 4) {
    fail(s, `${kind} line must be '[SET] ROW VALUE [ROW VALUE]', got ${tokens.length} fields`);
  }
  const seenRows = kind === 'RHS' ? s.rhsSeen : s.rangeSeen;
  rhsLikeEntry(s, tokens[start], tokens[start + 1], seenRows, kind);
  if (tokens.length - start === 4) rhsLikeEntry(s, tokens[start + 2], tokens[start + 3], seenRows, kind);
}

function rhsLikeEntry(s: ParserState, rowToken: string, valueToken: string, seenRows: Set<number>, kind: 'RHS' | 'RANGES'): void {
  const row = rowOf(s, rowToken);
  if (seenRows.has(row)) fail(s, `duplicate ${kind} entry for row '${rowToken}'`);
  seenRows.add(row);
  if (kind === 'RHS') {
    if (row === s.objectiveRow) {
      const v = coefficient(s, valueToken, `RHS of objective row '${rowToken}'`);
      s.objectiveConstant = v === 0 ? 0 : -v;
      return;
    }
    const value = boundValue(s, valueToken, `RHS of row '${rowToken}'`);
    if (s.rowTypes[row] === 'N') return; // RHS on a free row has no meaning; ignored as other readers do
    s.rhs[s.constraintOf[row]] = value;
  } else {
    if (row === s.objectiveRow || s.rowTypes[row] === 'N') fail(s, `RANGES entry for N row '${rowToken}'`);
    const value = boundValue(s, valueToken, `RANGES value of row '${rowToken}'`);
    s.ranges[s.constraintOf[row]] = value;
    s.hasRange[s.constraintOf[row]] = 1;
  }
}

/** BOUNDS: `TYPE [SET] COLUMN VALUE` (no value for FR, MI, PL); continuous types only. */
function readBoundsLine(s: ParserState, tokens: string[]): void {
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
      fail(s, `BOUNDS line '${type}' must be '${type} [SET] COLUMN', got ${tokens.length} fields`);
    }
  } else if (tokens.length === 4) {
    setName = tokens[1];
    colToken = tokens[2];
    valueToken = tokens[3];
  } else if (tokens.length === 3) {
    colToken = tokens[1];
    valueToken = tokens[2];
  } else {
    fail(s, `BOUNDS line must be 'TYPE [SET] COLUMN VALUE', got ${tokens.length} fields`);
  }
  if (setName !== undefined) {
    if (s.boundSetName === undefined) s.boundSetName = setName;
    else if (s.boundSetName !== setName) fail(s, `more than one BOUNDS set ('${s.boundSetName}' and '${setName}') is not supported`);
  }
  if (type === 'BV' || type === 'LI' || type === 'UI' || type === 'SC')
    fail(s, `bound type ${type} makes a variable integer or semi-continuous: advcorrect solves continuous QPs only`);
  const col = colOf(s, colToken);
  const { varLower, varUpper, lowerSet } = s;
  switch (type) {
    case 'UP': {
      const v = boundValue(s, valueToken as string, `UP bound of '${colToken}'`);
      varUpper[col] = v;
      // CPLEX/HiGHS rule: a negative upper bound on a variable whose lower bound was never set
      // makes the lower bound −∞ (a later LO overrides it).
      if (v < 0 && !lowerSet[col] && varLower[col] === 0) varLower[col] = -Infinity;
      break;
    }
    case 'LO':
      varLower[col] = boundValue(s, valueToken as string, `LO bound of '${colToken}'`);
      lowerSet[col] = 1;
      break;
    case 'FX': {
      const v = boundValue(s, valueToken as string, `FX bound of '${colToken}'`);
      if (!Number.isFinite(v)) fail(s, `FX bound of '${colToken}' is infinite`);
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
      fail(s, `unknown bound type '${tokens[0]}' (expected UP, LO, FX, FR, MI or PL)`);
  }
}

/**
 * QUADOBJ (one triangle of P, in either orientation, never both) or QMATRIX (the full matrix:
 * upper entries go into P, lower ones are kept for the symmetry check): `COLUMN COLUMN VALUE`.
 */
function readQuadLine(s: ParserState, tokens: string[]): void {
  const kind = s.quadSectionName;
  if (tokens.length !== 3) fail(s, `${kind} line must be 'COLUMN COLUMN VALUE', got ${tokens.length} fields`);
  const i = colOf(s, tokens[0]);
  const j = colOf(s, tokens[1]);
  const value = coefficient(s, tokens[2], `${kind} entry (${tokens[0]}, ${tokens[1]})`);
  const lo = i < j ? i : j;
  const hi = i < j ? j : i;
  const key = lo * s.varNames.length + hi;
  if (kind === 'QMATRIX') {
    if (i > j) {
      if (s.qmatrixLower.has(key)) fail(s, `duplicate QMATRIX entry (${tokens[0]}, ${tokens[1]})`);
      s.qmatrixLower.set(key, { value, line: s.lineNo });
      return;
    }
    if (s.quadSeen.has(key)) fail(s, `duplicate QMATRIX entry (${tokens[0]}, ${tokens[1]})`);
    s.quadSeen.set(key, value);
    if (value !== 0) s.pTriplets.push(lo, hi, value);
    return;
  }
  if (s.quadSeen.has(key)) {
    if (i === j || s.quadSeen.get(key) === (i < j ? 1 : -1)) fail(s, `duplicate QUADOBJ entry (${tokens[0]}, ${tokens[1]})`);
    fail(
      s,
      `QUADOBJ lists both (${tokens[0]}, ${tokens[1]}) and (${tokens[1]}, ${tokens[0]}): QUADOBJ must list one triangle ` +
        '(use QMATRIX for the full matrix)',
    );
  }
  s.quadSeen.set(key, i < j ? 1 : -1);
  if (value !== 0) s.pTriplets.push(lo, hi, value);
}

/** A data line (one with leading blanks) goes to the reader of the current section. */
function readDataLine(s: ParserState, tokens: string[]): void {
  switch (s.section) {
    case '':
      fail(s, 'data line before any section header');
      break;
    case 'NAME':
      fail(s, 'unexpected data line in NAME section');
      break;
    case 'OBJSENSE':
      readObjSenseLine(s, tokens);
      break;
    case 'ROWS':
      readRowsLine(s, tokens);
      break;
    case 'COLUMNS':
      readColumnsLine(s, tokens);
      break;
    case 'RHS':
      readRhsLine(s, tokens);
      break;
    case 'RANGES':
      readRangesLine(s, tokens);
      break;
    case 'BOUNDS':
      readBoundsLine(s, tokens);
      break;
    case 'QUADOBJ':
    case 'QMATRIX':
      readQuadLine(s, tokens);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// The line loop and the assembly

function parseQps(text: string, fileName: string): QuadraticProgram {
  const s = newParserState(fileName);
  const length = text.length;
  let pos = 0;
  while (pos < length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = length;
    s.lineNo++;
    let line = text.slice(pos, end);
    pos = end + 1;
    if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if (first === 42 /* '*' */) continue; // comment
    const tokens = line.trim().split(/\s+/);
    if (tokens.length === 1 && tokens[0] === '') continue;
    if (s.ended) fail(s, 'text after ENDATA');
    const header = first !== 32 && first !== 9;
    if (!header) {
      readDataLine(s, tokens);
      continue;
    }
    const keyword = tokens[0].toUpperCase();
    if (keyword === 'ENDATA') {
      endData(s);
      continue;
    }
    if (Object.hasOwn(UNSUPPORTED_SECTIONS, keyword)) fail(s, `section ${keyword}: ${UNSUPPORTED_SECTIONS[keyword]}`);
    if (!SECTIONS.has(keyword)) fail(s, `unknown section '${tokens[0]}'`);
    enterSection(s, keyword, tokens.slice(1));
  }

  if (!s.ended) {
    if (!s.seen.has('ROWS')) fail(s, 'missing ROWS section');
    if (!s.seen.has('COLUMNS')) fail(s, 'missing COLUMNS section');
    fail(s, 'missing ENDATA: the file is truncated');
  }
  if (!s.seen.has('ROWS')) fail(s, 'missing ROWS section');
  if (!s.seen.has('COLUMNS')) fail(s, 'missing COLUMNS section');
  checkQmatrixSymmetry(s);
  return assembleProblem(s);
}

/** QMATRIX must list every off-diagonal entry twice with the same value. */
function checkQmatrixSymmetry(s: ParserState): void {
  const n = s.varNames.length;
  const { varNames } = s;
  for (const [key, entry] of s.qmatrixLower) {
    const upper = s.quadSeen.get(key);
    if (upper === undefined || upper !== entry.value) {
      const lo = Math.floor(key / n);
      const hi = key - lo * n;
      fail(s, `QMATRIX is not symmetric: entry (${varNames[hi]}, ${varNames[lo]}) has no equal mirror (${varNames[lo]}, ${varNames[hi]})`, entry.line);
    }
  }
  if (s.quadSectionName !== 'QMATRIX') return;
  for (const [key, value] of s.quadSeen) {
    if (s.qmatrixLower.has(key)) continue;
    const lo = Math.floor(key / n);
    const hi = key - lo * n;
    if (lo !== hi && value !== 0)
      fail(s, `QMATRIX is not symmetric: entry (${varNames[lo]}, ${varNames[hi]}) has no mirror (${varNames[hi]}, ${varNames[lo]})`);
  }
}

/** Row bounds from the row types, RHS and RANGES; the CSC matrices from the triplets. */
function assembleProblem(s: ParserState): QuadraticProgram {
  const m = s.nConstraints;
  const rowLower = new Float64Array(m);
  const rowUpper = new Float64Array(m);
  const consNames: string[] = new Array(m);
  for (let r = 0; r < s.rowNames.length; r++) {
    if (r === s.objectiveRow) continue;
    const k = s.constraintOf[r];
    consNames[k] = s.rowNames[r];
    const b = s.rhs[k];
    const type = s.rowTypes[r];
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
    if (s.hasRange[k]) {
      const R = s.ranges[k];
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

  const nVars = s.varNames.length;
  return {
    name: s.name,
    P: tripletsToCsc(s.pTriplets, nVars, nVars),
    q: Float64Array.from(s.q),
    r: s.objectiveConstant,
    A: tripletsToCsc(s.aTriplets, m, nVars),
    rowLower,
    rowUpper,
    varLower: s.varLower,
    varUpper: s.varUpper,
    varNames: s.varNames,
    rowNames: consNames,
    objectiveName: s.objectiveName,
  };
}
