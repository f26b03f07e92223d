// eventfds for ioeventfd (guest -> VMM notifications without a VM exit to
// JS) and irqfd (VMM -> guest interrupts), and a watcher that drains an
// eventfd on the JS event loop.
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

Napi::Value CreateEventFd(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowSyscall(info.Env(), "eventfd");
  return Napi::Number::New(info.Env(), fd);
}

// (fd, value=1): signal an eventfd, e.g. an irqfd to raise a guest interrupt.
Napi::Value WriteEventFd(const Napi::CallbackInfo& info) {
  uint64_t v = info.Length() > 1 ? ArgU64(info, 1) : 1;
  if (write(ArgInt(info, 0), &v, sizeof v) != sizeof v) ThrowSyscall(info.Env(), "write(eventfd)");
  return info.Env().Undefined();
}

// Calls back with the drained counter each time the eventfd becomes readable.
class EventFdWatcher : public Napi::ObjectWrap<EventFdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EventFdWatcher", {InstanceMethod("close", &EventFdWatcher::Close)});
  }

  // new EventFdWatcher(fd, callback)
  explicit EventFdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventFdWatcher>(info) {
    Napi::Env env = info.Env();
    fd_ = ArgInt(info, 0);
    if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    poll_ = new uv_poll_t;
    poll_->data = this;
    int r = uv_poll_init(loop, poll_, fd_);
    if (r < 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowSyscall(env, "uv_poll_init", -r);
    }
    uv_poll_start(poll_, UV_READABLE, OnReadable);
    Ref();  // alive while polling, even if JS drops its handle
  }

  ~EventFdWatcher() override { Stop(); }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<EventFdWatcher*>(handle->data);
    if (status < 0) return;
    uint64_t count = 0;
    if (read(self->fd_, &count, sizeof count) != sizeof count) return;  // EAGAIN: already drained
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // Called from libuv, not from JavaScript: a C++ exception must not
    // unwind through its C frames (that is std::terminate). A JavaScript
    // exception goes where Node sends any callback's: 'uncaughtException'.
    try {
      self->callback_.Call({Napi::Number::New(env, static_cast<double>(count))});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void Stop() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
};

}  // namespace

void InitEventFd(Napi::Env env, Napi::Object exports) {
  exports.Set("createEventFd", Napi::Function::New(env, CreateEventFd, "createEventFd"));
  exports.Set("writeEventFd", Napi::Function::New(env, WriteEventFd, "writeEventFd"));
  exports.Set("EventFdWatcher", EventFdWatcher::Define(env));
}

}  // namespace vmctr
