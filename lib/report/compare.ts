/**
 * The comparison of several runs (`advcorrect compare`): compare.json's document and its
 * report.html — one table (mean ± sd over draws) and one plot of clean accuracy against the
 * worst-case robust accuracy, a point per method with error bars over draws.
 */
import { escapeHtml, page, ticks } from './html.js';

/** Mean, sample standard deviation (0 for one draw) and count of one figure over draws. */
export interface Stat {
  mean: number;
  sd: number;
  n: number;
}

export interface CompareGroup {
  /** Display name, e.g. "correct |X̃|=10 ω=0.2" or "bias-shift (match-clean)". */
  label: string;
  method: string;
  model: string;
  methodSettings: Record<string, unknown>;
  /** The run directories (draws). */
  runs: string[];
  clean: Stat;
  /** Per attack label ('fgsm', 'pgd-40', …). */
  attacks: Record<string, Stat>;
  worstCase: Stat;
  distance: Stat;
  /** Method time in seconds (drawing X̃ and correcting / training, without evaluation). */
  timeS: Stat;
}

export interface CompareDocument {
  format: 'advcorrect-compare';
  formatVersion: 1;
  createdAt: string;
  /** The evaluation every run shares. */
  evaluation: { dataset?: string; split: string; n: number; pgdN: number; clip: boolean; attacks: Array<{ label: string; eps: number; n: number }>; worstCase: { label: string; n: number } };
  groups: CompareGroup[];
}

const PALETTE = ['#1f6fd1', '#d1291f', '#17803d', '#d18a1f', '#7a3fc4', '#0f8c8c', '#8a8f98', '#b3479a'];

function pct(v: number, digits = 1): string {
  return Number.isFinite(v) ? (100 * v).toFixed(digits) : '–';
}

function statPct(s: Stat): string {
  if (!Number.isFinite(s.mean)) return '–';
  return s.n > 1 ? `${pct(s.mean)} ± ${pct(s.sd)}` : pct(s.mean);
}

function statNum(s: Stat, digits: number): string {
  if (!Number.isFinite(s.mean)) return '–';
  return s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}` : s.mean.toFixed(digits);
}

/** The comparison table as HTML. */
export function compareTable(doc: CompareDocument): string {
  const attackLabels = doc.evaluation.attacks.map((a) => a.label);
  const head = ['method', 'draws', `clean (n=${doc.evaluation.n})`, ...doc.evaluation.attacks.map((a) => `${a.label.toUpperCase()} (n=${a.n})`), `worst case (n=${doc.evaluation.worstCase.n})`, '‖w − w₀‖', 'time s'];
  const rows = doc.groups.map(
    (g, i) =>
      `<tr data-group="${escapeHtml(g.label)}"><td><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${escapeHtml(g.label)}</td><td>${g.runs.length}</td><td>${statPct(g.clean)}</td>` +
      attackLabels.map((l) => `<td>${g.attacks[l] ? statPct(g.attacks[l]!) : '–'}</td>`).join('') +
      `<td class="headline">${statPct(g.worstCase)}</td><td>${statNum(g.distance, 3)}</td><td>${statNum(g.timeS, 1)}</td></tr>`,
  );
  return `<table class="compare"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Clean accuracy (y) against worst-case robust accuracy (x): a point per group, error bars ± sd. */
export function compareSvg(doc: CompareDocument, options: { standalone?: boolean } = {}): string {
  const W = 620;
  const H = 400;
  const L = 64;
  const R = 16;
  const T = 18;
  const B = 48;
  const xs = doc.groups.flatMap((g) => [g.worstCase.mean - g.worstCase.sd, g.worstCase.mean + g.worstCase.sd]).filter(Number.isFinite);
  const ys = doc.groups.flatMap((g) => [g.clean.mean - g.clean.sd, g.clean.mean + g.clean.sd]).filter(Number.isFinite);
  const range = (v: number[]): [number, number] => {
    if (v.length === 0) return [0, 1];
    let lo = Math.min(...v);
    let hi = Math.max(...v);
    const pad = Math.max((hi - lo) * 0.12, 0.01);
    lo = Math.max(0, lo - pad);
    hi = Math.min(1, hi + pad);
    return [lo, hi];
  };
  const [x0, x1] = range(xs);
  const [y0, y1] = range(ys);
  const px = (v: number) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const py = (v: number) => H - B - ((v - y0) / (y1 - y0)) * (H - T - B);
  const parts: string[] = [`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" class="plot-bg"/>`];
  for (const t of ticks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${H - B}" class="grid"/><text x="${x}" y="${H - B + 14}" class="tick" text-anchor="middle">${pct(t, 1)}%</text>`);
  }
  for (const t of ticks(y0, y1)) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" class="grid"/><text x="${L - 5}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${pct(t, 1)}%</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" class="label" text-anchor="middle">${escapeHtml(`${doc.evaluation.worstCase.label} (robust accuracy, n = ${doc.evaluation.worstCase.n})`)}</text>`);
  parts.push(`<text x="16" y="${(T + H - B) / 2}" class="label" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">${escapeHtml(`clean accuracy (n = ${doc.evaluation.n})`)}</text>`);
  // Labels go right of their point (left near the right edge), moved up or down until they do not overlap.
  const placed: Array<{ x0: number; x1: number; y0: number; y1: number }> = [];
  const free = (b: { x0: number; x1: number; y0: number; y1: number }) => placed.every((p) => b.x1 < p.x0 || b.x0 > p.x1 || b.y1 < p.y0 || b.y0 > p.y1);
  doc.groups.forEach((g, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    if (!Number.isFinite(g.worstCase.mean) || !Number.isFinite(g.clean.mean)) return;
    const cx = px(g.worstCase.mean);
    const cy = py(g.clean.mean);
    placed.push({ x0: cx - 6, x1: cx + 6, y0: cy - 6, y1: cy + 6 });
  });
  doc.groups.forEach((g, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    if (!Number.isFinite(g.worstCase.mean) || !Number.isFinite(g.clean.mean)) return;
    const cx = px(g.worstCase.mean);
    const cy = py(g.clean.mean);
    const bars =
      g.runs.length > 1
        ? `<line x1="${px(g.worstCase.mean - g.worstCase.sd).toFixed(1)}" x2="${px(g.worstCase.mean + g.worstCase.sd).toFixed(1)}" y1="${cy.toFixed(1)}" y2="${cy.toFixed(1)}" stroke="${color}" class="errbar"/>` +
          `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${py(g.clean.mean - g.clean.sd).toFixed(1)}" y2="${py(g.clean.mean + g.clean.sd).toFixed(1)}" stroke="${color}" class="errbar"/>`
        : '';
    const textWidth = 6.4 * g.label.length;
    const clampX = (x: number) => Math.min(W - R - textWidth - 2, Math.max(L + 2, x));
    // Candidates: right of the point, above it, below it, left of it, then further up/down on the right or left.
    const candidates: Array<[number, number]> = [
      [cx + 9, cy + 4],
      [clampX(cx - textWidth / 2), cy - 10],
      [clampX(cx - textWidth / 2), cy + 18],
      [cx - 9 - textWidth, cy + 4],
    ];
    for (let k = 1; k < 20; k++) for (const sign of [-1, 1]) for (const x of [cx + 9, cx - 9 - textWidth]) candidates.push([x, cy + 4 + sign * k * 13]);
    let [x0, ty] = candidates[0]!;
    for (const [x, y] of candidates) {
      if (x < L || x + textWidth > W - R || y - 10 < T || y > H - B) continue;
      if (free({ x0: x, x1: x + textWidth, y0: y - 10, y1: y + 2 })) {
        [x0, ty] = [x, y];
        break;
      }
    }
    const left = x0 + textWidth <= cx;
    placed.push({ x0, x1: x0 + textWidth, y0: ty - 10, y1: ty + 2 });
    const leader = Math.abs(ty - 4 - cy) > 16 || (x0 > cx + 12) || (x0 + textWidth < cx - 12) ? `<line x1="${cx.toFixed(1)}" y1="${cy.toFixed(1)}" x2="${(left ? x0 + textWidth : x0).toFixed(1)}" y2="${(ty - 4).toFixed(1)}" stroke="${color}" class="leader"/>` : '';
    parts.push(
      `<g class="method" data-group="${escapeHtml(g.label)}" data-clean="${g.clean.mean}" data-clean-sd="${g.clean.sd}" data-worst="${g.worstCase.mean}" data-worst-sd="${g.worstCase.sd}" data-n="${g.runs.length}">` +
        bars +
        leader +
        `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="5.5" fill="${color}"><title>${escapeHtml(`${g.label}: clean ${statPct(g.clean)}%, ${doc.evaluation.worstCase.label} ${statPct(g.worstCase)}% (${g.runs.length} draw${g.runs.length > 1 ? 's' : ''})`)}</title></circle>` +
        `<text x="${x0.toFixed(1)}" y="${ty.toFixed(1)}" class="point-label" fill="${color}">${escapeHtml(g.label)}</text>` +
        `</g>`,
    );
  });
  // A standalone file (docs) carries the plot's style; inside report.html the page's stylesheet does.
  const style = options.standalone ? `<style>text{font-family:system-ui,sans-serif}${PLOT_STYLE}</style>` : '';
  const ns = options.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  return `<svg${ns} id="compare" class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="clean accuracy against worst-case robust accuracy"><title>Clean accuracy against worst-case robust accuracy</title>${style}${parts.join('')}</svg>`;
}

/** The plot's own rules: in the report's stylesheet, and inside a standalone SVG file. */
const PLOT_STYLE = `svg.plot{background:#fff;border:1px solid #e3e6ea;border-radius:4px;max-width:100%;height:auto}
.plot-bg{fill:#fbfcfd}.grid{stroke:#eceff3;stroke-width:1}.tick{font-size:10px;fill:#5c6370}.label{font-size:12px;fill:#1d2330}
.point-label{font-size:11px;font-weight:600}.errbar{stroke-width:2;opacity:.6}.leader{stroke-width:1;opacity:.5}`;

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:24px auto;max-width:1040px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.sub{color:#5c6370;margin:0 0 12px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #e3e6ea;padding:4px 9px;text-align:right}th{background:#f5f7fa;font-weight:600}td:first-child,th:first-child{text-align:left}
td.headline{font-weight:600;background:#eef4fc}
.swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:7px}
${PLOT_STYLE}
table.compare{font-size:13px}table.compare td{white-space:nowrap}
ul.runs{font-size:12px;color:#5c6370}
`;

/** The comparison page. */
export function renderCompareReport(doc: CompareDocument): string {
  const e = doc.evaluation;
  const runs = doc.groups
    .map((g) => `<li><b>${escapeHtml(g.label)}</b> (${escapeHtml(g.model)}): ${g.method === 'input' ? `the evaluation before of the runs (${g.runs.length} distinct)` : g.runs.map((r) => escapeHtml(r)).join(', ')}</li>`)
    .join('');
  return page(
    'advcorrect comparison',
    [
    `<p class="sub">${escapeHtml(`${e.dataset ?? ''} ${e.split} set, clean on the first ${e.n} images; ${e.attacks.map((a) => `${a.label} ε ${a.eps} on ${a.n}`).join(', ')}; the headline is the ${e.worstCase.label} per image on the first ${e.worstCase.n}. Accuracies in %, mean ± sample sd over draws (X̃ drawn with different seeds/offsets); time = drawing X̃ and correcting or training, without evaluation. Created ${doc.createdAt}.`)}</p>`,
    '<h2>Clean against robust accuracy</h2>',
    '<p class="sub">Up and to the right is better. A point per method; bars are ± one sd over draws.</p>',
    compareSvg(doc),
    '<h2>Table</h2>',
    compareTable(doc),
    '<h2>Runs</h2>',
    `<ul class="runs">${runs}</ul>`,
    ],
    STYLE,
  );
}
