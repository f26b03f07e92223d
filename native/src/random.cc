// The host kernel's CSPRNG (getrandom(2)) for virtio-rng: filling a buffer
// costs one syscall and no JS module (node:crypto takes 0.1-0.2 s to load
// in the nested lab, on every VM start).
#include <sys/random.h>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

// (bytes: Uint8Array) -> undefined: fills all of it.
Napi::Value FillRandom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "argument 0 must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  uint8_t* p = bytes.Data();
  size_t left = bytes.ByteLength();
  while (left > 0) {
    ssize_t n = getrandom(p, left, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowSyscall(env, "getrandom");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return env.Undefined();
}

}  // namespace

void InitRandom(Napi::Env env, Napi::Object exports) {
  exports.Set("fillRandom", Napi::Function::New(env, FillRandom, "fillRandom"));
}

}  // namespace vmctr
