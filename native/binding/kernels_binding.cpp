// JS access to the tensor kernels (native/kernels): synchronous calls on Float32Arrays,
// as tfjs kernels are synchronous. Exported as `kernels` on the addon:
//   conv2dForward(x, w, y, shape)         shape: Int32Array of 15 ConvShape fields (see kShapeFields)
//   conv2dBackpropInput(dy, w, dx, shape)
//   conv2dBackpropFilter(x, dy, dw, shape)
//   batchMatMul(a, b, c, batchA, batchB, m, k, n, transA, transB)
//   measureGemmGflops(n, reps) → number;  threadCount() → number;  setThreadCount(n)
// Per-example weight gradients into a row matrix (row b at rows[b·rowStride …]; offset −1: absent):
//   denseExampleGradients(x, dy, rows, batch, nIn, nOut, rowStride, kernelOffset, biasOffset)
//   conv2dExampleGradients(x, dy, rows, shape, rowStride, kernelOffset, biasOffset)
//   batchNormExampleGradients(xhat, dy, rows, batch, positions, channels, rowStride, gammaOffset, betaOffset)
#include <stdexcept>
#include <string>

#include "binding/registry.h"
#include "kernels/conv.h"
#include "kernels/per_example.h"

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

long LongArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double v = info[index].As<Napi::Number>().DoubleValue();
  if (v != static_cast<double>(static_cast<long>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer");
  }
  return static_cast<long>(v);
}

// The row matrix argument and its stride: rows must hold batch·rowStride floats.
kernels::RowMatrix RowsArg(const Napi::CallbackInfo& info, size_t rowsIndex, size_t strideIndex, int batch) {
  const long rowStride = LongArg(info, strideIndex, "rowStride");
  if (rowStride <= 0) throw Napi::RangeError::New(info.Env(), "rowStride must be positive");
  if (batch <= 0) throw Napi::RangeError::New(info.Env(), "batch must be positive");
  auto rows = FloatArg(info, rowsIndex, "rows", static_cast<long>(batch) * rowStride);
  return kernels::RowMatrix{rows.Data(), rowStride};
}

Napi::Value DenseExampleGradients(const Napi::CallbackInfo& info) {
  const int batch = IntArg(info, 3, "batch"), nIn = IntArg(info, 4, "nIn"), nOut = IntArg(info, 5, "nOut");
  if (nIn <= 0 || nOut <= 0) throw Napi::RangeError::New(info.Env(), "nIn and nOut must be positive");
  const kernels::RowMatrix rows = RowsArg(info, 2, 6, batch);
  auto x = FloatArg(info, 0, "x", static_cast<long>(batch) * nIn);
  auto dy = FloatArg(info, 1, "dy", static_cast<long>(batch) * nOut);
  const long kernelOffset = LongArg(info, 7, "kernelOffset"), biasOffset = LongArg(info, 8, "biasOffset");
  return Guard(info, [&] {
    kernels::denseExampleGradients(x.Data(), dy.Data(), batch, nIn, nOut, rows, kernelOffset, biasOffset);
  });
}

Napi::Value Conv2dExampleGradients(const Napi::CallbackInfo& info) {
  const ConvShape s = ShapeArg(info, 3);
  const kernels::RowMatrix rows = RowsArg(info, 2, 4, s.batch);
  auto x = FloatArg(info, 0, "x", InputSize(s));
  auto dy = FloatArg(info, 1, "dy", OutputSize(s));
  const long kernelOffset = LongArg(info, 5, "kernelOffset"), biasOffset = LongArg(info, 6, "biasOffset");
  return Guard(info, [&] { kernels::conv2dExampleGradients(x.Data(), dy.Data(), s, rows, kernelOffset, biasOffset); });
}

Napi::Value BatchNormExampleGradients(const Napi::CallbackInfo& info) {
  const int batch = IntArg(info, 3, "batch");
  const long positions = LongArg(info, 4, "positions");
  const int channels = IntArg(info, 5, "channels");
  if (positions <= 0 || channels <= 0) throw Napi::RangeError::New(info.Env(), "positions and channels must be positive");
  const kernels::RowMatrix rows = RowsArg(info, 2, 6, batch);
  auto xhat = FloatArg(info, 0, "xhat", static_cast<long>(batch) * positions * channels);
  auto dy = FloatArg(info, 1, "dy", static_cast<long>(batch) * positions * channels);
  const long gammaOffset = LongArg(info, 7, "gammaOffset"), betaOffset = LongArg(info, 8, "betaOffset");
  return Guard(info, [&] {
    kernels::batchNormExampleGradients(xhat.Data(), dy.Data(), batch, positions, channels, rows, gammaOffset, betaOffset);
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
  k.Set("denseExampleGradients", Napi::Function::New(env, DenseExampleGradients, "denseExampleGradients"));
  k.Set("conv2dExampleGradients", Napi::Function::New(env, Conv2dExampleGradients, "conv2dExampleGradients"));
  k.Set("batchNormExampleGradients", Napi::Function::New(env, BatchNormExampleGradients, "batchNormExampleGradients"));
  k.Set("measureGemmGflops", Napi::Function::New(env, MeasureGemmGflops, "measureGemmGflops"));
  k.Set("threadCount", Napi::Function::New(env, ThreadCount, "threadCount"));
  k.Set("setThreadCount", Napi::Function::New(env, SetThreadCount, "setThreadCount"));
  k.Set("shapeFields", Napi::String::New(env, kShapeFields));
  exports.Set("kernels", k);
}

const ModuleRegistrar registrar("kernels", Init);

}  // namespace
}  // namespace advcorrect::binding
