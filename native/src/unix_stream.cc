// Unix stream sockets that carry file descriptors (SCM_RIGHTS): the VMM's
// end of a vhost-user backend's control socket (what the messages hold is in
// vmm/vhost/vhost-user-message.ts). Blocking, with a timeout on every send
// and receive: a request waits for its reply, and a backend that stops
// answering fails the call with EAGAIN instead of hanging the VMM.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

// Bounds one control message; vhost-user passes at most 8 fds a message
// (VHOST_MEMORY_BASELINE_NREGIONS, one per memory region).
constexpr uint32_t kMaxFds = 16;
// vhost-user messages are a few hundred bytes; this only bounds the buffer.
constexpr uint32_t kMaxBytes = 1u << 20;
constexpr uint32_t kMaxTimeoutMs = 600000;

// An fd argument, or an element of an fd array: an integer from 0 to INT_MAX.
int ToFd(Napi::Env env, Napi::Value v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "an fd must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 2147483647.0 || std::floor(d) != d) throw Napi::RangeError::New(env, "an fd must be an integer from 0");
  return static_cast<int>(d);
}

// An integer argument in [lo, hi].
uint32_t ArgRange(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t lo, uint32_t hi) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < lo || d > hi || std::floor(d) != d) throw Napi::RangeError::New(env, std::string(name) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<uint32_t>(d);
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// (path, timeoutMs) -> fd: a blocking, close-on-exec SOCK_STREAM socket
// connected to `path`, whose sends and receives fail with EAGAIN after
// `timeoutMs` (SO_SNDTIMEO, SO_RCVTIMEO).
Napi::Value UnixStreamConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "unixStreamConnect(path: string, timeoutMs: number)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  uint32_t timeoutMs = ArgRange(info, 1, "timeoutMs", 1, kMaxTimeoutMs);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) throw Napi::RangeError::New(env, "socket path is empty or too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSyscall(env, "socket");
  timeval timeout{static_cast<time_t>(timeoutMs / 1000), static_cast<suseconds_t>(timeoutMs % 1000) * 1000};
  const char* failed = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) failed = "setsockopt(SO_RCVTIMEO)";
  else if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0) failed = "setsockopt(SO_SNDTIMEO)";
  else {
    int r;
    do r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    while (r < 0 && errno == EINTR);
    if (r < 0) failed = "connect";
  }
  if (failed) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, failed, err);
  }
  return Napi::Number::New(env, fd);
}

// (fd, data: Uint8Array, fds: number[]): sendmsg(2) of all of `data` with
// `fds` as one SCM_RIGHTS message (the receiver gets copies; ours stay
// open). MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE. A short send
// (the timeout struck midway) is an error: the stream is then out of step.
Napi::Value SendWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "sendWithFds(fd, data: Uint8Array, fds: number[])";
  if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsArray()) throw Napi::TypeError::New(env, usage);
  int fd = ToFd(env, info[0]);
  if (info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, usage);
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  // Zero bytes on a stream would carry no fds: the kernel sends nothing.
  if (data.ByteLength() == 0 || data.ByteLength() > kMaxBytes) throw Napi::RangeError::New(env, "data must be 1 byte to 1 MiB");
  Napi::Array list = info[2].As<Napi::Array>();
  if (list.Length() > kMaxFds) throw Napi::RangeError::New(env, "at most " + std::to_string(kMaxFds) + " fds");
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) fds.push_back(ToFd(env, list.Get(i)));

  iovec iov{data.Data(), data.ByteLength()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSyscall(env, "sendmsg");
  if (static_cast<size_t>(n) != data.ByteLength()) throw Napi::Error::New(env, "sendmsg sent " + std::to_string(n) + " of " + std::to_string(data.ByteLength()) + " bytes");
  return env.Undefined();
}

// (fd, maxBytes, maxFds) -> { bytes: Buffer, fds: number[] }: one
// recvmsg(2) of at most `maxBytes`. Received fds are close-on-exec; those
// beyond `maxFds` are closed, never left open in this process. EOF is a
// zero-length buffer; the timeout is EAGAIN.
Napi::Value RecvWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) throw Napi::TypeError::New(env, "recvWithFds(fd, maxBytes: number, maxFds: number)");
  int fd = ToFd(env, info[0]);
  uint32_t maxBytes = ArgRange(info, 1, "maxBytes", 1, kMaxBytes);
  uint32_t maxFds = ArgRange(info, 2, "maxFds", 0, kMaxFds);
  std::vector<uint8_t> buffer(maxBytes);
  iovec iov{buffer.data(), maxBytes};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for kMaxFds whatever maxFds is, so that extra fds arrive to be closed here.
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSyscall(env, "recvmsg");

  std::vector<int> kept;
  std::vector<int> extra;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      std::memcpy(&received, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      (kept.size() < maxFds ? kept : extra).push_back(received);
    }
  }
  CloseAll(extra);
  try {
    Napi::Object out = Napi::Object::New(env);
    out.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, buffer.data(), static_cast<size_t>(n)));
    Napi::Array fds = Napi::Array::New(env, kept.size());
    for (uint32_t i = 0; i < kept.size(); i++) fds.Set(i, kept[i]);
    out.Set("fds", fds);
    return out;
  } catch (...) {
    CloseAll(kept);
    throw;
  }
}

}  // namespace

void InitUnixStream(Napi::Env env, Napi::Object exports) {
  exports.Set("unixStreamConnect", Napi::Function::New(env, UnixStreamConnect, "unixStreamConnect"));
  exports.Set("sendWithFds", Napi::Function::New(env, SendWithFds, "sendWithFds"));
  exports.Set("recvWithFds", Napi::Function::New(env, RecvWithFds, "recvWithFds"));
}

}  // namespace vmctr
