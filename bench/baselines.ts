/**
 * The baselines study of docs/baselines.md: `advcorrect correct` (its defaults) beside the three
 * baselines on the same data — the conv1 bias shift matched to the correction's clean accuracy,
 * fine-tuning on the same X̃, and PGD fine-tuning on the same training images within the
 * correction's wall time — over several draws of X̃, under the worst case of the strongest attacks.
 *
 *   npm run bench:baselines -- [--models cnnlight,cnn,resnet8] [--draws 4] [--cifar-draws 1]
 *                              [--eval-n 10000] [--pgd-n 1000] [--cifar-eval-n 1000] [--cifar-pgd-n 200]
 *                              [--draw-step 2000] [--out DIR] [--render]
 *
 * Every run is exactly the `advcorrect …` command printed in the page (run as a child process);
 * result.json/report.html of each stay in --out (default /tmp/advcorrect-baselines), and a run
 * whose result.json exists is not run again, so an interrupted study continues where it stopped.
 * `--render` only rewrites the page from the runs in --out.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../lib/native.js';
import { buildComparison } from '../lib/runs/index.js';
import { compareSvg, type CompareDocument, type CompareGroup, type Stat } from '../lib/report/index.js';

interface ModelCase {
  key: string;
  title: string;
  file: string;
  arch: string;
  dataset: string;
  /** Flags every run of this model shares (evaluation). */
  evalFlags: string[];
  draws: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const sharedModels = path.resolve(packageRoot, '..', 'shared', 'models');
const outRoot = path.resolve(arg('out', path.join(os.tmpdir(), 'advcorrect-baselines')));
const renderOnly = process.argv.includes('--render');
const draws = Number(arg('draws', '4'));
/** Offset between draws: 1,000 candidates × the default 2 rounds, so that no two draws share candidates. */
const drawStep = Number(arg('draw-step', '2000'));
const cifarDraws = Number(arg('cifar-draws', '1'));
const evalN = arg('eval-n', '10000');
const pgdN = arg('pgd-n', '1000');
const cifarEvalN = arg('cifar-eval-n', '1000');
const cifarPgdN = arg('cifar-pgd-n', '200');
const wanted = arg('models', 'cnnlight,cnn,resnet8').split(',');
const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');

const CASES: ModelCase[] = [
  { key: 'cnnlight', title: 'MNIST CNNLight (authors\u2019 weights), ε 0.1', file: 'mnist_ConvNetLight_norm01.npz', arch: 'cnnlight', dataset: 'mnist', evalFlags: ['--eval-n', evalN, '--pgd-n', pgdN, '--sweep', 'none'], draws },
  { key: 'cnn', title: 'MNIST CNN (authors\u2019 weights), ε 0.1', file: 'mnist_ConvNet_norm01.npz', arch: 'cnn', dataset: 'mnist', evalFlags: ['--eval-n', evalN, '--pgd-n', pgdN, '--sweep', 'none'], draws },
  {
    key: 'resnet8',
    title: 'CIFAR-10 ResNet8 (authors\u2019 weights), ε 2/255 (the CIFAR-10 preset of correct and baseline)',
    file: 'cifar10_ResNet8_normDataAug.npz',
    arch: 'resnet8',
    dataset: 'cifar10',
    evalFlags: ['--eval-n', cifarEvalN, '--pgd-n', cifarPgdN, '--sweep', 'none'],
    draws: cifarDraws,
  },
];

/** One run of the study: its directory and the exact command line (without `advcorrect`). */
interface Run {
  dir: string;
  args: string[];
}

function runsOf(c: ModelCase): Run[] {
  const model = path.join(sharedModels, c.file);
  const base = ['--model', model, '--arch', c.arch, '--dataset', c.dataset, ...c.evalFlags];
  const runs: Run[] = [];
  for (let d = 0; d < c.draws; d++) {
    const draw = ['--adv-offset', String(drawStep * d)];
    const dir = (name: string) => path.join(outRoot, c.key, `${name}-d${d}`);
    const corrected = dir('correct');
    runs.push({ dir: corrected, args: ['correct', ...base, ...draw, '--out', corrected] });
    runs.push({ dir: dir('bias-shift'), args: ['baseline', '--method', 'bias-shift', ...base, ...draw, '--match-clean', corrected, '--out', dir('bias-shift')] });
    runs.push({ dir: dir('finetune'), args: ['baseline', '--method', 'finetune', ...base, ...draw, '--out', dir('finetune')] });
    runs.push({ dir: dir('pgd-finetune'), args: ['baseline', '--method', 'pgd-finetune', ...base, ...draw, '--match-time', corrected, '--out', dir('pgd-finetune')] });
  }
  return runs;
}

function commandText(args: string[]): string {
  return `advcorrect ${args.map((a) => (a.startsWith(sharedModels) ? path.join('../shared/models', path.basename(a)) : a.startsWith(outRoot) ? path.relative(outRoot, a) : a)).join(' ')}`;
}

function runCli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args, '--quiet'], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${commandText(args)} ended with ${signal ?? `exit code ${code}`}`))));
  });
}

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(1) : '–');
const statPct = (s: Stat | undefined) => (!s || !Number.isFinite(s.mean) ? '–' : s.n > 1 ? `${pct(s.mean)} ± ${pct(s.sd)}` : pct(s.mean));
const statNum = (s: Stat, digits: number) => (!Number.isFinite(s.mean) ? '–' : s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}` : s.mean.toFixed(digits));

function table(doc: CompareDocument): string[] {
  const labels = doc.evaluation.attacks.map((a) => a.label);
  const head = ['method', 'draws', `clean (n=${doc.evaluation.n})`, ...doc.evaluation.attacks.map((a) => `${a.label} (n=${a.n})`), `**${doc.evaluation.worstCase.label}** (n=${doc.evaluation.worstCase.n})`, '‖w − w₀‖', 'time s'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  const row = (g: CompareGroup) =>
    `| ${g.label.replace(/\|/g, '\\|')} | ${g.runs.length} | ${statPct(g.clean)} | ${labels.map((l) => statPct(g.attacks[l])).join(' | ')} | **${statPct(g.worstCase)}** | ${g.method === 'input' ? '0' : statNum(g.distance, 3)} | ${g.method === 'input' ? '–' : statNum(g.timeS, 1)} |`;
  for (const g of doc.groups) lines.push(row(g));
  return lines;
}

/** Plain-words reading of one model's table: where the correction stands against each baseline. */
function verdict(doc: CompareDocument): string[] {
  const correct = doc.groups.find((g) => g.method === 'correct');
  const input = doc.groups.find((g) => g.method === 'input');
  if (!correct || !input) return [];
  const out: string[] = [];
  const drop = 100 * (input.clean.mean - correct.clean.mean);
  out.push(`- correct: worst case ${pct(input.worstCase.mean)} → ${pct(correct.worstCase.mean)} % (${(100 * (correct.worstCase.mean - input.worstCase.mean)).toFixed(1)} pp), clean drop ${drop.toFixed(1)} pp, ${correct.runs.length > 1 ? `mean of ${correct.runs.length} draws` : 'one draw'}.`);
  for (const g of doc.groups) {
    if (g.method === 'input' || g.method === 'correct') continue;
    const diff = 100 * (correct.worstCase.mean - g.worstCase.mean);
    const signed = `${diff >= 0 ? '+' : ''}${diff.toFixed(1)} pp`;
    const clean = `at clean ${pct(correct.clean.mean)} vs ${pct(g.clean.mean)} %`;
    if (correct.runs.length < 2 || g.runs.length < 2) {
      out.push(`- against ${g.label}: ${signed} on the worst case, ${clean} (one draw: no spread to judge the difference by).`);
      continue;
    }
    const spread = 100 * Math.hypot(correct.worstCase.sd, g.worstCase.sd);
    const word = Math.abs(diff) <= spread ? 'within the spread of' : diff > 0 ? 'ahead of' : 'behind';
    out.push(`- against ${g.label}: correct is ${word} it on the worst case (${signed}, combined sd ${spread.toFixed(1)}), ${clean}.`);
  }
  return out;
}

async function render(cases: ModelCase[]): Promise<void> {
  const lines: string[] = [];
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  lines.push('# Baselines: what adversary correction adds');
  lines.push('');
  lines.push('Generated by `npm run bench:baselines` (bench/baselines.ts); the commands, methods and their searches are described in [baseline-methods.md](baseline-methods.md).');
  lines.push(`Machine: ${machine}. Wall times are of the method alone (drawing X̃ and correcting, or training), without evaluation, and depend on what else the machine ran.`);
  lines.push('');
  lines.push('Each model is corrected with `advcorrect correct` at its defaults, and each baseline runs on exactly the data that correction used (same seed, clean subset and X̃ candidates; `--adv-offset` 0, 2000, 4000, … gives the draws: 1,000 candidates per round × 2 rounds, so no two draws share a candidate):');
  lines.push('- **bias-shift**: one constant subtracted from the first layer\u2019s biases (bn1\u2019s β for ResNet8), searched so that clean accuracy matches the correction\u2019s on the same test images (`--match-clean`);');
  lines.push('- **finetune**: plain fine-tuning on the same X̃ mixed with the same clean subset until X̃ is classified correctly;');
  lines.push('- **pgd-finetune**: PGD adversarial fine-tuning on the same training images (clean subset + candidate slice) for as long as the correction took (`--match-time`).');
  lines.push('');
  lines.push('The headline is the per-image worst case over every attack of the evaluation (an image counts only if it is classified correctly clean and under each attack). Figures are mean ± sample sd over the draws.');
  lines.push('');
  lines.push('Read with these in mind:');
  lines.push('- `correct` at its defaults runs 2 rounds (MNIST; 3 with the CIFAR-10 preset): it sees 10 examples per round, drawn from a fresh candidate slice against the model corrected so far. `finetune` sees the first round\u2019s X̃ only; `pgd-finetune` trains on the clean subset and the first candidate slice.');
  lines.push('- The time column is wall time. Each `pgd-finetune` budget is the wall time of the correction of the same draw, measured on the same machine under the same conditions; when the machine is shared with other jobs (as when this page was last generated) both are inflated alike, so the comparison stays fair but the absolute times say little about a quiet machine.');
  lines.push('- The bias shift is matched in clean accuracy on the same test images it is then evaluated on (it has one parameter, so this costs nothing in fairness and is the strictest match).');
  lines.push('');
  for (const c of cases) {
    const runs = runsOf(c).filter((r) => existsSync(path.join(r.dir, 'result.json')));
    lines.push(`## ${c.title}`);
    lines.push('');
    if (runs.length === 0) {
      lines.push('Not run yet.');
      lines.push('');
      continue;
    }
    const doc = await buildComparison(runs.map((r) => r.dir));
    lines.push(...table(doc));
    lines.push('');
    lines.push(...verdict(doc));
    lines.push('');
    const svgName = `baselines-${c.key}.svg`;
    await fs.writeFile(path.join(packageRoot, 'docs', svgName), compareSvg(doc, { standalone: true }));
    lines.push(`![clean against worst-case accuracy, ${c.key}](${svgName})`);
    lines.push('');
    lines.push('<details><summary>Commands of these runs</summary>');
    lines.push('');
    for (const r of runs) lines.push(`- \`${commandText(r.args)}\``);
    lines.push('');
    lines.push('</details>');
    lines.push('');
  }
  await fs.writeFile(path.join(packageRoot, 'docs', 'baselines.md'), `${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const cases = CASES.filter((c) => wanted.includes(c.key));
  const unknown = wanted.filter((k) => !CASES.some((c) => c.key === k));
  if (unknown.length) throw new RangeError(`unknown model ${unknown.join(', ')} (known: ${CASES.map((c) => c.key).join(', ')})`);
  if (!existsSync(sharedModels)) throw new Error(`the authors' models are not at ${sharedModels}`);
  if (!renderOnly) {
    for (const c of cases) {
      for (const r of runsOf(c)) {
        if (existsSync(path.join(r.dir, 'result.json'))) continue;
        const t0 = Date.now();
        process.stderr.write(`bench:baselines: ${commandText(r.args)}\n`);
        await runCli(r.args);
        process.stderr.write(`bench:baselines: done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
        await render(cases);
      }
    }
  }
  await render(cases);
  process.stderr.write(`bench:baselines: wrote docs/baselines.md (runs in ${outRoot})\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:baselines: ${(error as Error)?.message ?? String(error)}\n`);
  process.exitCode = 1;
});
