// The cut QP's settings, progress and result between JS and C++, shared by the bindings of both
// cut pools (the stored CutPool and the FactoredCutPool): one reader of the solve options and
// one writer of the result, so both pools take and give the same keys.
#pragma once
#include <napi.h>

#include <cmath>
#include <memory>
#include <vector>

#include "binding/convert.h"
#include "qp/cut_qp.h"

namespace advcorrect::binding {

// solve(w0, settings): tolerance, maxIterations, timeLimitMs, warmStart, progressIntervalMs
// (each optional; undefined keeps the named default of CutQpSettings).
inline std::shared_ptr<qp::CutQpSettings> ReadCutQpSettings(Napi::Env env, const Napi::Value& value) {
  auto settings = std::make_shared<qp::CutQpSettings>();
  if (!value.IsObject()) return settings;
  Napi::Object o = value.As<Napi::Object>();
  const auto given = [&](const char* key) { return o.Has(key) && !o.Get(key).IsUndefined(); };
  if (given("tolerance")) {
    const double tolerance = ToNumber(env, o.Get("tolerance"), "tolerance");
    if (!(tolerance > 0) || !std::isfinite(tolerance)) ThrowRange(env, "tolerance must be a positive number");
    settings->tolerance = tolerance;
  }
  if (given("maxIterations")) {
    const double it = ToNumber(env, o.Get("maxIterations"), "maxIterations");
    if (!(it >= 1) || it != std::floor(it)) ThrowRange(env, "maxIterations must be a positive integer");
    settings->max_iterations = it > 2147483647.0 ? 2147483647 : static_cast<int>(it);
  }
  if (given("timeLimitMs")) {
    const double t = ToNumber(env, o.Get("timeLimitMs"), "timeLimitMs");
    if (!(t > 0)) ThrowRange(env, "timeLimitMs must be a positive number");
    settings->time_limit_ms = t;
  }
  if (given("warmStart")) settings->warm_start = o.Get("warmStart").ToBoolean();
  if (given("progressIntervalMs")) settings->progress_interval_ms = ToNumber(env, o.Get("progressIntervalMs"), "progressIntervalMs");
  return settings;
}

inline Napi::Value CutQpProgressToJs(Napi::Env env, const qp::CutQpProgress& progress) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("iteration", progress.iteration);
  o.Set("primalResidual", progress.primal_residual);
  o.Set("dualResidual", progress.dual_residual);
  o.Set("elapsedMs", progress.elapsed_ms);
  return o;
}

// A dual active-set solve's result as the JS CutQpResult.
inline Napi::Value CutQpResultToJs(Napi::Env env, const qp::CutQpResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", qp::StatusName(r.status));
  o.Set("solver", "dual");
  o.Set("x", ToFloat64Array(env, r.x));
  o.Set("y", ToFloat64Array(env, r.y));
  o.Set("z", ToFloat64Array(env, r.z));
  o.Set("objective", r.objective);
  o.Set("iterations", r.iterations);
  o.Set("solveTimeMs", r.solve_time_ms);
  o.Set("setupTimeMs", r.setup_time_ms);
  o.Set("residualTimeMs", r.residual_time_ms);
  Napi::Object res = Napi::Object::New(env);
  res.Set("primal", r.residuals.primal);
  res.Set("dual", r.residuals.dual);
  res.Set("gap", r.residuals.gap);
  o.Set("residuals", res);
  if (r.certificate_y.size() > 0) {
    o.Set("certificate", ToFloat64Array(env, r.certificate_y));
    o.Set("boundCertificate", ToFloat64Array(env, r.certificate_z));
  }
  o.Set("activeRows", r.active_rows);
  o.Set("activeBounds", r.active_bounds);
  return o;
}

// A pool's row bounds as { lower, upper } Float64Arrays.
inline Napi::Value RowBoundsToJs(Napi::Env env, const std::vector<double>& lower, const std::vector<double>& upper) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Float64Array lo = Napi::Float64Array::New(env, lower.size());
  Napi::Float64Array up = Napi::Float64Array::New(env, upper.size());
  for (size_t i = 0; i < lower.size(); ++i) lo[i] = lower[i];
  for (size_t i = 0; i < upper.size(); ++i) up[i] = upper[i];
  out.Set("lower", lo);
  out.Set("upper", up);
  return out;
}

}  // namespace advcorrect::binding
