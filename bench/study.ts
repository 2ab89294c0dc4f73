/**
 * Helpers of the MNIST study (bench/results.ts): test-set robustness with the worst case over several
 * attacks, the conv1 bias shift curve and its match in clean accuracy, records and statistics.
 * No correction code here (bench/results.ts runs the corrections).
 */
import { execSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { loadModel, type LoadedModel } from '../lib/models/io.js';
import { ParameterView } from '../lib/models/parameters.js';
import { evaluate, type AttackSpec } from '../lib/attacks/index.js';
import { packageRoot } from '../lib/native.js';

export const MODELS: Record<string, { file: string; arch: 'cnnlight' | 'cnn' }> = {
  cnnlight: { file: 'mnist_ConvNetLight_norm01.npz', arch: 'cnnlight' },
  cnn: { file: 'mnist_ConvNet_norm01.npz', arch: 'cnn' },
};

/** Conv1 bias shifts of the baseline curve (subtracted from every conv1 bias). */
export const SHIFTS = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];

export interface Robustness {
  clean: number;
  fgsm: number;
  /** Accuracy under each strong attack on the first pgdN images, by label (e.g. 'pgd', 'apgd-ce'). */
  attacks: Record<string, number>;
  /** Per-example worst case of clean, FGSM and every strong attack on the first pgdN images. */
  worst: number;
}

export interface EvalSettings {
  evalN: number;
  pgdN: number;
  /** Strong attacks on the first pgdN images, e.g. ['pgd', 'apgd-ce', 'apgd-t:3']. */
  attacks: string[];
}

/** 'pgd', 'pgd:3' (restarts), 'apgd-ce', 'apgd-t:3' (targets) → an AttackSpec at ε 0.1. */
export function attackSpec(text: string): AttackSpec {
  const [name, extra] = text.split(':');
  const k = extra === undefined ? undefined : Number(extra);
  if (name === 'pgd') return { name: 'pgd', eps: 0.1, steps: 40, stepSize: 0.01, randomStart: true, restarts: k ?? 1 };
  if (name === 'apgd-ce') return { name: 'apgd-ce', eps: 0.1, ...(k ? { restarts: k } : {}) };
  if (name === 'apgd-t') return { name: 'apgd-t', eps: 0.1, ...(k ? { targets: k } : {}) };
  if (name === 'fgsm') return { name: 'fgsm', eps: 0.1 };
  throw new RangeError(`unknown attack '${text}' (pgd[:restarts], apgd-ce[:restarts], apgd-t[:targets], fgsm)`);
}

/** Clean and FGSM ε 0.1 on the first evalN test images; the worst case of clean, FGSM and the strong attacks on the first pgdN. */
export async function robustness(model: LayersModel | LoadedModel, test: ImageDataset, e: EvalSettings): Promise<Robustness> {
  const main = await evaluate(model, takeFirst(test, e.evalN), { attacks: [{ name: 'fgsm', eps: 0.1 }], seed: 1 });
  const strong = await evaluate(model, takeFirst(test, e.pgdN), { attacks: [{ name: 'fgsm', eps: 0.1 }, ...e.attacks.map(attackSpec)], seed: 1 });
  const attacks: Record<string, number> = {};
  e.attacks.forEach((a, i) => (attacks[a] = strong.attacks[i + 1]!.accuracy));
  return { clean: main.clean.accuracy, fgsm: main.attacks[0]!.accuracy, attacks, worst: strong.worstCase.accuracy };
}

export type ShiftPoint = { shift: number } & Robustness;

/** Robustness after subtracting each shift from every conv1 bias (cached in the temp directory per evaluation setting). */
export async function shiftCurve(sharedModels: string, model: string, test: ImageDataset, e: EvalSettings, shifts = SHIFTS): Promise<ShiftPoint[]> {
  const cacheFile = path.join(os.tmpdir(), `advcorrect-shift-${model}-${e.evalN}-${e.pgdN}-${e.attacks.join('+')}.json`);
  const cached: ShiftPoint[] = existsSync(cacheFile) ? (JSON.parse(await fs.readFile(cacheFile, 'utf8')) as ShiftPoint[]) : [];
  const missing = shifts.filter((s) => !cached.some((c) => c.shift === s));
  if (missing.length > 0) {
    const spec = MODELS[model]!;
    const loaded = await loadModel(path.join(sharedModels, spec.file), { arch: spec.arch });
    const view = new ParameterView(loaded.model, ['conv1']);
    const bias = view.entry('conv1', 'bias')!;
    const w0 = view.read();
    for (const shift of missing) {
      const w = Float64Array.from(w0);
      for (let i = 0; i < bias.size; i++) w[bias.offset + i] -= shift;
      view.write(w);
      cached.push({ shift, ...(await robustness(loaded, test, e)) });
      process.stderr.write(`shift ${model} −${shift}: ${JSON.stringify(cached[cached.length - 1])}\n`);
      await fs.writeFile(cacheFile, JSON.stringify(cached));
    }
    loaded.model.dispose();
  }
  return cached.filter((c) => shifts.includes(c.shift)).sort((a, b) => a.shift - b.shift);
}

/**
 * The shift matched to a clean accuracy: linear interpolation between the two grid shifts whose clean
 * accuracies bracket the target (the first bracket from shift 0 up). Outside the curve's range the
 * nearest end is returned.
 */
export function matchShift(curve: ShiftPoint[], clean: number): { shift: number; clean: number; worst: number } {
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1]!;
    const b = curve[i]!;
    if (a.clean >= clean && b.clean < clean) {
      const t = (a.clean - clean) / (a.clean - b.clean);
      return { shift: a.shift + t * (b.shift - a.shift), clean, worst: a.worst + t * (b.worst - a.worst) };
    }
  }
  const end = clean > curve[0]!.clean ? curve[0]! : curve[curve.length - 1]!;
  return { shift: end.shift, clean: end.clean, worst: end.worst };
}

/** One ω's answer of one run. */
export interface Answer {
  omega: number;
  id: number;
  /** Segment parameter t of the answer (1 = the least-violation point w*). */
  t: number;
  violation: number;
  cleanLoss: number;
  distance: number;
  result: Robustness;
  shift: { shift: number; clean: number; worst: number };
}

/** One correction run (a setting and a draw of X̃) with the answers of every ω evaluated. */
export interface RunRecord {
  at: string;
  group: string;
  model: string;
  /** Correction options given (over the defaults of the commit that ran it). */
  options: Record<string, unknown>;
  /** The options in force (over the defaults of the commit that ran it). */
  resolved: Record<string, unknown>;
  draw: number;
  eval: EvalSettings;
  before: Robustness;
  iterations: number;
  stop: string;
  correctionMs: number;
  /** CPU time of the process during the correction (all threads), a load-independent cost. */
  correctionCpuMs: number;
  wallMs: number;
  answers: Answer[];
  command: string;
  commit: string;
}

export function meanSd(values: number[]): { mean: number; sd: number; n: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const sd = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  return { mean, sd, n };
}

/** "61.2 ± 3.4" in percent (sd omitted for one value). */
export function pctStat(values: number[]): string {
  const { mean, sd, n } = meanSd(values);
  if (n === 0) return '–';
  return n > 1 ? `${(100 * mean).toFixed(1)} ± ${(100 * sd).toFixed(1)}` : `${(100 * mean).toFixed(1)}`;
}

/** The short hash of the repository's HEAD (recorded beside every study row), or 'unknown'. */
export function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: packageRoot, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
