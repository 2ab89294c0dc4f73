/**
 * report.html: one self-contained page (inline CSS and SVG, pictures as data: URIs, no scripts,
 * no external URLs) rendered as a pure function of the result document.
 *
 * Every plotted point carries its numbers as data-* attributes (full precision), so a test or a
 * reader can check the plot against result.json.
 */
import { encodePng } from './png.js';
import { isBaselineDocument, type BaselineDocument, type ResultDocument, type RunDocument, type TestMetrics } from './result.js';
import { FRONT_STYLE, frontSection } from './front.js';
import { Axes, COLORS, FRAME, attr, escapeHtml, extent, fmt, legend, pct, short, svg, type Frame } from './plot.js';

export { escapeHtml, ticks } from './plot.js';

/** Pareto plot: every candidate, the final front (result.pool), the chosen point, w₀, and the loss level η. */
export function paretoSvg(result: ResultDocument): string {
  const all = result.candidates;
  const xs = all.map((c) => c.cleanLoss).concat(result.eta);
  const ys = all.map((c) => c.violation);
  const axes = new Axes(extent(xs), extent(ys.concat(0)));
  const poolIds = new Set(result.pool.map((p) => p.id));
  const parts = [axes.frame('clean loss L', `violation V (${result.options.violation})`)];
  const ex = axes.px(result.eta).toFixed(1);
  parts.push(`<line x1="${ex}" x2="${ex}" y1="${FRAME.top}" y2="${FRAME.height - FRAME.bottom}" class="eta" data-eta="${attr(result.eta)}"><title>η = ${fmt(result.eta, 4)}</title></line>`);
  const frontier = [...result.pool].sort((a, b) => a.cleanLoss - b.cleanLoss);
  if (frontier.length > 1) {
    parts.push(`<polyline class="front" points="${frontier.map((p) => `${axes.px(p.cleanLoss).toFixed(1)},${axes.py(p.violation).toFixed(1)}`).join(' ')}"/>`);
  }
  for (const c of all) {
    if (poolIds.has(c.id)) continue;
    parts.push(
      `<circle class="candidate" cx="${axes.px(c.cleanLoss).toFixed(1)}" cy="${axes.py(c.violation).toFixed(1)}" r="3" data-id="${c.id}" data-violation="${attr(c.violation)}" data-loss="${attr(c.cleanLoss)}"><title>#${c.id} round ${c.round} iter ${c.iteration} α ${c.alpha}: V ${fmt(c.violation)}, L ${fmt(c.cleanLoss, 4)}</title></circle>`,
    );
  }
  for (const c of result.pool) {
    const cls = c.id === 0 ? 'pool start' : 'pool';
    parts.push(
      `<circle class="${cls}" cx="${axes.px(c.cleanLoss).toFixed(1)}" cy="${axes.py(c.violation).toFixed(1)}" r="4.5" data-id="${c.id}" data-violation="${attr(c.violation)}" data-loss="${attr(c.cleanLoss)}"><title>front #${c.id}${c.id === 0 ? ' (w₀)' : ''}: V ${fmt(c.violation)}, L ${fmt(c.cleanLoss, 4)}, ‖w − w₀‖ ${fmt(c.distance)}</title></circle>`,
    );
  }
  const ch = result.chosen;
  parts.push(
    `<circle class="chosen" cx="${axes.px(ch.cleanLoss).toFixed(1)}" cy="${axes.py(ch.violation).toFixed(1)}" r="8" data-id="${ch.id}" data-violation="${attr(ch.violation)}" data-loss="${attr(ch.cleanLoss)}"><title>chosen #${ch.id}: V ${fmt(ch.violation)}, L ${fmt(ch.cleanLoss, 4)}</title></circle>`,
  );
  parts.push(legend([
    ['candidate', COLORS.candidate],
    ['Pareto pool', COLORS.pool],
    ['chosen', COLORS.chosen],
    ['η', COLORS.eta],
  ]));
  return svg('pareto', 'Candidates of the line searches: violation against clean loss', parts.join(''));
}

/** Violation and clean loss per inner iteration. */
export function convergenceSvg(result: ResultDocument): string {
  const it = result.iterations;
  const index = it.map((_, i) => i + 1);
  const f: Frame = { ...FRAME, height: 220 };
  const vAxes = new Axes(extent([0, ...index], 0.02), extent(it.map((r) => r.violation).concat(0, result.adversarial.violationBefore)), f);
  const lAxes = new Axes(vAxes.x, extent(it.map((r) => r.cleanLoss).concat(result.eta, result.cleanLossBefore)), f);
  const vLine = [`0,${result.adversarial.violationBefore}`, ...it.map((r, i) => `${i + 1},${r.violation}`)];
  const lLine = [`0,${result.cleanLossBefore}`, ...it.map((r, i) => `${i + 1},${r.cleanLoss}`)];
  const poly = (axes: Axes, pts: string[], cls: string) =>
    `<polyline class="${cls}" points="${pts
      .map((p) => p.split(',').map(Number))
      .map(([x, y]) => `${axes.px(x!).toFixed(1)},${axes.py(y!).toFixed(1)}`)
      .join(' ')}"/>`;
  const dots = (axes: Axes, key: 'violation' | 'cleanLoss', cls: string) =>
    it
      .map(
        (r, i) =>
          `<circle class="${cls}" cx="${axes.px(i + 1).toFixed(1)}" cy="${axes.py(r[key]).toFixed(1)}" r="2.5" data-iteration="${i + 1}" data-${key === 'violation' ? 'violation' : 'loss'}="${attr(r[key])}"><title>round ${r.round} iteration ${r.iteration}: ${key} ${fmt(r[key], 4)}, α ${r.alpha}, ${r.cutsTotal} cuts, QP ${fmt(r.qpTimeMs, 0)} ms</title></circle>`,
      )
      .join('');
  const ey = lAxes.py(result.eta).toFixed(1);
  const v = svg('convergence-violation', 'Violation per iteration', vAxes.frame('iteration', 'violation V') + poly(vAxes, vLine, 'line-after') + dots(vAxes, 'violation', 'dot-after'), f);
  const l = svg(
    'convergence-loss',
    'Clean loss per iteration',
    lAxes.frame('iteration', 'clean loss L', undefined, (t) => fmt(t, 3)) +
      `<line x1="${f.left}" x2="${f.width - f.right}" y1="${ey}" y2="${ey}" class="eta" data-eta="${attr(result.eta)}"/>` +
      poly(lAxes, lLine, 'line-after') +
      dots(lAxes, 'cleanLoss', 'dot-after'),
    f,
  );
  return v + l;
}

/** Accuracy vs ε before and after (from the sweep), with the headline FGSM/PGD points. */
export function robustnessSvg(result: Pick<RunDocument, 'before' | 'after' | 'sweep'>): string {
  const points = result.sweep?.points ?? [];
  const eps = points.map((p) => p.eps).concat(0, result.before.fgsm.eps, result.before.pgd.eps);
  const axes = new Axes([0, Math.max(...eps) * 1.05 || 0.1], [0, 1.02]);
  const parts = [axes.frame('ε (L∞)', 'accuracy', short, (v) => pct(v))];
  const series = (key: 'before' | 'after') => {
    const clean = result[key].clean.accuracy;
    const pts = [{ eps: 0, acc: clean }, ...points.map((p) => ({ eps: p.eps, acc: p[key] }))].sort((a, b) => a.eps - b.eps);
    const color = key === 'before' ? COLORS.before : COLORS.after;
    const line = `<polyline class="line-${key}" stroke="${color}" points="${pts.map((p) => `${axes.px(p.eps).toFixed(1)},${axes.py(p.acc).toFixed(1)}`).join(' ')}"/>`;
    const dots = points
      .map(
        (p) =>
          `<circle class="sweep-${key}" fill="${color}" cx="${axes.px(p.eps).toFixed(1)}" cy="${axes.py(p[key]).toFixed(1)}" r="3" data-eps="${attr(p.eps)}" data-accuracy="${attr(p[key])}"><title>${key}: ${result.sweep?.attack.toUpperCase()} ε ${p.eps}: ${pct(p[key])}</title></circle>`,
      )
      .join('');
    const m = result[key] as TestMetrics;
    const marks =
      `<rect class="fgsm-${key}" x="${(axes.px(m.fgsm.eps) - 4).toFixed(1)}" y="${(axes.py(m.fgsm.accuracy) - 4).toFixed(1)}" width="8" height="8" fill="none" stroke="${color}" data-eps="${attr(m.fgsm.eps)}" data-accuracy="${attr(m.fgsm.accuracy)}"><title>${key}: FGSM ε ${m.fgsm.eps}: ${pct(m.fgsm.accuracy)}</title></rect>` +
      (Number.isFinite(m.pgd.accuracy)
        ? `<path class="pgd-${key}" d="M${axes.px(m.pgd.eps).toFixed(1)},${(axes.py(m.pgd.accuracy) - 5).toFixed(1)} l5,9 h-10 z" fill="none" stroke="${color}" data-eps="${attr(m.pgd.eps)}" data-accuracy="${attr(m.pgd.accuracy)}"><title>${key}: PGD-${m.pgd.steps} ε ${m.pgd.eps}: ${pct(m.pgd.accuracy)}</title></path>`
        : '');
    return line + dots + marks;
  };
  parts.push(series('before'), series('after'));
  parts.push(legend([
    ['before', COLORS.before],
    ['after', COLORS.after],
  ]));
  const note = points.length ? `${result.sweep!.attack.toUpperCase()} sweep; □ FGSM, △ PGD` : '□ FGSM, △ PGD';
  parts.push(`<text x="${FRAME.width - FRAME.right - 4}" y="${FRAME.top + 14}" class="tick" text-anchor="end">${escapeHtml(note)}</text>`);
  return svg('robustness', 'Robust accuracy against ε, before and after the correction', parts.join(''));
}

/** The adversarial examples as small pictures with their label and the predictions before → after. */
export function examplesSvg(result: ResultDocument): string {
  const ex = result.examples;
  if (!ex || ex.items.length === 0) return '<p>No example pictures in the result.</p>';
  const scale = Math.max(1, Math.round(56 / Math.max(ex.height, ex.width)));
  const cellW = ex.width * scale + 16;
  const cellH = ex.height * scale + 34;
  const perRow = Math.max(1, Math.min(10, Math.floor(920 / cellW)));
  const rows = Math.ceil(ex.items.length / perRow);
  const width = perRow * cellW;
  const height = rows * cellH;
  const parts: string[] = [];
  ex.items.forEach((item, i) => {
    const x = (i % perRow) * cellW + 8;
    const y = Math.floor(i / perRow) * cellH + 4;
    const channels = ex.channels === 3 ? 3 : 1;
    const png = Buffer.from(encodePng(item.pixels, ex.width, ex.height, channels)).toString('base64');
    const fixed = item.after === item.label;
    parts.push(
      `<g class="example ${fixed ? 'fixed' : 'wrong'}" data-label="${item.label}" data-before="${item.before}" data-after="${item.after}" data-round="${item.round}">` +
        `<image x="${x}" y="${y}" width="${ex.width * scale}" height="${ex.height * scale}" href="data:image/png;base64,${png}" style="image-rendering:pixelated"/>` +
        `<text x="${x + (ex.width * scale) / 2}" y="${y + ex.height * scale + 13}" class="tick" text-anchor="middle">y=${item.label}</text>` +
        `<text x="${x + (ex.width * scale) / 2}" y="${y + ex.height * scale + 26}" class="tick ${fixed ? 'ok' : 'bad'}" text-anchor="middle">${item.before}→${item.after}</text>` +
        `</g>`,
    );
  });
  return svg('examples', 'Adversarial examples: true label, prediction before → after', parts.join(''), {
    width,
    height,
    left: 0,
    right: 0,
    top: 0,
    bottom: 0,
  });
}

/** One row per measured figure: the worst case first, then clean and each attack. */
export function metricRows(before: TestMetrics, after: TestMetrics, evaluation: RunDocument['evaluation']): Array<{ name: string; before: number; after: number; headline?: boolean }> {
  const rows: Array<{ name: string; before: number; after: number; headline?: boolean }> = [];
  const worst = after.worstCase ?? before.worstCase;
  if (worst) rows.push({ name: `${worst.label} ε ${after.fgsm.eps} (n = ${worst.n})`, before: before.worstCase?.accuracy ?? Number.NaN, after: after.worstCase?.accuracy ?? Number.NaN, headline: true });
  rows.push({ name: `clean (n = ${evaluation.n})`, before: before.clean.accuracy, after: after.clean.accuracy });
  const list = after.attacks ?? before.attacks;
  if (list) {
    for (const a of list) {
      const b = before.attacks?.find((x) => x.label === a.label);
      const f = after.attacks?.find((x) => x.label === a.label);
      rows.push({ name: `${a.label.toUpperCase()} ε ${a.eps} (n = ${a.n})`, before: b?.accuracy ?? Number.NaN, after: f?.accuracy ?? Number.NaN });
    }
  } else {
    rows.push({ name: `FGSM ε ${before.fgsm.eps} (n = ${evaluation.n})`, before: before.fgsm.accuracy, after: after.fgsm.accuracy });
    rows.push({ name: `PGD-${before.pgd.steps} ε ${before.pgd.eps} (n = ${evaluation.pgdN})`, before: before.pgd.accuracy, after: after.pgd.accuracy });
  }
  return rows;
}

function metricsTable(result: RunDocument): string {
  const rows = metricRows(result.before, result.after, result.evaluation).map((r) => {
    const d = (r.after - r.before) * 100;
    const change = Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${d.toFixed(1)} pp` : 'n/a';
    const cells = `<td>${escapeHtml(r.name)}</td><td>${pct(r.before)}</td><td>${pct(r.after)}</td><td class="${d >= 0 ? 'ok' : 'bad'}">${change}</td>`;
    return r.headline ? `<tr class="headline">${cells}</tr>` : `<tr>${cells}</tr>`;
  });
  const { evaluation } = result;
  const warnings = [...(result.before.warnings ?? []).map((w) => ({ ...w, when: 'before' })), ...(result.after.warnings ?? []).map((w) => ({ ...w, when: 'after' }))];
  const warningList = warnings.length
    ? `<ul class="warnings">${warnings.map((w) => `<li><b>${escapeHtml(w.when)}: ${escapeHtml(w.code)}</b> (${w.count} images): ${escapeHtml(w.message)}</li>`).join('')}</ul>`
    : '';
  return (
    `<table class="metrics"><thead><tr><th>${escapeHtml(evaluation.split)} set</th><th>before</th><th>after</th><th>change</th></tr></thead><tbody>` +
    rows.join('') +
    `</tbody></table>` +
    warningList
  );
}

function summaryList(result: ResultDocument): string {
  const items: Array<[string, string]> = [
    ['adversarial examples |X̃|', `${result.adversarial.count} (correct before ${result.adversarial.correctBefore}, after ${result.adversarial.correctAfter})`],
    ['‖w − w₀‖', `${fmt(result.distance, 4)} (relative ${fmt(result.relativeDistance, 4)})`],
    ['parameters moved', `${result.parameters.count} in ${result.parameters.layers.join(', ')}`],
    ['clean loss', `${fmt(result.cleanLossBefore, 4)} → ${fmt(result.cleanLossAfter, 4)} (η = ${fmt(result.eta, 4)})`],
    ['iterations', `${result.iterations.length} over ${result.rounds.length} round(s): ${result.rounds.map((r) => r.stopReason).join(', ')}`],
    ['cuts / QP time', `${result.iterations.at(-1)?.cutsTotal ?? 0} cuts at the end; ${fmt(result.totalQpTimeMs / 1000, 2)} s in QPs`],
    ['infeasible QPs', result.infeasible.length === 0 ? 'none' : result.infeasible.map((e) => `round ${e.round} it ${e.iteration}: dropped ${e.dropped}`).join('; ')],
    ['backend', result.backend],
    ['total time', `${fmt(result.totalTimeMs / 1000, 1)} s`],
  ];
  return `<dl class="summary">${items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

function iterationTable(result: ResultDocument): string {
  const head = ['round', 'it', 'cuts', 'QP', 'QP ms', 'α', 'V', 'misclassified', 'clean loss', '‖w − w₀‖'];
  const rows = result.iterations.map(
    (r) =>
      `<tr><td>${r.round}</td><td>${r.iteration}</td><td>${r.cutsTotal} (+${r.cutsAdded})</td><td>${escapeHtml(r.qpStatus)}</td><td>${fmt(r.qpTimeMs, 0)}</td><td>${r.alpha}</td><td>${fmt(r.violation, 4)}</td><td>${r.misclassified}</td><td>${fmt(r.cleanLoss, 4)}${r.feasible ? '' : ' ✗'}</td><td>${fmt(r.distance, 4)}</td></tr>`,
  );
  return `<table class="log"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:24px auto;max-width:980px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.sub{color:#5c6370;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #e3e6ea;padding:3px 9px;text-align:right}th{background:#f5f7fa}td:first-child,th:first-child{text-align:left}
.ok{color:#17803d}.bad{color:#b3261e}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{color:#5c6370}dd{margin:0}
.plots{display:flex;flex-wrap:wrap;gap:12px}
svg.plot{background:#fff;border:1px solid #e3e6ea;border-radius:4px;max-width:100%;height:auto}
.plot-bg{fill:#fbfcfd}.grid{stroke:#eceff3;stroke-width:1}.tick{font-size:10px;fill:#5c6370}.label{font-size:12px;fill:#1d2330}
.eta{stroke:${COLORS.eta};stroke-dasharray:4 3;stroke-width:1.5}
.front{fill:none;stroke:${COLORS.pool};stroke-width:1;opacity:.5}
circle.candidate{fill:${COLORS.candidate}}circle.pool{fill:${COLORS.pool}}circle.start{fill:#1d2330}
circle.chosen{fill:none;stroke:${COLORS.chosen};stroke-width:2.5}
polyline{fill:none;stroke-width:2}.line-after{stroke:${COLORS.after}}.line-before{stroke:${COLORS.before}}
.dot-after{fill:${COLORS.after}}
text.ok{fill:#17803d}text.bad{fill:#b3261e}
tr.headline td{font-weight:600;background:#eef4fc}ul.warnings{color:#8a4b00}
table.log td{font-variant-numeric:tabular-nums;font-size:12px}
details{margin:8px 0}pre{background:#f5f7fa;padding:8px;overflow:auto;font-size:12px}
${FRONT_STYLE}`;

/** Renders the whole page (a correction's or a baseline's). */
export function renderReport(result: RunDocument): string {
  if (isBaselineDocument(result)) return renderBaselineReport(result);
  const model = typeof result.settings.model === 'string' ? result.settings.model : 'model';
  const title = `advcorrect report — ${model}`;
  const settings = JSON.stringify({ settings: result.settings, options: result.options, evaluation: result.evaluation }, null, 2);
  return page(title, [
    `<p class="sub">Adversary correction with ${result.adversarial.count} adversarial examples, ω = ${result.options.omega}, δ = ${result.options.delta}; created ${escapeHtml(result.createdAt)}.</p>`,
    '<h2>Test metrics</h2>',
    metricsTable(result),
    summaryList(result),
    '<h2>Robust accuracy against ε</h2>',
    `<div class="plots">${robustnessSvg(result)}</div>`,
    '<h2>Candidates and the chosen point</h2>',
    `<p class="sub">Every line-search candidate (grey), the Pareto pool of non-dominated candidates (blue; w₀ in black) and the chosen point (red ring). Candidates right of the dashed line η break the clean-loss constraint.</p>`,
    `<div class="plots">${paretoSvg(result)}</div>`,
    frontSection(result),
    '<h2>Convergence</h2>',
    `<div class="plots">${convergenceSvg(result)}</div>`,
    '<h2>Adversarial examples</h2>',
    `<p class="sub">True label y, prediction before → after (green: correct after the correction).</p>`,
    examplesSvg(result),
    '<h2>Iterations</h2>',
    iterationTable(result),
    '<h2>Settings</h2>',
    `<details><summary>All settings</summary><pre>${escapeHtml(settings)}</pre></details>`,
  ]);
}

/** A self-contained HTML page: the title as heading, then `body`; `style` defaults to the run report's. */
export function page(title: string, body: string[], style: string = STYLE): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${style}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(title)}</h1>`,
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** A setting or result value as text: integers as they are, other numbers to 4 digits, strings bare. */
function valueText(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : fmt(v, 4);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v.map((x) => fmt(x as number, 4)).join(', ');
  return JSON.stringify(v);
}

/** The page of a baseline run: metrics, what the method did, the ε sweep, the settings. */
export function renderBaselineReport(result: BaselineDocument): string {
  const model = typeof result.settings.model === 'string' ? result.settings.model : 'model';
  const items: Array<[string, string]> = [
    ['method', result.method],
    ...Object.entries(result.methodSettings).map(([k, v]): [string, string] => [k, valueText(v)]),
    ...Object.entries(result.methodResult).map(([k, v]): [string, string] => [k, valueText(v)]),
    ['‖w − w₀‖', `${fmt(result.distance, 4)} (relative ${fmt(result.relativeDistance, 4)})`],
    ['method time', `${fmt(result.methodTimeMs / 1000, 1)} s (without the evaluation)`],
    ['backend', result.backend],
  ];
  const settings = JSON.stringify({ method: result.method, methodSettings: result.methodSettings, settings: result.settings, evaluation: result.evaluation }, null, 2);
  return page(`advcorrect baseline ${result.method} — ${model}`, [
    `<p class="sub">Baseline <b>${escapeHtml(result.method)}</b> on ${escapeHtml(String(result.settings.dataset ?? ''))}; created ${escapeHtml(result.createdAt)}.</p>`,
    '<h2>Test metrics</h2>',
    metricsTable(result),
    `<dl class="summary">${items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`,
    '<h2>Robust accuracy against ε</h2>',
    `<div class="plots">${robustnessSvg(result)}</div>`,
    '<h2>Settings</h2>',
    `<details><summary>All settings</summary><pre>${escapeHtml(settings)}</pre></details>`,
  ]);
}
