// Guest RAM: a memfd (so a vhost-user backend can map the same pages later)
// mapped shared and handed to JS as an ArrayBuffer over the mapping: device
// code reads and writes guest memory without copies.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

struct Mapping {
  size_t size;
};

// (size, name) -> {fd, buffer}
Napi::Value CreateGuestMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ArgU64(info, 0);
  std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "vmctr-guest-ram";
  if (size == 0 || size % 4096 != 0) throw Napi::RangeError::New(env, "guest memory size must be a non-zero multiple of 4096");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) ThrowSyscall(env, "memfd_create");
  if (ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, "ftruncate(memfd)", err);
  }
  // MAP_NORESERVE: a pod pays only for the pages its guest touches.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, "mmap(guest memory)", err);
  }
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, p, size, [](Napi::Env, void* data, Mapping* m) {
    munmap(data, m->size);
    delete m;
  }, new Mapping{size});
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("buffer", buf);
  return out;
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("createGuestMemory", Napi::Function::New(env, CreateGuestMemory, "createGuestMemory"));
}

}  // namespace vmctr
