// JS access to the tensor kernels (native/kernels): synchronous calls on Float32Arrays,
// as tfjs kernels are synchronous. Exported as `kernels` on the addon:
//   conv2dForward(x, w, y, shape)         shape: Int32Array of 15 ConvShape fields (see kShapeFields)
//   conv2dBackpropInput(dy, w, dx, shape)
//   conv2dBackpropFilter(x, dy, dw, shape)
//   batchMatMul(a, b, c, batchA, batchB, m, k, n, transA, transB)
//   measureGemmGflops(n, reps) → number;  threadCount() → number;  setThreadCount(n)
#include <stdexcept>
#include <string>

#include "binding/registry.h"
#include "kernels/conv.h"

namespace advcorrect::binding {
namespace {

using kernels::ConvShape;

// Order of the shape array's fields.
const char* const kShapeFields =
    "batch,inH,inW,inC,outH,outW,outC,fH,fW,sH,sW,dH,dW,padTop,padLeft";

Napi::Float32Array FloatArg(const Napi::CallbackInfo& info, size_t index, const char* name, long minLength) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  Napi::Float32Array array = info[index].As<Napi::Float32Array>();
  if (static_cast<long>(array.ElementLength()) < minLength) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " has " + std::to_string(array.ElementLength()) +
                                                " elements, the shape needs " + std::to_string(minLength));
  }
  return array;
}

int IntArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().Int32Value();
}

ConvShape ShapeArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[index].As<Napi::TypedArray>().ElementLength() != 15) {
    throw Napi::TypeError::New(info.Env(), std::string("shape must be an Int32Array of 15: ") + kShapeFields);
  }
  Napi::Int32Array a = info[index].As<Napi::Int32Array>();
  ConvShape s{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]};
  try {
    kernels::validate(s);
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  }
  return s;
}

long InputSize(const ConvShape& s) { return static_cast<long>(s.batch) * s.inH * s.inW * s.inC; }
long OutputSize(const ConvShape& s) { return static_cast<long>(s.batch) * s.outH * s.outW * s.outC; }
long FilterSize(const ConvShape& s) { return static_cast<long>(s.fH) * s.fW * s.inC * s.outC; }

template <typename F>
Napi::Value Guard(const Napi::CallbackInfo& info, F body) {
  try {
    body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    Napi::Error error = Napi::Error::New(info.Env(), e.what());
    error.Set("code", Napi::String::New(info.Env(), "ERR_NATIVE"));
    throw error;
  }
  return info.Env().Undefined();
}

Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  const ConvShape s = ShapeArg(info, 3);
  auto x = FloatArg(info, 0, "x", InputSize(s));
  auto w = FloatArg(info, 1, "w", FilterSize(s));
  auto y = FloatArg(info, 2, "y", OutputSize(s));
  return Guard(info, [&] { kernels::conv2dForward(x.Data(), w.Data(), s, y.Data()); });
}

Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  const ConvShape s = ShapeArg(info, 3);
  auto dy = FloatArg(info, 0, "dy", OutputSize(s));
  auto w = FloatArg(info, 1, "w", FilterSize(s));
  auto dx = FloatArg(info, 2, "dx", InputSize(s));
  return Guard(info, [&] { kernels::conv2dBackpropInput(dy.Data(), w.Data(), s, dx.Data()); });
}

Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  const ConvShape s = ShapeArg(info, 3);
  auto x = FloatArg(info, 0, "x", InputSize(s));
  auto dy = FloatArg(info, 1, "dy", OutputSize(s));
  auto dw = FloatArg(info, 2, "dw", FilterSize(s));
  return Guard(info, [&] { kernels::conv2dBackpropFilter(x.Data(), dy.Data(), s, dw.Data()); });
}

Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  const int batchA = IntArg(info, 3, "batchA"), batchB = IntArg(info, 4, "batchB");
  const int m = IntArg(info, 5, "m"), k = IntArg(info, 6, "k"), n = IntArg(info, 7, "n");
  if (batchA <= 0 || batchB <= 0 || m < 0 || k < 0 || n < 0 ||
      (batchA != batchB && batchA != 1 && batchB != 1)) {
    throw Napi::RangeError::New(info.Env(), "batchMatMul: invalid batch sizes or dimensions");
  }
  const bool transA = info[8].ToBoolean(), transB = info[9].ToBoolean();
  const long batch = batchA > batchB ? batchA : batchB;
  auto a = FloatArg(info, 0, "a", static_cast<long>(batchA) * m * k);
  auto b = FloatArg(info, 1, "b", static_cast<long>(batchB) * k * n);
  auto c = FloatArg(info, 2, "c", batch * m * n);
  return Guard(info, [&] {
    kernels::batchMatMul(a.Data(), b.Data(), batchA, batchB, m, k, n, transA, transB, c.Data());
  });
}

Napi::Value MeasureGemmGflops(const Napi::CallbackInfo& info) {
  const int n = IntArg(info, 0, "n"), reps = IntArg(info, 1, "reps");
  if (n <= 0 || reps <= 0) throw Napi::RangeError::New(info.Env(), "n and reps must be positive");
  double gflops = 0;
  Guard(info, [&] { gflops = kernels::measureGemmGflops(n, reps); });
  return Napi::Number::New(info.Env(), gflops);
}

Napi::Value ThreadCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), kernels::threadCount());
}

Napi::Value SetThreadCount(const Napi::CallbackInfo& info) {
  kernels::setThreadCount(IntArg(info, 0, "n"));
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("conv2dForward", Napi::Function::New(env, Conv2dForward, "conv2dForward"));
  k.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBackpropInput, "conv2dBackpropInput"));
  k.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter, "conv2dBackpropFilter"));
  k.Set("batchMatMul", Napi::Function::New(env, BatchMatMul, "batchMatMul"));
  k.Set("measureGemmGflops", Napi::Function::New(env, MeasureGemmGflops, "measureGemmGflops"));
  k.Set("threadCount", Napi::Function::New(env, ThreadCount, "threadCount"));
  k.Set("setThreadCount", Napi::Function::New(env, SetThreadCount, "setThreadCount"));
  k.Set("shapeFields", Napi::String::New(env, kShapeFields));
  exports.Set("kernels", k);
}

const ModuleRegistrar registrar("kernels", Init);

}  // namespace
}  // namespace advcorrect::binding
