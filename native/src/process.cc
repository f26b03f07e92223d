// Process and file-lock syscalls for pod liveness: flock(2) for the pod
// lock, and pidfds so that a signal never reaches a reused pid. What a lock
// or a process identity means is in pod/.
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

// (fd, 'exclusive' | 'shared' | 'unlock', wait) -> boolean: false when the
// lock is held elsewhere and wait is false.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsBoolean())
    throw Napi::TypeError::New(env, "flock(fd, 'exclusive' | 'shared' | 'unlock', wait: boolean)");
  std::string op = info[1].As<Napi::String>().Utf8Value();
  int operation;
  if (op == "exclusive") operation = LOCK_EX;
  else if (op == "shared") operation = LOCK_SH;
  else if (op == "unlock") operation = LOCK_UN;
  else throw Napi::TypeError::New(env, "operation must be 'exclusive', 'shared' or 'unlock'");
  if (!info[2].As<Napi::Boolean>().Value()) operation |= LOCK_NB;
  while (flock(fd, operation) < 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    ThrowSyscall(env, "flock");
  }
  return Napi::Boolean::New(env, true);
}

// (pid) -> pidfd, or -1 when no such process. The pidfd is close-on-exec.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(ArgInt(info, 0)), 0u);
  if (fd < 0) {
    if (errno == ESRCH) return Napi::Number::New(env, -1);
    ThrowSyscall(env, "pidfd_open");
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// (pidfd, signal) -> boolean: false when the process has exited.
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = ArgInt(info, 0);
  int sig = ArgInt(info, 1);
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    ThrowSyscall(env, "pidfd_send_signal");
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
}

}  // namespace vmctr
