/**
 * Random cut QPs for the cut-pool and dual-solver tests: generator (seeded), pool builder,
 * residuals computed independently in TypeScript, and a CPLEX LP writer for HiGHS.
 */
import { CutPool, type CutQpResult } from '../../lib/qp/cut-pool.js';

export interface RandomRow {
  index: Int32Array;
  value: Float64Array;
  lower: number;
  upper: number;
  /** Store densely (as float64, or float32 when `single`). */
  dense: boolean;
  single: boolean;
}

export interface RandomCutQp {
  n: number;
  rows: RandomRow[];
  w0: Float64Array;
  diagonal: Float64Array;
  lower?: Float64Array;
  upper?: Float64Array;
}

export interface RandomCutQpShape {
  n: number;
  m: number;
  density: number;
  seed: number;
  bounds?: boolean;
  /** Mix in ranged, equality and lower-only rows. */
  ranges?: boolean;
  /** Add exact duplicates, scaled copies, near-parallel copies and zero rows. */
  degenerate?: boolean;
  /** 'some' (default): about half the cuts are active; 'all': every cut cuts off w0 by a margin; 'none': w0 is feasible. */
  active?: 'some' | 'all' | 'none';
  /** Add a contradictory pair of rows. */
  infeasible?: boolean;
}

/** mulberry32: a small seeded generator. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-300);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function dot(row: RandomRow, x: Float64Array): number {
  let s = 0;
  for (let k = 0; k < row.index.length; k++) s += row.value[k] * x[row.index[k]];
  return s;
}

/** Rows are built around a point xf inside the bounds, so the problem is feasible unless asked otherwise. */
export function randomCutQp(shape: RandomCutQpShape): RandomCutQp {
  const rand = rng(shape.seed);
  const { n, m, density } = shape;
  const w0 = Float64Array.from({ length: n }, () => normal(rand));
  const diagonal = Float64Array.from({ length: n }, () => 0.5 + rand());
  const xf = Float64Array.from({ length: n }, () => rand() - 0.5);
  let lower: Float64Array | undefined;
  let upper: Float64Array | undefined;
  if (shape.bounds) {
    lower = Float64Array.from({ length: n }, (_, j) => (j % 3 === 0 ? -Infinity : -0.8));
    upper = Float64Array.from({ length: n }, (_, j) => (j % 4 === 0 ? Infinity : 0.9));
  }
  const rows: RandomRow[] = [];
  const active = shape.active ?? 'some';
  for (let i = 0; i < m; i++) {
    const idx: number[] = [];
    const val: number[] = [];
    for (let j = 0; j < n; j++) {
      // 'all': rows with disjoint supports, so every cut that cuts off w0 stays active.
      if (active === 'all' && j % m !== i % m) continue;
      if (rand() < density) {
        idx.push(j);
        val.push(normal(rand));
      }
    }
    if (idx.length === 0) {
      idx.push(i % n);
      val.push(1);
    }
    const dense = density >= 0.5 && i % 2 === 0;
    const single = dense && i % 4 !== 0;
    const value = single ? Float64Array.from(Float32Array.from(val)) : Float64Array.from(val);
    const row: RandomRow = { index: Int32Array.from(idx), value, lower: -Infinity, upper: Infinity, dense, single };
    const axf = dot(row, xf);
    const aw0 = dot(row, w0);
    if (active === 'all') row.upper = Math.min(aw0 - 0.5, axf);
    else if (active === 'none') row.upper = Math.max(aw0, axf) + 0.5;
    else row.upper = axf + 0.3 * Math.abs(normal(rand));
    if (shape.ranges) {
      if (i % 5 === 1) row.lower = axf - 0.3 * Math.abs(normal(rand));
      else if (i % 7 === 2 && i < n / 2) row.lower = row.upper = axf;
      else if (i % 5 === 3) {
        row.lower = axf - 0.1 * Math.abs(normal(rand));
        row.upper = Infinity;
      }
    }
    rows.push(row);
    if (shape.degenerate && i % 6 === 0) {
      rows.push({ ...row, value: row.value.slice(), dense: false, single: false });
      const scaled = row.value.map((v) => 2.5 * v);
      rows.push({ ...row, value: scaled, lower: 2.5 * row.lower, upper: 2.5 * row.upper, dense: false, single: false });
      const near = row.value.slice();
      near[0] *= 1 + 1e-3;
      const nearRow: RandomRow = { index: row.index, value: near, lower: -Infinity, upper: 0, dense: false, single: false };
      nearRow.upper = dot(nearRow, xf) + 1e-6;
      rows.push(nearRow);
    }
    if (shape.degenerate && i % 9 === 4) {
      rows.push({ index: new Int32Array(0), value: new Float64Array(0), lower: -1, upper: 1, dense: false, single: false });
    }
  }
  if (shape.infeasible) {
    const idx: number[] = [];
    const val: number[] = [];
    for (let j = 0; j < n; j += 2) {
      idx.push(j);
      val.push(normal(rand));
    }
    rows.push({ index: Int32Array.from(idx), value: Float64Array.from(val), lower: -Infinity, upper: -1, dense: false, single: false });
    rows.push({ index: Int32Array.from(idx), value: Float64Array.from(val, (v) => -3 * v), lower: -Infinity, upper: -3, dense: false, single: false });
  }
  return { n, rows, w0, diagonal, lower, upper };
}

export function appendRow(pool: CutPool, row: RandomRow, n: number): number {
  if (row.dense) {
    const dense = row.single ? new Float32Array(n) : new Float64Array(n);
    row.index.forEach((j, k) => (dense[j] = row.value[k]));
    return pool.appendDense(dense, row.lower, row.upper);
  }
  return pool.appendSparse(row.index, row.value, row.lower, row.upper);
}

export function buildPool(qp: RandomCutQp, rows: RandomRow[] = qp.rows): CutPool {
  const pool = new CutPool(qp.n, { diagonal: qp.diagonal, lower: qp.lower, upper: qp.upper });
  for (const row of rows) appendRow(pool, row, qp.n);
  return pool;
}

export interface IndependentResiduals {
  primal: number;
  dual: number;
  /** Complementarity, relative to max(1, ‖y‖∞, ‖z‖∞). */
  gap: number;
  /** Multipliers on the wrong side (e.g. y > 0 on a row without upper bound, or at an inactive bound). */
  signErrors: number;
  objective: number;
}

/** KKT residuals of (x, y, z) for the problem, computed here from the generator's data. */
export function independentResiduals(qp: RandomCutQp, r: Pick<CutQpResult, 'x' | 'y' | 'z'>, rows: RandomRow[] = qp.rows): IndependentResiduals {
  const { n } = qp;
  const stat = new Float64Array(n);
  let primal = 0;
  let gap = 0;
  let signErrors = 0;
  let objective = 0;
  let scale = 1;
  for (let j = 0; j < n; j++) {
    const diff = r.x[j] - qp.w0[j];
    stat[j] = qp.diagonal[j] * diff + r.z[j];
    objective += 0.5 * qp.diagonal[j] * diff * diff;
  }
  rows.forEach((row, i) => {
    const v = dot(row, r.x);
    const y = r.y[i];
    scale = Math.max(scale, Math.abs(y));
    for (let k = 0; k < row.index.length; k++) stat[row.index[k]] += y * row.value[k];
    primal = Math.max(primal, row.lower - v, v - row.upper);
    if (y > 0) {
      if (!Number.isFinite(row.upper)) signErrors++;
      else gap = Math.max(gap, y * Math.abs(row.upper - v));
    } else if (y < 0) {
      if (!Number.isFinite(row.lower)) signErrors++;
      else gap = Math.max(gap, -y * Math.abs(v - row.lower));
    }
  });
  for (let j = 0; j < n; j++) {
    const lo = qp.lower ? qp.lower[j] : -Infinity;
    const hi = qp.upper ? qp.upper[j] : Infinity;
    const z = r.z[j];
    scale = Math.max(scale, Math.abs(z));
    primal = Math.max(primal, lo - r.x[j], r.x[j] - hi);
    if (z > 0) {
      if (!Number.isFinite(hi)) signErrors++;
      else gap = Math.max(gap, z * Math.abs(hi - r.x[j]));
    } else if (z < 0) {
      if (!Number.isFinite(lo)) signErrors++;
      else gap = Math.max(gap, -z * Math.abs(r.x[j] - lo));
    }
  }
  let dual = 0;
  for (let j = 0; j < n; j++) dual = Math.max(dual, Math.abs(stat[j]));
  return { primal: Math.max(0, primal), dual, gap: gap / scale, signErrors, objective };
}

/** Checks a Farkas certificate: returns ‖Aᵀy + z‖∞ (relative to ‖(y, z)‖∞) and the support Σ u·y⁺ − l·y⁻ (must be < 0). */
export function certificateCheck(qp: RandomCutQp, y: Float64Array, z: Float64Array | undefined, rows: RandomRow[] = qp.rows): { residual: number; support: number } {
  const acc = new Float64Array(qp.n);
  let support = 0;
  let scale = 0;
  rows.forEach((row, i) => {
    const yi = y[i];
    if (yi === 0) return;
    scale = Math.max(scale, Math.abs(yi));
    for (let k = 0; k < row.index.length; k++) acc[row.index[k]] += yi * row.value[k];
    support += yi > 0 ? yi * row.upper : yi * row.lower;
  });
  for (let j = 0; j < qp.n; j++) {
    const zj = z ? z[j] : 0;
    if (zj === 0) continue;
    scale = Math.max(scale, Math.abs(zj));
    acc[j] += zj;
    support += zj > 0 ? zj * (qp.upper ? qp.upper[j] : Infinity) : zj * (qp.lower ? qp.lower[j] : -Infinity);
  }
  let residual = 0;
  for (let j = 0; j < qp.n; j++) residual = Math.max(residual, Math.abs(acc[j]));
  return { residual: scale > 0 ? residual / scale : Infinity, support: scale > 0 ? support / scale : 0 };
}

function term(coef: number, name: string, first: boolean): string {
  const sign = coef < 0 ? '-' : '+';
  const mag = Math.abs(coef).toPrecision(17);
  return first ? `${coef < 0 ? '-' : ''}${mag} ${name}` : ` ${sign} ${mag} ${name}`;
}

/**
 * The primal problem in CPLEX LP format, as HiGHS reads it: minimise ½ΣdⱼXⱼ² − Σdⱼw₀ⱼXⱼ (the
 * objective minus the constant ½w₀ᵀDw₀). Ranged rows become two rows.
 */
export function toLpString(qp: RandomCutQp, rows: RandomRow[] = qp.rows): { lp: string; constant: number } {
  const { n } = qp;
  const lines: string[] = ['Minimize', ' obj:'];
  let constant = 0;
  const lin: string[] = [];
  for (let j = 0; j < n; j++) {
    lin.push(term(-qp.diagonal[j] * qp.w0[j], `x${j}`, j === 0));
    constant += 0.5 * qp.diagonal[j] * qp.w0[j] * qp.w0[j];
  }
  const quad = Array.from({ length: n }, (_, j) => `${j === 0 ? '' : ' + '}${qp.diagonal[j].toPrecision(17)} x${j} ^ 2`);
  lines.push(`  ${lin.join('')} + [ ${quad.join('')} ] / 2`);
  lines.push('Subject To');
  rows.forEach((row, i) => {
    if (row.index.length === 0) return;
    const expr = Array.from(row.index, (j, k) => term(row.value[k], `x${j}`, k === 0)).join('');
    if (row.lower === row.upper) lines.push(` e${i}: ${expr} = ${row.upper.toPrecision(17)}`);
    else {
      if (Number.isFinite(row.upper)) lines.push(` u${i}: ${expr} <= ${row.upper.toPrecision(17)}`);
      if (Number.isFinite(row.lower)) lines.push(` l${i}: ${expr} >= ${row.lower.toPrecision(17)}`);
    }
  });
  lines.push('Bounds');
  for (let j = 0; j < n; j++) {
    const lo = qp.lower ? qp.lower[j] : -Infinity;
    const hi = qp.upper ? qp.upper[j] : Infinity;
    if (lo === -Infinity && hi === Infinity) lines.push(` x${j} free`);
    else lines.push(` ${lo === -Infinity ? '-inf' : lo} <= x${j} <= ${hi === Infinity ? '+inf' : hi}`);
  }
  lines.push('End');
  return { lp: lines.join('\n'), constant };
}
