// Unix datagram sockets, for the systemd journal's native protocol (what a
// datagram holds is in monitor/journal.ts), and the receiving end a test's
// journal stands in with.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

// A non-blocking, close-on-exec datagram socket and the address of `path` (the one argument).
int DatagramSocket(const Napi::CallbackInfo& info, const char* usage, sockaddr_un* addr) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, usage);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) throw Napi::RangeError::New(env, "socket path is empty or too long: " + path);
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSyscall(env, "socket");
  return fd;
}

// (path) -> fd: a non-blocking, close-on-exec SOCK_DGRAM socket connected
// to `path`, or -1 when nothing listens there (no such file, refused).
Napi::Value UnixDatagramConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  int fd = DatagramSocket(info, "unixDatagramConnect(path: string)", &addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) return Napi::Number::New(env, -1);
    ThrowSyscall(env, "connect", err);
  }
  return Napi::Number::New(env, fd);
}

// (fd, data: Uint8Array) -> boolean: false when the receiver's queue is
// full (EAGAIN) and the datagram was not sent. Never blocks.
Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  if (info.Length() < 2 || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "sendDatagram(fd, data: Uint8Array)");
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  for (;;) {
    ssize_t n = send(fd, data.Data(), data.ByteLength(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Napi::Boolean::New(env, false);
    ThrowSyscall(env, "send");
  }
}

// (path) -> fd: a non-blocking, close-on-exec SOCK_DGRAM socket bound to `path`.
Napi::Value UnixDatagramBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  int fd = DatagramSocket(info, "unixDatagramBind(path: string)", &addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, "bind", err);
  }
  return Napi::Number::New(env, fd);
}

// (fd, maxBytes) -> Buffer | null: the next datagram (cut at maxBytes), or
// null when none is queued. Never blocks.
Napi::Value RecvDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  uint32_t max = ArgU32(info, 1);
  if (max == 0 || max > (1u << 24)) throw Napi::RangeError::New(env, "maxBytes must be 1 to 16 MiB");
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(env, max);
  for (;;) {
    ssize_t n = recv(fd, buffer.Data(), max, MSG_DONTWAIT);
    if (n >= 0) return Napi::Buffer<uint8_t>::Copy(env, buffer.Data(), static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return env.Null();
    ThrowSyscall(env, "recv");
  }
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixDatagramConnect", Napi::Function::New(env, UnixDatagramConnect, "unixDatagramConnect"));
  exports.Set("sendDatagram", Napi::Function::New(env, SendDatagram, "sendDatagram"));
  exports.Set("unixDatagramBind", Napi::Function::New(env, UnixDatagramBind, "unixDatagramBind"));
  exports.Set("recvDatagram", Napi::Function::New(env, RecvDatagram, "recvDatagram"));
}

}  // namespace vmctr
