/**
 * The PyTorch oracle, TypeScript side (docs/oracle.md): finds a Python with torch, runs
 * scripts/oracle/torch_oracle.py on images advcorrect holds, computes advcorrect's own numbers on
 * the same images with the library, and compares the two.
 *
 * Used by `npm run oracle` (scripts/oracle/run.ts) and test/oracle.test.ts. A development tool:
 * nothing in lib/ depends on it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdvcorrectError, abortError } from '../../lib/errors.js';
import { normalize, type ImageDataset, type Normalization } from '../../lib/data/datasets.js';
import { encodeNpz, type NpyArray } from '../../lib/models/npz.js';
import type { ArchName } from '../../lib/models/architectures.js';
import type { LoadedModel } from '../../lib/models/io.js';
import { predictLogits } from '../../lib/models/index.js';
import { fgsm } from '../../lib/attacks/attacks.js';
import { evaluate, type AttackSpec } from '../../lib/attacks/evaluate.js';
import * as attacksIndex from '../../lib/attacks/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs from dist/scripts/oracle). */
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const ORACLE_SCRIPT = path.join(REPO_ROOT, 'scripts', 'oracle', 'torch_oracle.py');

export type OracleAttack = 'fgsm' | 'pgd' | 'apgd-ce';
export const ORACLE_ATTACKS: readonly OracleAttack[] = ['fgsm', 'pgd', 'apgd-ce'];

// ---------------------------------------------------------------------------------------------
// Finding Python

export interface PythonProbe {
  /** The interpreter to use, when one imports torch and numpy. */
  python?: string;
  torch?: string;
  /** Every candidate tried and what happened (for skip messages). */
  tried: Array<{ python: string; result: string }>;
}

/**
 * The Python interpreter the oracle runs with: `ADVCORRECT_PYTHON` when set (only that one), else
 * the first of /usr/bin/python3 (Debian's, where apt's python3-torch lives) and `python3` on PATH
 * that imports torch and numpy.
 */
export function findTorchPython(env: NodeJS.ProcessEnv = process.env): PythonProbe {
  const candidates = env.ADVCORRECT_PYTHON ? [env.ADVCORRECT_PYTHON] : ['/usr/bin/python3', 'python3'];
  const tried: PythonProbe['tried'] = [];
  for (const python of candidates) {
    if (path.isAbsolute(python) && !existsSync(python)) {
      tried.push({ python, result: 'not found' });
      continue;
    }
    const probe = spawnSync(python, ['-c', 'import numpy, torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (probe.error) {
      tried.push({ python, result: (probe.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : probe.error.message });
      continue;
    }
    if (probe.status !== 0) {
      const lines = (probe.stderr || '').trim().split('\n');
      tried.push({ python, result: `cannot import torch/numpy (${lines[lines.length - 1] || `exit ${probe.status}`})` });
      continue;
    }
    const torch = probe.stdout.trim();
    tried.push({ python, result: `torch ${torch}` });
    return { python, torch, tried };
  }
  return { tried };
}

/** One line saying which interpreters were tried, e.g. for a test's skip message. */
export function describeProbe(probe: PythonProbe): string {
  const tried = probe.tried.map((t) => `${t.python}: ${t.result}`).join('; ');
  return probe.python
    ? `PyTorch ${probe.torch} via ${probe.python}`
    : `no Python with PyTorch (${tried}; install python3-torch with apt or set ADVCORRECT_PYTHON)`;
}

// ---------------------------------------------------------------------------------------------
// Running the Python side

export interface TorchOracleOptions {
  /** PyTorch-layout .npz of the model (BN statistics from <model>_bn_stats.npz). */
  model: string;
  arch?: ArchName;
  bnStats?: string;
  eps: number;
  attacks: OracleAttack[];
  /** PGD/APGD run once per seed (default [0]). */
  seeds?: number[];
  restarts?: number;
  pgdSteps?: number;
  pgdStepSize?: number;
  apgdSteps?: number;
  labels?: 'true' | 'pred';
  clip?: boolean;
  /** The model's input normalisation; default: the architecture's (`auto`), null for none. */
  normalization?: Normalization | null;
  threads?: number;
  batchSize?: number;
  logits?: boolean;
  perImage?: boolean;
  /** More NHWC images (same shape as `images`) to classify as they are, reported under `extra`. */
  extra?: Record<string, Float32Array>;
  /** Interpreter (default: {@link findTorchPython}). */
  python?: string;
  signal?: AbortSignal;
}

export interface OracleCount {
  correct: number;
  accuracy: number;
  perImage?: string;
  logits?: number[][];
}

export interface OracleRun extends OracleCount {
  seed: number;
  timeMs: number;
  /** Process CPU time (all threads). */
  cpuMs?: number;
}

/** The JSON torch_oracle.py prints. */
export interface TorchOracleResult {
  oracle: 'pytorch';
  torch: string;
  threads: number;
  arch: ArchName;
  /** The normalisation PyTorch applied in front of the model (null: none). */
  normalization?: Normalization | null;
  n: number;
  eps: number;
  clean: OracleCount;
  /** Images with 1 − p_y < saturation (float64, clean point): FGSM's gradient signs there are decided by float32 rounding. */
  saturation?: number;
  saturated?: number;
  saturatedPerImage?: string;
  logits?: number[][];
  fgsm?: OracleCount & { timeMs: number };
  pgd?: { steps: number; stepSize: number; restarts: number; runs: OracleRun[] };
  'apgd-ce'?: { steps: number; restarts: number; checkpoints: number[]; runs: OracleRun[] };
  extra?: Record<string, OracleCount>;
  timeMs: number;
}

/**
 * Runs torch_oracle.py on `images` (NHWC pixels in [0, 1], `shape` = [H, W, C]) and their true
 * labels; the data go to the script's stdin as an .npz.
 */
export async function runTorchOracle(images: Float32Array, labels: ArrayLike<number>, shape: [number, number, number], options: TorchOracleOptions): Promise<TorchOracleResult> {
  const size = shape[0] * shape[1] * shape[2];
  if (images.length % size !== 0) throw new RangeError(`images has length ${images.length}, not a multiple of ${shape.join('×')}`);
  const n = images.length / size;
  if (labels.length !== n) throw new RangeError(`labels has length ${labels.length}, expected ${n}`);
  for (const attack of options.attacks) if (!ORACLE_ATTACKS.includes(attack)) throw new RangeError(`unknown attack ${attack} (known: ${ORACLE_ATTACKS.join(', ')})`);
  const python = options.python ?? findTorchPython().python;
  if (!python) throw new AdvcorrectError('ERR_UNSUPPORTED', describeProbe(findTorchPython()));
  const arrays: Record<string, NpyArray> = {
    images: { dtype: 'float32', shape: [n, ...shape], data: images },
    labels: { dtype: 'int32', shape: [n], data: Int32Array.from(labels) },
  };
  for (const [name, value] of Object.entries(options.extra ?? {})) {
    if (value.length !== images.length) throw new RangeError(`extra.${name} has length ${value.length}, the images ${images.length}`);
    arrays[name] = { dtype: 'float32', shape: [n, ...shape], data: value };
  }
  const args = [ORACLE_SCRIPT, '--model', options.model, '--data', '-', '--eps', String(options.eps), '--attacks', options.attacks.join(',')];
  if (options.arch) args.push('--arch', options.arch);
  if (options.bnStats) args.push('--bn-stats', options.bnStats);
  if (options.seeds) args.push('--seeds', options.seeds.join(','));
  if (options.restarts !== undefined) args.push('--restarts', String(options.restarts));
  if (options.pgdSteps !== undefined) args.push('--pgd-steps', String(options.pgdSteps));
  if (options.pgdStepSize !== undefined) args.push('--pgd-step-size', String(options.pgdStepSize));
  if (options.apgdSteps !== undefined) args.push('--apgd-steps', String(options.apgdSteps));
  if (options.labels) args.push('--labels', options.labels);
  if (options.clip === false) args.push('--no-clip');
  if (options.normalization === null) args.push('--normalization', 'none');
  else if (options.normalization) args.push('--normalization', JSON.stringify(options.normalization));
  if (options.threads !== undefined) args.push('--threads', String(options.threads));
  if (options.batchSize !== undefined) args.push('--batch-size', String(options.batchSize));
  if (options.logits) args.push('--logits');
  if (options.perImage) args.push('--per-image');
  const input = encodeNpz(arrays);
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    if (options.signal?.aborted) return reject(abortError(options.signal));
    const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const onAbort = (): void => {
      child.kill('SIGTERM');
      reject(abortError(options.signal as AbortSignal));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new AdvcorrectError('ERR_IO', `cannot run ${python}: ${error.message}`, { cause: error }));
    });
    child.on('close', (status) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: status });
    });
    child.stdin.on('error', () => undefined); // a child that dies early reports through 'close'
    child.stdin.end(input);
  });
  if (code !== 0) {
    const last = stderr.trim().split('\n').slice(-3).join(' | ');
    throw new AdvcorrectError('ERR_IO', `torch_oracle.py exited with ${code}: ${last}`);
  }
  try {
    return JSON.parse(stdout) as TorchOracleResult;
  } catch (error) {
    throw new AdvcorrectError('ERR_PARSE', `torch_oracle.py printed no JSON: ${stdout.slice(0, 200)}`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// advcorrect's side

export interface SideOptions {
  eps: number;
  attacks: OracleAttack[];
  seeds?: number[];
  /** Images (the first ones) attacked by PGD/APGD; default all. */
  attackN?: number;
  restarts?: number;
  pgdSteps?: number;
  pgdStepSize?: number;
  apgdSteps?: number;
  signal?: AbortSignal;
}

/** One seeded run of a stochastic attack through evaluate(): correct count, wall and process CPU time. */
export interface StochasticRun {
  seed: number;
  correct: number;
  timeMs: number;
  cpuMs: number;
}

export interface SideResult {
  n: number;
  logits: Float32Array;
  clean: { correct: number; perImage: string };
  /** FGSM: evaluate()'s count, and per image from the same attack run directly (its images too). */
  fgsm?: {
    correct: number;
    evaluateCorrect: number;
    /** Correct clean and at the FGSM point (evaluate()'s convention). */
    perImage: string;
    /** The FGSM images (pixels) of every image, and whether advcorrect classifies each correctly. */
    images: Float32Array;
    imagesPerImage: string;
    timeMs: number;
  };
  pgd?: { n: number; runs: StochasticRun[] };
  'apgd-ce'?: { n: number; runs: StochasticRun[] };
}

function argmaxBits(logits: Float32Array, labels: ArrayLike<number>, classes: number): { correct: number; bits: string } {
  let correct = 0;
  let bits = '';
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j] > logits[i * classes + best]) best = j;
    const ok = best === labels[i];
    correct += ok ? 1 : 0;
    bits += ok ? '1' : '0';
  }
  return { correct, bits };
}

function firstImages(dataset: ImageDataset, n: number): ImageDataset {
  const size = dataset.height * dataset.width * dataset.channels;
  return { ...dataset, count: n, images: dataset.images.subarray(0, n * size), labels: dataset.labels.subarray(0, n) };
}

/**
 * advcorrect's numbers on `dataset` (pixels in [0, 1]) with the conventions of evaluate(): true
 * labels, clipping to [0, 1], the model's normalisation. Logits are the model's on the normalised
 * images; FGSM/PGD/APGD accuracies are evaluate()'s.
 */
export async function advcorrectSide(loaded: LoadedModel, dataset: ImageDataset, options: SideOptions): Promise<SideResult> {
  const n = dataset.count;
  const classes = loaded.numClasses;
  const inputs = loaded.normalization ? normalize(dataset.images, loaded.normalization, dataset.channels) : dataset.images;
  const logits = predictLogits(loaded.model, inputs, { batchSize: 256 });
  const clean = argmaxBits(logits, dataset.labels, classes);
  const result: SideResult = { n, logits, clean: { correct: clean.correct, perImage: clean.bits } };
  const signal = options.signal;
  if (options.attacks.includes('fgsm')) {
    const t0 = Date.now();
    const evaluation = await evaluate(loaded, dataset, { attacks: [{ name: 'fgsm', eps: options.eps }], gradientCheck: false, ...(signal ? { signal } : {}) });
    const timeMs = Date.now() - t0;
    // The same attack, called directly, for the per-image comparison and the images themselves.
    const adversarial = await fgsm(loaded.model, inputs, dataset.labels, { eps: options.eps, ...(loaded.normalization ? { normalization: loaded.normalization } : {}), ...(signal ? { signal } : {}) });
    // evaluate() attacks the clean-correct images only: an image counts when correct clean and attacked.
    const attackedBits = argmaxBits(predictLogits(loaded.model, adversarial, { batchSize: 256 }), dataset.labels, classes).bits;
    let bits = '';
    for (let i = 0; i < n; i++) bits += clean.bits[i] === '1' && attackedBits[i] === '1' ? '1' : '0';
    const direct = { correct: [...bits].filter((b) => b === '1').length, bits };
    const pixels = loaded.normalization ? denormalizeImages(adversarial, loaded.normalization, dataset.channels) : adversarial;
    result.fgsm = { correct: direct.correct, evaluateCorrect: evaluation.attacks[0].correct, perImage: direct.bits, imagesPerImage: attackedBits, images: pixels, timeMs };
  }
  const attackN = Math.min(n, options.attackN ?? n);
  const attacked = firstImages(dataset, attackN);
  for (const name of ['pgd', 'apgd-ce'] as const) {
    if (!options.attacks.includes(name)) continue;
    const runs: StochasticRun[] = [];
    for (const seed of options.seeds ?? [0]) {
      const spec: AttackSpec =
        name === 'pgd'
          ? { name, eps: options.eps, steps: options.pgdSteps ?? 40, stepSize: options.pgdStepSize ?? 0.01, restarts: options.restarts ?? 1 }
          : { name, eps: options.eps, steps: options.apgdSteps ?? 100, restarts: options.restarts ?? 1 };
      const t0 = Date.now();
      const c0 = process.cpuUsage();
      const evaluation = await evaluate(loaded, attacked, { attacks: [spec], seed, gradientCheck: false, ...(signal ? { signal } : {}) });
      const cpu = process.cpuUsage(c0);
      runs.push({ seed, correct: evaluation.attacks[0].correct, timeMs: Date.now() - t0, cpuMs: Math.round((cpu.user + cpu.system) / 1000) });
    }
    result[name] = { n: attackN, runs };
  }
  return result;
}

function denormalizeImages(images: Float32Array, norm: Normalization, channels: number): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const c = i % channels;
    out[i] = images[i] * norm.std[c] + norm.mean[c];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** Largest |a − b| over two row-major logit tables. */
export function maxAbsDifference(a: ArrayLike<number>, b: number[][]): number {
  let worst = 0;
  const classes = b.length ? b[0].length : 0;
  for (let i = 0; i < b.length; i++) for (let j = 0; j < classes; j++) worst = Math.max(worst, Math.abs(a[i * classes + j] - b[i][j]));
  return worst;
}

/** Images whose correctness differs between two per-image strings ('1' = correct). */
export function differingImages(a: string, b: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

export interface SpreadStats {
  counts: number[];
  mean: number;
  min: number;
  max: number;
  /** Sample standard deviation of the counts (0 for one run). */
  std: number;
}

export function spread(counts: number[]): SpreadStats {
  const k = counts.length;
  const mean = counts.reduce((a, b) => a + b, 0) / k;
  const variance = k > 1 ? counts.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1) : 0;
  return { counts, mean, min: Math.min(...counts), max: Math.max(...counts), std: Math.sqrt(variance) };
}

/** Whether this build of advcorrect has APGD (lib/attacks exports apgd, so evaluate() knows 'apgd-ce'). */
export function advcorrectHasApgd(): boolean {
  return typeof (attacksIndex as Record<string, unknown>).apgd === 'function' && (attacksIndex as { ATTACK_NAMES?: readonly string[] }).ATTACK_NAMES?.includes('apgd-ce') === true;
}

export interface ComparisonRow {
  quantity: string;
  advcorrect: string;
  pytorch: string;
  /** What must hold, e.g. '≤ 1e-4' or 'equal'. */
  limit: string;
  pass: boolean;
  /** Numbers behind the row (for --json and the tests). */
  detail?: Record<string, unknown>;
}

export interface Comparison {
  rows: ComparisonRow[];
  pass: boolean;
}

export const LOGIT_TOLERANCE = 1e-4;

/**
 * Tolerance of a stochastic attack (PGD, APGD): the mean correct counts over the seeds of the two
 * sides may differ by at most SPREAD_FACTOR standard errors of that difference, and by at least
 * SPREAD_FLOOR images (docs/oracle.md: how the spread was measured).
 */
export const SPREAD_FACTOR = 3;
export const SPREAD_FLOOR = 1;

export function stochasticTolerance(a: SpreadStats, b: SpreadStats): number {
  const se = Math.sqrt((a.std * a.std) / a.counts.length + (b.std * b.std) / b.counts.length);
  return Math.max(SPREAD_FLOOR, SPREAD_FACTOR * se);
}

const pct = (correct: number, n: number): string => (n ? ((100 * correct) / n).toFixed(2) : '—');

function describeSpread(s: SpreadStats, n: number): string {
  return s.counts.length > 1
    ? `${pct(s.mean, n)} (${s.min}–${s.max} of ${n}, sd ${s.std.toFixed(1)})`
    : `${pct(s.mean, n)} (${s.min} of ${n})`;
}

/**
 * Rows of the side-by-side check: logits, clean and FGSM (per image) on the full set (`full`,
 * run with logits and per-image output, with advcorrect's FGSM images as extra `fgsm_advcorrect`),
 * PGD/APGD over seeds on the attacked subset (`attacked`).
 */
export function compareWithOracle(ours: SideResult, full: TorchOracleResult, attacked?: TorchOracleResult): Comparison {
  const rows: ComparisonRow[] = [];
  const n = ours.n;
  if (full.n !== n) throw new RangeError(`the oracle saw ${full.n} images, advcorrect ${n}`);
  if (full.logits) {
    const diff = maxAbsDifference(ours.logits, full.logits);
    rows.push({ quantity: 'logits max |Δ|', advcorrect: '', pytorch: '', limit: `≤ ${LOGIT_TOLERANCE}`, pass: diff <= LOGIT_TOLERANCE, detail: { maxAbsDifference: diff } });
    rows[rows.length - 1].advcorrect = rows[rows.length - 1].pytorch = diff.toExponential(2);
  }
  const cleanDiff = full.clean.perImage ? differingImages(ours.clean.perImage, full.clean.perImage) : [];
  rows.push({
    quantity: 'clean accuracy %',
    advcorrect: pct(ours.clean.correct, n),
    pytorch: pct(full.clean.correct, n),
    limit: 'equal, per image',
    pass: ours.clean.correct === full.clean.correct && cleanDiff.length === 0,
    detail: { advcorrect: ours.clean.correct, pytorch: full.clean.correct, differingImages: cleanDiff },
  });
  if (ours.fgsm && full.fgsm) {
    const diff = full.fgsm.perImage ? differingImages(ours.fgsm.perImage, full.fgsm.perImage) : [];
    // Saturated images (see TorchOracleResult.saturation) may differ; every other image must agree.
    const saturated = full.saturatedPerImage ?? '';
    const excused = diff.filter((i) => saturated[i] === '1');
    const strict = diff.filter((i) => saturated[i] !== '1');
    const limit = full.saturatedPerImage ? `equal per image (${full.saturated} saturated images exempt)` : 'equal, per image';
    rows.push({
      quantity: `FGSM ε=${full.eps} accuracy %`,
      advcorrect: pct(ours.fgsm.evaluateCorrect, n),
      pytorch: pct(full.fgsm.correct, n) + (excused.length ? ` (${excused.length} saturated differ)` : ''),
      limit,
      pass: ours.fgsm.correct === ours.fgsm.evaluateCorrect && strict.length === 0 && Math.abs(ours.fgsm.evaluateCorrect - full.fgsm.correct) <= excused.length,
      detail: { advcorrect: ours.fgsm.evaluateCorrect, advcorrectDirect: ours.fgsm.correct, pytorch: full.fgsm.correct, differingImages: diff, differingSaturated: excused, saturated: full.saturated },
    });
    const cross = full.extra?.fgsm_advcorrect;
    if (cross) {
      const crossDiff = cross.perImage ? differingImages(ours.fgsm.imagesPerImage, cross.perImage) : [];
      const oursCount = [...ours.fgsm.imagesPerImage].filter((b) => b === '1').length;
      rows.push({
        quantity: "advcorrect's FGSM images, classified by each",
        advcorrect: pct(oursCount, n),
        pytorch: pct(cross.correct, n),
        limit: 'equal, per image',
        pass: cross.correct === oursCount && crossDiff.length === 0,
        detail: { advcorrect: oursCount, pytorch: cross.correct, differingImages: crossDiff },
      });
    }
  }
  for (const name of ['pgd', 'apgd-ce'] as const) {
    const mine = ours[name];
    const theirs = attacked?.[name];
    if (!mine || !theirs) continue;
    if (attacked && attacked.n !== mine.n) throw new RangeError(`the oracle attacked ${attacked.n} images, advcorrect ${mine.n}`);
    const a = spread(mine.runs.map((r) => r.correct));
    const b = spread(theirs.runs.map((r) => r.correct));
    const tolerance = stochasticTolerance(a, b);
    const difference = Math.abs(a.mean - b.mean);
    const label = name === 'pgd' ? `PGD-${attacked?.pgd?.steps ?? 40}` : `APGD-CE-${attacked?.['apgd-ce']?.steps ?? 100}`;
    rows.push({
      quantity: `${label} ε=${attacked?.eps} accuracy % (${a.counts.length} / ${b.counts.length} seeds)`,
      advcorrect: describeSpread(a, mine.n),
      pytorch: describeSpread(b, mine.n),
      limit: `|Δ mean| ≤ ${tolerance.toFixed(1)} images`,
      pass: difference <= tolerance,
      detail: {
        n: mine.n,
        advcorrect: a,
        pytorch: b,
        difference,
        tolerance,
        advcorrectTimeMs: mine.runs.map((r) => r.timeMs),
        advcorrectCpuMs: mine.runs.map((r) => r.cpuMs),
        pytorchTimeMs: theirs.runs.map((r) => r.timeMs),
        pytorchCpuMs: theirs.runs.map((r) => r.cpuMs ?? NaN),
      },
    });
  }
  return { rows, pass: rows.every((r) => r.pass) };
}

/** The side-by-side table as text. */
export function formatComparison(comparison: Comparison, info: { model: string; dataset: string; n: number; attackN: number; eps: number }): string {
  const header = ['quantity', 'advcorrect', 'PyTorch', 'must hold', ''];
  const body = comparison.rows.map((r) => [r.quantity, r.advcorrect, r.pytorch, r.limit, r.pass ? 'ok' : 'FAIL']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [
    `${info.model} on ${info.n} ${info.dataset} test images (PGD/APGD on the first ${info.attackN})`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...timingLines(comparison),
    '',
    comparison.pass ? 'advcorrect agrees with PyTorch.' : 'advcorrect DISAGREES with PyTorch on the rows marked FAIL.',
  ].join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median wall and process CPU seconds per run of each stochastic attack, both sides. */
function timingLines(comparison: Comparison): string[] {
  const lines: string[] = [];
  for (const row of comparison.rows) {
    const d = row.detail as { n?: number; advcorrectTimeMs?: number[]; advcorrectCpuMs?: number[]; pytorchTimeMs?: number[]; pytorchCpuMs?: number[] } | undefined;
    if (!d?.advcorrectTimeMs || !d.pytorchTimeMs) continue;
    const s = (ms: number[] | undefined): string => (ms && ms.every(Number.isFinite) ? `${(median(ms) / 1000).toFixed(1)} s` : '—');
    const name = row.quantity.split(' ')[0];
    lines.push(
      `${name} per run (median over seeds, ${d.n} images): advcorrect ${s(d.advcorrectTimeMs)} wall, ${s(d.advcorrectCpuMs)} CPU; ` +
        `PyTorch ${s(d.pytorchTimeMs)} wall, ${s(d.pytorchCpuMs)} CPU`,
    );
  }
  return lines.length ? ['', ...lines] : [];
}
