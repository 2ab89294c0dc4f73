/**
 * The CIFAR-10 section of the results (docs/results-cifar10.md): adversary correction of the
 * authors' ResNet8 against the base model and PGD fine-tuning on the same training images within
 * the same wall time.
 *
 *   npm run build:ts && node dist/bench/cifar10.js [--runs preset,issue,…] [--finetune preset] [--lr 1e-4]
 *        [--budget-s S] [--eval-n 1000] [--pgd-n 200] [--out DIR] [--shared DIR] [--probe] [--render]
 *
 * Every correction is the command printed in its row, run as a child process
 * (`advcorrect correct … --no-eval --json`); its run time is that command's wall time. The bench
 * then loads the saved model and evaluates it here, like the base model and the fine-tuned one:
 * clean accuracy on the first --eval-n test images; FGSM and PGD-20 (step ε/4, random start) at
 * ε = 2/255 and 8/255 on the first --pgd-n, and the per-example worst case over both attacks.
 * Rows are appended to docs/results-cifar10-runs.json as they finish and the tables of
 * docs/results-cifar10.md are rewritten from it (the text below its analysis marker is kept).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, normalize, type ImageDataset } from '../lib/data/datasets.js';
import { shuffleIndices, subset, takeFirst } from '../lib/data/sampling.js';
import { Random } from '../lib/data/random.js';
import { loadModel, type LoadedModel } from '../lib/models/io.js';
import { evaluate } from '../lib/attacks/index.js';
import { pgd } from '../lib/attacks/attacks.js';
import { packageRoot } from '../lib/native.js';
import { CIFAR10_PRESET } from '../lib/correction/presets.js';
import { ParameterView } from '../lib/models/parameters.js';
import { cleanLossGradient, crossEntropyFromLogits, marginsFromLogits, predictLogits } from '../lib/models/index.js';
import { generateAdversarialSet } from '../lib/attacks/adversarial-set.js';
import { correctlyClassified } from '../lib/runs/split.js';
import type { CorrectionRunSettings } from '../lib/runs/index.js';
import { Command } from 'commander';
import { chooseAnswer } from '../lib/correction/selection.js';
import { runCorrection, type RunIo } from '../lib/runs/index.js';
import { addModelOptions } from '../lib/cli/common.js';
import { parseDatasetName } from '../lib/cli/eval.js';
import { addCorrectionOptions, applyDatasetPreset, settingsFromFlags } from '../lib/cli/run-options.js';
import type { AttackSpec } from '../lib/attacks/index.js';
import { gitCommit } from './study.js';

const run = promisify(execFile);

interface Metrics {
  clean: number;
  /** By ε in 1/255 units. */
  robust: Record<string, { fgsm: number; pgd: number; worst: number }>;
}

interface Row {
  name: string;
  kind: 'base' | 'correction' | 'pgd-finetune';
  command: string;
  metrics: Metrics;
  /** Whole command / training budget, seconds. */
  runS?: number;
  loopS?: number;
  distance?: number;
  iterations?: number;
  stops?: string[];
  adversarial?: string;
  cleanLoss?: [number, number, number];
  batches?: number;
  epochs?: number;
  lr?: number;
  trainImages?: number;
  load: number;
  date: string;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

// The shared folder beside the repository (a worktree elsewhere passes --shared DIR).
const shared = path.join(path.resolve(arg('shared', path.join(packageRoot, '..', 'shared'))), 'models');
const modelFile = path.join(shared, 'cifar10_ResNet8_normDataAug.npz');
const outRoot = path.resolve(arg('out', path.join(os.tmpdir(), 'advcorrect-cifar10')));
const evalN = Number(arg('eval-n', '1000'));
const pgdN = Number(arg('pgd-n', '200'));
const EPS = [2, 8];
const runsFile = path.join(packageRoot, 'docs', 'results-cifar10-runs.json');
const docFile = path.join(packageRoot, 'docs', 'results-cifar10.md');
const MARKER = '<!-- analysis -->';

/**
 * The corrections of the study: extra flags after
 * `advcorrect correct --model ../shared/models/cifar10_ResNet8_normDataAug.npz --arch resnet8 --dataset cifar10`.
 */
const BN_LAYERS = [
  'bn1',
  ...['layer1_0', 'layer1_1', 'layer2_0', 'layer2_1', 'layer3_0', 'layer3_1'].flatMap((b) => [`${b}_bn1`, `${b}_bn2`]),
  'layer2_0_downsample_1',
  'layer3_0_downsample_1',
].join(',');
const CONFIGS: Record<string, { flags: string[]; what: string }> = {
  preset: { flags: [], what: 'the CIFAR-10 preset (lib/correction/presets.ts): X̃ at 2/255 from correctly classified candidates, 200 candidates, 500 clean images, 3 rounds of 8 iterations (ω 1 since the merge of the ω work; the recorded row ran before it, with ω 0.2)' },
  issue: {
    flags: ['--adv-eps', '0.1', '--adv-steps', '40', '--adv-step-size', '0.01', '--adv-from', 'all', '--adv-candidates', '1000', '--clean-size', '2000', '--iterations', '20', '--rounds', '1'],
    what: 'the generic (MNIST) defaults, as in the issue: X̃ at ε 0.1 = 25.5/255 from all candidates, 2,000 clean images, 20 iterations, 1 round',
  },
  'all-r1': { flags: ['--adv-from', 'all', '--adv-candidates', '1000', '--rounds', '1', '--iterations', '10'], what: 'preset, but X̃ the most violated of all 1,000 candidates, 1 round of 10 iterations' },
  'correct-r1': { flags: ['--adv-candidates', '1000', '--rounds', '1', '--iterations', '10'], what: 'preset, 1,000 candidates, 1 round of 10 iterations' },
  'bn-only-r1': { flags: ['--layers', BN_LAYERS, '--adv-candidates', '300', '--rounds', '1', '--iterations', '10'], what: 'preset, only the BatchNorm γ/β move (1,120 parameters), 300 candidates, 1 round of 10 iterations' },
  'tau-0.03': { flags: ['--tau', '0.03'], what: 'preset, τ = 0.03' },
  'clean-1000': { flags: ['--clean-size', '1000'], what: 'preset, 1,000 clean images' },
  'clean-2000': { flags: ['--clean-size', '2000'], what: 'preset, 2,000 clean images (the MNIST default)' },
  'clean-2000-r4': { flags: ['--clean-size', '2000', '--rounds', '4'], what: 'preset, 2,000 clean images and 4 rounds' },
  'clean-2000-r4-d1': { flags: ['--clean-size', '2000', '--rounds', '4', '--adv-offset', '800'], what: 'clean-2000-r4 on a second draw of X̃ (candidates 800 further on: no candidate shared with the first draw)' },
  'delta-1': { flags: ['--delta', '1'], what: 'preset, margin δ = 1' },
  'delta-1-clean-2000': { flags: ['--delta', '1', '--clean-size', '2000'], what: 'preset, δ = 1 and 2,000 clean images' },
};

function commandOf(name: string): string[] {
  const config = CONFIGS[name];
  if (!config) throw new RangeError(`unknown run '${name}' (one of ${Object.keys(CONFIGS).join(', ')})`);
  return ['correct', '--model', modelFile, '--arch', 'resnet8', '--dataset', 'cifar10', ...config.flags, '--no-eval', '--quiet', '--json', '--out', path.join(outRoot, name)];
}

function shownCommand(name: string): string {
  const flags = CONFIGS[name]!.flags;
  return `advcorrect correct --model ../shared/models/cifar10_ResNet8_normDataAug.npz --arch resnet8 --dataset cifar10${flags.length ? ` ${flags.join(' ')}` : ''} --out ${name}`;
}

async function loadRows(): Promise<Row[]> {
  return existsSync(runsFile) ? (JSON.parse(await fs.readFile(runsFile, 'utf8')) as Row[]) : [];
}

async function addRow(row: Row): Promise<void> {
  const rows = (await loadRows()).filter((r) => !(r.name === row.name && r.kind === row.kind && r.lr === row.lr));
  rows.push(row);
  await fs.writeFile(runsFile, `${JSON.stringify(rows, null, 1)}\n`);
  await render(rows);
}

const pct = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? (100 * x).toFixed(1) : '–');
const pp = (a: number, b: number) => `${b - a >= 0 ? '+' : ''}${(100 * (b - a)).toFixed(1)}`;

async function render(rows: Row[]): Promise<void> {
  const base = rows.find((r) => r.kind === 'base');
  const lines: string[] = [];
  lines.push('## CIFAR-10');
  lines.push('');
  lines.push('Generated by `npm run build:ts && node dist/bench/cifar10.js` (bench/cifar10.ts); the analysis below the tables is written by hand.');
  lines.push(`Model: the authors' ResNet8 (\`../shared/models/cifar10_ResNet8_normDataAug.npz\` with its BatchNorm statistics), 175,258 parameters.`);
  lines.push(`Evaluation: clean on the first ${evalN} CIFAR-10 test images; FGSM and PGD-20 (step ε/4, random start, true labels, clipped to [0, 1]) at ε = 2/255 and 8/255 on the first ${pgdN}; worst case = correct under both attacks. ε in pixel units, converted per channel by the model's normalisation.`);
  lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, shared with other jobs (load average in the table; times are wall-clock).`);
  lines.push('');
  lines.push('| run | clean (Δ pp) | worst ε 2/255 (gain pp) | FGSM 2/255 | PGD 2/255 | worst ε 8/255 (gain pp) | ‖w − w₀‖ | iters (stops) | X̃ correct | run s (loop s) | load | command |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const m = r.metrics;
    const e2 = m.robust['2']!;
    const e8 = m.robust['8']!;
    const b2 = base?.metrics.robust['2'];
    const b8 = base?.metrics.robust['8'];
    const clean = base && r !== base ? `${pct(m.clean)} (${pp(base.metrics.clean, m.clean)})` : pct(m.clean);
    const w2 = b2 && r !== base ? `${pct(e2.worst)} (${pp(b2.worst, e2.worst)})` : pct(e2.worst);
    const w8 = b8 && r !== base ? `${pct(e8.worst)} (${pp(b8.worst, e8.worst)})` : pct(e8.worst);
    const label = r.kind === 'pgd-finetune' ? `PGD fine-tuning, budget of \`${r.name}\` (lr ${r.lr}, ${r.batches} batches, ${r.epochs?.toFixed(1)} epochs over ${r.trainImages} images)` : r.name;
    const iters = r.iterations !== undefined ? `${r.iterations} (${(r.stops ?? []).join(', ')})` : '';
    const times = r.runS !== undefined ? `${r.runS.toFixed(0)}${r.loopS !== undefined ? ` (${r.loopS.toFixed(0)})` : ''}` : '';
    lines.push(`| ${label} | ${clean} | ${w2} | ${pct(e2.fgsm)} | ${pct(e2.pgd)} | ${w8} | ${r.distance !== undefined ? r.distance.toFixed(3) : ''} | ${iters} | ${r.adversarial ?? ''} | ${times} | ${r.load.toFixed(1)} | \`${r.command}\` |`);
  }
  lines.push('');
  lines.push('Configurations:');
  for (const [name, c] of Object.entries(CONFIGS)) lines.push(`- \`${name}\`: ${c.what}.`);
  lines.push('');
  lines.push(...frontTables(existsSync(frontFile) ? (JSON.parse(await fs.readFile(frontFile, 'utf8')) as FrontRecord[]) : []));
  lines.push(MARKER);
  let tail = '';
  if (existsSync(docFile)) {
    const text = await fs.readFile(docFile, 'utf8');
    const at = text.indexOf(MARKER);
    if (at >= 0) tail = text.slice(at + MARKER.length);
  }
  await fs.writeFile(docFile, `${lines.join('\n')}${tail || '\n'}`);
}

/** The ω-front tables (--front runs): every evaluated answer of each run beside the base model. */
function frontTables(records: FrontRecord[]): string[] {
  const runs = records.filter((r) => r.name !== 'base model');
  if (runs.length === 0) return [];
  const lines: string[] = [];
  lines.push('### ω fronts (`--front`)');
  lines.push('');
  const groups = new Map<string, FrontRecord[]>();
  for (const r of runs) {
    const key = `${r.evalN}/${r.pgdN}/${r.attacks.join(',')}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, group] of groups) {
    const [n, m, attacks] = key.split('/');
    const names = attacks!.split(',');
    const base = records.find((r) => r.name === 'base model' && `${r.evalN}/${r.pgdN}/${r.attacks.join(',')}` === key)?.answers[0];
    lines.push(
      `One correction per row group, run in-process by the code of \`advcorrect correct\`; each ω's answer is taken from its final front (\`chooseAnswer\`) and evaluated: clean on the first ${n} test images; ${names.join(', ')} at ε 2/255 on the first ${m} (PGD-20: step ε/4, random start; APGD-CE: 100 iterations), worst case per image over clean and all of them; at 8/255 the worst case of FGSM and PGD-20 on the same ${m}.` +
        (base ? ` Base model: clean ${pct(base.clean)}, worst case 2/255 ${pct(base.worst)} (${names.map((a) => `${a} ${pct(base.attacks[a])}`).join(', ')}), 8/255 ${pct(base.worst8)}.` : ''),
    );
    lines.push('');
    lines.push(`| run | ω (run's ω) | clean (Δ pp) | ${names.map((a) => `${a} 2/255`).join(' | ')} | **worst 2/255** (gain pp) | worst 8/255 | ‖w − w₀‖ | t | iterations (stops) | X̃ correct | run s (loop s; CPU s) | load |`);
    lines.push(`|---|---|---|${names.map(() => '---|').join('')}---|---|---|---|---|---|---|---|`);
    for (const r of group) {
      for (const a of [...r.answers].sort((x, y) => Math.min(...x.omegas) - Math.min(...y.omegas))) {
        const clean = base ? `${pct(a.clean)} (${pp(base.clean, a.clean)})` : pct(a.clean);
        const worst = base ? `**${pct(a.worst)}** (${pp(base.worst, a.worst)})` : `**${pct(a.worst)}**`;
        lines.push(
          `| \`${r.name}\` | ${a.omegas.join(', ')} (${r.runOmega}) | ${clean} | ${names.map((x) => pct(a.attacks[x])).join(' | ')} | ${worst} | ${pct(a.worst8)} | ${a.distance.toFixed(3)} | ${a.t.toFixed(2)} | ` +
            `${r.iterations} (${r.stops.join(', ')}) | ${r.adversarial} | ${r.runS.toFixed(0)} (${r.loopS.toFixed(0)}; ${r.cpuS.toFixed(0)}) | ${r.load.toFixed(1)} |`,
        );
      }
    }
    lines.push('');
  }
  lines.push('Commands: ' + runs.map((r) => `\`${r.command}\``).join('; ') + '.');
  lines.push('');
  return lines;
}

async function evaluateModel(loaded: LoadedModel, test: ImageDataset): Promise<Metrics> {
  const clean = await evaluate(loaded, takeFirst(test, evalN), { attacks: [], seed: 1 });
  const robust: Metrics['robust'] = {};
  for (const e of EPS) {
    const eps = e / 255;
    const res = await evaluate(loaded, takeFirst(test, pgdN), {
      attacks: [
        { name: 'fgsm', eps },
        { name: 'pgd', eps, steps: 20, stepSize: eps / 4, randomStart: true, restarts: 1 },
      ],
      seed: 1,
    });
    robust[String(e)] = { fgsm: res.attacks[0]!.accuracy, pgd: res.attacks[1]!.accuracy, worst: res.worstCase.accuracy };
    process.stderr.write(`  ε ${e}/255: FGSM ${pct(res.attacks[0]!.accuracy)}, PGD ${pct(res.attacks[1]!.accuracy)}, worst ${pct(res.worstCase.accuracy)}\n`);
  }
  process.stderr.write(`  clean ${pct(clean.clean.accuracy)}\n`);
  return { clean: clean.clean.accuracy, robust };
}

/**
 * PGD fine-tuning (Madry et al.) with BatchNorm frozen in inference mode, as the correction keeps
 * it: each batch of training images is replaced by its PGD examples against the current weights
 * (the X̃ attack of the preset) and Adam takes one step on their cross-entropy, until the budget
 * is spent (a batch starts only if the slowest one so far still fits).
 */
async function pgdFinetune(model: LayersModel, images: Float32Array, labels: Uint8Array, budgetMs: number, lr: number, normalization: LoadedModel['normalization']) {
  const n = labels.length;
  const size = 32 * 32 * 3;
  const batchSize = 64;
  const attack = CIFAR10_PRESET.options.attack!;
  const optimizer = tf.train.adam(lr);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const random = new Random(7);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const started = Date.now();
  let batches = 0;
  let examples = 0;
  let slowest = 0;
  outer: for (;;) {
    random.shuffle(order);
    for (let start = 0; start < n; start += batchSize) {
      if (batches > 0 && Date.now() - started + slowest > budgetMs) break outer;
      const t0 = Date.now();
      const count = Math.min(batchSize, n - start);
      const x = new Float32Array(count * size);
      const y = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const k = order[start + i]!;
        x.set(images.subarray(k * size, (k + 1) * size), i * size);
        y[i] = labels[k]!;
      }
      const adv = await pgd(model, x, y, {
        eps: attack.eps!,
        steps: attack.steps!,
        stepSize: attack.stepSize!,
        randomStart: true,
        seed: 1 + batches,
        ...(normalization ? { normalization } : {}),
      });
      tf.tidy(() => {
        const xs = tf.tensor4d(adv, [count, 32, 32, 3]);
        const onehot = tf.oneHot(tf.tensor1d(y, 'int32'), 10);
        optimizer.minimize(() => tf.losses.softmaxCrossEntropy(onehot, model.apply(xs, { training: false }) as tf.Tensor2D) as tf.Scalar, false, variables);
      });
      batches++;
      examples += count;
      slowest = Math.max(slowest, Date.now() - t0);
    }
  }
  optimizer.dispose();
  return { batches, epochs: examples / n, trainMs: Date.now() - started };
}

/**
 * --probe: the facts behind the diagnosis, printed (nothing written): BatchNorm in inference mode in
 * both the tfjs forward pass and the gradient engine (the same clean loss), the logit scale, the
 * cost of the clean-loss passes, and the margins of the X̃ candidates under each X̃ recipe.
 */
async function probe(): Promise<void> {
  const loaded = await loadModel(modelFile, { arch: 'resnet8' });
  const train = await loadDataset('cifar10', 'train');
  const perm = shuffleIndices(train.count, 1);
  const clean = subset(train, perm.subarray(0, 500));
  const x = normalize(clean.images, loaded.normalization!, 3);
  let t = Date.now();
  const logits = predictLogits(loaded.model, x);
  const forwardMs = Date.now() - t;
  const view = new ParameterView(loaded.model);
  t = Date.now();
  const { loss } = await cleanLossGradient(loaded.model, view, x, clean.labels);
  const gradientMs = Date.now() - t;
  const margins = Array.from(marginsFromLogits(logits, clean.labels, 10)).sort((a, b) => a - b);
  let square = 0;
  for (const v of logits) square += v * v;
  const q = (p: number) => margins[Math.floor(p * (margins.length - 1))]!.toFixed(2);
  console.log(`parameters moved by 'all': ${view.size} (BatchNorm: ${view.entries.filter((e) => e.name === 'gamma' || e.name === 'beta').reduce((a, e) => a + e.size, 0)} γ/β; running statistics are not trainable)`);
  console.log(`clean loss on the 500-image clean subset: tfjs predict ${crossEntropyFromLogits(logits, clean.labels, 10).toFixed(6)}, gradient engine ${loss.toFixed(6)}`);
  console.log(`logits: rms ${Math.sqrt(square / logits.length).toFixed(2)}; clean margin f_y − max f_j quantiles 5/25/50/75/95 %: ${[0.05, 0.25, 0.5, 0.75, 0.95].map(q).join(' / ')}`);
  console.log(`500 clean images: forward ${forwardMs} ms, loss gradient ${gradientMs} ms (load ${os.loadavg()[0]!.toFixed(1)})`);
  const slice = subset(train, perm.subarray(500, 700));
  const recipes: Array<[string, number, number, number, boolean]> = [
    ['ε 0.1 (generic), all candidates', 0.1, 40, 0.01, false],
    ['ε 2/255, all candidates', 2 / 255, 10, 0.5 / 255, false],
    ['ε 2/255, correctly classified candidates', 2 / 255, 10, 0.5 / 255, true],
  ];
  for (const [what, eps, steps, stepSize, correctOnly] of recipes) {
    const source = correctOnly ? await correctlyClassified(loaded, slice) : slice;
    const set = await generateAdversarialSet(loaded, source, { perClass: 1, attack: { name: 'pgd', eps, steps, stepSize, randomStart: true, restarts: 1 }, seed: 1001 });
    const sources = subset(source, set.sourceIndex);
    const wrongClean = Array.from(marginsFromLogits(predictLogits(loaded.model, normalize(sources.images, loaded.normalization!, 3)), sources.labels, 10)).filter((m) => m < 0).length;
    console.log(`X̃ margins, ${what} (${source.count} candidates): ${Array.from(set.margins, (m) => m.toFixed(1)).join(' ')}; ${wrongClean} of ${set.dataset.count} misclassified already clean`);
  }
}

// ---- --front NAME: one correction in-process, the answer of each ω evaluated --------------------

/** One ω answer of a front run (several ω may share one answer). */
interface FrontAnswer {
  omegas: number[];
  id: number;
  /** Segment parameter of the answer (1 = the least-violation point w*, or a pool member). */
  t: number;
  distance: number;
  cleanLoss: number;
  violation: number;
  clean: number;
  /** Accuracy under each attack at ε 2/255 on the first pgdN test images. */
  attacks: Record<string, number>;
  /** Per-image worst case over clean and every attack at 2/255 (first pgdN). */
  worst: number;
  /** Worst case of FGSM and PGD-20 at 8/255 (first pgdN). */
  worst8: number;
}

interface FrontRecord {
  name: string;
  command: string;
  evalN: number;
  pgdN: number;
  attacks: string[];
  /** ω the iterates were steered with (the run's own option). */
  runOmega: number;
  runS: number;
  loopS: number;
  cpuS: number;
  iterations: number;
  stops: string[];
  eta: number;
  adversarial: string;
  answers: FrontAnswer[];
  load: number;
  date: string;
  commit: string;
}

const frontFile = path.join(packageRoot, 'docs', 'results-cifar10-front.json');
const FRONT_ATTACKS = arg('attacks', 'fgsm,pgd,apgd-ce').split(',');

/** The attacks of the front evaluation at ε (pixel units): PGD-20 with step ε/4 and a random start, APGD at its defaults. */
function frontAttack(name: string, eps: number): AttackSpec {
  const [kind, extra] = name.split(':');
  if (kind === 'fgsm') return { name: 'fgsm', eps };
  if (kind === 'pgd') return { name: 'pgd', eps, steps: 20, stepSize: eps / 4, randomStart: true, restarts: 1 };
  if (kind === 'apgd-ce') return { name: 'apgd-ce', eps };
  if (kind === 'apgd-t') return { name: 'apgd-t', eps, ...(extra ? { targets: Number(extra) } : {}) };
  throw new RangeError(`unknown attack '${name}' (fgsm, pgd, apgd-ce, apgd-t[:targets])`);
}

async function frontMetrics(model: LoadedModel, test: ImageDataset): Promise<Pick<FrontAnswer, 'clean' | 'attacks' | 'worst' | 'worst8'>> {
  const clean = await evaluate(model, takeFirst(test, evalN), { attacks: [], seed: 1 });
  const strong = await evaluate(model, takeFirst(test, pgdN), { attacks: FRONT_ATTACKS.map((a) => frontAttack(a, 2 / 255)), seed: 1 });
  const wide = await evaluate(model, takeFirst(test, pgdN), { attacks: ['fgsm', 'pgd'].map((a) => frontAttack(a, 8 / 255)), seed: 1 });
  const attacks: Record<string, number> = {};
  FRONT_ATTACKS.forEach((a, i) => (attacks[a] = strong.attacks[i]!.accuracy));
  return { clean: clean.clean.accuracy, attacks, worst: strong.worstCase.accuracy, worst8: wide.worstCase.accuracy };
}

/** The run settings of configuration `name`, parsed by the flags and preset code of `advcorrect correct`. */
function frontSettings(name: string, out: string): CorrectionRunSettings {
  const cmd = new Command('correct').exitOverride();
  addModelOptions(cmd, false).option('--dataset <name>', 'data set', parseDatasetName, 'mnist').option('--out <dir>', 'output directory');
  addCorrectionOptions(cmd);
  cmd.parse(['--model', modelFile, '--arch', 'resnet8', '--dataset', 'cifar10', ...CONFIGS[name]!.flags, '--no-eval', '--out', out], { from: 'user' });
  const flags = cmd.opts() as Record<string, unknown>;
  applyDatasetPreset(cmd, flags, 'cifar10');
  return settingsFromFlags(flags, { arch: 'resnet8', model: modelFile, out, dataset: 'cifar10' });
}

async function loadFront(): Promise<FrontRecord[]> {
  return existsSync(frontFile) ? (JSON.parse(await fs.readFile(frontFile, 'utf8')) as FrontRecord[]) : [];
}

async function runFront(name: string, omegas: number[], test: ImageDataset): Promise<void> {
  if (!CONFIGS[name]) throw new RangeError(`unknown run '${name}' (one of ${Object.keys(CONFIGS).join(', ')})`);
  const records = await loadFront();
  if (!records.some((r) => r.name === 'base model' && r.evalN === evalN && r.pgdN === pgdN && r.attacks.join() === FRONT_ATTACKS.join())) {
    process.stderr.write('base model (front evaluation) …\n');
    const base = await loadModel(modelFile, { arch: 'resnet8' });
    const m = await frontMetrics(base, test);
    base.model.dispose();
    records.push({ name: 'base model', command: 'node dist/bench/cifar10.js --front NAME (first run)', evalN, pgdN, attacks: FRONT_ATTACKS, runOmega: Number.NaN, runS: 0, loopS: 0, cpuS: 0, iterations: 0, stops: [], eta: Number.NaN, adversarial: '', answers: [{ omegas: [], id: 0, t: 0, distance: 0, cleanLoss: Number.NaN, violation: Number.NaN, ...m }], load: os.loadavg()[0]!, date: new Date().toISOString(), commit: gitCommit() });
    await fs.writeFile(frontFile, `${JSON.stringify(records, null, 1)}\n`);
  }
  const settings = frontSettings(name, path.join(outRoot, `front-${name}`));
  process.stderr.write(`front ${name}: ${shownCommand(name)} (ω answers ${omegas.join(', ')}) …\n`);
  const load0 = os.loadavg()[0]!;
  const answers: FrontAnswer[] = [];
  let loopS = 0;
  let cpuS = 0;
  let eta = Number.NaN;
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  let runS = 0;
  const io: RunIo = {
    quiet: false,
    resume: false,
    onOutput: async (output, loaded, testSet) => {
      runS = (Date.now() - started) / 1000;
      const cpu = process.cpuUsage(cpu0);
      cpuS = (cpu.user + cpu.system) / 1e6;
      loopS = output.result.totalTimeMs / 1000;
      eta = output.result.eta;
      const view = new ParameterView(output.model, output.result.parameters.layers);
      for (const omega of omegas) {
        const chosen = chooseAnswer(output.front, omega, eta).chosen;
        const known = answers.find((a) => a.id === chosen.id);
        if (known) {
          known.omegas.push(omega);
          continue;
        }
        view.write(chosen.w);
        const m = await frontMetrics({ ...loaded, model: output.model }, testSet);
        answers.push({ omegas: [omega], id: chosen.id, t: chosen.segment ? chosen.alpha : 1, distance: chosen.distance, cleanLoss: chosen.cleanLoss, violation: chosen.violation, ...m });
        process.stderr.write(`  ω ${omega}: #${chosen.id} clean ${pct(m.clean)}, worst 2/255 ${pct(m.worst)} (${FRONT_ATTACKS.map((a) => `${a} ${pct(m.attacks[a])}`).join(', ')}), worst 8/255 ${pct(m.worst8)}\n`);
      }
      view.write(output.front.find((p) => p.id === output.result.chosen.id)!.w);
    },
  };
  const doc = await runCorrection(settings, io);
  const record: FrontRecord = {
    name,
    command: `node dist/bench/cifar10.js --front ${name} --omegas ${omegas.join(',')} --eval-n ${evalN} --pgd-n ${pgdN} --attacks ${FRONT_ATTACKS.join(',')}  # = ${shownCommand(name)}`,
    evalN,
    pgdN,
    attacks: FRONT_ATTACKS,
    runOmega: settings.options.omega,
    runS,
    loopS,
    cpuS,
    iterations: doc.iterations.length,
    stops: doc.rounds.map((r) => r.stopReason),
    eta,
    adversarial: `${doc.adversarial.correctBefore} → ${doc.adversarial.correctAfter} / ${doc.adversarial.count}`,
    answers,
    load: (load0 + os.loadavg()[0]!) / 2,
    date: new Date().toISOString(),
    commit: gitCommit(),
  };
  const kept = (await loadFront()).filter((r) => r.name !== name);
  kept.push(record);
  await fs.writeFile(frontFile, `${JSON.stringify(kept, null, 1)}\n`);
  await render(await loadRows());
}

async function main(): Promise<void> {
  if (!existsSync(modelFile)) {
    console.log(`skipped: ${modelFile} is absent (the authors' weights are needed)`);
    return;
  }
  if (process.argv.includes('--probe')) {
    await initBackend();
    await probe();
    return;
  }
  if (process.argv.includes('--render')) {
    await render(await loadRows());
    return;
  }
  await initBackend();
  await fs.mkdir(outRoot, { recursive: true });
  const test = await loadDataset('cifar10', 'test');
  const rows = await loadRows();
  if ((!rows.some((r) => r.kind === 'base') && !process.argv.includes('--finetune')) || process.argv.includes('--base')) {
    process.stderr.write('base model …\n');
    const base = await loadModel(modelFile, { arch: 'resnet8' });
    await addRow({ name: 'base model', kind: 'base', command: 'node dist/bench/cifar10.js --base', metrics: await evaluateModel(base, test), load: os.loadavg()[0]!, date: new Date().toISOString() });
    base.model.dispose();
  }
  const fronts = arg('front', '').split(',').filter(Boolean);
  for (const name of fronts) await runFront(name, arg('omegas', '0,0.25,0.5,0.75,1').split(',').map(Number), test);
  const names = arg('runs', '').split(',').filter(Boolean);
  const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');
  for (const name of names) {
    process.stderr.write(`${shownCommand(name)} …\n`);
    const load = os.loadavg()[0]!;
    const { stdout } = await run(process.execPath, [cli, ...commandOf(name)], { maxBuffer: 1 << 30 });
    const doc = JSON.parse(stdout) as {
      wallTimeMs: number;
      totalTimeMs: number;
      distance: number;
      iterations: unknown[];
      rounds: Array<{ stopReason: string }>;
      adversarial: { count: number; correctBefore: number; correctAfter: number };
      cleanLossBefore: number;
      cleanLossAfter: number;
      eta: number;
    };
    const corrected = await loadModel(path.join(outRoot, name, 'model', 'model.json'));
    await addRow({
      name,
      kind: 'correction',
      command: shownCommand(name),
      metrics: await evaluateModel(corrected, test),
      runS: doc.wallTimeMs / 1000,
      loopS: doc.totalTimeMs / 1000,
      distance: doc.distance,
      iterations: doc.iterations.length,
      stops: doc.rounds.map((r) => r.stopReason),
      adversarial: `${doc.adversarial.correctBefore} → ${doc.adversarial.correctAfter} / ${doc.adversarial.count}`,
      cleanLoss: [doc.cleanLossBefore, doc.cleanLossAfter, doc.eta],
      load: (load + os.loadavg()[0]!) / 2,
      date: new Date().toISOString(),
    });
    corrected.model.dispose();
  }

  const finetune = arg('finetune', '');
  if (finetune) {
    // The same training images as the correction `finetune` (its run.json): the clean subset and
    // every round's X̃ candidate slice of the seeded permutation; the same wall time.
    const settings = JSON.parse(await fs.readFile(path.join(outRoot, finetune, 'run.json'), 'utf8')) as {
      options: { cleanSize: number; rounds: number; seed: number };
      advCandidates: number;
      advOffset: number;
    };
    // The budget: the correction's whole wall time (X̃ included), or --budget-s when given.
    const budgetS = arg('budget-s', '');
    const result = budgetS ? { wallTimeMs: 1000 * Number(budgetS) } : (JSON.parse(await fs.readFile(path.join(outRoot, finetune, 'result.json'), 'utf8')) as { wallTimeMs: number });
    const train = await loadDataset('cifar10', 'train');
    const o = settings.options;
    const perm = shuffleIndices(train.count, o.seed);
    const used = Array.from(perm.subarray(0, o.cleanSize));
    for (let r = 1; r <= o.rounds; r++) {
      const start = o.cleanSize + settings.advOffset + (r - 1) * settings.advCandidates;
      used.push(...perm.subarray(start, start + settings.advCandidates));
    }
    const data = subset(train, used);
    const lr = Number(arg('lr', '1e-4'));
    const loaded = await loadModel(modelFile, { arch: 'resnet8' });
    process.stderr.write(`PGD fine-tuning on ${data.count} images for ${(result.wallTimeMs / 1000).toFixed(0)} s (lr ${lr}) …\n`);
    const load = os.loadavg()[0]!;
    const info = await pgdFinetune(loaded.model, normalize(data.images, loaded.normalization!, 3), data.labels, result.wallTimeMs, lr, loaded.normalization);
    await addRow({
      name: finetune,
      kind: 'pgd-finetune',
      command: `node dist/bench/cifar10.js --finetune ${finetune} --lr ${lr}${budgetS ? ` --budget-s ${budgetS}` : ''}`,
      metrics: await evaluateModel(loaded, test),
      runS: info.trainMs / 1000,
      batches: info.batches,
      epochs: info.epochs,
      lr,
      trainImages: data.count,
      load: (load + os.loadavg()[0]!) / 2,
      date: new Date().toISOString(),
    });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 1;
});
