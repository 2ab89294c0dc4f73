// Each binding file registers its exports here from a static initialiser, so
// modules can be added without touching a central list.
#pragma once
#include <napi.h>

namespace advcorrect::binding {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

struct ModuleRegistrar {
  ModuleRegistrar(const char* name, ModuleInit init);
};

void InitRegisteredModules(Napi::Env env, Napi::Object exports);

}  // namespace advcorrect::binding
