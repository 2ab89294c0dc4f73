// JS class `CutPool` over advcorrect::cuts::CutPool, and its dual active-set solve
// (cuts::SolveDualOnPool). Only conversions between JS and C++ live here.
// lib/qp/cut-pool.ts validates arguments with exact messages first; the checks here are a
// second line so that no input can crash the process.
#include "binding/cut_pool_binding.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "binding/async_job.h"
#include "binding/convert.h"
#include "binding/cut_qp_js.h"
#include "binding/registry.h"
#include "cuts/pool_solve.h"

namespace advcorrect::binding {
namespace {

constexpr napi_type_tag kCutPoolTag = {0x3c5e1f0a9b274d68ULL, 0xa41d72c9e08b5f13ULL};

void CheckBounds(Napi::Env env, double lower, double upper) {
  if (lower > upper) ThrowRange(env, "lower must not exceed upper");
  if (lower == qp::kInfinity) ThrowRange(env, "lower must not be Infinity");
  if (upper == -qp::kInfinity) ThrowRange(env, "upper must not be -Infinity");
}

struct DualJobResult {
  qp::CutQpResult result;
};

class CutPoolWrap : public Napi::ObjectWrap<CutPoolWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CutPool",
                       {InstanceAccessor<&CutPoolWrap::Size>("size"),
                        InstanceAccessor<&CutPoolWrap::N>("n"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::SetDiagonal>>("setDiagonal"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::SetBounds>>("setBounds"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::AppendDense>>("appendDense"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::AppendSparse>>("appendSparse"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::Ids>>("ids"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::Remove>>("remove"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::RemoveInactive>>("removeInactive"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::RemoveDuplicates>>("removeDuplicates"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::MemoryBytes>>("memoryBytes"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::Gram>>("gram"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::RowActivity>>("rowActivity"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::ToCsr>>("toCsr"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::Bounds>>("rowBounds"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::Dispose>>("dispose"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::SolveAsync>>("solveDual"),
                        InstanceMethod<&CutPoolWrap::Guarded<&CutPoolWrap::SolveSync>>("solveDualSync")});
  }

  explicit CutPoolWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CutPoolWrap>(info) {
    Napi::Env env = info.Env();
    const double n = ToNumber(env, info[0], "n");
    if (!(n >= 1) || n != std::floor(n) || n > 2147483647.0) ThrowRange(env, "n must be a positive integer");
    GuardNative(env, [&] {
      pool_ = std::make_unique<cuts::CutPool>(static_cast<int>(n));
      return env.Undefined();
    });
    info.This().As<Napi::Object>().TypeTag(&kCutPoolTag);
  }

  cuts::CutPool* pool(Napi::Env env) const {
    if (!pool_) throw Napi::Error::New(env, "the cut pool was disposed");
    return pool_.get();
  }

 private:
  cuts::CutPool* mutablePool(Napi::Env env) const {
    cuts::CutPool* p = pool(env);
    if (p->busy()) throw Napi::Error::New(env, "the cut pool is in use by a running solve");
    return p;
  }

  // Every method runs through here: a failed allocation becomes ERR_NO_MEMORY, not an abort.
  template <Napi::Value (CutPoolWrap::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info) {
    return GuardNative(info.Env(), [&] { return (this->*Method)(info); });
  }

  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool(info.Env())->size()); }
  Napi::Value N(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool(info.Env())->n()); }

  Napi::Value SetDiagonal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    Eigen::VectorXd d = ToVector(env, info[0], "diagonal", static_cast<size_t>(p->n()));
    for (Eigen::Index j = 0; j < d.size(); ++j) {
      if (!(d[j] > 0) || !std::isfinite(d[j])) ThrowRange(env, "diagonal entries must be positive and finite");
    }
    p->setDiagonal(d);
    return env.Undefined();
  }

  Napi::Value SetBounds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    const size_t n = static_cast<size_t>(p->n());
    Eigen::VectorXd lo = ToVector(env, info[0], "lower", n);
    Eigen::VectorXd hi = ToVector(env, info[1], "upper", n);
    for (Eigen::Index j = 0; j < lo.size(); ++j) {
      if (std::isnan(lo[j]) || std::isnan(hi[j])) ThrowRange(env, "variable bounds must not be NaN");
      CheckBounds(env, lo[j], hi[j]);
    }
    p->setBounds(lo, hi);
    return env.Undefined();
  }

  Napi::Value AppendDense(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    const double lower = ToNumber(env, info[1], "lower");
    const double upper = ToNumber(env, info[2], "upper");
    CheckBounds(env, lower, upper);
    if (!info[0].IsTypedArray()) ThrowType(env, "row must be a Float32Array or Float64Array");
    Napi::TypedArray row = info[0].As<Napi::TypedArray>();
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

  Napi::Value AppendSparse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    const double lower = ToNumber(env, info[2], "lower");
    const double upper = ToNumber(env, info[3], "upper");
    CheckBounds(env, lower, upper);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      ThrowType(env, "index must be an Int32Array");
    }
    if (!info[1].IsTypedArray()) ThrowType(env, "value must be a Float32Array or Float64Array");
    Napi::Int32Array index = info[0].As<Napi::Int32Array>();
    Napi::TypedArray value = info[1].As<Napi::TypedArray>();
    if (index.ElementLength() != value.ElementLength()) ThrowRange(env, "index and value must have the same length");
    const int nnz = static_cast<int>(index.ElementLength());
    try {
      int64_t id;
      if (value.TypedArrayType() == napi_float32_array) {
        id = p->appendSparse(index.Data(), value.As<Napi::Float32Array>().Data(), nnz, lower, upper);
      } else if (value.TypedArrayType() == napi_float64_array) {
        id = p->appendSparse(index.Data(), value.As<Napi::Float64Array>().Data(), nnz, lower, upper);
      } else {
        ThrowType(env, "value must be a Float32Array or Float64Array");
      }
      return Napi::Number::New(env, static_cast<double>(id));
    } catch (const std::invalid_argument& e) {
      ThrowRange(env, e.what());
    }
  }

  Napi::Value Ids(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int64_t> ids = pool(env)->ids();
    Napi::Float64Array out = Napi::Float64Array::New(env, ids.size());
    for (size_t k = 0; k < ids.size(); ++k) out[k] = static_cast<double>(ids[k]);
    return out;
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      ThrowType(env, "ids must be a Float64Array");
    }
    Napi::Float64Array ids = info[0].As<Napi::Float64Array>();
    std::vector<int64_t> list;
    for (size_t k = 0; k < ids.ElementLength(); ++k) {
      const double id = ids[k];
      if (id == std::floor(id) && id >= 0 && id < 9.0e15) list.push_back(static_cast<int64_t>(id));
    }
    return Napi::Number::New(env, p->remove(list));
  }

  Napi::Value RemoveInactive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    const double k = ToNumber(env, info[0], "k");
    if (!(k >= 1) || k != std::floor(k) || k > 2147483647.0) ThrowRange(env, "k must be a positive integer");
    return Napi::Number::New(env, p->removeInactive(static_cast<int>(k)));
  }

  Napi::Value RemoveDuplicates(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    const double tol = ToNumber(env, info[0], "tol");
    if (!(tol >= 0 && tol < 1)) ThrowRange(env, "tol must be in [0, 1)");
    return Napi::Number::New(env, p->removeDuplicates(tol));
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Napi::Number::New(env, static_cast<double>(mutablePool(env)->memoryBytes()));
  }

  Napi::Value Gram(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const qp::GramView g = mutablePool(env)->gram();
    Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(g.size()));
    // Row-major (symmetric anyway).
    for (Eigen::Index i = 0; i < g.rows(); ++i) {
      for (Eigen::Index j = 0; j < g.cols(); ++j) out[static_cast<size_t>(i * g.cols() + j)] = g(i, j);
    }
    return out;
  }

  Napi::Value RowActivity(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    Eigen::VectorXd x = ToVector(env, info[0], "x", static_cast<size_t>(p->n()));
    Eigen::VectorXd out(p->size());
    if (p->size() > 0) p->multiply(x.data(), out.data());
    return ToFloat64Array(env, out);
  }

  Napi::Value ToCsr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = mutablePool(env);
    std::vector<int64_t> ptr;
    std::vector<int32_t> cols;
    std::vector<double> vals;
    p->toCsr(ptr, cols, vals);
    if (vals.size() > 2147483647u) throw Napi::Error::New(env, "the pool has too many non-zeros for Int32Array offsets");
    Napi::Object out = Napi::Object::New(env);
    Napi::Int32Array row_ptr = Napi::Int32Array::New(env, ptr.size());
    for (size_t k = 0; k < ptr.size(); ++k) row_ptr[k] = static_cast<int32_t>(ptr[k]);
    Napi::Int32Array col_index = Napi::Int32Array::New(env, cols.size());
    for (size_t k = 0; k < cols.size(); ++k) col_index[k] = cols[k];
    Napi::Float64Array values = Napi::Float64Array::New(env, vals.size());
    for (size_t k = 0; k < vals.size(); ++k) values[k] = vals[k];
    out.Set("rowPtr", row_ptr);
    out.Set("colIndex", col_index);
    out.Set("values", values);
    return out;
  }

  Napi::Value Bounds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    cuts::CutPool* p = pool(env);
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
    cuts::CutPool* p = mutablePool(env);
    if (p->size() == 0) ThrowRange(env, "the cut pool is empty");
    Eigen::VectorXd w0v = ToVector(env, info[0], "w0", static_cast<size_t>(p->n()));
    for (Eigen::Index j = 0; j < w0v.size(); ++j) {
      if (!std::isfinite(w0v[j])) ThrowRange(env, "w0 must hold finite numbers");
    }
    auto settings = ReadCutQpSettings(env, info[1]);
    CancelFlag cancel = CancelFlagFrom(info[3]);
    auto w0 = std::make_shared<Eigen::VectorXd>(std::move(w0v));
    JobSpec<DualJobResult, qp::CutQpProgress> spec;
    spec.work = [p, w0, settings](const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
      return RunDual(p, *w0, *settings, flag, report);
    };
    spec.to_js = ResultToJs;
    spec.progress_to_js = CutQpProgressToJs;
    if (!async) return RunSyncJob(env, std::move(spec), info[2], cancel);
    AcquireCutPoolForJob(env, p);
    spec.on_finish = [p] { p->release(); };
    return RunAsyncJob(env, std::move(spec), info[2], cancel, {info.This().As<Napi::Object>()});
  }

  Napi::Value SolveAsync(const Napi::CallbackInfo& info) { return Solve(info, true); }
  Napi::Value SolveSync(const Napi::CallbackInfo& info) { return Solve(info, false); }

  static DualJobResult RunDual(cuts::CutPool* p, const Eigen::VectorXd& w0, const qp::CutQpSettings& settings,
                               const std::atomic<bool>& flag, const ProgressSink<qp::CutQpProgress>& report) {
    qp::CutQpControl control;
    control.cancel = &flag;
    control.on_progress = report;
    DualJobResult out;
    out.result = cuts::SolveDualOnPool(*p, w0.data(), settings, control);
    return out;
  }


  static Napi::Value ResultToJs(Napi::Env env, DualJobResult& job) { return CutQpResultToJs(env, job.result); }

  std::unique_ptr<cuts::CutPool> pool_;
};

Napi::Value MaxGramBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(cuts::CutPool::maxGramBytes()));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("CutPool", CutPoolWrap::Define(env));
  exports.Set("maxGramBytes", Napi::Function::New(env, MaxGramBytes, "maxGramBytes"));
}

const ModuleRegistrar registrar("cutPool", Init);

}  // namespace

cuts::CutPool* UnwrapCutPool(Napi::Value value) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kCutPoolTag)) {
    throw Napi::TypeError::New(value.Env(), "expected a native CutPool");
  }
  return CutPoolWrap::Unwrap(value.As<Napi::Object>())->pool(value.Env());
}

void AcquireCutPoolForJob(Napi::Env env, cuts::CutPool* pool) {
  if (!pool->tryAcquire()) throw Napi::Error::New(env, "the cut pool is in use by a running solve");
}

}  // namespace advcorrect::binding
