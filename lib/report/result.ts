/**
 * result.json: the document a correction run leaves in its output directory. It is the
 * correction result plus the run's settings, the backend and the test metrics before and after.
 */
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import type { CorrectionResult } from '../correction/types.js';
import type { AttackSpec, EvaluationWarning } from '../attacks/index.js';

/** Accuracy under one attack of a test evaluation, with the attack's settings (those of AttackSpec). */
export interface AttackMetric extends Omit<AttackSpec, 'name'> {
  name: string;
  /** Display name, e.g. 'fgsm', 'pgd-40', 'apgd-ce'. */
  label: string;
  /** Test images it ran on (the first n). */
  n: number;
  accuracy: number;
}

/**
 * A warning of the attacks (signs of gradient masking), with how many images it concerns: the
 * evaluation's warning as result.json keeps it (a code from an older or newer version stays readable).
 */
export type RunWarning = Omit<EvaluationWarning, 'code'> & { code: string };

/** Test metrics of one model. */
export interface TestMetrics {
  clean: { accuracy: number };
  fgsm: { eps: number; accuracy: number };
  pgd: { eps: number; steps: number; accuracy: number; stepSize?: number; n?: number };
  /** Every attack of the evaluation (absent in results written before the attack list). */
  attacks?: AttackMetric[];
  /** Per-image worst case over every attack run (an image counts only if clean and every attack leave it correct). */
  worstCase?: { label: string; n: number; accuracy: number };
  warnings?: RunWarning[];
}

/** What a test evaluation ran on. */
export interface EvaluationInfo {
  split: string;
  n: number;
  pgdN: number;
  clip: boolean;
  labels: 'true' | 'pred';
  dataset?: string;
  attacks?: Array<Omit<AttackMetric, 'accuracy'>>;
  worstCase?: { label: string; n: number };
}

/** Accuracy under an attack at several ε, before and after. */
export interface RobustnessSweep {
  attack: 'fgsm' | 'pgd';
  points: Array<{ eps: number; before: number; after: number }>;
}

/** The adversarial examples as 8-bit pixels, for the report's picture grid. */
export interface ExampleImages {
  height: number;
  width: number;
  channels: number;
  items: Array<{ label: number; before: number; after: number; round: number; pixels: number[] }>;
}

export interface ResultDocument extends CorrectionResult {
  format: 'advcorrect-result';
  formatVersion: 1;
  createdAt: string;
  /** Everything needed to repeat the run (model path, arch, dataset, CLI options, evaluation settings). */
  settings: Record<string, unknown>;
  backend: string;
  /** 'correct' (absent in results written before the baselines). */
  method?: 'correct';
  /** Test-set evaluation: which split, how many images, PGD subset size, the attacks. */
  evaluation: EvaluationInfo;
  before: TestMetrics;
  after: TestMetrics;
  sweep?: RobustnessSweep;
  examples?: ExampleImages;
  /** Paths of the outputs, relative to the output directory. */
  outputs: { model: string; npz?: string; report: string };
  /** Time spent drawing X̃ (all rounds) and correcting, without the evaluation. */
  methodTimeMs?: number;
  timing?: { adversarialMs: number; correctionMs: number; evaluationMs: number };
  wallTimeMs?: number;
}

/** result.json of `advcorrect baseline`. */
export interface BaselineDocument {
  format: 'advcorrect-result';
  formatVersion: 1;
  kind: 'baseline';
  /** 'bias-shift', 'finetune' or 'pgd-finetune'. */
  method: string;
  /** The method's settings as chosen (what makes two runs the same method). */
  methodSettings: Record<string, unknown>;
  /** What the method found or did (the shift, epochs, whether it reached its goal, …). */
  methodResult: Record<string, unknown>;
  createdAt: string;
  settings: Record<string, unknown>;
  backend: string;
  evaluation: EvaluationInfo;
  before: TestMetrics;
  after: TestMetrics;
  sweep?: RobustnessSweep;
  /** ‖w − w₀‖ over all trainable parameters, and relative to ‖w₀‖. */
  distance: number;
  relativeDistance: number;
  outputs: { model: string; npz?: string; report: string };
  /** Time the method spent (drawing X̃ and training / searching), without the evaluation. */
  methodTimeMs: number;
  wallTimeMs: number;
}

/** Either kind of result.json. */
export type RunDocument = ResultDocument | BaselineDocument;

export function isBaselineDocument(doc: RunDocument): doc is BaselineDocument {
  return (doc as BaselineDocument).kind === 'baseline';
}

/** Quantises NHWC [0, 1] images to 0–255 integers, one array per image (at most `limit` images). */
export function quantiseImages(images: Float32Array, count: number, size: number, limit = 100): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < Math.min(count, limit); i++) {
    const pixels = new Array<number>(size);
    for (let k = 0; k < size; k++) pixels[k] = Math.round(Math.min(1, Math.max(0, images[i * size + k]!)) * 255);
    out.push(pixels);
  }
  return out;
}

/** JSON with non-finite numbers as null (JSON cannot hold them). */
export function resultToJson(result: RunDocument | object): string {
  return `${JSON.stringify(result, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

/** Writes `<dir>/result.json` atomically and returns its path. */
export async function writeResult(dir: string, result: RunDocument): Promise<string> {
  const file = path.join(dir, 'result.json');
  await writeFileAtomic(file, resultToJson(result));
  return file;
}
