#pragma once
#include <napi.h>

namespace vmctr {
void InitKvm(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitVcpuThread(Napi::Env env, Napi::Object exports);
void InitEventFd(Napi::Env env, Napi::Object exports);
void InitRandom(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitUnixStream(Napi::Env env, Napi::Object exports);
void InitVhostNet(Napi::Env env, Napi::Object exports);
}  // namespace vmctr
