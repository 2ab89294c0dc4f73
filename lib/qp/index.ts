/**
 * Public API of lib/qp: types, the QPS/LP/.sol interchange, independent residuals, the solver
 * dispatch and the solvers themselves.
 */
export * from './types.js';
export { readQps, readQpsFile, QPS_INFINITY, QPS_MAX_BYTES, type ReadQpsOptions } from './qps-reader.js';
export { writeQps, formatNumber } from './qps-writer.js';
export { writeLp, isValidLpName } from './lp-writer.js';
export {
  readSolution,
  readSolutionFile,
  writeSolution,
  writeSolutionFile,
  solutionVector,
  type SolutionFile,
} from './solution.js';
export {
  evaluatePrimal,
  kktResiduals,
  objectiveValue,
  isSuccess,
  isSolvedStatus,
  distance,
  multiplyA,
  multiplyP,
  type PrimalEvaluation,
  type KktEvaluation,
} from './residuals.js';
export {
  solveQp,
  checkProblemValues,
  crossedBounds,
  positiveDiagonal,
  cutQpToProblem,
  dumpCutQpData,
  dumpCutQp,
  DEFAULT_QP_TOLERANCE,
  type SolveQpOptions,
  type SolveQpResult,
  type QpSolverChoice,
  type CutQpData,
} from './solve.js';
export * from './admm.js';
export * from './cut-pool.js';
