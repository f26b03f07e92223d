// KVM ioctls, one function each: argument marshalling and the syscall, no policy.
// Reference: Documentation/virt/kvm/api.rst (the KVM API).
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "errors.h"
#include "kvm.h"

namespace vmctr {
namespace {

int Ioctl(Napi::Env env, const char* name, int fd, unsigned long req, void* arg) {
  int r;
  do {
    r = ioctl(fd, req, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowSyscall(env, name);
  return r;
}

// A signal (the profiler's SIGPROF, a terminal's SIGWINCH...) can interrupt
// any of these (KVM_CREATE_VM was seen to): none has a side effect before
// it fails, so it is simply repeated. KVM_RUN is not called through here.
int IoctlValue(Napi::Env env, const char* name, int fd, unsigned long req, unsigned long arg) {
  int r;
  do {
    r = ioctl(fd, req, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowSyscall(env, name);
  return r;
}

Napi::BigInt Big(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

uint64_t GetU64(Napi::Object o, const char* key) { return ToU64(o.Env(), o.Get(key)); }
uint32_t GetU32(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("field ") + key + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an object");
  return info[i].As<Napi::Object>();
}

// --- system ioctls on /dev/kvm -------------------------------------------

Napi::Value GetApiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IoctlValue(info.Env(), "KVM_GET_API_VERSION", ArgInt(info, 0), KVM_GET_API_VERSION, 0));
}

Napi::Value CheckExtension(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IoctlValue(info.Env(), "KVM_CHECK_EXTENSION", ArgInt(info, 0), KVM_CHECK_EXTENSION, ArgU32(info, 1)));
}

Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  int fd = IoctlValue(info.Env(), "KVM_CREATE_VM", ArgInt(info, 0), KVM_CREATE_VM, 0);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GetVcpuMmapSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IoctlValue(info.Env(), "KVM_GET_VCPU_MMAP_SIZE", ArgInt(info, 0), KVM_GET_VCPU_MMAP_SIZE, 0));
}

// A kernel struct that ends in a flexible array (kvm_cpuid2, kvm_msrs),
// with room for n entries.
template <typename Header, typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t n) : bytes_(sizeof(Header) + n * sizeof(Entry)) {}
  Header* header() { return reinterpret_cast<Header*>(bytes_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(bytes_.data() + sizeof(Header)); }

 private:
  std::vector<uint8_t> bytes_;
};

// kvm_cpuid2 and kvm_msrs end in __DECLARE_FLEX_ARRAY, which C++ compilers
// lay out with an extra empty struct (sizeof 12, not 8), and that size is
// encoded in the ioctl number. So: the C layout, and the numbers, spelled out.
struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8, "kernel ABI");
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

constexpr uint32_t kMaxCpuidEntries = 256;
using CpuidBuffer = FlexBuffer<CpuidHeader, kvm_cpuid_entry2>;

Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CpuidBuffer buf(kMaxCpuidEntries);
  buf.header()->nent = kMaxCpuidEntries;
  Ioctl(env, "KVM_GET_SUPPORTED_CPUID", ArgInt(info, 0), kGetSupportedCpuid, buf.header());
  Napi::Array out = Napi::Array::New(env, buf.header()->nent);
  for (uint32_t i = 0; i < buf.header()->nent; i++) {
    const kvm_cpuid_entry2& e = buf.entries()[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("function", e.function);
    o.Set("index", e.index);
    o.Set("flags", e.flags);
    o.Set("eax", e.eax);
    o.Set("ebx", e.ebx);
    o.Set("ecx", e.ecx);
    o.Set("edx", e.edx);
    out.Set(i, o);
  }
  return out;
}

// --- VM ioctls -----------------------------------------------------------

Napi::Value CreateIrqchip(const Napi::CallbackInfo& info) {
  Ioctl(info.Env(), "KVM_CREATE_IRQCHIP", ArgInt(info, 0), KVM_CREATE_IRQCHIP, nullptr);
  return info.Env().Undefined();
}

Napi::Value CreatePit2(const Napi::CallbackInfo& info) {
  kvm_pit_config cfg{};
  cfg.flags = ArgU32(info, 1);
  Ioctl(info.Env(), "KVM_CREATE_PIT2", ArgInt(info, 0), KVM_CREATE_PIT2, &cfg);
  return info.Env().Undefined();
}

Napi::Value SetTssAddr(const Napi::CallbackInfo& info) {
  IoctlValue(info.Env(), "KVM_SET_TSS_ADDR", ArgInt(info, 0), KVM_SET_TSS_ADDR, ArgU32(info, 1));
  return info.Env().Undefined();
}

Napi::Value SetIdentityMapAddr(const Napi::CallbackInfo& info) {
  uint64_t addr = ArgU64(info, 1);
  Ioctl(info.Env(), "KVM_SET_IDENTITY_MAP_ADDR", ArgInt(info, 0), KVM_SET_IDENTITY_MAP_ADDR, &addr);
  return info.Env().Undefined();
}

// (vmFd, slot, flags, guestPhysAddr, memory: ArrayBuffer | null)
// The host address is the ArrayBuffer's own backing store (our mmap), so JS
// can never hand KVM a pointer it did not get from us. null deletes the slot.
Napi::Value SetUserMemoryRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_userspace_memory_region r{};
  r.slot = ArgU32(info, 1);
  r.flags = ArgU32(info, 2);
  r.guest_phys_addr = ArgU64(info, 3);
  if (info.Length() > 4 && info[4].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[4].As<Napi::ArrayBuffer>();
    r.userspace_addr = reinterpret_cast<uint64_t>(ab.Data());
    r.memory_size = ab.ByteLength();
  } else if (info.Length() <= 4 || !info[4].IsNull()) {
    throw Napi::TypeError::New(env, "memory must be an ArrayBuffer from createGuestMemory, or null to delete the slot");
  }
  Ioctl(env, "KVM_SET_USER_MEMORY_REGION", ArgInt(info, 0), KVM_SET_USER_MEMORY_REGION, &r);
  return env.Undefined();
}

Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
  int fd = IoctlValue(info.Env(), "KVM_CREATE_VCPU", ArgInt(info, 0), KVM_CREATE_VCPU, ArgU32(info, 1));
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value IrqLine(const Napi::CallbackInfo& info) {
  kvm_irq_level lvl{};
  lvl.irq = ArgU32(info, 1);
  lvl.level = ArgU32(info, 2);
  Ioctl(info.Env(), "KVM_IRQ_LINE", ArgInt(info, 0), KVM_IRQ_LINE, &lvl);
  return info.Env().Undefined();
}

// (vmFd, {fd, gsi, deassign?})
Napi::Value Irqfd(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 1);
  kvm_irqfd req{};
  req.fd = GetU32(o, "fd");
  req.gsi = GetU32(o, "gsi");
  if (o.Get("deassign").ToBoolean()) req.flags |= KVM_IRQFD_FLAG_DEASSIGN;
  Ioctl(info.Env(), "KVM_IRQFD", ArgInt(info, 0), KVM_IRQFD, &req);
  return info.Env().Undefined();
}

// (vmFd, {fd, addr, len, datamatch?, pio?, deassign?})
Napi::Value Ioeventfd(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 1);
  kvm_ioeventfd req{};
  req.fd = static_cast<int32_t>(GetU32(o, "fd"));
  req.addr = GetU64(o, "addr");
  req.len = GetU32(o, "len");
  Napi::Value dm = o.Get("datamatch");
  if (!dm.IsUndefined() && !dm.IsNull()) {
    req.datamatch = ToU64(info.Env(), dm);
    req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
  }
  if (o.Get("pio").ToBoolean()) req.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (o.Get("deassign").ToBoolean()) req.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  Ioctl(info.Env(), "KVM_IOEVENTFD", ArgInt(info, 0), KVM_IOEVENTFD, &req);
  return info.Env().Undefined();
}

// --- vCPU ioctls ---------------------------------------------------------

// kvm_regs as a plain object of bigints, in the struct's field order.
#define VMCTR_REGS(X) X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) \
  X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) X(rflags)

Napi::Value GetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_regs r{};
  Ioctl(env, "KVM_GET_REGS", ArgInt(info, 0), KVM_GET_REGS, &r);
  Napi::Object o = Napi::Object::New(env);
#define X(f) o.Set(#f, Big(env, r.f));
  VMCTR_REGS(X)
#undef X
  return o;
}

Napi::Value SetRegs(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 1);
  kvm_regs r{};
#define X(f) r.f = GetU64(o, #f);
  VMCTR_REGS(X)
#undef X
  Ioctl(info.Env(), "KVM_SET_REGS", ArgInt(info, 0), KVM_SET_REGS, &r);
  return info.Env().Undefined();
}

Napi::Object SegmentToJs(Napi::Env env, const kvm_segment& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Big(env, s.base));
  o.Set("limit", s.limit);
  o.Set("selector", s.selector);
  o.Set("type", s.type);
  o.Set("present", s.present);
  o.Set("dpl", s.dpl);
  o.Set("db", s.db);
  o.Set("s", s.s);
  o.Set("l", s.l);
  o.Set("g", s.g);
  o.Set("avl", s.avl);
  o.Set("unusable", s.unusable);
  return o;
}

void SegmentFromJs(Napi::Object o, kvm_segment& s) {
  s.base = GetU64(o, "base");
  s.limit = GetU32(o, "limit");
  s.selector = GetU32(o, "selector");
  s.type = GetU32(o, "type");
  s.present = GetU32(o, "present");
  s.dpl = GetU32(o, "dpl");
  s.db = GetU32(o, "db");
  s.s = GetU32(o, "s");
  s.l = GetU32(o, "l");
  s.g = GetU32(o, "g");
  s.avl = GetU32(o, "avl");
  s.unusable = GetU32(o, "unusable");
}

#define VMCTR_SEGMENTS(X) X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)
#define VMCTR_CONTROL(X) X(cr0) X(cr2) X(cr3) X(cr4) X(cr8) X(efer) X(apic_base)

Napi::Value GetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_sregs s{};
  Ioctl(env, "KVM_GET_SREGS", ArgInt(info, 0), KVM_GET_SREGS, &s);
  Napi::Object o = Napi::Object::New(env);
#define X(f) o.Set(#f, SegmentToJs(env, s.f));
  VMCTR_SEGMENTS(X)
#undef X
#define X(f) o.Set(#f, Big(env, s.f));
  VMCTR_CONTROL(X)
#undef X
  for (const char* name : {"gdt", "idt"}) {
    const kvm_dtable& t = name[0] == 'g' ? s.gdt : s.idt;
    Napi::Object d = Napi::Object::New(env);
    d.Set("base", Big(env, t.base));
    d.Set("limit", t.limit);
    o.Set(name, d);
  }
  return o;
}

// Read-modify-write so that fields JS leaves out (the pending-interrupt
// bitmap) keep KVM's values.
Napi::Value SetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  Napi::Object o = ArgObject(info, 1);
  kvm_sregs s{};
  Ioctl(env, "KVM_GET_SREGS", fd, KVM_GET_SREGS, &s);
#define X(f) SegmentFromJs(o.Get(#f).As<Napi::Object>(), s.f);
  VMCTR_SEGMENTS(X)
#undef X
#define X(f) s.f = GetU64(o, #f);
  VMCTR_CONTROL(X)
#undef X
  Napi::Object g = o.Get("gdt").As<Napi::Object>();
  s.gdt.base = GetU64(g, "base");
  s.gdt.limit = GetU32(g, "limit");
  Napi::Object i = o.Get("idt").As<Napi::Object>();
  s.idt.base = GetU64(i, "base");
  s.idt.limit = GetU32(i, "limit");
  Ioctl(env, "KVM_SET_SREGS", fd, KVM_SET_SREGS, &s);
  return env.Undefined();
}

// (vcpuFd, {fcw, mxcsr}): the x87/SSE control words a booting kernel expects;
// the register file starts zeroed.
Napi::Value SetFpu(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 1);
  kvm_fpu f{};
  f.fcw = GetU32(o, "fcw");
  f.mxcsr = GetU32(o, "mxcsr");
  Ioctl(info.Env(), "KVM_SET_FPU", ArgInt(info, 0), KVM_SET_FPU, &f);
  return info.Env().Undefined();
}

Napi::Value GetFpu(const Napi::CallbackInfo& info) {
  kvm_fpu f{};
  Ioctl(info.Env(), "KVM_GET_FPU", ArgInt(info, 0), KVM_GET_FPU, &f);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("fcw", f.fcw);
  o.Set("mxcsr", f.mxcsr);
  return o;
}

Napi::Value SetCpuid2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "entries must be an array");
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() > kMaxCpuidEntries) throw Napi::RangeError::New(env, "too many CPUID entries");
  CpuidBuffer buf(arr.Length());
  buf.header()->nent = arr.Length();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = arr.Get(i).As<Napi::Object>();
    kvm_cpuid_entry2& e = buf.entries()[i];
    e.function = GetU32(o, "function");
    e.index = GetU32(o, "index");
    e.flags = GetU32(o, "flags");
    e.eax = GetU32(o, "eax");
    e.ebx = GetU32(o, "ebx");
    e.ecx = GetU32(o, "ecx");
    e.edx = GetU32(o, "edx");
  }
  Ioctl(env, "KVM_SET_CPUID2", ArgInt(info, 0), kSetCpuid2, buf.header());
  return env.Undefined();
}

constexpr uint32_t kMaxMsrs = 64;
using MsrBuffer = FlexBuffer<MsrsHeader, kvm_msr_entry>;

// (vcpuFd, [{index, data: bigint}]) -> number of MSRs KVM accepted.
Napi::Value SetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "entries must be an array");
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() > kMaxMsrs) throw Napi::RangeError::New(env, "too many MSRs");
  MsrBuffer buf(arr.Length());
  buf.header()->nmsrs = arr.Length();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = arr.Get(i).As<Napi::Object>();
    buf.entries()[i].index = GetU32(o, "index");
    buf.entries()[i].data = GetU64(o, "data");
  }
  return Napi::Number::New(env, Ioctl(env, "KVM_SET_MSRS", ArgInt(info, 0), kSetMsrs, buf.header()));
}

// (vcpuFd, [index]) -> [{index, data}] for the MSRs KVM could read.
Napi::Value GetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "indices must be an array");
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() > kMaxMsrs) throw Napi::RangeError::New(env, "too many MSRs");
  MsrBuffer buf(arr.Length());
  buf.header()->nmsrs = arr.Length();
  for (uint32_t i = 0; i < arr.Length(); i++) buf.entries()[i].index = arr.Get(i).As<Napi::Number>().Uint32Value();
  int n = Ioctl(env, "KVM_GET_MSRS", ArgInt(info, 0), kGetMsrs, buf.header());
  Napi::Array out = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", buf.entries()[i].index);
    o.Set("data", Big(env, buf.entries()[i].data));
    out.Set(i, o);
  }
  return out;
}

// The local APIC register page (1 KiB) as bytes, for LINT0/LINT1 set-up.
Napi::Value GetLapic(const Napi::CallbackInfo& info) {
  kvm_lapic_state s{};
  Ioctl(info.Env(), "KVM_GET_LAPIC", ArgInt(info, 0), KVM_GET_LAPIC, &s);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(s.regs), sizeof(s.regs));
}

Napi::Value SetLapic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "lapic state must be a Uint8Array");
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  kvm_lapic_state s{};
  if (a.ByteLength() != sizeof(s.regs)) throw Napi::RangeError::New(env, "lapic state must be 1024 bytes");
  std::memcpy(s.regs, a.Data(), sizeof(s.regs));
  Ioctl(env, "KVM_SET_LAPIC", ArgInt(info, 0), KVM_SET_LAPIC, &s);
  return env.Undefined();
}

// (vcpuFd, size) -> ArrayBuffer over the vCPU's shared kvm_run page(s),
// decoded in TypeScript without copies.
Napi::Value MapRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  size_t size = ArgU32(info, 1);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) ThrowSyscall(env, "mmap(kvm_run)");
  return Napi::ArrayBuffer::New(env, p, size, [](Napi::Env, void* data, size_t* len) {
    munmap(data, *len);
    delete len;
  }, new size_t(size));
}

}  // namespace

void InitKvm(Napi::Env env, Napi::Object exports) {
  struct Fn { const char* name; Napi::Value (*fn)(const Napi::CallbackInfo&); };
  const Fn fns[] = {
      {"kvmGetApiVersion", GetApiVersion},
      {"kvmCheckExtension", CheckExtension},
      {"kvmCreateVm", CreateVm},
      {"kvmGetVcpuMmapSize", GetVcpuMmapSize},
      {"kvmGetSupportedCpuid", GetSupportedCpuid},
      {"vmCreateIrqchip", CreateIrqchip},
      {"vmCreatePit2", CreatePit2},
      {"vmSetTssAddr", SetTssAddr},
      {"vmSetIdentityMapAddr", SetIdentityMapAddr},
      {"vmSetUserMemoryRegion", SetUserMemoryRegion},
      {"vmCreateVcpu", CreateVcpu},
      {"vmIrqLine", IrqLine},
      {"vmIrqfd", Irqfd},
      {"vmIoeventfd", Ioeventfd},
      {"vcpuGetRegs", GetRegs},
      {"vcpuSetRegs", SetRegs},
      {"vcpuGetSregs", GetSregs},
      {"vcpuSetSregs", SetSregs},
      {"vcpuGetFpu", GetFpu},
      {"vcpuSetFpu", SetFpu},
      {"vcpuSetCpuid2", SetCpuid2},
      {"vcpuSetMsrs", SetMsrs},
      {"vcpuGetMsrs", GetMsrs},
      {"vcpuGetLapic", GetLapic},
      {"vcpuSetLapic", SetLapic},
      {"vcpuMapRun", MapRun},
  };
  for (const Fn& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
}

}  // namespace vmctr
