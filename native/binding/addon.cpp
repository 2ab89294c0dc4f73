#include <utility>
#include <vector>

#include "binding/registry.h"

namespace advcorrect::binding {
namespace {

std::vector<std::pair<const char*, ModuleInit>>& Modules() {
  static std::vector<std::pair<const char*, ModuleInit>> modules;
  return modules;
}

}  // namespace

ModuleRegistrar::ModuleRegistrar(const char* name, ModuleInit init) {
  Modules().emplace_back(name, init);
}

void InitRegisteredModules(Napi::Env env, Napi::Object exports) {
  Napi::Array names = Napi::Array::New(env);
  uint32_t index = 0;
  for (const auto& [name, init] : Modules()) {
    init(env, exports);
    names.Set(index++, Napi::String::New(env, name));
  }
  exports.Set("modules", names);
}

}  // namespace advcorrect::binding

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  advcorrect::binding::InitRegisteredModules(env, exports);
  return exports;
}

NODE_API_MODULE(advcorrect_native, Init)
