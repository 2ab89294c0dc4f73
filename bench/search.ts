/**
 * Settings search for the correction defaults on the authors' MNIST models (docs/results.md,
 * "Search"): one `advcorrect correct` run per X̃ draw with the given options, then the answer of every
 * ω in --omegas is taken from the run's final front (chooseAnswer) and evaluated, beside the conv1
 * bias shift matched to the same clean accuracy.
 *
 *   node dist/bench/search.js --model cnnlight [--draws 0,1,2,3] [--omegas 0,0.2,0.4,0.6,0.8,1]
 *        [--options '{"rounds":2,"delta":3}'] [--eval-n 2000] [--pgd-n 500] [--pgd-restarts 2] [--tag name]
 *
 * Robust accuracy is the per-example worst case of FGSM ε 0.1 and PGD-40 (step 0.01, random start,
 * --pgd-restarts restarts) on the first --pgd-n test images; clean and FGSM on the first --eval-n.
 * Each finished setting appends one JSON line to docs/search-runs.jsonl (command, options, per-draw
 * and per-ω numbers, the matched shift); `--render` rewrites nothing and prints the table of that file.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, type ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { loadModel, type LoadedModel } from '../lib/models/io.js';
import { ParameterView } from '../lib/models/parameters.js';
import { evaluate } from '../lib/attacks/index.js';
import { packageRoot } from '../lib/native.js';
import { resolveCorrectionOptions, type CorrectionOptionsInput } from '../lib/correction/options.js';
import { chooseAnswer } from '../lib/correction/selection.js';
import { runCorrection, type CorrectionRunSettings, type RunIo } from '../lib/cli/correct.js';

export const MODELS: Record<string, { file: string; arch: 'cnnlight' | 'cnn' }> = {
  cnnlight: { file: 'mnist_ConvNetLight_norm01.npz', arch: 'cnnlight' },
  cnn: { file: 'mnist_ConvNet_norm01.npz', arch: 'cnn' },
};

export interface Robustness {
  clean: number;
  fgsm: number;
  pgd: number;
  /** Per-example worst case of clean, FGSM and PGD on the PGD subset. */
  worst: number;
}

export interface EvalSettings {
  evalN: number;
  pgdN: number;
  pgdRestarts: number;
}

/** Clean and FGSM on the first evalN test images; worst case of clean, FGSM, PGD on the first pgdN. */
export async function robustness(model: LayersModel | LoadedModel, test: ImageDataset, e: EvalSettings): Promise<Robustness> {
  const main = await evaluate(model, takeFirst(test, e.evalN), { attacks: [{ name: 'fgsm', eps: 0.1 }], seed: 1 });
  const strong = await evaluate(model, takeFirst(test, e.pgdN), {
    attacks: [
      { name: 'fgsm', eps: 0.1 },
      { name: 'pgd', eps: 0.1, steps: 40, stepSize: 0.01, randomStart: true, restarts: e.pgdRestarts },
    ],
    seed: 1,
  });
  return { clean: main.clean.accuracy, fgsm: main.attacks[0]!.accuracy, pgd: strong.attacks[1]!.accuracy, worst: strong.worstCase.accuracy };
}

/** The conv1 bias shift curve of a model: robustness after subtracting s from every conv1 bias, for each s. */
export async function shiftCurve(model: string, test: ImageDataset, e: EvalSettings, shifts: number[]): Promise<Array<{ shift: number } & Robustness>> {
  const cacheFile = path.join(os.tmpdir(), `advcorrect-shift-${model}-${e.evalN}-${e.pgdN}-${e.pgdRestarts}.json`);
  const cached: Array<{ shift: number } & Robustness> = existsSync(cacheFile) ? JSON.parse(await fs.readFile(cacheFile, 'utf8')) : [];
  const spec = MODELS[model]!;
  const loaded = await loadModel(path.join(sharedModels, spec.file), { arch: spec.arch });
  const view = new ParameterView(loaded.model, ['conv1']);
  const bias = view.entry('conv1', 'bias')!;
  const w0 = view.read();
  for (const shift of shifts) {
    if (cached.some((c) => c.shift === shift)) continue;
    const w = Float64Array.from(w0);
    for (let i = 0; i < bias.size; i++) w[bias.offset + i] -= shift;
    view.write(w);
    cached.push({ shift, ...(await robustness(loaded, test, e)) });
    process.stderr.write(`shift ${model} −${shift}: ${JSON.stringify(cached[cached.length - 1])}\n`);
    await fs.writeFile(cacheFile, JSON.stringify(cached));
  }
  loaded.model.dispose();
  return cached.filter((c) => shifts.includes(c.shift)).sort((a, b) => a.shift - b.shift);
}

/**
 * The shift matched to a clean accuracy: the largest shift whose clean accuracy is still ≥ the target
 * (so the shift is never less accurate than the method it is compared with), linearly interpolated
 * between the two grid shifts around the target.
 */
export function matchShift(curve: Array<{ shift: number } & Robustness>, clean: number): { shift: number } & Robustness {
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1]!;
    const b = curve[i]!;
    if (a.clean >= clean && b.clean < clean) {
      const t = (a.clean - clean) / (a.clean - b.clean);
      const mix = (x: number, y: number) => x + t * (y - x);
      return { shift: mix(a.shift, b.shift), clean, fgsm: mix(a.fgsm, b.fgsm), pgd: mix(a.pgd, b.pgd), worst: mix(a.worst, b.worst) };
    }
  }
  return clean > curve[0]!.clean ? curve[0]! : curve[curve.length - 1]!;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** The authors' weights: ../shared/models from the repository, or --shared DIR (a git worktree sits one level deeper). */
export const sharedModels = path.resolve(arg('shared', path.join(packageRoot, '..', 'shared')), 'models');
const runsFile = path.join(packageRoot, 'docs', 'search-runs.jsonl');
export const SHIFTS = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];

async function main(): Promise<void> {
  if (!existsSync(sharedModels)) {
    process.stderr.write(`search: ${sharedModels} is absent; the authors' models are needed\n`);
    process.exitCode = 1;
    return;
  }
  const model = arg('model', 'cnnlight');
  const spec = MODELS[model];
  if (!spec) throw new RangeError(`--model must be one of ${Object.keys(MODELS).join(', ')}`);
  const draws = arg('draws', '0').split(',').map(Number);
  const omegas = arg('omegas', '0,0.2,0.4,0.6,0.8,1').split(',').map(Number);
  const input = JSON.parse(arg('options', '{}')) as CorrectionOptionsInput;
  const options = resolveCorrectionOptions(input);
  const e: EvalSettings = { evalN: Number(arg('eval-n', '2000')), pgdN: Number(arg('pgd-n', '500')), pgdRestarts: Number(arg('pgd-restarts', '2')) };
  const tag = arg('tag', JSON.stringify(input));
  await initBackend();
  const test = await loadDataset('mnist', 'test');
  const base = await loadModel(path.join(sharedModels, spec.file), { arch: spec.arch });
  const before = await robustness(base, test, e);
  process.stderr.write(`base ${model}: ${JSON.stringify(before)}\n`);
  const curve = await shiftCurve(model, test, e, SHIFTS);
  const perDraw: unknown[] = [];
  for (const draw of draws) {
    const out = path.join(os.tmpdir(), 'advcorrect-search', `${model}-d${draw}`);
    const settings: CorrectionRunSettings = {
      model: path.join(sharedModels, spec.file),
      arch: spec.arch,
      dataset: 'mnist',
      out,
      options,
      advCandidates: 1000,
      advOffset: 1000 * draw,
      advLabels: 'true',
      clip: true,
      evalN: e.evalN,
      pgdN: 0,
      evalEps: 0.1,
      pgdSteps: 40,
      pgdStepSize: 0.01,
      sweep: [],
      evaluateModels: false,
    };
    const answers: unknown[] = [];
    let correctionMs = 0;
    const io: RunIo = {
      json: false,
      quiet: true,
      resume: false,
      onOutput: async (output) => {
        correctionMs = output.result.totalTimeMs;
        const view = new ParameterView(output.model, output.result.parameters.layers);
        const seen = new Map<number, Robustness>();
        for (const omega of omegas) {
          const chosen = chooseAnswer(output.front, omega, output.result.eta).chosen;
          let r = seen.get(chosen.id);
          if (!r) {
            view.write(chosen.w);
            r = await robustness(output.model, test, e);
            seen.set(chosen.id, r);
          }
          const shift = matchShift(curve, r.clean);
          answers.push({ omega, id: chosen.id, violation: chosen.violation, cleanLoss: chosen.cleanLoss, distance: chosen.distance, t: chosen.segment ? chosen.alpha : 1, ...r, shift });
          process.stderr.write(`${model} d${draw} ω ${omega}: #${chosen.id} ${JSON.stringify(r)}; shift −${shift.shift.toFixed(3)} worst ${shift.worst.toFixed(3)}\n`);
        }
        view.write(output.front.find((p) => p.id === output.result.chosen.id)!.w);
      },
    };
    const started = Date.now();
    const doc = await runCorrection(settings, io);
    perDraw.push({ draw, iterations: doc.iterations.length, stop: doc.rounds.map((r) => r.stopReason).join(','), correctionMs, wallMs: Date.now() - started, answers });
  }
  const record = {
    at: new Date().toISOString(),
    tag,
    command: `node dist/bench/search.js --model ${model} --draws ${draws.join(',')} --omegas ${omegas.join(',')} --options '${JSON.stringify(input)}' --eval-n ${e.evalN} --pgd-n ${e.pgdN} --pgd-restarts ${e.pgdRestarts}`,
    model,
    options: input,
    eval: e,
    before,
    draws: perDraw,
  };
  await fs.appendFile(runsFile, `${JSON.stringify(record)}\n`);
}

if (process.argv[1]?.endsWith('search.js')) {
  main().catch((error: unknown) => {
    process.stderr.write(`search: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
