// The JS-visible native cut pool (`new native.CutPool(n)`, held by lib/qp/cut-pool.ts as
// `CutPool.nativeHandle`). Other bindings (e.g. ADMM) reach its C++ object through here.
#pragma once
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

#include "cuts/cut_pool.h"

namespace advcorrect::binding {

// The native pool behind a JS handle; throws a JS TypeError for anything else.
cuts::CutPool* UnwrapCutPool(Napi::Value value);

// For a solve that runs off the main thread: marks the pool busy (appends/removals then
// throw) or throws a JS Error when another solve holds it. Call pool->release() in the
// job's on_finish, and pass the handle object in keep_alive.
void AcquireCutPoolForJob(Napi::Env env, cuts::CutPool* pool);

// Wall time since a pool solve began, against its time limit (0 = none), which covers the
// pool's set-up (folding rows into G) as well as the solver.
class SolveClock {
 public:
  explicit SolveClock(double limit_ms) : limit_ms_(limit_ms), started_(std::chrono::steady_clock::now()) {}
  double elapsedMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  }
  bool expired() const { return limit_ms_ > 0 && elapsedMs() >= limit_ms_; }
  // The limit left for the solver (0 = none).
  double remainingMs() const { return limit_ms_ > 0 ? std::max(1e-3, limit_ms_ - elapsedMs()) : 0.0; }

 private:
  double limit_ms_;
  std::chrono::steady_clock::time_point started_;
};

// Folds the pool's pending rows into G before a solve, stopping between panels on cancellation
// or when `clock` runs out. When it stopped, returns the result to report (status aborted or
// time_limit_reached, w = w₀, zero multipliers); the next solve continues the fold.
std::optional<qp::CutQpResult> FoldBeforeSolve(cuts::CutPool* pool, const double* w0, const std::atomic<bool>& cancel,
                                               const SolveClock& clock);

}  // namespace advcorrect::binding
