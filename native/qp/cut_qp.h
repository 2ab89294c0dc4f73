// The cut QP, shared by every solver of it (dual active set, ADMM):
//
//   minimise   ½ (x − w₀)ᵀ D (x − w₀)
//   subject to rowLowerᵢ ≤ aᵢᵀ x ≤ rowUpperᵢ   (i = 1..m; ±∞ allowed, equal bounds = equality)
//              varLowerⱼ ≤ wⱼ ≤ varUpperⱼ       (optional)
//
// with D a positive diagonal (identity when absent). Plain structs only: no Node-API here.
//
// Sign convention of multipliers (OSQP's): y > 0 on an active upper bound, y < 0 on an
// active lower bound, and the same for the variable-bound multipliers z, so that
//   D (x − w₀) + Aᵀ y + z = 0   at a solution.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>

#include <Eigen/Dense>

#include "qp/row_operator.h"

namespace advcorrect::qp {

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Names match lib/qp/types.ts QpStatus (see StatusName).
enum class CutQpStatus {
  kSolved,
  kSolvedInaccurate,
  kPrimalInfeasible,
  kDualInfeasible,
  kIterationLimitReached,
  kTimeLimitReached,
  kAborted,
  kNonConvex,
};

inline const char* StatusName(CutQpStatus status) {
  switch (status) {
    case CutQpStatus::kSolved: return "solved";
    case CutQpStatus::kSolvedInaccurate: return "solved_inaccurate";
    case CutQpStatus::kPrimalInfeasible: return "primal_infeasible";
    case CutQpStatus::kDualInfeasible: return "dual_infeasible";
    case CutQpStatus::kIterationLimitReached: return "iteration_limit_reached";
    case CutQpStatus::kTimeLimitReached: return "time_limit_reached";
    case CutQpStatus::kAborted: return "aborted";
    case CutQpStatus::kNonConvex: return "non_convex";
  }
  return "unknown";
}

struct CutQpSettings {
  static constexpr double kDefaultTolerance = 1e-9;
  static constexpr int kDefaultMaxIterations = 100000;
  static constexpr double kDefaultTimeLimitMs = 0;  // 0 = no limit
  static constexpr double kDefaultProgressIntervalMs = 100;

  // Feasibility tolerance: a constraint counts as violated when its violation exceeds
  // tolerance · max(1, |bound|) (the JS option `tolerance`).
  double tolerance = kDefaultTolerance;
  int max_iterations = kDefaultMaxIterations;
  double time_limit_ms = kDefaultTimeLimitMs;
  // Start from the previous solve's working set / iterate when the solver kept one.
  bool warm_start = true;
  // Least time between two progress reports.
  double progress_interval_ms = kDefaultProgressIntervalMs;
};

struct CutQpProgress {
  int iteration = 0;
  double primal_residual = 0;
  double dual_residual = 0;
  double elapsed_ms = 0;
};

// How a caller watches and stops a solve. Both members may be empty.
struct CutQpControl {
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const CutQpProgress&)> on_progress;

  bool cancelled() const { return cancel != nullptr && cancel->load(std::memory_order_relaxed); }
};

// A dense m × m matrix stored column-major with a leading dimension of at least m.
using GramView = Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>>;

// The problem as a solver sees it. Pointers are borrowed for the duration of the solve.
struct CutQpProblem {
  int n = 0;
  int m = 0;
  const RowOperator* rows = nullptr;    // m × n
  const double* row_lower = nullptr;    // m (−∞ allowed)
  const double* row_upper = nullptr;    // m (+∞ allowed)
  const double* diagonal = nullptr;     // n, all > 0; nullptr = identity
  const double* var_lower = nullptr;    // n or nullptr (no lower bounds)
  const double* var_upper = nullptr;    // n or nullptr (no upper bounds)
  const double* w0 = nullptr;           // n
  // Optional A D⁻¹ Aᵀ (m × m, column-major with leading dimension gram_stride ≥ m) when the
  // caller keeps it (the cut pool does, over-allocated so appends rarely move it).
  const double* gram = nullptr;
  Eigen::Index gram_stride = 0;
  GramView Gram() const { return GramView(gram, m, m, Eigen::OuterStride<>(gram_stride)); }
  // True when a pass over the rows with non-zero multipliers is expensive (long dense rows): the
  // dual solver then looks at variable bounds only once no row is violated, instead of
  // recomputing x for every choice of constraint.
  bool costly_rows = false;
  // Optional A w₀ (m values) when the caller caches it across solves (the cut pool does).
  const double* a_w0 = nullptr;
};

struct CutQpResiduals {
  double primal = 0;  // largest violation of a row or variable bound (absolute)
  double dual = 0;    // ‖D(x − w₀) + Aᵀy + z‖∞
  double gap = 0;     // largest |multiplier · distance to its bound| (complementarity)
};

struct CutQpResult {
  CutQpStatus status = CutQpStatus::kSolved;
  Eigen::VectorXd x;  // n: solution, or last iterate
  Eigen::VectorXd y;  // m: row multipliers
  Eigen::VectorXd z;  // n: variable-bound multipliers (zeros without bounds)
  double objective = 0;  // ½ (x − w₀)ᵀ D (x − w₀)
  int iterations = 0;
  double solve_time_ms = 0;     // wall time; callers add their set-up (setup_time_ms) to it
  double residual_time_ms = 0;  // recovering x from the multipliers and checking the residuals
  double setup_time_ms = 0;     // set by the caller: bringing G and A w₀ up to date beforehand
  CutQpResiduals residuals;
  // Farkas certificate when status is primal_infeasible (both empty otherwise):
  // (y, z) with Aᵀy + z ≈ 0 and Σ u·y⁺ − l·y⁻ (rows and bounds) < 0, proving no x exists.
  Eigen::VectorXd certificate_y;  // m
  Eigen::VectorXd certificate_z;  // n
  // Solver-specific counters (working-set size for the dual method, ρ updates for ADMM, ...).
  int active_rows = 0;
  int active_bounds = 0;
};

// The result of a solve stopped before its first iteration (while the caller prepared the
// problem): x = w₀, zero multipliers, and the residuals of that point. problem.gram may be null.
CutQpResult UnstartedResult(const CutQpProblem& problem, CutQpStatus status);

// Computes residuals and objective of (x, y, z) for a problem; shared by the solvers so
// they report the same quantities. Costs two passes over A.
CutQpResiduals ComputeResiduals(const CutQpProblem& problem, const Eigen::VectorXd& x,
                                const Eigen::VectorXd& y, const Eigen::VectorXd& z,
                                double* objective = nullptr);

}  // namespace advcorrect::qp
