/** `advcorrect compare`: one table and one plot over `correct` and `baseline` runs (lib/runs/compare.ts). */
import path from 'node:path';
import type { Command } from 'commander';
import type { CompareDocument } from '../report/index.js';
import { compareRuns } from '../runs/index.js';
import { printJson } from './common.js';

function cell(s: { mean: number; sd: number; n: number }, scale: number, digits: number): string {
  if (!Number.isFinite(s.mean)) return '–';
  return s.n > 1 ? `${(scale * s.mean).toFixed(digits)} ± ${(scale * s.sd).toFixed(digits)}` : (scale * s.mean).toFixed(digits);
}

/** The comparison as a text table (accuracies in %). */
export function compareText(doc: CompareDocument, out: string): string {
  const attacks = doc.evaluation.attacks.map((a) => a.label);
  const head = ['method', 'draws', 'clean', ...attacks, 'worst case', '‖w − w₀‖', 'time s'];
  const rows = doc.groups.map((g) => [g.label, String(g.runs.length), cell(g.clean, 100, 2), ...attacks.map((l) => (g.attacks[l] ? cell(g.attacks[l]!, 100, 2) : '–')), cell(g.worstCase, 100, 2), cell(g.distance, 1, 3), cell(g.timeS, 1, 1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const e = doc.evaluation;
  return [
    `${e.dataset ?? ''} ${e.split}: clean on ${e.n} images, ${e.attacks.map((a) => `${a.label} ε ${a.eps} on ${a.n}`).join(', ')}; worst case = ${e.worstCase.label} on ${e.worstCase.n}; % (mean ± sd over draws)`,
    fmt(head),
    ...rows.map(fmt),
    `outputs in ${out}: compare.json, report.html`,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('compare')
    .description(
      'Compare `correct` and `baseline` runs: reads DIR/result.json of each, groups draws of the same method and settings, and writes one ' +
        'table (clean, each attack, worst case, ‖w − w₀‖, time; mean ± sd over draws) and one plot (clean against worst-case accuracy) ' +
        'into --out as compare.json and report.html. Runs evaluated on different test images or attacks are refused.',
    )
    .argument('<dirs...>', 'run directories (each holding a result.json)')
    .option('--out <dir>', 'output directory')
    .option('--json', 'print compare.json on stdout')
    .action(async (dirs: string[], flags: Record<string, unknown>) => {
      if (typeof flags.out !== 'string') throw new TypeError('--out is required');
      const out = path.resolve(flags.out);
      const doc = await compareRuns(dirs.map((d) => path.resolve(d)), out);
      if (flags.json) printJson(doc);
      else process.stdout.write(`${compareText(doc, out)}\n`);
    });
}
