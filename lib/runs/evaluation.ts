/**
 * The test evaluation of a run (before and after): clean and FGSM on the first `evalN` test
 * images, the iterative attacks on the first `pgdN`, the per-image worst case over every attack
 * run (on the images where all of them ran), the warnings of the attacks, and the FGSM ε sweep.
 */
import type { ImageDataset } from '../data/datasets.js';
import { takeFirst } from '../data/sampling.js';
import type { LoadedModel } from '../models/io.js';
import { evaluate, type AttackSpec, type Evaluation } from '../attacks/index.js';
import type { AttackMetric, TestMetrics } from '../report/result.js';

/** Attack names an evaluation accepts, in the order they run. */
export const EVALUATION_ATTACKS = ['fgsm', 'pgd'] as const;
export type EvaluationAttack = (typeof EVALUATION_ATTACKS)[number];
/** The default attack list of `correct` and `baseline`. */
export const DEFAULT_EVALUATION_ATTACKS: readonly EvaluationAttack[] = ['fgsm', 'pgd'];

export interface EvaluationSettings {
  /** Attacks by name (FGSM on the first evalN images, the others on the first pgdN). */
  attacks: string[];
  evalN: number;
  pgdN: number;
  /** ε of every attack. */
  evalEps: number;
  pgdSteps: number;
  pgdStepSize: number;
  /** FGSM ε values for the sweep plot ([] = none). */
  sweep: number[];
  clip: boolean;
  /** Seed of the random starts. */
  seed: number;
}

export interface EvaluationHooks {
  signal?: AbortSignal;
  onProgress?: (info: { stage: string; done: number; total: number }) => void;
}

export interface TestEvaluation {
  metrics: TestMetrics;
  /** FGSM accuracy per sweep ε (and at evalEps). */
  sweep: Map<number, number>;
}

/** What an evaluation ran: enough to tell whether two runs were evaluated alike. */
export interface EvaluationDescription {
  split: 'test';
  dataset: string;
  n: number;
  pgdN: number;
  clip: boolean;
  labels: 'true';
  attacks: Array<Omit<AttackMetric, 'accuracy'>>;
  worstCase: { label: string; n: number };
}

/** Label of an attack in tables: 'fgsm', 'pgd-40', 'apgd-ce', … */
export function attackDisplayName(name: string, steps?: number): string {
  return name === 'pgd' && steps !== undefined ? `pgd-${steps}` : name;
}

/** The attack of one name with the evaluation's settings. */
export function evaluationAttackSpec(name: string, e: EvaluationSettings): AttackSpec {
  if (name === 'fgsm') return { name: 'fgsm', eps: e.evalEps };
  if (name === 'pgd') return { name: 'pgd', eps: e.evalEps, steps: e.pgdSteps, stepSize: e.pgdStepSize, randomStart: true, restarts: 1 };
  if (!(EVALUATION_ATTACKS as readonly string[]).includes(name)) throw new RangeError(`unknown attack '${name}' (expected ${EVALUATION_ATTACKS.join(', ')})`);
  return { name, eps: e.evalEps } as AttackSpec;
}

function iterativeNames(e: EvaluationSettings): string[] {
  return e.pgdN > 0 ? e.attacks.filter((a) => a !== 'fgsm') : [];
}

/** The images the worst case is taken on, and its label. */
function worstCaseOf(e: EvaluationSettings, test: ImageDataset): { label: string; n: number } {
  const names = [...(e.attacks.includes('fgsm') ? ['fgsm'] : []), ...iterativeNames(e)];
  const n = iterativeNames(e).length > 0 ? Math.min(e.pgdN, e.evalN, test.count) : Math.min(e.evalN, test.count);
  const label = names.length > 0 ? `worst of ${names.map((a) => attackDisplayName(a, a === 'pgd' ? e.pgdSteps : undefined)).join(', ')}` : 'clean (no attack)';
  return { label, n };
}

/** Describes an evaluation without running it. */
export function describeEvaluation(e: EvaluationSettings, test: ImageDataset, dataset: string): EvaluationDescription {
  const evalN = Math.min(e.evalN, test.count);
  const pgdN = Math.min(e.pgdN, test.count);
  const attacks: Array<Omit<AttackMetric, 'accuracy'>> = [];
  if (e.attacks.includes('fgsm')) attacks.push({ name: 'fgsm', label: 'fgsm', eps: e.evalEps, n: evalN });
  for (const name of iterativeNames(e)) {
    const spec = evaluationAttackSpec(name, e);
    const { name: _n, eps, ...rest } = spec as AttackSpec & Record<string, unknown>;
    attacks.push({ name, label: attackDisplayName(name, spec.steps), eps, n: pgdN, ...rest });
  }
  return { split: 'test', dataset, n: evalN, pgdN, clip: e.clip, labels: 'true', attacks, worstCase: worstCaseOf(e, test) };
}

function warningsOf(res: Evaluation): Array<{ code: string; message: string; count: number }> {
  const w = (res as Evaluation & { warnings?: Array<{ code: string; message: string; count: number }> }).warnings;
  return Array.isArray(w) ? w : [];
}

/** Evaluates a model on the test set as `correct` and `baseline` do (images in pixel space). */
export async function evaluateOnTest(model: LoadedModel, test: ImageDataset, e: EvaluationSettings, hooks: EvaluationHooks = {}): Promise<TestEvaluation> {
  const common = { labels: 'true' as const, clip: e.clip, seed: e.seed, ...(hooks.signal ? { signal: hooks.signal } : {}), ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}) };
  const evalSet = takeFirst(test, e.evalN);
  const fgsmOn = e.attacks.includes('fgsm');
  const main = await evaluate(model, evalSet, { ...common, attacks: fgsmOn ? [evaluationAttackSpec('fgsm', e)] : [] });
  const sweep = new Map<number, number>();
  if (fgsmOn) sweep.set(e.evalEps, main.attacks[0]!.accuracy);
  const rest = [...new Set(e.sweep)].filter((eps) => !sweep.has(eps)).sort((a, b) => a - b);
  if (rest.length > 0) {
    const res = await evaluate(model, evalSet, { ...common, attacks: rest.map((eps) => ({ name: 'fgsm', eps })) });
    for (const a of res.attacks) sweep.set(a.eps, a.accuracy);
  }
  const attacks: AttackMetric[] = [];
  if (fgsmOn) attacks.push({ name: 'fgsm', label: 'fgsm', eps: e.evalEps, n: main.n, accuracy: main.attacks[0]!.accuracy });
  const warnings = [...warningsOf(main)];
  const worst = worstCaseOf(e, test);
  let robust = main.robust;
  const names = iterativeNames(e);
  if (names.length > 0) {
    const iterSet = takeFirst(test, e.pgdN);
    const res = await evaluate(model, iterSet, { ...common, attacks: names.map((name) => evaluationAttackSpec(name, e)) });
    res.attacks.forEach((a, i) => {
      const { name: _n, eps: _e, accuracy, correct: _c, labels: _l, clip: _cl, timeMs: _t, seed: _s, ...settings } = a as typeof a & Record<string, unknown>;
      attacks.push({ name: names[i]!, label: attackDisplayName(names[i]!, a.steps), eps: a.eps, n: res.n, accuracy, ...settings });
    });
    warnings.push(...warningsOf(res));
    robust = new Uint8Array(worst.n);
    for (let i = 0; i < worst.n; i++) robust[i] = main.robust[i]! & res.robust[i]!;
  }
  let robustCount = 0;
  for (let i = 0; i < worst.n; i++) robustCount += robust[i]!;
  const pgd = attacks.find((a) => a.name === 'pgd');
  return {
    metrics: {
      clean: { accuracy: main.clean.accuracy },
      fgsm: { eps: e.evalEps, accuracy: sweep.get(e.evalEps) ?? Number.NaN },
      pgd: { eps: e.evalEps, steps: e.pgdSteps, stepSize: e.pgdStepSize, n: Math.min(e.pgdN, test.count), accuracy: pgd?.accuracy ?? Number.NaN },
      attacks,
      worstCase: { label: worst.label, n: worst.n, accuracy: worst.n > 0 ? robustCount / worst.n : Number.NaN },
      warnings,
    },
    sweep,
  };
}

/** Metrics of a run that was not evaluated (--no-eval). */
export function notEvaluated(e: EvaluationSettings): TestMetrics {
  return {
    clean: { accuracy: Number.NaN },
    fgsm: { eps: e.evalEps, accuracy: Number.NaN },
    pgd: { eps: e.evalEps, steps: e.pgdSteps, accuracy: Number.NaN },
    attacks: [],
    worstCase: { label: 'not evaluated', n: 0, accuracy: Number.NaN },
    warnings: [],
  };
}
