// ADMM for convex QPs, following the OSQP algorithm (Stellato, Banjac, Goulart, Bemporad,
// Boyd, Math. Prog. Comp. 2020):
//
//   minimise ½ xᵀPx + qᵀx   subject to  l ≤ Ax ≤ u
//
// iterated on the equilibrated problem with relaxation α, step parameters σ and per-row ρ,
// adaptive ρ, termination on unscaled residuals, primal/dual infeasibility detection and
// solution polishing. The linear system of each iteration is solved by a back end:
//   * AdmmSparseKkt  — sparse LDLᵀ of the quasi-definite KKT matrix (general problems);
//   * AdmmCutSchur   — Woodbury reduction to a dense m×m Cholesky when P is diagonal
//                      (the cut QP, n large, m small).
// No Node-API here.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "qp/cut_qp.h"
#include "qp/general_qp.h"

namespace advcorrect::qp {

using AdmmStatus = CutQpStatus;

// OSQP-like settings. The defaults are the named constants below (one place).
struct AdmmSettings {
  static constexpr double kDefaultRho = 0.1;
  static constexpr double kDefaultSigma = 1e-6;
  static constexpr double kDefaultAlpha = 1.6;
  static constexpr double kDefaultTolerance = 1e-3;
  static constexpr double kDefaultRelativeTolerance = 1e-3;
  static constexpr double kDefaultPrimalInfeasibilityTolerance = 1e-6;
  static constexpr double kDefaultDualInfeasibilityTolerance = 1e-6;
  static constexpr int kDefaultMaxIterations = 4000;
  static constexpr int kDefaultScalingIterations = 10;
  static constexpr bool kDefaultAdaptiveRho = true;
  static constexpr double kDefaultAdaptiveRhoTolerance = 5.0;
  static constexpr int kDefaultCheckTermination = 25;
  static constexpr bool kDefaultPolish = true;
  static constexpr bool kDefaultGapTermination = true;
  static constexpr double kDefaultPolishDelta = 1e-6;
  static constexpr int kDefaultPolishRefineIterations = 5;
  // Per-row ρ: equality rows get ρ·kEqualityRhoFactor, free rows kRhoMin.
  static constexpr double kEqualityRhoFactor = 1e3;
  static constexpr double kRhoMin = 1e-6;
  static constexpr double kRhoMax = 1e6;
  static constexpr double kEqualityTolerance = 1e-4;  // (scaled) u − l below this = equality

  double rho = kDefaultRho;
  double sigma = kDefaultSigma;
  double alpha = kDefaultAlpha;
  double tolerance = kDefaultTolerance;
  double relative_tolerance = kDefaultRelativeTolerance;
  double primal_infeasibility_tolerance = kDefaultPrimalInfeasibilityTolerance;
  double dual_infeasibility_tolerance = kDefaultDualInfeasibilityTolerance;
  int max_iterations = kDefaultMaxIterations;
  int scaling = kDefaultScalingIterations;
  bool adaptive_rho = kDefaultAdaptiveRho;
  double adaptive_rho_tolerance = kDefaultAdaptiveRhoTolerance;
  // Least iterations between two ρ updates; 0 = automatic (= check_termination).
  int adaptive_rho_interval = 0;
  int check_termination = kDefaultCheckTermination;
  bool polish = kDefaultPolish;
  // Also require |primal − dual objective| ≤ tolerance + relative_tolerance·(objective terms) to stop
  // (not in OSQP; makes "solved" mean what benchmark success checks mean).
  bool gap_termination = kDefaultGapTermination;
  double delta = kDefaultPolishDelta;
  int polish_refine_iterations = kDefaultPolishRefineIterations;
  double time_limit_ms = 0;  // 0 = none
  double progress_interval_ms = 100;
  // Warm start (unscaled): x (n) and y (rows of A, m); z (n, variable bounds) optional.
  Eigen::VectorXd warm_x, warm_y, warm_z;
};

struct AdmmResult {
  AdmmStatus status = AdmmStatus::kIterationLimitReached;
  Eigen::VectorXd x;  // n
  Eigen::VectorXd y;  // m: multipliers of the rows of A
  Eigen::VectorXd z;  // n: multipliers of the variable bounds (zeros where unbounded)
  double objective = 0;
  int iterations = 0;
  double solve_time_ms = 0;
  double setup_time_ms = 0;
  double primal_residual = 0;  // max violation of row and variable bounds
  double dual_residual = 0;    // ‖Px + q + Aᵀy + z‖∞
  double gap = 0;              // |primal objective − dual objective|
  bool polished = false;
  int rho_updates = 0;
  double rho = 0;  // final (scalar) ρ
  // primal_infeasible: Farkas certificate (y rows, z bounds), normalised to ‖·‖∞ = 1.
  Eigen::VectorXd certificate_y, certificate_z;
  // dual_infeasible: a direction x with Px ≈ 0, qᵀx < 0, Ax in the recession cone.
  Eigen::VectorXd certificate_x;
  std::string message;  // detail for non_convex and failures
};

// Solves a general sparse QP (sparse KKT back end). Never throws on a numerical outcome
// (statuses instead); throws std::invalid_argument on a malformed problem.
AdmmResult SolveAdmm(const GeneralQp& problem, const AdmmSettings& settings,
                     const CutQpControl& control = {});

// Checks the arrays of a GeneralQp (sizes, CSC structure, NaN, l ≤ u); returns an empty
// string when valid, else a message.
std::string ValidateGeneralQp(const GeneralQp& problem);

// Solves the cut QP by ADMM with the m×m Schur (Woodbury) back end. Tolerances and limits
// come from `settings`; warm start from settings.warm_x / warm_y / warm_z.
CutQpResult SolveCutQpAdmm(const CutQpProblem& problem, const AdmmSettings& settings,
                           const CutQpControl& control = {}, AdmmResult* detail = nullptr);

// ---------------------------------------------------------------------------------------
// Back-end interface (internal, exposed for the tests): the problem after equilibration,
//   x = D x̄,  Ā = E A D,  P̄ = c D P D,  q̄ = c D q,  l̄ = E l,  ū = E u,  y = E ȳ / c.
// The constraint rows include the variable bounds appended as identity rows when the
// back end has them (rows m..m+nb-1 map to variables bound_index[k]).
class AdmmBackend {
 public:
  virtual ~AdmmBackend() = default;

  int n = 0;        // variables
  int rows = 0;     // constraint rows seen by ADMM (A rows + bound rows)
  int m_rows = 0;   // rows of A
  std::vector<int> bound_index;  // variable of each bound row
  Eigen::VectorXd D, E;  // scaling
  double c = 1;
  Eigen::VectorXd q, l, u;  // scaled data (l, u of all `rows`)
  double r = 0;

  enum class FactorResult { kOk, kNonConvex, kFailed };

  virtual void MultiplyP(const Eigen::VectorXd& x, Eigen::VectorXd& out) const = 0;    // P̄x
  virtual void MultiplyA(const Eigen::VectorXd& x, Eigen::VectorXd& out) const = 0;    // Āx
  virtual void MultiplyAt(const Eigen::VectorXd& y, Eigen::VectorXd& out) const = 0;   // Āᵀy
  // Factorises [P̄+σI, Āᵀ; Ā, −diag(1/ρ)] (or its equivalent).
  virtual FactorResult Factor(double sigma, const Eigen::VectorXd& rho) = 0;
  // Solves the system above: [x; ν] for right-hand side [rx; rz].
  virtual void Solve(const Eigen::VectorXd& rx, const Eigen::VectorXd& rz, Eigen::VectorXd& x,
                     Eigen::VectorXd& nu) = 0;
  // Optional fast path (the cut back end without variable bounds): with rx = σx − q̄ and Āx
  // known, the system is solved with one pass over A instead of two, and Āx̃ comes back from
  // the m×m Gram matrix. The core keeps Āx up to date by the relaxation step.
  virtual bool TracksAx() const { return false; }
  virtual void SolveTracked(double /*sigma*/, const Eigen::VectorXd& /*x*/, const Eigen::VectorXd& /*ax*/,
                            const Eigen::VectorXd& /*rz*/, Eigen::VectorXd& /*xt*/, Eigen::VectorXd& /*axt*/,
                            Eigen::VectorXd& /*nu*/) {}
  // Polishing: factorises [P̄+δI, Ā_Sᵀ; Ā_S, −δI] for the rows S (sorted) and solves it.
  virtual FactorResult FactorPolish(const std::vector<int>& active, double delta) = 0;
  virtual void SolvePolish(const Eigen::VectorXd& rx, const Eigen::VectorXd& rs,
                           Eigen::VectorXd& x, Eigen::VectorXd& ys) = 0;
  // Optional cheap check of P + σI ≻ 0 before iterating (diagonal P: sign of the diagonal).
  virtual bool HessianLooksConvex(std::string* why) const = 0;
};

// Runs the ADMM iteration on a back end; fills the scaled-space fields of `result`
// (x, y of all rows unscaled, status, iterations, certificates).
void RunAdmm(AdmmBackend& backend, const AdmmSettings& settings, const CutQpControl& control,
             const Eigen::VectorXd* warm_x, const Eigen::VectorXd* warm_y, AdmmResult& result);

}  // namespace advcorrect::qp
