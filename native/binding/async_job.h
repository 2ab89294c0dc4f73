// Runs a native computation for JS either off the main thread (Promise) or inline (for
// worker threads), with cancellation that JS can trigger and progress forwarded to a JS
// callback. Native exceptions become JS errors with code 'ERR_NATIVE', and std::bad_alloc
// one with code 'ERR_NO_MEMORY' (lib/ wraps both in AdvcorrectError). GuardNative does the
// same conversion for bindings that run native work inline: an exception other than a
// Napi::Error must never leave a binding, or the process aborts.
//
// Usage in a binding:
//
//   JobSpec<MyResult, qp::CutQpProgress> spec;
//   spec.work = [=](const std::atomic<bool>& cancel, const ProgressSink<qp::CutQpProgress>& report) {
//     ...; report(progress); ...; return result;          // runs on a worker thread (async)
//   };
//   spec.to_js = [](Napi::Env env, MyResult& r) { ... };   // main thread
//   spec.progress_to_js = ProgressToJs;                     // main thread
//   spec.on_finish = [pool] { pool->busy = false; };        // main thread, success or failure
//   return RunAsyncJob(env, std::move(spec), onProgress, CancelFlagFrom(token), {poolObject});
//
// JS side: `const token = new native.CancelToken(); signal.addEventListener('abort', () => token.cancel())`.
#pragma once
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "binding/registry.h"

namespace advcorrect::binding {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

template <typename Progress>
using ProgressSink = std::function<void(const Progress&)>;

// A JS-visible handle on a cancellation flag: `new CancelToken()`, `.cancel()`, `.cancelled`.
class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6a1c0b7e2d4f4c11ULL, 0x9e37c2a85b10d3f4ULL};

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CancelToken",
                       {InstanceMethod<&CancelToken::Cancel>("cancel"),
                        InstanceAccessor<&CancelToken::Cancelled>("cancelled")});
  }

  explicit CancelToken(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CancelToken>(info), flag_(std::make_shared<std::atomic<bool>>(false)) {
    info.This().As<Napi::Object>().TypeTag(&kTypeTag);
  }

  const CancelFlag& flag() const { return flag_; }

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    flag_->store(true);
    return info.Env().Undefined();
  }
  Napi::Value Cancelled(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), flag_->load());
  }

  CancelFlag flag_;
};

// The flag of a CancelToken, or a fresh never-set flag for undefined/null.
inline CancelFlag CancelFlagFrom(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return std::make_shared<std::atomic<bool>>(false);
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&CancelToken::kTypeTag)) {
    throw Napi::TypeError::New(value.Env(), "cancel token must be a CancelToken");
  }
  return CancelToken::Unwrap(value.As<Napi::Object>())->flag();
}

inline void InitCancelToken(Napi::Env env, Napi::Object exports) {
  exports.Set("CancelToken", CancelToken::Define(env));
}
// Registered once however many binding files include this header (C++17 inline variable).
inline const ModuleRegistrar kCancelTokenRegistrar("cancel", InitCancelToken);

// An Error with code 'ERR_NATIVE'.
inline Napi::Error NativeError(Napi::Env env, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_NATIVE"));
  return error;
}

// An Error with code 'ERR_NO_MEMORY': an allocation of the native code failed.
inline Napi::Error NoMemoryError(Napi::Env env) {
  Napi::Error error = Napi::Error::New(env, "native code ran out of memory");
  error.Set("code", Napi::String::New(env, "ERR_NO_MEMORY"));
  return error;
}

// Runs `body` (returning a Napi::Value) and turns C++ exceptions into JS errors: bad_alloc into
// ERR_NO_MEMORY, other std::exceptions into ERR_NATIVE. Napi::Errors pass through unchanged.
template <typename F>
Napi::Value GuardNative(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw NoMemoryError(env);
  } catch (const std::exception& e) {
    throw NativeError(env, e.what());
  }
}

template <typename Result, typename Progress>
struct JobSpec {
  // The computation. Must poll `cancel` and return promptly once it is set. Any exception it
  // throws rejects the job.
  std::function<Result(const std::atomic<bool>& cancel, const ProgressSink<Progress>& report)> work;
  // Converts the result (main thread).
  std::function<Napi::Value(Napi::Env, Result&)> to_js;
  // Converts a progress report (main thread); may be empty when no progress is reported.
  std::function<Napi::Value(Napi::Env, const Progress&)> progress_to_js;
  // Runs on the main thread once the job ends, whatever the outcome.
  std::function<void()> on_finish;
};

namespace detail {

inline std::string ExceptionMessage(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::bad_alloc&) {
    return "native code ran out of memory";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native exception";
  }
}

template <typename Result, typename Progress>
class AsyncJob : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  AsyncJob(Napi::Env env, JobSpec<Result, Progress> spec, Napi::Value on_progress, CancelFlag cancel,
           const std::vector<Napi::Object>& keep_alive)
      : Napi::AsyncProgressQueueWorker<Progress>(env, "advcorrect:job"),
        spec_(std::move(spec)),
        cancel_(std::move(cancel)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    for (const Napi::Object& object : keep_alive) keep_alive_.push_back(Napi::Persistent(object));
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const typename Napi::AsyncProgressQueueWorker<Progress>::ExecutionProgress& progress) override {
    const bool wants_progress = !on_progress_.IsEmpty() && static_cast<bool>(spec_.progress_to_js);
    ProgressSink<Progress> sink = [&progress, wants_progress](const Progress& p) {
      if (wants_progress) progress.Send(&p, 1);
    };
    try {
      result_ = std::make_unique<Result>(spec_.work(*cancel_, sink));
    } catch (const std::bad_alloc&) {
      out_of_memory_ = true;
      this->SetError("native code ran out of memory");
    } catch (...) {
      this->SetError(ExceptionMessage(std::current_exception()));
    }
  }

  void OnProgress(const Progress* data, size_t count) override {
    if (on_progress_.IsEmpty() || callback_error_) return;
    Napi::Env env = this->Env();
    Napi::HandleScope scope(env);
    for (size_t k = 0; k < count; ++k) {
      try {
        on_progress_.Call({spec_.progress_to_js(env, data[k])});
      } catch (const Napi::Error& e) {
        // A throwing progress callback cancels the job and becomes its rejection.
        callback_error_ = std::make_unique<Napi::ObjectReference>(Napi::Persistent(e.Value()));
        cancel_->store(true);
        return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = this->Env();
    Napi::HandleScope scope(env);
    Finish();
    if (callback_error_) {
      deferred_.Reject(callback_error_->Value());
      return;
    }
    try {
      deferred_.Resolve(spec_.to_js(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::bad_alloc&) {
      deferred_.Reject(NoMemoryError(env).Value());
    } catch (const std::exception& e) {
      deferred_.Reject(NativeError(env, e.what()).Value());
    }
  }

  void OnError(const Napi::Error& error) override {
    Napi::Env env = this->Env();
    Napi::HandleScope scope(env);
    Finish();
    if (callback_error_) {
      deferred_.Reject(callback_error_->Value());
      return;
    }
    deferred_.Reject(out_of_memory_ ? NoMemoryError(env).Value() : NativeError(env, error.Message()).Value());
  }

 private:
  void Finish() {
    if (spec_.on_finish) spec_.on_finish();
    spec_.on_finish = nullptr;
  }

  JobSpec<Result, Progress> spec_;
  CancelFlag cancel_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  std::vector<Napi::ObjectReference> keep_alive_;
  std::unique_ptr<Result> result_;
  std::unique_ptr<Napi::ObjectReference> callback_error_;
  bool out_of_memory_ = false;
};

}  // namespace detail

// Queues the job on libuv's thread pool and returns a Promise of its converted result.
// `keep_alive` objects (e.g. the JS wrapper whose native state the job reads) are kept
// from garbage collection until the job ends.
template <typename Result, typename Progress>
Napi::Promise RunAsyncJob(Napi::Env env, JobSpec<Result, Progress> spec, Napi::Value on_progress,
                          CancelFlag cancel, const std::vector<Napi::Object>& keep_alive = {}) {
  auto* job = new detail::AsyncJob<Result, Progress>(env, std::move(spec), on_progress, std::move(cancel),
                                                     keep_alive);
  Napi::Promise promise = job->Promise();
  job->Queue();  // the worker deletes itself when done
  return promise;
}

// Runs the same job inline on the calling (JS) thread and returns its converted result;
// progress calls the JS callback directly. For worker threads, where blocking is fine.
template <typename Result, typename Progress>
Napi::Value RunSyncJob(Napi::Env env, JobSpec<Result, Progress> spec, Napi::Value on_progress, CancelFlag cancel) {
  struct FinishGuard {
    std::function<void()>& fn;
    ~FinishGuard() {
      if (fn) fn();
    }
  } guard{spec.on_finish};
  std::unique_ptr<Napi::Error> callback_error;
  ProgressSink<Progress> sink = [&](const Progress& p) {
    if (!on_progress.IsFunction() || !spec.progress_to_js || callback_error) return;
    try {
      on_progress.As<Napi::Function>().Call({spec.progress_to_js(env, p)});
    } catch (const Napi::Error& e) {
      callback_error = std::make_unique<Napi::Error>(e);
      cancel->store(true);
    }
  };
  std::unique_ptr<Result> result;
  try {
    result = std::make_unique<Result>(spec.work(*cancel, sink));
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw NoMemoryError(env);
  } catch (...) {
    throw NativeError(env, detail::ExceptionMessage(std::current_exception()));
  }
  if (callback_error) throw *callback_error;
  return GuardNative(env, [&] { return spec.to_js(env, *result); });
}

}  // namespace advcorrect::binding
