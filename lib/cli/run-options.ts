/**
 * Flags shared by `correct`, `demo` and `baseline`: the correction method's options, the seeded
 * split and X̃ (the same for correct and every baseline), the test evaluation, and output/IO;
 * the conversion of flags into run settings; the printed before/after table.
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AdvcorrectError } from '../errors.js';
import type { DatasetName } from '../data/datasets.js';
import { BUDGET_MAX_ROUNDS, DEFAULT_CORRECTION_OPTIONS, resolveCorrectionOptions, type CorrectionOptionsInput } from '../correction/options.js';
import { APGD_DEFAULTS, SQUARE_DEFAULTS } from '../attacks/index.js';
import { ADV_SOURCES, DATASET_PRESETS, type AdvSource } from '../correction/presets.js';
import { metricRows, type RunDocument } from '../report/index.js';
import { DEFAULT_EVALUATION_ATTACKS, EVALUATION_ATTACKS, type CorrectionRunSettings, type DrawSettings, type EvaluationSettings, type ModelSettings } from '../runs/index.js';
import { parseFiniteNumber, parseNonNegativeInteger, parseNonNegativeNumber, parseNumberList, parsePositiveInteger, parsePositiveNumber, renamedFlag } from './common.js';
import { parseBackend, parseLabels } from './eval.js';

export function parseUnit(value: string): number {
  const v = parseFiniteNumber(value);
  if (v < 0 || v > 1) throw new InvalidArgumentError(`expected a number in [0, 1], got '${value}'`);
  return v;
}

function parseAlphas(value: string): number[] {
  const list = parseNumberList(value);
  if (list.length === 0 || list.some((a) => !(a > 0 && a <= 1))) throw new InvalidArgumentError(`expected step sizes in (0, 1], got '${value}'`);
  return list;
}

function parseEpsList(value: string): number[] {
  if (value.trim() === '' || value === 'none') return [];
  const list = parseNumberList(value);
  if (list.some((e) => !(e > 0))) throw new InvalidArgumentError(`expected ε values > 0, got '${value}'`);
  return list;
}

function parseEvalEps(value: string): number {
  const v = parseFiniteNumber(value);
  if (!(v > 0 && v <= 1)) throw new InvalidArgumentError(`expected ε in (0, 1], got '${value}'`);
  return v;
}

function parseLayers(value: string): 'all' | string[] {
  if (value === 'all') return 'all';
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError(`expected 'all' or a comma-separated list of layer names, got '${value}'`);
  return list;
}

/** A comma-separated attack list for the test evaluation. */
export function parseAttackList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = list.filter((a) => !(EVALUATION_ATTACKS as readonly string[]).includes(a));
  if (list.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`unknown attack '${unknown[0] ?? value}' (expected a comma-separated list of ${EVALUATION_ATTACKS.join(', ')})`);
  return [...new Set(list)];
}

/** The correction method's own options (not shared with the baselines). */
/** --budget-s: a finite number of seconds > 0. */
function parseBudget(value: string): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`expected a finite number of seconds > 0, got '${value}'`);
  return v;
}

export function addMethodOptions(cmd: Command): Command {
  const d = DEFAULT_CORRECTION_OPTIONS;
  // Whether --rounds was typed (a budget without it keeps adding rounds up to BUDGET_MAX_ROUNDS).
  cmd.hook('preAction', (command) => {
    command.setOptionValueWithSource('roundsGiven', command.getOptionValueSource('rounds') === 'cli', 'implied');
  });
  renamedFlag(cmd, '--qp-eps', '--qp-tolerance');
  return cmd
    .option('--omega <w>', 'ω: weight of the violation in the score ω·Ṽ + (1 − ω)·L̃ that picks the answer from the final Pareto front (1 = the least violation, 0 = the least clean loss)', parseUnit, d.omega)
    .option('--segment-points <n>', 'points of the segment w₀ → w* added to the final front before ω picks the answer (0 = none)', parseNonNegativeInteger, d.segmentPoints)
    .option('--delta <d>', 'δ: margin of the constraints f_j − f_y + δ ≤ 0', parseNonNegativeNumber, d.delta)
    .option('--tau <t>', 'τ: loss level η = (1 + τ)·L_clean(w₀)', parseNonNegativeNumber, d.tau)
    .option('--eta <e>', 'absolute loss level η (overrides --tau)', parsePositiveNumber)
    .option('--iterations <m>', 'M: inner iterations per round', parsePositiveInteger, d.maxIterations)
    .addOption(new Option('--alphas <list>', 'line-search step sizes α in (0, 1]').argParser(parseAlphas).default(d.alphas, d.alphas.join(',')))
    .option('--rounds <r>', 'R: outer rounds (each regenerates X̃ against the corrected model)', parsePositiveInteger, d.rounds)
    .option(
      '--budget-s <s>',
      `wall-clock budget of the correction loop in seconds: rounds are added while another fits (a round is assumed to take the mean time of the rounds so far), up to --rounds if given, else up to ${BUDGET_MAX_ROUNDS}; a round stops once the budget is spent (if already after round 1's first iteration, the run says so); the answer is chosen as usual`,
      parseBudget,
    )
    .addOption(new Option('--cut-classes <which>', 'cut all near-active wrong classes or only the worst per example').choices(['all', 'worst']).default(d.cutClasses))
    .option('--cut-slack <s>', 'cut targets aim inside: margin cuts at δ(1 + s), the loss cut at η − s(η − L₀)', parseNonNegativeNumber, d.cutSlack)
    .option('--active-tol <t>', 'a margin cut is added when g_ij(w_k) ≥ −t', parseNonNegativeNumber, d.activeTolerance)
    .addOption(new Option('--violation <v>', 'V: sum of positive margin violations, or fraction of X̃ misclassified').choices(['sum', 'fraction']).default(d.violation))
    .addOption(new Option('--layers <list>', "layers that move: 'all' or comma-separated names").argParser(parseLayers).default('all'))
    .addOption(new Option('--solver <s>', 'QP solver of the cut pool').choices(['dual', 'admm']).default(d.solver))
    .addOption(new Option('--rows <how>', "cut rows: 'stored', 'factored' (Dense kernels as x ⊗ d factors: large MLPs) or 'auto' (factored when stored rows would not fit)").choices(['auto', 'stored', 'factored']).default(d.rows))
    .option('--qp-tolerance <t>', 'tolerance of each cut QP', parsePositiveNumber, d.qpTolerance)
    .option('--qp-time-limit <s>', 'per-QP time limit in seconds (0 = none)', parseNonNegativeNumber, 0)
    .option('--max-cuts <n>', 'cut-pool size limit (longest-inactive cuts go first)', parsePositiveInteger, d.maxCuts)
    .option('--drop-inactive <k>', 'drop cuts inactive for k consecutive solves (0 = never)', parseNonNegativeInteger, d.dropInactiveAfter)
    .option('--patience <k>', 'stop a round after k iterations without a new Pareto candidate', parsePositiveInteger, d.patience);
}

/** The seeded training split and X̃ (the same for `correct` and every baseline). */
export function addDrawOptions(cmd: Command): Command {
  const d = DEFAULT_CORRECTION_OPTIONS;
  return cmd
    .option('--n-adv <n>', '|X̃|: adversarial examples per round (class-balanced, most violated first)', parsePositiveInteger, d.nAdversarial)
    .option('--seed <s>', 'seed of everything random (data split, attacks)', parseNonNegativeInteger, d.seed)
    .option('--clean-size <n>', 'training images in the clean-loss subset', parsePositiveInteger, d.cleanSize)
    .option('--adv-candidates <n>', 'training images attacked per round to pick X̃ from', parsePositiveInteger, 1000)
    .option('--adv-offset <n>', 'skip n images of the seeded permutation before the X̃ candidates (another draw of X̃)', parseNonNegativeInteger, 0)
    .option('--adv-eps <e>', 'ε of the PGD attack that makes X̃', parsePositiveNumber, d.attack.eps)
    .option('--adv-steps <n>', 'PGD steps for X̃', parsePositiveInteger, d.attack.steps)
    .option('--adv-step-size <a>', 'PGD step size for X̃', parsePositiveNumber, d.attack.stepSize)
    .option('--adv-restarts <n>', 'PGD restarts for X̃', parsePositiveInteger, d.attack.restarts)
    .option('--no-adv-random-start', 'start the X̃ PGD at the clean image')
    .option('--adv-labels <which>', "X̃ attack pushes away from the true labels or the model's predictions (true|pred)", parseLabels, 'true')
    .addOption(new Option('--adv-from <which>', 'candidates that may give X̃: all, or only those the model classifies correctly clean').choices([...ADV_SOURCES]).default('all'))
    .option('--no-clip', 'do not clip adversarial images to [0, 1] (the paper authors do not clip)');
}

/** The test evaluation before and after. */
export function addEvaluationOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--attacks <list>', `attacks of the test evaluation, comma-separated (${EVALUATION_ATTACKS.join(', ')}); the headline is the per-image worst of them`)
        .argParser(parseAttackList)
        .default([...DEFAULT_EVALUATION_ATTACKS], DEFAULT_EVALUATION_ATTACKS.join(',')),
    )
    .option('--eval-n <n>', 'test images for the clean and FGSM evaluation', parsePositiveInteger, 10000)
    .option('--pgd-n <n>', 'test images for the iterative attacks (PGD, APGD; 0 = skip)', parseNonNegativeInteger, 1000)
    .option('--eval-eps <e>', 'ε of every attack of the test evaluation', parseEvalEps, 0.1)
    .option('--pgd-steps <n>', 'PGD steps of the test evaluation', parsePositiveInteger, 40)
    .option('--pgd-step-size <a>', 'PGD step size of the test evaluation', parsePositiveNumber, 0.01)
    .option('--apgd-steps <n>', `APGD iterations of apgd-ce and apgd-t (default ${APGD_DEFAULTS.steps})`, parsePositiveInteger)
    .option('--targets <k>', `apgd-t: target classes per image (default ${APGD_DEFAULTS.targets})`, parsePositiveInteger)
    .option('--queries <n>', `square: query budget per image (default ${SQUARE_DEFAULTS.queries})`, parsePositiveInteger)
    .addOption(new Option('--sweep <list>', 'FGSM ε values for the robustness plot (none = skip)').argParser(parseEpsList).default([0.05, 0.1, 0.15, 0.2], '0.05,0.1,0.15,0.2'))
    .option('--no-eval', 'skip the test-set evaluation');
}

export function addIoOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'tensor backend: auto, tensorflow, native, wasm, cpu', parseBackend)
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print one JSON object (result.json) on stdout');
}

/** Every option of `correct` (shared by `correct` and `demo`). */
export function addCorrectionOptions(cmd: Command): Command {
  addDrawOptions(addMethodOptions(cmd));
  addEvaluationOptions(cmd);
  cmd.option('--dump-qp <dir>', 'write every QP subproblem as QPS and LP into dir');
  return addIoOptions(cmd);
}

/** Option keys of CorrectionOptionsInput → the commander flag that sets them. */
const OPTION_FLAGS: Record<string, string> = {
  delta: 'delta',
  tau: 'tau',
  maxIterations: 'iterations',
  alphas: 'alphas',
  omega: 'omega',
  segmentPoints: 'segmentPoints',
  rounds: 'rounds',
  cutClasses: 'cutClasses',
  cutSlack: 'cutSlack',
  activeTolerance: 'activeTol',
  layers: 'layers',
  patience: 'patience',
  nAdversarial: 'nAdv',
  cleanSize: 'cleanSize',
};
const ATTACK_FLAGS: Record<string, string> = { eps: 'advEps', steps: 'advSteps', stepSize: 'advStepSize', restarts: 'advRestarts', randomStart: 'advRandomStart' };

/**
 * Replaces, in `flags`, every value the user left at its generic default by the data set's preset
 * (lib/correction/presets.ts); flags given on the command line win. Returns the flags it set.
 */
export function applyDatasetPreset(cmd: Command, flags: Record<string, unknown>, dataset: string): string[] {
  const preset = DATASET_PRESETS[dataset];
  if (!preset) return [];
  const set: string[] = [];
  const put = (flag: string, value: unknown) => {
    if (value === undefined || cmd.getOptionValueSource(flag) !== 'default') return;
    flags[flag] = Array.isArray(value) ? [...value] : value;
    set.push(flag);
  };
  for (const [key, value] of Object.entries(preset.options)) {
    if (key === 'attack') continue;
    const flag = OPTION_FLAGS[key];
    if (!flag) throw new AdvcorrectError('ERR_UNSUPPORTED', `the ${dataset} preset sets options.${key}, which no flag of this command sets`);
    put(flag, value);
  }
  for (const [key, value] of Object.entries(preset.options.attack ?? {})) put(ATTACK_FLAGS[key]!, value);
  put('advCandidates', preset.advCandidates);
  put('advFrom', preset.advFrom);
  put('evalEps', preset.evalEps);
  put('pgdSteps', preset.pgdSteps);
  put('pgdStepSize', preset.pgdStepSize);
  put('sweep', preset.sweep);
  put('evalN', preset.evalN);
  put('pgdN', preset.pgdN);
  return set;
}

/** `--adv-eps` → what the user types: `--adv-eps`. */
export function flagName(flag: string): string {
  return `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Flags → the split and X̃ settings. */
export function drawFromFlags(flags: Record<string, unknown>, rounds = 1): DrawSettings {
  return {
    seed: flags.seed as number,
    cleanSize: flags.cleanSize as number,
    nAdversarial: flags.nAdv as number,
    attack: {
      eps: flags.advEps as number,
      steps: flags.advSteps as number,
      stepSize: flags.advStepSize as number,
      restarts: flags.advRestarts as number,
      randomStart: flags.advRandomStart as boolean,
    },
    advCandidates: flags.advCandidates as number,
    advOffset: flags.advOffset as number,
    advLabels: flags.advLabels as 'true' | 'pred',
    advFrom: (flags.advFrom as AdvSource | undefined) ?? 'all',
    clip: flags.clip as boolean,
    rounds,
  };
}

/** Flags → the evaluation settings. */
export function evaluationFromFlags(flags: Record<string, unknown>): EvaluationSettings {
  return {
    attacks: flags.attacks as string[],
    evalN: flags.evalN as number,
    pgdN: flags.pgdN as number,
    evalEps: flags.evalEps as number,
    pgdSteps: flags.pgdSteps as number,
    pgdStepSize: flags.pgdStepSize as number,
    sweep: flags.sweep as number[],
    clip: flags.clip as boolean,
    seed: flags.seed as number,
    ...(flags.apgdSteps !== undefined ? { apgdSteps: flags.apgdSteps as number } : {}),
    ...(flags.targets !== undefined ? { targets: flags.targets as number } : {}),
    ...(flags.queries !== undefined ? { queries: flags.queries as number } : {}),
  };
}

/** Commander flags → correction run settings. */
export function settingsFromFlags(flags: Record<string, unknown>, base: ModelSettings & { out: string; dataset: DatasetName }): CorrectionRunSettings {
  const budgetSeconds = flags.budgetS as number | undefined;
  // With --budget-s and no --rounds on the command line, the round limit is the budget's cap.
  const rounds = budgetSeconds !== undefined && flags.roundsGiven !== true ? BUDGET_MAX_ROUNDS : (flags.rounds as number);
  const draw = drawFromFlags(flags, rounds);
  const input: CorrectionOptionsInput = {
    delta: flags.delta as number,
    tau: flags.tau as number,
    ...(flags.eta !== undefined ? { eta: flags.eta as number } : {}),
    maxIterations: flags.iterations as number,
    alphas: flags.alphas as number[],
    omega: flags.omega as number,
    segmentPoints: flags.segmentPoints as number,
    rounds,
    ...(budgetSeconds !== undefined ? { budgetSeconds } : {}),
    cutClasses: flags.cutClasses as 'all' | 'worst',
    activeTolerance: flags.activeTol as number,
    cutSlack: flags.cutSlack as number,
    violation: flags.violation as 'sum' | 'fraction',
    layers: flags.layers as 'all' | string[],
    solver: flags.solver as 'dual' | 'admm',
    rows: flags.rows as 'auto' | 'stored' | 'factored',
    qpTolerance: flags.qpTolerance as number,
    qpTimeLimitMs: (flags.qpTimeLimit as number) * 1000,
    maxCuts: flags.maxCuts as number,
    dropInactiveAfter: flags.dropInactive as number,
    patience: flags.patience as number,
    seed: draw.seed,
    nAdversarial: draw.nAdversarial,
    cleanSize: draw.cleanSize,
    attack: draw.attack,
  };
  const e = evaluationFromFlags(flags);
  return {
    ...base,
    options: resolveCorrectionOptions(input),
    advCandidates: draw.advCandidates,
    advOffset: draw.advOffset,
    advLabels: draw.advLabels,
    advFrom: draw.advFrom ?? 'all',
    clip: draw.clip,
    evalN: e.evalN,
    pgdN: e.pgdN,
    evalEps: e.evalEps,
    pgdSteps: e.pgdSteps,
    pgdStepSize: e.pgdStepSize,
    attacks: e.attacks,
    ...(e.apgdSteps !== undefined ? { apgdSteps: e.apgdSteps } : {}),
    ...(e.targets !== undefined ? { targets: e.targets } : {}),
    ...(e.queries !== undefined ? { queries: e.queries } : {}),
    sweep: e.sweep,
    evaluateModels: flags.eval as boolean,
    ...(flags.dumpQp ? { dumpQp: path.resolve(flags.dumpQp as string) } : {}),
  };
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a';
}

/** The before/after rows (worst case first) as text. */
export function metricsText(doc: RunDocument): string[] {
  const rows = metricRows(doc.before, doc.after, doc.evaluation);
  const width = Math.max(30, ...rows.map((r) => r.name.length + 2));
  const line = (name: string, b: number, a: number) => {
    const d = (a - b) * 100;
    const change = Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${d.toFixed(2)} pp` : 'n/a';
    return `${name.padEnd(width)}${pct(b).padStart(9)}${pct(a).padStart(9)}${change.padStart(12)}`;
  };
  const out = [`${''.padEnd(width)}${'before'.padStart(9)}${'after'.padStart(9)}${'change'.padStart(12)}`, ...rows.map((r) => line(r.name, r.before, r.after))];
  for (const [when, m] of [['before', doc.before], ['after', doc.after]] as const) {
    for (const w of m.warnings ?? []) out.push(`warning (${when}): ${w.code} on ${w.count} images: ${w.message}`);
  }
  return out;
}
