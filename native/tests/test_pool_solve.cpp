// C++ checks of the steps around a solve on a cut pool (cuts/pool_solve.h): the remembered
// working set mapped onto the rows that survive removals, what a solve records (and what a
// failed one does not), the ADMM warm start from recorded multipliers (stationarity, variable
// bounds, rows appended or removed since), and the fold stopped by cancellation or time.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuts/cut_pool.h"
#include "cuts/pool_solve.h"
#include "tests/check.h"

using advcorrect::cuts::CutPool;
using advcorrect::testing::Check;
using namespace advcorrect::qp;
namespace cuts = advcorrect::cuts;

namespace {

// A pool of m random dense rows aᵀx ≥ aᵀw₀ + offset (violated at w₀), optional box bounds
// w₀ ± 0.3 on x and a non-trivial diagonal.
std::unique_ptr<CutPool> MakePool(std::mt19937& rng, int n, int m, bool bounds, double offset, Eigen::VectorXd& w0) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> positive(0.5, 2.0);
  auto pool = std::make_unique<CutPool>(n);
  w0 = Eigen::VectorXd::NullaryExpr(n, [&] { return normal(rng); });
  Eigen::VectorXd d = Eigen::VectorXd::NullaryExpr(n, [&] { return positive(rng); });
  pool->setDiagonal(d);
  if (bounds) pool->setBounds((w0.array() - 0.3).matrix(), (w0.array() + 0.3).matrix());
  for (int i = 0; i < m; ++i) {
    Eigen::VectorXd a = Eigen::VectorXd::NullaryExpr(n, [&] { return normal(rng); });
    pool->appendDense(a.data(), a.dot(w0) + offset, kInfinity);
  }
  return pool;
}

double MaxAbs(const Eigen::VectorXd& v) { return v.size() ? v.lpNorm<Eigen::Infinity>() : 0.0; }

void CheckWarmWorkingSetMapping() {
  CutPool pool(3);
  const double row[3] = {1, 0, 0};
  for (int i = 0; i < 6; ++i) pool.appendDense(row, -1, 1);
  const std::vector<int64_t> ids = pool.ids();
  Check(!cuts::WarmWorkingSet(pool).has_value(), "no working set before any solve");
  // Rows at positions 1, 3, 4 (signs +1, −1, +1) and bound of variable 2 on its lower side.
  DualWorkingSet set;
  set.rows = {4, 1, 3};
  set.row_signs = {1, 1, -1};
  set.bounds = {2};
  set.bound_signs = {-1};
  cuts::RememberWorkingSet(pool, set);
  const cuts::DualWarmState& state = pool.dualWarmState();
  Check(state.valid && state.row_ids == std::vector<int64_t>({ids[4], ids[1], ids[3]}), "working set remembered by id");
  // Drop the rows at positions 0 and 1: the survivors move up by one or two places.
  pool.remove({ids[0], ids[1]});
  const std::optional<DualWorkingSet> warm = cuts::WarmWorkingSet(pool);
  Check(warm.has_value(), "working set after removals");
  if (!warm) return;
  Check(warm->rows == std::vector<int>({2, 1}), "surviving rows at their new positions, order kept");
  Check(warm->row_signs == std::vector<int>({1, -1}), "the removed row's sign goes with it");
  Check(warm->bounds == std::vector<int>({2}) && warm->bound_signs == std::vector<int>({-1}), "bounds kept");
  // Every row of the working set removed: an empty set, still valid.
  pool.remove({ids[3], ids[4]});
  const std::optional<DualWorkingSet> none = cuts::WarmWorkingSet(pool);
  Check(none.has_value() && none->rows.empty() && none->row_signs.empty(), "all working rows removed");
  // Changing the variable bounds forgets the working set.
  pool.setBounds(Eigen::VectorXd::Constant(3, -1), Eigen::VectorXd::Constant(3, 1));
  Check(!cuts::WarmWorkingSet(pool).has_value(), "new bounds forget the working set");
}

void CheckRecording() {
  std::mt19937 rng(5);
  Eigen::VectorXd w0;
  auto owned = MakePool(rng, 8, 4, false, 1.0, w0);
  CutPool& pool = *owned;
  CutQpResult result;
  result.status = CutQpStatus::kAborted;
  result.y = Eigen::VectorXd::Constant(4, 2.0);
  DualWorkingSet set;
  set.rows = {0};
  set.row_signs = {-1};
  cuts::RecordDualSolve(pool, result, set);
  cuts::RecordAdmmSolve(pool, result);
  Check(!pool.dualWarmState().valid && pool.row(0).last_multiplier == 0 && pool.row(0).inactive_solves == 0,
        "an aborted solve records nothing");
  result.status = CutQpStatus::kSolvedInaccurate;
  result.y << 0, -1, 0, 3;
  cuts::RecordDualSolve(pool, result, set);
  Check(pool.dualWarmState().valid && pool.dualWarmState().row_ids == std::vector<int64_t>({pool.row(0).id}),
        "a solved_inaccurate solve remembers its working set");
  Check(pool.row(1).last_multiplier == -1 && pool.row(3).last_multiplier == 3 && pool.row(0).inactive_solves == 1 &&
            pool.row(1).inactive_solves == 0,
        "a solve records its multipliers");
  result.status = CutQpStatus::kSolved;
  result.y << 0, 0, 0, 1;
  cuts::RecordAdmmSolve(pool, result);
  Check(pool.row(0).inactive_solves == 2 && pool.row(1).inactive_solves == 1 && pool.row(1).last_multiplier == 0,
        "an ADMM solve records its multipliers");
  // Multipliers of another length (rows changed meanwhile) are not recorded.
  result.y = Eigen::VectorXd::Constant(3, 7.0);
  cuts::RecordAdmmSolve(pool, result);
  Check(pool.row(0).last_multiplier == 0 && pool.row(3).last_multiplier == 1, "multipliers of the wrong length ignored");
}

// settings.warm_x/y/z against stationarity D(x − w₀) + Aᵀy + z = 0 with x inside its bounds.
void CheckStationaryStart(const CutPool& pool, const Eigen::VectorXd& w0, const AdmmSettings& s, const std::string& name) {
  const int n = pool.n();
  Check(s.warm_x.size() == n && s.warm_y.size() == pool.size() && s.warm_z.size() == n, name + ": warm start sizes");
  if (s.warm_x.size() != n || s.warm_y.size() != pool.size() || s.warm_z.size() != n) return;
  for (int i = 0; i < pool.size(); ++i) {
    Check(s.warm_y[i] == pool.row(i).last_multiplier, name + ": y is the recorded multiplier of row " + std::to_string(i));
  }
  Eigen::VectorXd residual = pool.diagonal().cwiseProduct(s.warm_x - w0) + s.warm_z;
  pool.multiplyTransposeAdd(s.warm_y.data(), 1.0, residual.data());
  Check(MaxAbs(residual) < 1e-12, name + ": stationarity residual " + std::to_string(MaxAbs(residual)));
  if (pool.hasBounds()) {
    const bool inside = ((s.warm_x - pool.varLower()).minCoeff() >= 0) && ((pool.varUpper() - s.warm_x).minCoeff() >= 0);
    Check(inside, name + ": warm x within the variable bounds");
    bool clipped = false;
    for (int j = 0; j < n; ++j) {
      // z is non-zero only where x sits on a bound (upper: z > 0, lower: z < 0).
      if (s.warm_z[j] > 0) Check(s.warm_x[j] == pool.varUpper()[j], name + ": z > 0 off the upper bound");
      if (s.warm_z[j] < 0) Check(s.warm_x[j] == pool.varLower()[j], name + ": z < 0 off the lower bound");
      clipped = clipped || s.warm_z[j] != 0;
    }
    Check(clipped, name + ": some variable clipped to a bound");
  } else {
    Check(MaxAbs(s.warm_z) == 0, name + ": z = 0 without bounds");
  }
}

void CheckAdmmWarmStart(bool bounds) {
  const std::string tag = bounds ? " (bounds)" : "";
  std::mt19937 rng(bounds ? 17 : 13);
  Eigen::VectorXd w0;
  // Offset 2 against bounds ±0.3: some variables end on a bound.
  auto owned = MakePool(rng, 30, 6, bounds, 2.0, w0);
  CutPool& pool = *owned;
  {
    AdmmSettings s;
    Check(!cuts::WarmStartAdmmFromPool(pool, pool.problem(w0.data()), s) && s.warm_x.size() == 0,
          "no warm start before any recorded multiplier" + tag);
  }
  const CutQpControl control;
  const AdmmResult first = cuts::SolveAdmmOnPool(pool, w0.data(), AdmmSettings{}, true, control);
  Check(first.status == CutQpStatus::kSolved, "ADMM on the pool solves" + tag + ": " + StatusName(first.status));
  Check(MaxAbs(first.y) > 0, "some row is active" + tag);
  for (int i = 0; i < pool.size(); ++i) Check(pool.row(i).last_multiplier == first.y[i], "ADMM solve recorded y" + tag);
  {
    AdmmSettings s;
    Check(cuts::WarmStartAdmmFromPool(pool, pool.problem(w0.data()), s), "warm start from recorded multipliers" + tag);
    CheckStationaryStart(pool, w0, s, "after a solve" + tag);
  }
  {
    // A warm start the caller gave wins.
    AdmmSettings s;
    s.warm_y = Eigen::VectorXd::Constant(pool.size(), 0.25);
    Check(!cuts::WarmStartAdmmFromPool(pool, pool.problem(w0.data()), s) && s.warm_y[0] == 0.25 && s.warm_x.size() == 0,
          "a given warm_y is kept" + tag);
  }
  // Rows appended after the solve start at multiplier 0; a removed row's multiplier goes.
  std::normal_distribution<double> normal;
  Eigen::VectorXd a = Eigen::VectorXd::NullaryExpr(pool.n(), [&] { return normal(rng); });
  pool.appendDense(a.data(), -kInfinity, a.dot(w0) + 10);
  int active = 0;
  while (active + 1 < first.y.size() && first.y[active] == 0) ++active;
  const std::vector<int64_t> ids = pool.ids();
  pool.remove({ids[static_cast<size_t>(active == 0 ? 1 : 0)]});
  {
    AdmmSettings s;
    Check(cuts::WarmStartAdmmFromPool(pool, pool.problem(w0.data()), s), "warm start after appending and removing" + tag);
    Check(s.warm_y.size() == pool.size() && s.warm_y[pool.size() - 1] == 0, "the appended row starts at 0" + tag);
    CheckStationaryStart(pool, w0, s, "after appending and removing" + tag);
  }
  // The warm-started solve and a cold one agree.
  const AdmmResult warm = cuts::SolveAdmmOnPool(pool, w0.data(), AdmmSettings{}, true, control);
  const AdmmResult cold = cuts::SolveAdmmOnPool(pool, w0.data(), AdmmSettings{}, false, control);
  Check(warm.status == CutQpStatus::kSolved && cold.status == CutQpStatus::kSolved, "warm and cold solve" + tag);
  const double scale = std::max(1.0, MaxAbs(cold.x));
  Check(MaxAbs(warm.x - cold.x) < 1e-2 * scale, "warm and cold ADMM agree" + tag + ": " + std::to_string(MaxAbs(warm.x - cold.x)));
}

void CheckDualOnPool() {
  std::mt19937 rng(23);
  Eigen::VectorXd w0;
  auto owned = MakePool(rng, 40, 12, true, 0.5, w0);
  CutPool& pool = *owned;
  CutQpSettings settings;
  const CutQpControl control;
  const CutQpResult first = cuts::SolveDualOnPool(pool, w0.data(), settings, control);
  Check(first.status == CutQpStatus::kSolved, std::string("dual on the pool: ") + StatusName(first.status));
  Check(pool.dualWarmState().valid, "the dual solve remembered its working set");
  Check(first.solve_time_ms >= first.setup_time_ms, "set-up is part of the solve time");
  // Drop a row of the working set and solve warm; a cold solve on the same rows agrees.
  Check(!pool.dualWarmState().row_ids.empty(), "some row in the working set");
  if (pool.dualWarmState().row_ids.empty()) return;
  const int64_t dropped = pool.dualWarmState().row_ids.front();
  pool.remove({dropped});
  const CutQpResult warm = cuts::SolveDualOnPool(pool, w0.data(), settings, control);
  settings.warm_start = false;
  const CutQpResult cold = cuts::SolveDualOnPool(pool, w0.data(), settings, control);
  Check(warm.status == CutQpStatus::kSolved && cold.status == CutQpStatus::kSolved, "warm and cold dual solve");
  Check(MaxAbs(warm.x - cold.x) < 1e-9, "warm and cold dual agree: " + std::to_string(MaxAbs(warm.x - cold.x)));
}

void CheckStoppedFold() {
  std::mt19937 rng(29);
  Eigen::VectorXd w0;
  auto owned = MakePool(rng, 20, 5, false, 1.0, w0);
  CutPool& pool = *owned;
  std::atomic<bool> cancel{true};
  CutQpControl control;
  control.cancel = &cancel;
  const CutQpResult aborted = cuts::SolveDualOnPool(pool, w0.data(), CutQpSettings{}, control);
  Check(aborted.status == CutQpStatus::kAborted, std::string("cancelled fold: ") + StatusName(aborted.status));
  Check(aborted.x.size() == w0.size() && MaxAbs(aborted.x - w0) == 0 && MaxAbs(aborted.y) == 0, "a stopped fold reports x = w0, y = 0");
  Check(!pool.gramUpToDate() && !pool.dualWarmState().valid, "nothing folded or recorded");
  const AdmmResult admm_aborted = cuts::SolveAdmmOnPool(pool, w0.data(), AdmmSettings{}, true, control);
  Check(admm_aborted.status == CutQpStatus::kAborted && MaxAbs(admm_aborted.x - w0) == 0, "ADMM: cancelled fold");
  const cuts::SolveClock expired(1e-9);
  while (!expired.expired()) {
  }
  cancel = false;
  const std::optional<CutQpResult> late = cuts::FoldBeforeSolve(pool, w0.data(), control, expired);
  Check(late.has_value() && late->status == CutQpStatus::kTimeLimitReached, "an expired clock stops the fold");
  const cuts::SolveClock unlimited(0);
  Check(!cuts::FoldBeforeSolve(pool, w0.data(), control, unlimited).has_value() && pool.gramUpToDate(),
        "the next fold completes");
}

}  // namespace

int main() {
  CheckWarmWorkingSetMapping();
  CheckRecording();
  CheckAdmmWarmStart(false);
  CheckAdmmWarmStart(true);
  CheckDualOnPool();
  CheckStoppedFold();
  return advcorrect::testing::Report();
}
