// Node-API binding of the ADMM solver (native/qp/admm.h):
//   admmSolve(problem, settings, onProgress?, cancelToken?)            → Promise<result>
//   admmSolveSync(problem, settings, onProgress?, cancelToken?)        → result
//   admmSolveCutPool(pool, w0, settings, onProgress?, cancelToken?)    → Promise<result>
//   admmSolveCutPoolSync(pool, w0, settings, onProgress?, cancelToken?) → result
// lib/qp/admm.ts validates first; everything is checked again here (TypeError/RangeError)
// so that bad input never reaches the solver.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "binding/async_job.h"
#include "binding/convert.h"
#include "binding/cut_pool_binding.h"
#include "binding/registry.h"
#include "cuts/pool_solve.h"
#include "qp/admm.h"

namespace advcorrect::binding {

namespace {

using qp::AdmmResult;
using qp::AdmmSettings;
using Vec = Eigen::VectorXd;

Napi::Object GetObject(Napi::Env env, Napi::Object from, const char* key, const std::string& what) {
  Napi::Value v = from.Get(key);
  if (!v.IsObject()) ThrowType(env, what + " must be an object");
  return v.As<Napi::Object>();
}

qp::CscMatrix ToCsc(Napi::Env env, Napi::Object o, const std::string& name) {
  qp::CscMatrix m;
  m.nrows = o.Get("nrows").ToNumber().Int32Value();
  m.ncols = o.Get("ncols").ToNumber().Int32Value();
  m.col_ptr = ToInts(env, o.Get("colPtr"), name + ".colPtr");
  m.row_index = ToInts(env, o.Get("rowIndex"), name + ".rowIndex");
  auto values = ToTypedArray<Napi::Float64Array, napi_float64_array>(env, o.Get("values"), name + ".values", "Float64Array");
  m.values.assign(values.Data(), values.Data() + values.ElementLength());
  return m;
}

double GetNumber(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("settings.") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) throw Napi::RangeError::New(o.Env(), std::string("settings.") + key + " must not be NaN");
  return d;
}

bool GetBool(Napi::Object o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("settings.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Vec GetOptionalVector(Napi::Env env, Napi::Object o, const char* key, int length) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Vec();
  std::vector<double> d = ToDoubles(env, v, std::string("settings.") + key, static_cast<size_t>(length));
  for (double x : d)
    if (!std::isfinite(x)) ThrowRange(env, std::string("settings.") + key + " must hold finite numbers");
  return Eigen::Map<Vec>(d.data(), length);
}

// Settings from a plain object with the camelCase names of lib/qp/admm.ts.
AdmmSettings ToSettings(Napi::Env env, Napi::Value value, int n, int m) {
  AdmmSettings s;
  if (value.IsUndefined() || value.IsNull()) return s;
  if (!value.IsObject()) ThrowType(env, "settings must be an object");
  Napi::Object o = value.As<Napi::Object>();
  s.rho = GetNumber(o, "rho", s.rho);
  s.sigma = GetNumber(o, "sigma", s.sigma);
  s.alpha = GetNumber(o, "alpha", s.alpha);
  s.tolerance = GetNumber(o, "tolerance", s.tolerance);
  s.relative_tolerance = GetNumber(o, "relativeTolerance", s.relative_tolerance);
  s.primal_infeasibility_tolerance = GetNumber(o, "primalInfeasibilityTolerance", s.primal_infeasibility_tolerance);
  s.dual_infeasibility_tolerance = GetNumber(o, "dualInfeasibilityTolerance", s.dual_infeasibility_tolerance);
  const double max_iterations = GetNumber(o, "maxIterations", s.max_iterations);
  const double scaling = GetNumber(o, "scalingIterations", s.scaling);
  const double check = GetNumber(o, "checkTermination", s.check_termination);
  const double interval = GetNumber(o, "adaptiveRhoInterval", s.adaptive_rho_interval);
  const double refine = GetNumber(o, "polishRefineIterations", s.polish_refine_iterations);
  s.adaptive_rho = GetBool(o, "adaptiveRho", s.adaptive_rho);
  s.adaptive_rho_tolerance = GetNumber(o, "adaptiveRhoTolerance", s.adaptive_rho_tolerance);
  s.polish = GetBool(o, "polish", s.polish);
  s.gap_termination = GetBool(o, "gapTermination", s.gap_termination);
  s.delta = GetNumber(o, "delta", s.delta);
  s.time_limit_ms = GetNumber(o, "timeLimitMs", s.time_limit_ms);
  s.progress_interval_ms = GetNumber(o, "progressIntervalMs", s.progress_interval_ms);
  if (!(s.rho > 0) || !(s.sigma > 0) || !(s.alpha > 0 && s.alpha < 2)) ThrowRange(env, "settings: rho and sigma must be > 0 and alpha in (0, 2)");
  if (!(s.tolerance >= 0) || !(s.relative_tolerance >= 0) || (s.tolerance == 0 && s.relative_tolerance == 0))
    ThrowRange(env, "settings: tolerance and relativeTolerance must be ≥ 0 and not both 0");
  if (!(s.primal_infeasibility_tolerance > 0) || !(s.dual_infeasibility_tolerance > 0)) ThrowRange(env, "settings: infeasibility tolerances must be > 0");
  if (!(max_iterations >= 1 && max_iterations <= 2e9) || !(scaling >= 0 && scaling <= 100) || !(check >= 1 && check <= 1e6) ||
      !(interval >= 0 && interval <= 2e9) || !(refine >= 0 && refine <= 100))
    ThrowRange(env, "settings: an iteration count is out of range");
  if (!(s.delta > 0) || !(s.time_limit_ms >= 0) || !(s.adaptive_rho_tolerance >= 1))
    ThrowRange(env, "settings: delta must be > 0, timeLimitMs ≥ 0, adaptiveRhoTolerance ≥ 1");
  s.max_iterations = static_cast<int>(max_iterations);
  s.scaling = static_cast<int>(scaling);
  s.check_termination = static_cast<int>(check);
  s.adaptive_rho_interval = static_cast<int>(interval);
  s.polish_refine_iterations = static_cast<int>(refine);
  s.warm_x = GetOptionalVector(env, o, "warmX", n);
  s.warm_y = GetOptionalVector(env, o, "warmY", m);
  s.warm_z = GetOptionalVector(env, o, "warmZ", n);
  return s;
}

Napi::Value ResultToJs(Napi::Env env, AdmmResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", qp::StatusName(r.status));
  o.Set("solver", "admm");
  o.Set("x", ToFloat64Array(env, r.x));
  o.Set("y", ToFloat64Array(env, r.y));
  o.Set("z", ToFloat64Array(env, r.z));
  o.Set("objective", r.objective);
  o.Set("iterations", r.iterations);
  o.Set("solveTimeMs", r.solve_time_ms);
  o.Set("setupTimeMs", r.setup_time_ms);
  Napi::Object res = Napi::Object::New(env);
  res.Set("primal", r.primal_residual);
  res.Set("dual", r.dual_residual);
  res.Set("gap", r.gap);
  o.Set("residuals", res);
  o.Set("polished", r.polished);
  o.Set("rhoUpdates", r.rho_updates);
  o.Set("rho", r.rho);
  if (r.certificate_y.size()) {
    o.Set("certificate", ToFloat64Array(env, r.certificate_y));
    o.Set("boundCertificate", ToFloat64Array(env, r.certificate_z.size() ? r.certificate_z : Vec::Zero(r.x.size())));
  }
  if (r.certificate_x.size()) o.Set("ray", ToFloat64Array(env, r.certificate_x));
  if (!r.message.empty()) o.Set("message", r.message);
  return o;
}

Napi::Value ProgressToJs(Napi::Env env, const qp::CutQpProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("iteration", p.iteration);
  o.Set("primalResidual", p.primal_residual);
  o.Set("dualResidual", p.dual_residual);
  o.Set("elapsedMs", p.elapsed_ms);
  return o;
}

std::shared_ptr<qp::GeneralQp> ToProblem(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) ThrowType(env, "problem must be an object");
  Napi::Object o = value.As<Napi::Object>();
  auto qp = std::make_shared<qp::GeneralQp>();
  auto q = ToTypedArray<Napi::Float64Array, napi_float64_array>(env, o.Get("q"), "problem.q", "Float64Array");
  qp->n = static_cast<int>(q.ElementLength());
  qp->q.assign(q.Data(), q.Data() + q.ElementLength());
  qp->P = ToCsc(env, GetObject(env, o, "P", "problem.P"), "P");
  qp->A = ToCsc(env, GetObject(env, o, "A", "problem.A"), "A");
  qp->m = qp->A.nrows;
  Napi::Value r = o.Get("r");
  qp->r = r.IsNumber() ? r.As<Napi::Number>().DoubleValue() : 0.0;
  qp->l = ToDoubles(env, o.Get("rowLower"), "problem.rowLower", static_cast<size_t>(std::max(0, qp->m)));
  qp->u = ToDoubles(env, o.Get("rowUpper"), "problem.rowUpper", static_cast<size_t>(std::max(0, qp->m)));
  qp->lb = ToDoubles(env, o.Get("varLower"), "problem.varLower", static_cast<size_t>(qp->n));
  qp->ub = ToDoubles(env, o.Get("varUpper"), "problem.varUpper", static_cast<size_t>(qp->n));
  const std::string invalid = qp::ValidateGeneralQp(*qp);
  if (!invalid.empty()) ThrowRange(env, "problem: " + invalid);
  return qp;
}

Napi::Value Solve(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto problem = ToProblem(env, info[0]);
  auto settings = std::make_shared<AdmmSettings>(ToSettings(env, info[1], problem->n, problem->m));
  CancelFlag cancel = CancelFlagFrom(info[3]);
  JobSpec<AdmmResult, qp::CutQpProgress> spec;
  spec.work = [problem, settings](const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
    qp::CutQpControl control;
    control.cancel = &flag;
    control.on_progress = report;
    return qp::SolveAdmm(*problem, *settings, control);
  };
  spec.to_js = ResultToJs;
  spec.progress_to_js = ProgressToJs;
  if (async) return RunAsyncJob(env, std::move(spec), info[2], cancel);
  return RunSyncJob(env, std::move(spec), info[2], cancel);
}

Napi::Value SolveAsync(const Napi::CallbackInfo& info) { return Solve(info, true); }
Napi::Value SolveSync(const Napi::CallbackInfo& info) { return Solve(info, false); }

// ----- cut pool ----------------------------------------------------------------------

AdmmResult SolvePool(cuts::CutPool* pool, const std::vector<double>& w0, const AdmmSettings& settings, bool warm,
                     const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
  qp::CutQpControl control;
  control.cancel = &flag;
  control.on_progress = report;
  return cuts::SolveAdmmOnPool(*pool, w0.data(), settings, warm, control);
}

Napi::Value SolveCutPool(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  cuts::CutPool* pool = UnwrapCutPool(info[0]);
  const int n = pool->n();
  std::vector<double> w0 = ToDoubles(env, info[1], "w0", static_cast<size_t>(n));
  for (double v : w0)
    if (!std::isfinite(v)) ThrowRange(env, "w0 must hold finite numbers");
  AdmmSettings settings = ToSettings(env, info[2], n, pool->size());
  bool warm = true;
  if (info[2].IsObject()) warm = GetBool(info[2].As<Napi::Object>(), "warmStart", true);
  CancelFlag cancel = CancelFlagFrom(info[4]);
  JobSpec<AdmmResult, qp::CutQpProgress> spec;
  spec.to_js = ResultToJs;
  spec.progress_to_js = ProgressToJs;
  if (!async) {
    if (pool->busy()) throw Napi::Error::New(env, "the cut pool is in use by another solve");
    spec.work = [pool, w0, settings, warm](const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
      return SolvePool(pool, w0, settings, warm, flag, report);
    };
    return RunSyncJob(env, std::move(spec), info[3], cancel);
  }
  AcquireCutPoolForJob(env, pool);
  auto shared_w0 = std::make_shared<std::vector<double>>(std::move(w0));
  auto shared_settings = std::make_shared<AdmmSettings>(std::move(settings));
  spec.work = [pool, shared_w0, shared_settings, warm](const std::atomic<bool>& flag,
                                                        const ProgressSink<qp::CutQpProgress>& report) {
    return SolvePool(pool, *shared_w0, *shared_settings, warm, flag, report);
  };
  spec.on_finish = [pool] { pool->release(); };
  return RunAsyncJob(env, std::move(spec), info[3], cancel, {info[0].As<Napi::Object>()});
}

Napi::Value SolveCutPoolAsync(const Napi::CallbackInfo& info) { return SolveCutPool(info, true); }
Napi::Value SolveCutPoolSync(const Napi::CallbackInfo& info) { return SolveCutPool(info, false); }

Napi::Value Defaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AdmmSettings s;
  Napi::Object o = Napi::Object::New(env);
  o.Set("rho", s.rho);
  o.Set("sigma", s.sigma);
  o.Set("alpha", s.alpha);
  o.Set("tolerance", s.tolerance);
  o.Set("relativeTolerance", s.relative_tolerance);
  o.Set("primalInfeasibilityTolerance", s.primal_infeasibility_tolerance);
  o.Set("dualInfeasibilityTolerance", s.dual_infeasibility_tolerance);
  o.Set("maxIterations", s.max_iterations);
  o.Set("scalingIterations", s.scaling);
  o.Set("adaptiveRho", s.adaptive_rho);
  o.Set("adaptiveRhoTolerance", s.adaptive_rho_tolerance);
  o.Set("adaptiveRhoInterval", s.adaptive_rho_interval);
  o.Set("checkTermination", s.check_termination);
  o.Set("polish", s.polish);
  o.Set("gapTermination", s.gap_termination);
  o.Set("delta", s.delta);
  o.Set("polishRefineIterations", s.polish_refine_iterations);
  o.Set("timeLimitMs", s.time_limit_ms);
  return o;
}

// A failed allocation while reading a problem becomes ERR_NO_MEMORY instead of an abort.
template <Napi::Value (*Function)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return GuardNative(info.Env(), [&] { return Function(info); });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("admmSolve", Napi::Function::New(env, Guarded<SolveAsync>, "admmSolve"));
  exports.Set("admmSolveSync", Napi::Function::New(env, Guarded<SolveSync>, "admmSolveSync"));
  exports.Set("admmSolveCutPool", Napi::Function::New(env, Guarded<SolveCutPoolAsync>, "admmSolveCutPool"));
  exports.Set("admmSolveCutPoolSync", Napi::Function::New(env, Guarded<SolveCutPoolSync>, "admmSolveCutPoolSync"));
  exports.Set("admmDefaults", Napi::Function::New(env, Defaults, "admmDefaults"));
}

const ModuleRegistrar registrar("admm", Init);

}  // namespace
}  // namespace advcorrect::binding
