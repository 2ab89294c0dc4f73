// Dual active-set solver of the cut QP (Goldfarb–Idnani style, on the Gram matrix).
//
// It keeps the working set W of active constraints (rows, and variable bounds as implicit
// rows e_jᵀw whose Gram entries are 1/d_j and a_ij/d_j) with a Cholesky factor of G_WW that
// is updated as constraints enter and leave. Each step picks the most violated constraint,
// moves the multipliers along the direction that keeps W tight until the constraint is
// satisfied or a multiplier would change sign (then that constraint leaves), so the dual
// objective rises monotonically and the iterate stays dual feasible. A constraint that is
// linearly dependent on W with no multiplier able to leave proves infeasibility; the step
// direction is then the Farkas certificate.
#pragma once
#include <vector>

#include "qp/cut_qp.h"

namespace advcorrect::qp {

// A working set: rows by position with the active side (+1 upper, −1 lower), and variable
// bounds by index with their side.
struct DualWorkingSet {
  std::vector<int> rows;
  std::vector<int> row_signs;
  std::vector<int> bounds;
  std::vector<int> bound_signs;
};

// Solves the problem (problem.gram is required: m × m, A D⁻¹ Aᵀ). `warm` (optional) is a
// starting working set, e.g. the previous solve's; constraints of it that turn out dependent
// or with a wrong-signed multiplier are dropped. `final_set` (optional) receives the working
// set at the end. Never throws for numerical trouble: it reports a status.
CutQpResult SolveDualActiveSet(const CutQpProblem& problem, const CutQpSettings& settings,
                               const CutQpControl& control, const DualWorkingSet* warm = nullptr,
                               DualWorkingSet* final_set = nullptr);

}  // namespace advcorrect::qp
