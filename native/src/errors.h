// One way to fail: a JS Error that names the call and keeps errno.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace vmctr {

inline Napi::Error SyscallError(Napi::Env env, const char* call, int err) {
  std::string msg = std::string(call) + " failed: " + strerrorname_np(err) + " (" + std::to_string(err) + "): " + std::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("syscall", Napi::String::New(env, call));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, strerrorname_np(err)));
  return e;
}

[[noreturn]] inline void ThrowSyscall(Napi::Env env, const char* call, int err = errno) {
  throw SyscallError(env, call, err);
}

inline int ArgInt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

inline uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

inline uint64_t ToU64(Napi::Env env, Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 9007199254740991.0) throw Napi::RangeError::New(env, "number out of range for u64");
    return static_cast<uint64_t>(d);
  }
  throw Napi::TypeError::New(env, "expected a bigint or number");
}

inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw Napi::TypeError::New(info.Env(), "missing argument " + std::to_string(i));
  return ToU64(info.Env(), info[i]);
}

}  // namespace vmctr
