// JS class `FactoredCutPool` over advcorrect::cuts::FactoredCutPool and its dual active-set solve
// (cuts::SolveDualOnFactoredPool). Conversions only; lib/qp/factored-pool.ts validates the
// arguments first with exact messages, the checks here keep bad input from crashing the process.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "binding/async_job.h"
#include "binding/convert.h"
#include "binding/cut_qp_js.h"
#include "binding/registry.h"
#include "cuts/factored_pool_solve.h"

namespace advcorrect::binding {
namespace {

struct FactoredSolveResult {
  qp::CutQpResult result;
};

void CheckRowBounds(Napi::Env env, double lower, double upper) {
  if (lower > upper) ThrowRange(env, "lower must not exceed upper");
  if (lower == qp::kInfinity) ThrowRange(env, "lower must not be Infinity");
  if (upper == -qp::kInfinity) ThrowRange(env, "upper must not be -Infinity");
}

class FactoredPoolWrap : public Napi::ObjectWrap<FactoredPoolWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FactoredCutPool",
                       {InstanceAccessor<&FactoredPoolWrap::Size>("size"),
                        InstanceAccessor<&FactoredPoolWrap::N>("n"),
                        InstanceAccessor<&FactoredPoolWrap::RestSize>("restSize"),
                        InstanceAccessor<&FactoredPoolWrap::FactorSize>("factorSize"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::AppendFactored>>("appendFactored"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::AppendDense>>("appendDense"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::Ids>>("ids"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::Remove>>("remove"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::RemoveInactive>>("removeInactive"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::MemoryBytes>>("memoryBytes"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::Gram>>("gram"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::RowActivity>>("rowActivity"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::ExpandRow>>("expandRow"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::Bounds>>("rowBounds"),
                        InstanceMethod<&FactoredPoolWrap::Dispose>("dispose"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::SolveAsync>>("solveDual"),
                        InstanceMethod<&FactoredPoolWrap::Guarded<&FactoredPoolWrap::SolveSync>>("solveDualSync")});
  }

  // new FactoredCutPool(n, blocks): blocks a Float64Array of (offset, rows, cols) triples.
  explicit FactoredPoolWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FactoredPoolWrap>(info) {
    Napi::Env env = info.Env();
    const double n = ToNumber(env, info[0], "n");
    if (!(n >= 1) || n != std::floor(n) || n > 2147483647.0) ThrowRange(env, "n must be a positive integer");
    auto blocks = ToTypedArray<Napi::Float64Array, napi_float64_array>(env, info[1], "blocks", "Float64Array");
    if (blocks.ElementLength() % 3 != 0) ThrowRange(env, "blocks must hold (offset, rows, cols) triples");
    std::vector<cuts::FactorBlock> list;
    for (size_t k = 0; k < blocks.ElementLength(); k += 3) {
      for (size_t q = 0; q < 3; ++q) {
        const double v = blocks[k + q];
        if (!(v >= 0) || v != std::floor(v) || v > 2147483647.0) ThrowRange(env, "blocks must hold non-negative integers");
      }
      list.push_back({static_cast<int64_t>(blocks[k]), static_cast<int>(blocks[k + 1]), static_cast<int>(blocks[k + 2])});
    }
    GuardNative(env, [&] {
      try {
        pool_ = std::make_unique<cuts::FactoredCutPool>(static_cast<int>(n), std::move(list));
      } catch (const std::invalid_argument& e) {
        ThrowRange(env, e.what());
      }
      return env.Undefined();
    });
  }

 private:
  cuts::FactoredCutPool* pool(Napi::Env env) const {
    if (!pool_) throw Napi::Error::New(env, "the cut pool was disposed");
    return pool_.get();
  }
  cuts::FactoredCutPool* mutablePool(Napi::Env env) const {
    cuts::FactoredCutPool* p = pool(env);
    if (p->busy()) throw Napi::Error::New(env, "the cut pool is in use by a running solve");
    return p;
  }

  template <Napi::Value (FactoredPoolWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info) {
    return GuardNative(info.Env(), [&] { return (this->*Method)(info); });
  }

  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool(info.Env())->size()); }
  Napi::Value N(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool(info.Env())->n()); }
  Napi::Value RestSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(pool(info.Env())->layout().restSize()));
  }
  Napi::Value FactorSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(pool(info.Env())->layout().factorSize()));
  }

  // appendFactored(factors: Float32Array, rest: Float32Array, lower, upper)
  Napi::Value AppendFactored(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    auto factors = ToTypedArray<Napi::Float32Array, napi_float32_array>(env, info[0], "factors", "Float32Array");
    auto rest = ToTypedArray<Napi::Float32Array, napi_float32_array>(env, info[1], "rest", "Float32Array");
    const double lower = ToNumber(env, info[2], "lower");
    const double upper = ToNumber(env, info[3], "upper");
    CheckRowBounds(env, lower, upper);
    try {
      const int64_t id = p->appendFactored(factors.Data(), static_cast<int64_t>(factors.ElementLength()), rest.Data(),
                                           static_cast<int64_t>(rest.ElementLength()), lower, upper);
      return Napi::Number::New(env, static_cast<double>(id));
    } catch (const std::invalid_argument& e) {
      ThrowRange(env, e.what());
    }
  }

  // appendDense(row: Float32Array | Float64Array, lower, upper)
  Napi::Value AppendDense(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    if (!info[0].IsTypedArray()) ThrowType(env, "row must be a Float32Array or Float64Array");
    Napi::TypedArray row = info[0].As<Napi::TypedArray>();
    const double lower = ToNumber(env, info[1], "lower");
    const double upper = ToNumber(env, info[2], "upper");
    CheckRowBounds(env, lower, upper);
    if (row.ElementLength() != static_cast<size_t>(p->n())) {
      ThrowRange(env, "row must have length " + std::to_string(p->n()) + ", got " + std::to_string(row.ElementLength()));
    }
    try {
      int64_t id;
      if (row.TypedArrayType() == napi_float32_array) {
        id = p->appendDense(row.As<Napi::Float32Array>().Data(), lower, upper);
      } else if (row.TypedArrayType() == napi_float64_array) {
        id = p->appendDense(row.As<Napi::Float64Array>().Data(), lower, upper);
      } else {
        ThrowType(env, "row must be a Float32Array or Float64Array");
      }
      return Napi::Number::New(env, static_cast<double>(id));
    } catch (const std::invalid_argument& e) {
      ThrowRange(env, e.what());
    }
  }

  Napi::Value Ids(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<int64_t> ids = pool(env)->ids();
    Napi::Float64Array out = Napi::Float64Array::New(env, ids.size());
    for (size_t k = 0; k < ids.size(); ++k) out[k] = static_cast<double>(ids[k]);
    return out;
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    auto ids = ToTypedArray<Napi::Float64Array, napi_float64_array>(env, info[0], "ids", "Float64Array");
    std::vector<int64_t> list;
    for (size_t k = 0; k < ids.ElementLength(); ++k) {
      const double id = ids[k];
      if (id == std::floor(id) && id >= 0 && id < 9.0e15) list.push_back(static_cast<int64_t>(id));
    }
    return Napi::Number::New(env, p->remove(list));
  }

  Napi::Value RemoveInactive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    const double k = ToNumber(env, info[0], "k");
    if (!(k >= 1) || k != std::floor(k) || k > 2147483647.0) ThrowRange(env, "k must be a positive integer");
    return Napi::Number::New(env, p->removeInactive(static_cast<int>(k)));
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(pool(info.Env())->memoryBytes()));
  }

  Napi::Value Gram(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const qp::GramView g = mutablePool(env)->gram();
    Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(g.size()));
    for (Eigen::Index i = 0; i < g.rows(); ++i) {
      for (Eigen::Index j = 0; j < g.cols(); ++j) out[static_cast<size_t>(i * g.cols() + j)] = g(i, j);
    }
    return out;
  }

  Napi::Value RowActivity(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    Napi::Float64Array w = ToFloat64ArrayOfLength(env, info[0], "w", static_cast<size_t>(p->n()));
    Eigen::VectorXd out(p->size());
    if (p->size() > 0) p->multiply(w.Data(), out.data());
    return ToFloat64Array(env, out);
  }

  // expandRow(position): the row as n float64 values.
  Napi::Value ExpandRow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = pool(env);
    const double position = ToNumber(env, info[0], "position");
    if (!(position >= 0) || position != std::floor(position) || position >= p->size()) ThrowRange(env, "position is out of range");
    Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(p->n()));
    cuts::ExpandFactoredRow(p->layout(), p->row(static_cast<int>(position)), out.Data());
    return out;
  }

  Napi::Value Bounds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = pool(env);
    return RowBoundsToJs(env, p->lower(), p->upper());
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (pool_ && pool_->busy()) throw Napi::Error::New(env, "the cut pool is in use by a running solve");
    pool_.reset();
    return env.Undefined();
  }

  // solveDual(w0, settings, onProgress?, cancelToken?)
  Napi::Value Solve(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    cuts::FactoredCutPool* p = mutablePool(env);
    if (p->size() == 0) ThrowRange(env, "the cut pool is empty");
    Eigen::VectorXd w0v = ToVector(env, info[0], "w0", static_cast<size_t>(p->n()));
    for (Eigen::Index j = 0; j < w0v.size(); ++j) {
      if (!std::isfinite(w0v[j])) ThrowRange(env, "w0 must hold finite numbers");
    }
    auto settings = ReadCutQpSettings(env, info[1]);
    CancelFlag cancel = CancelFlagFrom(info[3]);
    auto w0 = std::make_shared<Eigen::VectorXd>(std::move(w0v));
    JobSpec<FactoredSolveResult, qp::CutQpProgress> spec;
    spec.work = [p, w0, settings](const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
      qp::CutQpControl control;
      control.cancel = &flag;
      control.on_progress = report;
      FactoredSolveResult out;
      out.result = cuts::SolveDualOnFactoredPool(*p, w0->data(), *settings, control);
      return out;
    };
    spec.to_js = ResultToJs;
    spec.progress_to_js = CutQpProgressToJs;
    if (!async) return RunSyncJob(env, std::move(spec), info[2], cancel);
    if (!p->tryAcquire()) throw Napi::Error::New(env, "the cut pool is in use by a running solve");
    spec.on_finish = [p] { p->release(); };
    return RunAsyncJob(env, std::move(spec), info[2], cancel, {info.This().As<Napi::Object>()});
  }
  Napi::Value SolveAsync(const Napi::CallbackInfo& info) { return Solve(info, true); }
  Napi::Value SolveSync(const Napi::CallbackInfo& info) { return Solve(info, false); }


  static Napi::Value ResultToJs(Napi::Env env, FactoredSolveResult& job) { return CutQpResultToJs(env, job.result); }

  std::unique_ptr<cuts::FactoredCutPool> pool_;
};

void Init(Napi::Env env, Napi::Object exports) { exports.Set("FactoredCutPool", FactoredPoolWrap::Define(env)); }

const ModuleRegistrar registrar("factoredCutPool", Init);

}  // namespace
}  // namespace advcorrect::binding
