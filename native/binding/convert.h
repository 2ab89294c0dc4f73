// Conversions between JS values and C++ values shared by the bindings: numbers, typed arrays
// (checked type and length) and Eigen vectors. Wrong types throw a JS TypeError, wrong
// lengths or NaN a JS RangeError, with the messages "<what> must be a Float64Array",
// "<what> must have length N, got M", "<what> must be a number", "<what> must not be NaN".
#pragma once
#include <napi.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <Eigen/Dense>

namespace advcorrect::binding {

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
[[noreturn]] inline void ThrowRange(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

// A JS number that is not NaN (±Infinity allowed).
inline double ToNumber(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsNumber()) ThrowType(env, what + " must be a number");
  const double v = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(v)) ThrowRange(env, what + " must not be NaN");
  return v;
}

// The value as a typed array of exactly the element type kType (type_name for the message).
template <typename Array, napi_typedarray_type kType>
Array ToTypedArray(Napi::Env env, const Napi::Value& value, const std::string& what, const char* type_name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kType) {
    ThrowType(env, what + " must be a " + type_name);
  }
  return value.As<Array>();
}

// A Float64Array of exactly `length` elements.
inline Napi::Float64Array ToFloat64ArrayOfLength(Napi::Env env, const Napi::Value& value, const std::string& what,
                                                 size_t length) {
  auto array = ToTypedArray<Napi::Float64Array, napi_float64_array>(env, value, what, "Float64Array");
  if (array.ElementLength() != length) {
    ThrowRange(env, what + " must have length " + std::to_string(length) + ", got " + std::to_string(array.ElementLength()));
  }
  return array;
}

// Copies of a Float64Array of exactly `length` elements.
inline std::vector<double> ToDoubles(Napi::Env env, const Napi::Value& value, const std::string& what, size_t length) {
  Napi::Float64Array array = ToFloat64ArrayOfLength(env, value, what, length);
  return std::vector<double>(array.Data(), array.Data() + length);
}
inline Eigen::VectorXd ToVector(Napi::Env env, const Napi::Value& value, const std::string& what, size_t length) {
  Napi::Float64Array array = ToFloat64ArrayOfLength(env, value, what, length);
  return Eigen::Map<const Eigen::VectorXd>(array.Data(), static_cast<Eigen::Index>(length));
}

// A copy of an Int32Array of any length.
inline std::vector<int> ToInts(Napi::Env env, const Napi::Value& value, const std::string& what) {
  auto array = ToTypedArray<Napi::Int32Array, napi_int32_array>(env, value, what, "Int32Array");
  return std::vector<int>(array.Data(), array.Data() + array.ElementLength());
}

// A new Float64Array holding v.
inline Napi::Float64Array ToFloat64Array(Napi::Env env, const Eigen::VectorXd& v) {
  Napi::Float64Array out = Napi::Float64Array::New(env, static_cast<size_t>(v.size()));
  if (v.size()) std::memcpy(out.Data(), v.data(), sizeof(double) * static_cast<size_t>(v.size()));
  return out;
}

}  // namespace advcorrect::binding
