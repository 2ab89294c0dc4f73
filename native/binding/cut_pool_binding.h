// The JS-visible native cut pool (`new native.CutPool(n)`, held by lib/qp/cut-pool.ts as
// `CutPool.nativeHandle`). Other bindings (e.g. ADMM) reach its C++ object through here.
#pragma once
#include <napi.h>

#include "cuts/cut_pool.h"

namespace advcorrect::binding {

// The native pool behind a JS handle; throws a JS TypeError for anything else.
cuts::CutPool* UnwrapCutPool(Napi::Value value);

// For a solve that runs off the main thread: marks the pool busy (appends/removals then
// throw) or throws a JS Error when another solve holds it. Call pool->release() in the
// job's on_finish, and pass the handle object in keep_alive.
void AcquireCutPoolForJob(Napi::Env env, cuts::CutPool* pool);

}  // namespace advcorrect::binding
