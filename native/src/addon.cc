// vmctr's native addon: thin typed wrappers over the syscalls a VMM needs.
// All device and boot logic lives in TypeScript (vmm/).
#include "kvm.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vmctr::InitKvm(env, exports);
  vmctr::InitMemory(env, exports);
  vmctr::InitVcpuThread(env, exports);
  vmctr::InitEventFd(env, exports);
  vmctr::InitRandom(env, exports);
  vmctr::InitProcess(env, exports);
  vmctr::InitSocket(env, exports);
  vmctr::InitUnixStream(env, exports);
  vmctr::InitVhostNet(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(vmctr, Init)
