// The vCPU run loop: KVM_RUN on its own thread, never on the JS thread.
// An exit that needs the VMM (port I/O, MMIO, shutdown, ...) is handed to a
// JS callback on the event loop while the vCPU thread waits for its answer;
// the callback reads and writes the shared kvm_run page directly.
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

// Sent to a vCPU thread to kick it out of KVM_RUN; the handler does nothing,
// the point is the EINTR.
int KickSignal() { return SIGRTMIN + 3; }

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(KickSignal(), &sa, nullptr);
  });
}

struct Call {
  enum Kind { kExit, kEnd } kind;
  int value;  // exit reason, or errno for kEnd (0: stopped normally)
};

struct VcpuState;

// Lives as long as the thread-safe function; owns what the JS side handed in.
struct VcpuContext {
  std::shared_ptr<VcpuState> state;
  Napi::FunctionReference onEnd;
  Napi::ObjectReference runBuffer;  // keeps the kvm_run mapping alive
};

void Dispatch(Napi::Env env, Napi::Function onExit, VcpuContext* ctx, Call* call);
using VcpuTsfn = Napi::TypedThreadSafeFunction<VcpuContext, Call, Dispatch>;

struct VcpuState {
  int fd = -1;
  kvm_run* run = nullptr;
  int index = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::thread thread;
  pthread_t handle{};
  VcpuTsfn tsfn;

  std::mutex mu;
  std::condition_variable cv;
  bool replied = false;
  int reply = 0;

  // Blocks the vCPU thread until JS has handled the exit; non-zero = stop.
  int HandOff(int reason) {
    {
      std::lock_guard<std::mutex> lk(mu);
      replied = false;
    }
    auto* call = new Call{Call::kExit, reason};
    if (tsfn.BlockingCall(call) != napi_ok) {
      delete call;
      return 1;
    }
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [this] { return replied; });
    return reply;
  }

  void Reply(int value) {
    std::lock_guard<std::mutex> lk(mu);
    reply = value;
    replied = true;
    cv.notify_one();
  }

  void Loop() {
    handle = pthread_self();
    started = true;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, KickSignal());
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    char name[16];
    snprintf(name, sizeof name, "vcpu%d", index);
    pthread_setname_np(pthread_self(), name);

    int err = 0;
    while (!stopping.load()) {
      if (ioctl(fd, KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;  // kicked: re-check stopping
        err = errno;
        break;
      }
      if (HandOff(static_cast<int>(run->exit_reason)) != 0) break;
    }
    auto* end = new Call{Call::kEnd, err};
    if (tsfn.BlockingCall(end) != napi_ok) delete end;
    tsfn.Release();
  }

  void Kick() {
    stopping = true;
    run->immediate_exit = 1;  // covers a thread about to enter KVM_RUN
    if (started) pthread_kill(handle, KickSignal());
  }
};

// Runs on the JS thread for each hand-off (env is null during teardown).
void Dispatch(Napi::Env env, Napi::Function onExit, VcpuContext* ctx, Call* call) {
  std::unique_ptr<Call> c(call);
  VcpuState* s = ctx->state.get();
  if (c->kind == Call::kEnd) {
    if (env != nullptr) ctx->onEnd.Call({Napi::Number::New(env, c->value)});
    return;
  }
  if (env == nullptr) {
    s->Reply(1);
    return;
  }
  int reply = 1;  // a throwing handler stops the vCPU; the exception reaches JS
  try {
    Napi::Value r = onExit.Call({Napi::Number::New(env, c->value)});
    reply = r.IsNumber() ? r.As<Napi::Number>().Int32Value() : 0;
  } catch (...) {
    s->Reply(1);
    throw;
  }
  s->Reply(reply);
}

class VcpuThread : public Napi::ObjectWrap<VcpuThread> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "VcpuThread", {InstanceMethod("stop", &VcpuThread::Stop)});
  }

  // new VcpuThread(index, vcpuFd, runBuffer, onExit(reason) -> number, onEnd(errno))
  explicit VcpuThread(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VcpuThread>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[2].IsArrayBuffer() || !info[3].IsFunction() || !info[4].IsFunction())
      throw Napi::TypeError::New(env, "usage: new VcpuThread(index, vcpuFd, runBuffer, onExit, onEnd)");
    InstallKickHandler();
    state_ = std::make_shared<VcpuState>();
    state_->index = ArgInt(info, 0);
    state_->fd = ArgInt(info, 1);
    Napi::ArrayBuffer runBuf = info[2].As<Napi::ArrayBuffer>();
    if (runBuf.ByteLength() < sizeof(kvm_run)) throw Napi::RangeError::New(env, "runBuffer is smaller than kvm_run");
    state_->run = static_cast<kvm_run*>(runBuf.Data());

    auto* ctx = new VcpuContext{state_, Napi::Persistent(info[4].As<Napi::Function>()), Napi::Persistent(runBuf.As<Napi::Object>())};
    state_->tsfn = VcpuTsfn::New(env, info[3].As<Napi::Function>(), "vmctr-vcpu", 0, 1, ctx,
                                 [](Napi::Env, void*, VcpuContext* c) {
                                   if (c->state->thread.joinable()) c->state->thread.join();
                                   delete c;
                                 });
    VcpuState* raw = state_.get();
    state_->thread = std::thread([raw] { raw->Loop(); });
  }

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    state_->Kick();
    return info.Env().Undefined();
  }

  std::shared_ptr<VcpuState> state_;
};

}  // namespace

void InitVcpuThread(Napi::Env env, Napi::Object exports) {
  exports.Set("VcpuThread", VcpuThread::Define(env));
}

}  // namespace vmctr
