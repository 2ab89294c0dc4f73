/**
 * Options of the correction loop: defaults (docs/correction.md says why each one) and validation
 * with exact TypeError/RangeError messages.
 */
import { rejectRenamedKeys } from '../errors.js';

export type CutClasses = 'all' | 'worst';
export type ViolationMeasure = 'sum' | 'fraction';
export type CorrectionSolver = 'dual' | 'admm';
/** How the cut pool keeps its rows (CorrectionOptions.rows). */
export type CorrectionRows = 'auto' | 'stored' | 'factored';

/** The attack that makes (and, in later rounds, remakes) the adversarial set X̃. */
export interface CorrectionAttackOptions {
  /** L∞ radius. */
  eps: number;
  stepSize: number;
  steps: number;
  randomStart: boolean;
  restarts: number;
}

export interface CorrectionOptions {
  /** Margin δ of the constraints f_j − f_y + δ ≤ 0. */
  delta: number;
  /** Loss level η = (1 + τ)·L_clean(w₀) unless `eta` is given. */
  tau: number;
  /** Absolute loss level η; overrides τ. */
  eta: number | undefined;
  /** M: inner iterations per round. */
  maxIterations: number;
  /** Step sizes α of the line search w_k + α(ŵ − w_k), each in (0, 1]. */
  alphas: number[];
  /** Weight ω of the violation in the selection score ω·Ṽ + (1 − ω)·L̃ (the next iterate, and the answer from the final front). */
  omega: number;
  /** Interior points of the closing segment w₀ → w* offered to the final front before ω picks the answer (0 = only w₀ and the Pareto pool). */
  segmentPoints: number;
  /** R: outer rounds (round r > 1 regenerates X̃ against the corrected model). With budgetSeconds and no rounds given: BUDGET_MAX_ROUNDS. */
  rounds: number;
  /**
   * Wall-clock budget of the loop in seconds (undefined = none): rounds are added while another one
   * fits (docs/correction.md, "Time budget"), a round stops once the budget is spent.
   */
  budgetSeconds: number | undefined;
  /** Cut all wrong classes that are near active, or only the worst class per example. */
  cutClasses: CutClasses;
  /**
   * Cut targets aim slightly inside the feasible set so the iterates reach it in finitely many steps:
   * margin cuts use δ·(1 + cutSlack), the loss cut η − cutSlack·(η − L₀). V is still measured with δ, L against η.
   */
  cutSlack: number;
  /** A margin cut is added when g_ij(w_k) ≥ −activeTolerance (near active or violated). */
  activeTolerance: number;
  /** V: sum of positive margin violations, or the fraction of X̃ misclassified. */
  violation: ViolationMeasure;
  /** Trainable layers that move: 'all' or layer names. */
  layers: 'all' | string[];
  solver: CorrectionSolver;
  /**
   * How the cut pool keeps the margin rows: 'stored' (the rows themselves, CutPool), 'factored'
   * (Dense kernel blocks as x ⊗ d factors, FactoredCutPool; dual solver only) or 'auto' (factored
   * when the stored rows would take more than a quarter of the pool memory limit; docs/qp-engine.md).
   */
  rows: CorrectionRows;
  /** Tolerance of each cut QP (CutPool.solve's `tolerance`). */
  qpTolerance: number;
  /** Per-QP time limit in ms (0 = none). */
  qpTimeLimitMs: number;
  /** Cut-pool size limit; beyond it the cuts inactive for longest are removed. */
  maxCuts: number;
  /** Remove cuts whose multiplier was zero for this many consecutive solves (0 = never). */
  dropInactiveAfter: number;
  /** Stop a round when the best feasible violation has not improved for this many iterations. */
  patience: number;
  /** Seed of everything random (attacks of later rounds, sampling in the CLI). */
  seed: number;
  /** |X̃| per round (used when X̃ is regenerated, and by the CLI). */
  nAdversarial: number;
  /** Size of the clean subset for L_clean (used by the CLI). */
  cleanSize: number;
  attack: CorrectionAttackOptions;
}

/** The round limit of a run with a time budget when no rounds are given (each round adds |X̃| examples and their cuts). */
export const BUDGET_MAX_ROUNDS = 20;

/** Paper-like defaults (docs/correction.md, "Options"). */
export const DEFAULT_CORRECTION_OPTIONS: Readonly<CorrectionOptions> = Object.freeze({
  delta: 3,
  tau: 0.05,
  eta: undefined,
  maxIterations: 20,
  alphas: [0.25, 0.5, 0.75, 1],
  omega: 0.5,
  segmentPoints: 9,
  rounds: 2,
  budgetSeconds: undefined,
  cutClasses: 'all',
  cutSlack: 0.1,
  activeTolerance: 1,
  violation: 'sum',
  layers: 'all',
  solver: 'dual',
  rows: 'auto',
  qpTolerance: 1e-8,
  qpTimeLimitMs: 0,
  maxCuts: 5000,
  dropInactiveAfter: 0,
  patience: 5,
  seed: 1,
  nAdversarial: 10,
  cleanSize: 2000,
  attack: Object.freeze({ eps: 0.1, stepSize: 0.01, steps: 40, randomStart: true, restarts: 1 }),
}) as Readonly<CorrectionOptions>;

export type CorrectionOptionsInput = Partial<Omit<CorrectionOptions, 'attack'>> & { attack?: Partial<CorrectionAttackOptions> };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(name: string, value: unknown, check: (v: number) => boolean, range: string): number {
  if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number`);
  if (Number.isNaN(value) || !check(value)) throw new RangeError(`options.${name} must be ${range}, got ${value}`);
  return value;
}

function int(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number`);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`options.${name} must be an integer ≥ ${min}, got ${value}`);
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new TypeError(`options.${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

const KNOWN = new Set<string>(Object.keys(DEFAULT_CORRECTION_OPTIONS).concat('eta'));

/** Correction options renamed in 0.2.0 (old → new). */
export const RENAMED_CORRECTION_OPTIONS: Readonly<Record<string, string>> = Object.freeze({ qpEps: 'qpTolerance' });

/**
 * The options saved in a file that an older version wrote (run.json, a checkpoint), under
 * today's names: each renamed key is replaced by its new name at the same place. Options given
 * by a caller are never upgraded (an old key throws there); saved files are.
 */
export function upgradeSavedOptions<T extends object>(saved: T): T {
  if (!isPlainObject(saved) || !Object.keys(RENAMED_CORRECTION_OPTIONS).some((old) => old in saved)) return saved;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(saved)) {
    const now = RENAMED_CORRECTION_OPTIONS[key];
    if (now === undefined) out[key] = value;
    else if (!(now in saved)) out[now] = value;
  }
  return out as T;
}
const KNOWN_ATTACK = new Set<string>(Object.keys(DEFAULT_CORRECTION_OPTIONS.attack));

/** Merges `input` over the defaults and validates every field; never mutates `input`. */
export function resolveCorrectionOptions(input: CorrectionOptionsInput = {}): CorrectionOptions {
  if (!isPlainObject(input)) throw new TypeError('options must be an object');
  rejectRenamedKeys(input, RENAMED_CORRECTION_OPTIONS);
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new TypeError(`options.${key} is not a correction option`);
  }
  const merged = { ...DEFAULT_CORRECTION_OPTIONS, ...stripUndefined(input) } as Record<string, unknown>;
  const attackInput = input.attack ?? {};
  if (!isPlainObject(attackInput)) throw new TypeError('options.attack must be an object');
  for (const key of Object.keys(attackInput)) {
    if (!KNOWN_ATTACK.has(key)) throw new TypeError(`options.attack.${key} is not an attack option`);
  }
  const attack = { ...DEFAULT_CORRECTION_OPTIONS.attack, ...stripUndefined(attackInput) } as Record<string, unknown>;

  const alphas = merged.alphas;
  if (!Array.isArray(alphas) || alphas.length === 0) throw new TypeError('options.alphas must be a non-empty array of numbers');
  const alphaList = alphas.map((a, i) => num(`alphas[${i}]`, a, (v) => v > 0 && v <= 1, 'in (0, 1]'));
  const sortedAlphas = [...new Set(alphaList)].sort((a, b) => a - b);

  let layers: 'all' | string[];
  if (merged.layers === 'all') layers = 'all';
  else if (Array.isArray(merged.layers) && merged.layers.length > 0 && merged.layers.every((l) => typeof l === 'string' && l.length > 0)) {
    layers = [...(merged.layers as string[])];
  } else throw new TypeError("options.layers must be 'all' or a non-empty array of layer names");

  const eta = merged.eta === undefined ? undefined : num('eta', merged.eta, (v) => v > 0 && Number.isFinite(v), 'a finite number > 0');
  const budgetSeconds =
    merged.budgetSeconds === undefined ? undefined : num('budgetSeconds', merged.budgetSeconds, (v) => v > 0 && Number.isFinite(v), 'a finite number > 0');
  // A budget without a round count keeps adding rounds up to the cap.
  if (budgetSeconds !== undefined && input.rounds === undefined) merged.rounds = BUDGET_MAX_ROUNDS;

  if (typeof attack.randomStart !== 'boolean') throw new TypeError('options.attack.randomStart must be a boolean');

  return {
    delta: num('delta', merged.delta, (v) => v >= 0 && Number.isFinite(v), 'a finite number ≥ 0'),
    tau: num('tau', merged.tau, (v) => v >= 0 && Number.isFinite(v), 'a finite number ≥ 0'),
    eta,
    maxIterations: int('maxIterations', merged.maxIterations, 1),
    alphas: sortedAlphas,
    omega: num('omega', merged.omega, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    segmentPoints: int('segmentPoints', merged.segmentPoints, 0),
    rounds: int('rounds', merged.rounds, 1),
    budgetSeconds,
    cutClasses: oneOf('cutClasses', merged.cutClasses, ['all', 'worst'] as const),
    cutSlack: num('cutSlack', merged.cutSlack, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    activeTolerance: num('activeTolerance', merged.activeTolerance, (v) => v >= 0, '≥ 0 (Infinity cuts every pair)'),
    violation: oneOf('violation', merged.violation, ['sum', 'fraction'] as const),
    layers,
    solver: oneOf('solver', merged.solver, ['dual', 'admm'] as const),
    rows: oneOf('rows', merged.rows, ['auto', 'stored', 'factored'] as const),
    qpTolerance: num('qpTolerance', merged.qpTolerance, (v) => v > 0 && v < 1, 'in (0, 1)'),
    qpTimeLimitMs: num('qpTimeLimitMs', merged.qpTimeLimitMs, (v) => v >= 0 && Number.isFinite(v), 'a finite number ≥ 0'),
    maxCuts: int('maxCuts', merged.maxCuts, 1),
    dropInactiveAfter: int('dropInactiveAfter', merged.dropInactiveAfter, 0),
    patience: int('patience', merged.patience, 1),
    seed: int('seed', merged.seed, 0),
    nAdversarial: int('nAdversarial', merged.nAdversarial, 1),
    cleanSize: int('cleanSize', merged.cleanSize, 1),
    attack: {
      eps: num('attack.eps', attack.eps, (v) => v > 0 && Number.isFinite(v), 'a finite number > 0'),
      stepSize: num('attack.stepSize', attack.stepSize, (v) => v > 0 && Number.isFinite(v), 'a finite number > 0'),
      steps: int('attack.steps', attack.steps, 1),
      randomStart: attack.randomStart as boolean,
      restarts: int('attack.restarts', attack.restarts, 1),
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
