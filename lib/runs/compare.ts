/**
 * `compareRuns`: reads the result.json of `correct` and `baseline` runs, groups them by method and
 * settings (several draws of X̃ = the same method and settings with another seed or offset),
 * and writes compare.json and report.html. Runs evaluated on different test images or with
 * different attack settings are refused: their numbers do not compare.
 */
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import { isBaselineDocument, renderCompareReport, type CompareDocument, type CompareGroup, type RunDocument, type Stat } from '../report/index.js';
import { methodTimeMs, readRunDocument } from './documents.js';

/** The evaluation of a run, as far as it decides whether runs compare. */
function evaluationOf(doc: RunDocument): CompareDocument['evaluation'] & { labels: string; attackSettings: unknown[] } {
  const e = doc.evaluation;
  const attacks =
    e.attacks ??
    [
      { name: 'fgsm', label: 'fgsm', eps: doc.before.fgsm.eps, n: e.n },
      ...(e.pgdN > 0 ? [{ name: 'pgd', label: `pgd-${doc.before.pgd.steps}`, eps: doc.before.pgd.eps, n: e.pgdN, steps: doc.before.pgd.steps, ...(doc.before.pgd.stepSize !== undefined ? { stepSize: doc.before.pgd.stepSize } : {}) }] : []),
    ];
  const dataset = e.dataset ?? (typeof doc.settings.dataset === 'string' ? doc.settings.dataset : undefined);
  return {
    ...(dataset !== undefined ? { dataset } : {}),
    split: e.split,
    n: e.n,
    pgdN: e.pgdN,
    clip: e.clip,
    labels: e.labels,
    attacks: attacks.map((a) => ({ label: a.label, eps: a.eps, n: a.n })),
    attackSettings: attacks,
    worstCase: e.worstCase ?? doc.after.worstCase ?? { label: 'worst case', n: Math.min(e.n, e.pgdN || e.n) },
  };
}

function describeDifference(a: ReturnType<typeof evaluationOf>, b: ReturnType<typeof evaluationOf>): string {
  if (a.dataset !== b.dataset || a.split !== b.split) return `data ${a.dataset} ${a.split} vs ${b.dataset} ${b.split}`;
  if (a.n !== b.n || a.pgdN !== b.pgdN) return `test images: clean/FGSM on the first ${a.n} and iterative attacks on ${a.pgdN} vs ${b.n} and ${b.pgdN}`;
  if (a.clip !== b.clip || a.labels !== b.labels) return 'clipping or attack labels';
  return `attacks ${a.attacks.map((x) => `${x.label}@${x.eps}`).join(',')} vs ${b.attacks.map((x) => `${x.label}@${x.eps}`).join(',')} (or their settings)`;
}

function stat(values: number[]): Stat {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { mean: Number.NaN, sd: Number.NaN, n: 0 };
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, sd, n: v.length };
}

/** What makes runs the same method: for `correct`, its options without the seed (and the X̃ slice size). */
function methodOf(doc: RunDocument): { method: string; settings: Record<string, unknown>; label: string } {
  if (isBaselineDocument(doc)) {
    const m = doc.methodSettings;
    const detail =
      doc.method === 'bias-shift'
        ? m.target === 'match-clean'
          ? 'matched clean'
          : `clean ${m.targetClean}`
        : doc.method === 'pgd-finetune'
          ? m.budget === 'match-time'
            ? 'matched time'
            : `${m.budgetS} s`
          : `lr ${m.learningRate}`;
    return { method: doc.method, settings: m, label: `${doc.method} (${detail})` };
  }
  const { seed: _seed, ...options } = doc.options as unknown as Record<string, unknown>;
  const settings = { ...options, advCandidates: doc.settings.advCandidates, advLabels: doc.settings.advLabels };
  const o = doc.options;
  return { method: 'correct', settings, label: `correct (|X̃| ${o.nAdversarial}, ω ${o.omega}${o.rounds > 1 ? `, ${o.rounds} rounds` : ''})` };
}

/** Reads, checks and groups the runs; a RangeError when they do not compare. */
export async function buildComparison(dirs: string[]): Promise<CompareDocument> {
  if (dirs.length === 0) throw new TypeError('compare needs at least one run directory');
  const docs: Array<{ dir: string; doc: RunDocument }> = [];
  for (const dir of dirs) docs.push({ dir, doc: await readRunDocument(dir, 'compare') });
  const first = evaluationOf(docs[0]!.doc);
  const key = (e: ReturnType<typeof evaluationOf>) => JSON.stringify({ ...e, attacks: undefined, worstCase: undefined });
  for (const { dir, doc } of docs.slice(1)) {
    const e = evaluationOf(doc);
    if (key(e) !== key(first)) {
      throw new RangeError(`cannot compare ${dir} with ${docs[0]!.dir}: they were evaluated differently (${describeDifference(first, e)})`);
    }
  }
  for (const { dir, doc } of docs) {
    if (!Number.isFinite(doc.after.clean.accuracy)) throw new RangeError(`cannot compare ${dir}: it was run without evaluation (--no-eval)`);
  }
  const models = new Set(docs.map(({ doc }) => String(doc.settings.model)));
  const groups = new Map<string, { label: string; method: string; model: string; settings: Record<string, unknown>; members: Array<{ dir: string; doc: RunDocument }> }>();
  // The input model(s): their "before" metrics, one draw per distinct evaluation.
  const inputs = new Map<string, Map<string, { dir: string; doc: RunDocument }>>();
  for (const item of docs) {
    const model = String(item.doc.settings.model);
    const m = methodOf(item.doc);
    const suffix = models.size > 1 ? ` — ${path.basename(model)}` : '';
    const k = JSON.stringify([m.method, model, m.settings]);
    if (!groups.has(k)) groups.set(k, { label: `${m.label}${suffix}`, method: m.method, model, settings: m.settings, members: [] });
    groups.get(k)!.members.push(item);
    if (!inputs.has(model)) inputs.set(model, new Map());
    inputs.get(model)!.set(JSON.stringify(item.doc.before), item);
  }
  const attackLabels = first.attacks.map((a) => a.label);
  const summarize = (label: string, method: string, model: string, settings: Record<string, unknown>, members: Array<{ dir: string; doc: RunDocument }>, side: 'before' | 'after'): CompareGroup => {
    const metrics = members.map(({ doc }) => doc[side]);
    const attackOf = (m: (typeof metrics)[number], l: string) => {
      const found = m.attacks?.find((a) => a.label === l);
      if (found) return found.accuracy;
      if (l === 'fgsm') return m.fgsm.accuracy;
      if (l.startsWith('pgd')) return m.pgd.accuracy;
      return Number.NaN;
    };
    return {
      label,
      method,
      model,
      methodSettings: settings,
      runs: members.map((x) => x.dir),
      clean: stat(metrics.map((m) => m.clean.accuracy)),
      attacks: Object.fromEntries(attackLabels.map((l) => [l, stat(metrics.map((m) => attackOf(m, l)))])),
      worstCase: stat(metrics.map((m) => m.worstCase?.accuracy ?? Number.NaN)),
      distance: side === 'before' ? stat(members.map(() => 0)) : stat(members.map(({ doc }) => doc.distance)),
      timeS: side === 'before' ? stat(members.map(() => 0)) : stat(members.map(({ doc }) => methodTimeMs(doc) / 1000)),
    };
  };
  const out: CompareGroup[] = [];
  for (const [model, list] of inputs) {
    out.push(summarize(`input model${models.size > 1 ? ` — ${path.basename(model)}` : ''}`, 'input', model, {}, [...list.values()], 'before'));
  }
  for (const g of groups.values()) out.push(summarize(g.label, g.method, g.model, g.settings, g.members, 'after'));
  const { labels: _l, attackSettings: _s, ...evaluation } = first;
  return { format: 'advcorrect-compare', formatVersion: 1, createdAt: new Date().toISOString(), evaluation, groups: out };
}

/** Compares the runs in `dirs` and writes compare.json and report.html into `out`. */
export async function compareRuns(dirs: string[], out: string): Promise<CompareDocument> {
  const doc = await buildComparison(dirs);
  const json = `${JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
  await writeFileAtomic(path.join(out, 'compare.json'), json);
  await writeFileAtomic(path.join(out, 'report.html'), renderCompareReport(doc));
  return doc;
}
