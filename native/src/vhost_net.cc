// Tap devices and the kernel's vhost-net: the syscalls behind virtio-net's
// data path, where packets go between the guest's rings and the tap in the
// host kernel and never through the VMM. Which features, queues and
// addresses to set is decided in vmm/vhost/.
#include <fcntl.h>
#include <linux/if_tun.h>
// The legacy vring helpers in virtio_ring.h (included by vhost.h) are C only.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

int Ioctl(Napi::Env env, int fd, unsigned long request, void* arg, const char* name) {
  int r;
  do r = ioctl(fd, request, arg);
  while (r < 0 && errno == EINTR);
  if (r < 0) ThrowSyscall(env, name);
  return r;
}

// (name, vnetHeaderSize) -> { fd, name }: attaches to the existing tap
// `name` in this process's network namespace (ENODEV if there is none;
// EINVAL from TUNSETIFF if it is not a tap), without packet info and with a
// virtio-net header of `vnetHeaderSize` bytes on every packet.
Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "tapOpen(name: string, vnetHeaderSize: number)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int headerSize = ArgInt(info, 1);
  if (name.empty() || name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "tap name must be 1 to 15 bytes: " + name);
  // TUNSETIFF would create a missing one, gone again with the VM: the host side owns the pod's taps.
  if (if_nametoindex(name.c_str()) == 0) ThrowSyscall(env, "if_nametoindex", ENODEV);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowSyscall(env, "open /dev/net/tun");
  try {
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    std::memcpy(ifr.ifr_name, name.c_str(), name.size());
    Ioctl(env, fd, TUNSETIFF, &ifr, "TUNSETIFF");
    Ioctl(env, fd, TUNSETVNETHDRSZ, &headerSize, "TUNSETVNETHDRSZ");
    Napi::Object out = Napi::Object::New(env);
    out.Set("fd", fd);
    out.Set("name", std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
    return out;
  } catch (...) {
    close(fd);
    throw;
  }
}

// (fd, flags): TUNSETOFFLOAD, the TUN_F_* offloads the reader (the guest) takes.
Napi::Value TapSetOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  unsigned long flags = ArgU32(info, 1);
  int r;
  do r = ioctl(fd, TUNSETOFFLOAD, flags);
  while (r < 0 && errno == EINTR);
  if (r < 0) ThrowSyscall(env, "TUNSETOFFLOAD");
  return env.Undefined();
}

// () -> fd of /dev/vhost-net, owned by this process (VHOST_SET_OWNER: its
// worker thread is created in this process's cgroup).
Napi::Value VhostNetOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowSyscall(env, "open /dev/vhost-net");
  if (ioctl(fd, VHOST_SET_OWNER) < 0) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, "VHOST_SET_OWNER", err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value VhostGetFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t features = 0;
  Ioctl(env, ArgInt(info, 0), VHOST_GET_FEATURES, &features, "VHOST_GET_FEATURES");
  return Napi::BigInt::New(env, features);
}

Napi::Value VhostSetFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) throw Napi::TypeError::New(env, "vhostSetFeatures(fd, features: bigint)");
  uint64_t features = ToU64(env, info[1]);
  Ioctl(env, ArgInt(info, 0), VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES");
  return env.Undefined();
}

// (fd, regions: [{ guestPhysAddr: bigint, memory: ArrayBuffer }]): guest
// RAM as the vhost worker finds it, each region's host address taken from
// the mapping behind its ArrayBuffer.
Napi::Value VhostSetMemTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "vhostSetMemTable(fd, regions)");
  Napi::Array regions = info[1].As<Napi::Array>();
  uint32_t n = regions.Length();
  if (n == 0 || n > 64) throw Napi::RangeError::New(env, "1 to 64 memory regions");
  std::vector<uint8_t> storage(sizeof(vhost_memory) + n * sizeof(vhost_memory_region));
  auto* table = reinterpret_cast<vhost_memory*>(storage.data());
  table->nregions = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object r = regions.Get(i).As<Napi::Object>();
    Napi::Value memory = r.Get("memory");
    if (!memory.IsArrayBuffer()) throw Napi::TypeError::New(env, "region.memory must be an ArrayBuffer");
    Napi::ArrayBuffer buffer = memory.As<Napi::ArrayBuffer>();
    table->regions[i].guest_phys_addr = ToU64(env, r.Get("guestPhysAddr"));
    table->regions[i].memory_size = buffer.ByteLength();
    table->regions[i].userspace_addr = reinterpret_cast<uint64_t>(buffer.Data());
  }
  Ioctl(env, ArgInt(info, 0), VHOST_SET_MEM_TABLE, table, "VHOST_SET_MEM_TABLE");
  return env.Undefined();
}

// (fd, index, num): VHOST_SET_VRING_NUM or VHOST_SET_VRING_BASE.
Napi::Value VringState(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  Napi::Env env = info.Env();
  vhost_vring_state state{ArgU32(info, 1), ArgU32(info, 2)};
  Ioctl(env, ArgInt(info, 0), request, &state, name);
  return env.Undefined();
}

Napi::Value VhostSetVringNum(const Napi::CallbackInfo& info) { return VringState(info, VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM"); }
Napi::Value VhostSetVringBase(const Napi::CallbackInfo& info) { return VringState(info, VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE"); }

// (fd, index, { desc, avail, used }: host addresses as bigints, from the
// guest RAM mapping's address (vmm/vhost/ translates the guest's).
Napi::Value VhostSetVringAddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsObject()) throw Napi::TypeError::New(env, "vhostSetVringAddr(fd, index, { desc, avail, used })");
  Napi::Object a = info[2].As<Napi::Object>();
  vhost_vring_addr addr{};
  addr.index = ArgU32(info, 1);
  addr.desc_user_addr = ToU64(env, a.Get("desc"));
  addr.avail_user_addr = ToU64(env, a.Get("avail"));
  addr.used_user_addr = ToU64(env, a.Get("used"));
  Ioctl(env, ArgInt(info, 0), VHOST_SET_VRING_ADDR, &addr, "VHOST_SET_VRING_ADDR");
  return env.Undefined();
}

// (fd, index, fd2): VHOST_SET_VRING_KICK, _CALL, or VHOST_NET_SET_BACKEND (-1 detaches).
Napi::Value VringFile(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  Napi::Env env = info.Env();
  vhost_vring_file file{ArgU32(info, 1), ArgInt(info, 2)};
  Ioctl(env, ArgInt(info, 0), request, &file, name);
  return env.Undefined();
}

Napi::Value VhostSetVringKick(const Napi::CallbackInfo& info) { return VringFile(info, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK"); }
Napi::Value VhostSetVringCall(const Napi::CallbackInfo& info) { return VringFile(info, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL"); }
Napi::Value VhostNetSetBackend(const Napi::CallbackInfo& info) { return VringFile(info, VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND"); }

// (memory: ArrayBuffer) -> bigint: the host address of the mapping behind it.
Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "bufferAddress(memory: ArrayBuffer)");
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(info[0].As<Napi::ArrayBuffer>().Data())));
}

}  // namespace

void InitVhostNet(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("tapSetOffload", Napi::Function::New(env, TapSetOffload, "tapSetOffload"));
  exports.Set("vhostNetOpen", Napi::Function::New(env, VhostNetOpen, "vhostNetOpen"));
  exports.Set("vhostGetFeatures", Napi::Function::New(env, VhostGetFeatures, "vhostGetFeatures"));
  exports.Set("vhostSetFeatures", Napi::Function::New(env, VhostSetFeatures, "vhostSetFeatures"));
  exports.Set("vhostSetMemTable", Napi::Function::New(env, VhostSetMemTable, "vhostSetMemTable"));
  exports.Set("vhostSetVringNum", Napi::Function::New(env, VhostSetVringNum, "vhostSetVringNum"));
  exports.Set("vhostSetVringBase", Napi::Function::New(env, VhostSetVringBase, "vhostSetVringBase"));
  exports.Set("vhostSetVringAddr", Napi::Function::New(env, VhostSetVringAddr, "vhostSetVringAddr"));
  exports.Set("vhostSetVringKick", Napi::Function::New(env, VhostSetVringKick, "vhostSetVringKick"));
  exports.Set("vhostSetVringCall", Napi::Function::New(env, VhostSetVringCall, "vhostSetVringCall"));
  exports.Set("vhostNetSetBackend", Napi::Function::New(env, VhostNetSetBackend, "vhostNetSetBackend"));
  exports.Set("bufferAddress", Napi::Function::New(env, BufferAddress, "bufferAddress"));
}

}  // namespace vmctr
