// Build facts of the addon, for error messages and benchmark reports.
#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "binding/registry.h"

namespace advcorrect::binding {
namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("eigen", Napi::String::New(env, std::to_string(EIGEN_WORLD_VERSION) + "." +
                                              std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                              std::to_string(EIGEN_MINOR_VERSION)));
  out.Set("simd", Napi::String::New(env, Eigen::SimdInstructionSetsInUse()));
#ifdef _OPENMP
  out.Set("openmpThreads", Napi::Number::New(env, omp_get_max_threads()));
#else
  out.Set("openmpThreads", Napi::Number::New(env, 1));
#endif
#ifdef NDEBUG
  out.Set("debug", Napi::Boolean::New(env, false));
#else
  out.Set("debug", Napi::Boolean::New(env, true));
#endif
  return out;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
}

const ModuleRegistrar registrar("info", Init);

}  // namespace
}  // namespace advcorrect::binding
