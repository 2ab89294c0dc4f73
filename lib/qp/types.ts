/**
 * Types shared by every QP solver and by the QPS/LP readers and writers.
 *
 * The general problem is  minimise ½ xᵀPx + qᵀx + r  subject to  rowLower ≤ Ax ≤ rowUpper,
 * varLower ≤ x ≤ varUpper, with infinite bounds written as ±Infinity.
 */

/** A sparse matrix in compressed sparse column form (0-based, row indices sorted within a column). */
export interface CscMatrix {
  nrows: number;
  ncols: number;
  /** ncols + 1 offsets into rowIndex/values. */
  colPtr: Int32Array;
  rowIndex: Int32Array;
  values: Float64Array;
}

/** A convex QP with names, as read from QPS or built from a cut pool. */
export interface QuadraticProgram {
  name: string;
  /** Upper triangle (diagonal included) of the symmetric Hessian P, n×n. */
  P: CscMatrix;
  q: Float64Array;
  /** Objective constant. */
  r: number;
  /** Constraint matrix, m×n. */
  A: CscMatrix;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  varLower: Float64Array;
  varUpper: Float64Array;
  varNames: string[];
  rowNames: string[];
  objectiveName: string;
}

/** Solver outcomes. Everything except a native failure is reported as a status, never thrown. */
export type QpStatus =
  | 'solved'
  | 'solved_inaccurate'
  | 'primal_infeasible'
  | 'dual_infeasible'
  | 'iteration_limit_reached'
  | 'time_limit_reached'
  | 'aborted'
  | 'non_convex';

export type QpSolverName = 'dual' | 'admm';

/** Scale-aware KKT residuals, all as maxima (∞-norms). */
export interface QpResiduals {
  /** Largest violation of a row or variable bound. */
  primal: number;
  /** Stationarity: ‖Px + q + Aᵀy + z‖∞ (z = bound multipliers). */
  dual: number;
  /** Duality gap |primal objective − dual objective| (complementarity for the cut QP). */
  gap: number;
}

export interface QpResult {
  status: QpStatus;
  solver: QpSolverName;
  /** Primal solution (length n); the last iterate when not solved. */
  x: Float64Array;
  /** Row multipliers (length m), OSQP sign convention: y > 0 on an active upper bound, y < 0 on an active lower bound. */
  y: Float64Array;
  /** Variable-bound multipliers (length n), same sign convention. */
  z: Float64Array;
  objective: number;
  iterations: number;
  /** Wall time of the whole native solve, set-up included. */
  solveTimeMs: number;
  /**
   * The part of solveTimeMs spent before the iterations: ADMM's scaling and factorisation; for a
   * cut pool, also folding new rows into the Gram matrix and computing A·w₀ for them.
   */
  setupTimeMs?: number;
  residuals: QpResiduals;
  /** Farkas certificate when status is primal_infeasible: row multipliers proving no x exists. */
  certificate?: Float64Array;
}

/** Progress reported by long solves. */
export interface QpProgress {
  iteration: number;
  primalResidual: number;
  dualResidual: number;
  elapsedMs: number;
}

export interface QpSolveControl {
  signal?: AbortSignal;
  onProgress?: (progress: QpProgress) => void;
}
