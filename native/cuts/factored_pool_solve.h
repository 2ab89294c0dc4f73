// The dual active-set method on a factored cut pool: the same steps as SolveDualOnPool
// (pool_solve.h) — fold pending rows into G within the time limit, warm start from the working
// set remembered by row id, record the outcome — for FactoredCutPool.
#pragma once
#include <optional>

#include "cuts/factored_pool.h"
#include "qp/cut_qp.h"
#include "qp/dual_active_set.h"

namespace advcorrect::cuts {

// The remembered working set mapped onto the pool's current rows (removed rows drop out).
std::optional<qp::DualWorkingSet> WarmWorkingSet(const FactoredCutPool& pool);

qp::CutQpResult SolveDualOnFactoredPool(FactoredCutPool& pool, const double* w0, const qp::CutQpSettings& settings,
                                        const qp::CutQpControl& control);

}  // namespace advcorrect::cuts
