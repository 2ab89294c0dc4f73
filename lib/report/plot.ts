/**
 * Plot primitives of the report pages: number formats, axes with round ticks, the SVG wrapper and
 * the legend. Every plot of report.html is inline SVG drawn with these (no scripts, no assets).
 */
export const COLORS = { before: '#8a8f98', after: '#1f6fd1', chosen: '#d1291f', pool: '#1f6fd1', candidate: '#c3c8cf', eta: '#d18a1f' };

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A number as an attribute value (full precision; non-finite as the word). */
export function attr(value: number): string {
  return Number.isFinite(value) ? String(value) : String(value);
}

export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) return value.toExponential(2);
  return value.toFixed(digits);
}

/** A tick label: at most 4 significant digits, no trailing zeros. */
export function short(value: number): string {
  return String(Number(value.toPrecision(4)));
}

export function pct(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export const FRAME: Frame = { width: 460, height: 300, left: 58, right: 16, top: 18, bottom: 44 };

/** Round tick values covering [min, max]. */
export function ticks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function extent(values: number[], pad = 0.06): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi === lo) {
    const d = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

export class Axes {
  constructor(
    readonly x: [number, number],
    readonly y: [number, number],
    readonly f: Frame = FRAME,
  ) {}

  px(v: number): number {
    const { left, width, right } = this.f;
    return left + ((v - this.x[0]) / (this.x[1] - this.x[0])) * (width - left - right);
  }

  py(v: number): number {
    const { top, height, bottom } = this.f;
    return height - bottom - ((v - this.y[0]) / (this.y[1] - this.y[0])) * (height - top - bottom);
  }

  frame(xLabel: string, yLabel: string, xFormat = short, yFormat = short): string {
    const { width, height, left, right, top, bottom } = this.f;
    const parts: string[] = [];
    parts.push(`<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" class="plot-bg"/>`);
    for (const t of ticks(this.x[0], this.x[1])) {
      const x = this.px(t).toFixed(1);
      parts.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${height - bottom}" class="grid"/>`);
      parts.push(`<text x="${x}" y="${height - bottom + 14}" class="tick" text-anchor="middle">${escapeHtml(xFormat(t))}</text>`);
    }
    for (const t of ticks(this.y[0], this.y[1])) {
      const y = this.py(t).toFixed(1);
      parts.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" class="grid"/>`);
      parts.push(`<text x="${left - 5}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${escapeHtml(yFormat(t))}</text>`);
    }
    parts.push(`<text x="${(left + width - right) / 2}" y="${height - 8}" class="label" text-anchor="middle">${escapeHtml(xLabel)}</text>`);
    parts.push(
      `<text x="14" y="${(top + height - bottom) / 2}" class="label" text-anchor="middle" transform="rotate(-90 14 ${(top + height - bottom) / 2})">${escapeHtml(yLabel)}</text>`,
    );
    return parts.join('');
  }
}

export function svg(id: string, title: string, body: string, f: Frame = FRAME): string {
  return `<svg id="${id}" class="plot" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-label="${escapeHtml(title)}"><title>${escapeHtml(title)}</title>${body}</svg>`;
}

export function legend(items: Array<[string, string]>, f: Frame = FRAME): string {
  let x = f.left + 8;
  const y = f.top + 12;
  const parts: string[] = [];
  for (const [name, color] of items) {
    parts.push(`<rect x="${x}" y="${y - 7}" width="10" height="10" fill="${color}"/><text x="${x + 14}" y="${y + 2}" class="tick">${escapeHtml(name)}</text>`);
    x += 22 + name.length * 6.5;
  }
  return `<g class="legend">${parts.join('')}</g>`;
}
