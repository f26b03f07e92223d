/*
 * The "vmctr" QuickJS module: the system calls the guest agent needs and
 * QuickJS's os and std modules lack. Thin wrappers only, no policy: every
 * function returns its result or -errno, as the os module does, and the
 * TypeScript side (agent/quickjs-platform.ts) decides what to do with it.
 *
 *   mount(source, target, fstype, flags, data)  umount(target, flags)
 *   sync()  reboot()  uname() -> release  getpid()
 *   pipe() -> [read, write] (both close-on-exec)
 *   setNonBlocking(fd)  setCloseOnExec(fd)
 *   signalFd(signals) -> fd: blocks the signals and reads them from an fd,
 *     which, unlike a handler, cannot miss one that arrives before select
 *   spawn(file, argv, envp, fds) -> pid: fds[i] becomes the child's fd i,
 *     every other fd is closed (they are close-on-exec), and the child starts
 *     with no blocked and no ignored signals
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "quickjs.h"

/* Bounds on what spawn copies out of JS arrays. */
#define MAX_SPAWN_STRINGS 4096
#define MAX_SPAWN_FDS 16

static JSValue errno_result(JSContext *ctx) { return JS_NewInt32(ctx, -errno); }

static JSValue js_mount(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  const char *source = JS_ToCString(ctx, argv[0]), *target = JS_ToCString(ctx, argv[1]);
  const char *fstype = JS_ToCString(ctx, argv[2]), *data = JS_ToCString(ctx, argv[4]);
  uint32_t flags;
  JSValue result = JS_EXCEPTION;
  if (source && target && fstype && data && JS_ToUint32(ctx, &flags, argv[3]) == 0) {
    result = mount(source, target, fstype, flags, *data ? data : NULL) == 0 ? JS_NewInt32(ctx, 0) : errno_result(ctx);
  }
  JS_FreeCString(ctx, source);
  JS_FreeCString(ctx, target);
  JS_FreeCString(ctx, fstype);
  JS_FreeCString(ctx, data);
  return result;
}

static JSValue js_umount(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  int32_t flags;
  const char *target = JS_ToCString(ctx, argv[0]);
  if (!target) return JS_EXCEPTION;
  if (JS_ToInt32(ctx, &flags, argv[1])) {
    JS_FreeCString(ctx, target);
    return JS_EXCEPTION;
  }
  JSValue result = umount2(target, flags) == 0 ? JS_NewInt32(ctx, 0) : errno_result(ctx);
  JS_FreeCString(ctx, target);
  return result;
}

static JSValue js_sync(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  sync();
  return JS_UNDEFINED;
}

static JSValue js_reboot(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  reboot(RB_AUTOBOOT);
  return errno_result(ctx);
}

/* Sets a network interface up (SIOCSIFFLAGS |= IFF_UP): the guest's loopback, which apps of one pod share. */
static JSValue js_interface_up(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  const char *name = JS_ToCString(ctx, argv[0]);
  if (!name) return JS_EXCEPTION;
  struct ifreq req;
  memset(&req, 0, sizeof req);
  int too_long = strlen(name) >= sizeof req.ifr_name;
  strncpy(req.ifr_name, name, sizeof req.ifr_name - 1);
  JS_FreeCString(ctx, name);
  if (too_long) return JS_NewInt32(ctx, -EINVAL);
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno_result(ctx);
  int ok = ioctl(sock, SIOCGIFFLAGS, &req) == 0;
  if (ok) {
    req.ifr_flags |= IFF_UP;
    ok = ioctl(sock, SIOCSIFFLAGS, &req) == 0;
  }
  JSValue result = ok ? JS_NewInt32(ctx, 0) : errno_result(ctx);
  close(sock);
  return result;
}

static JSValue js_uname(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  struct utsname u;
  if (uname(&u) != 0) return errno_result(ctx);
  return JS_NewString(ctx, u.release);
}

static JSValue js_getpid(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  return JS_NewInt32(ctx, getpid());
}

static JSValue js_pipe(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return errno_result(ctx);
  JSValue pair = JS_NewArray(ctx);
  JS_SetPropertyUint32(ctx, pair, 0, JS_NewInt32(ctx, fds[0]));
  JS_SetPropertyUint32(ctx, pair, 1, JS_NewInt32(ctx, fds[1]));
  return pair;
}

static JSValue set_fd_flag(JSContext *ctx, JSValueConst fd_value, int get, int set, int flag) {
  int32_t fd;
  if (JS_ToInt32(ctx, &fd, fd_value)) return JS_EXCEPTION;
  int flags = fcntl(fd, get);
  if (flags < 0 || fcntl(fd, set, flags | flag) < 0) return errno_result(ctx);
  return JS_NewInt32(ctx, 0);
}

static JSValue js_set_non_blocking(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  return set_fd_flag(ctx, argv[0], F_GETFL, F_SETFL, O_NONBLOCK);
}

static JSValue js_set_close_on_exec(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  return set_fd_flag(ctx, argv[0], F_GETFD, F_SETFD, FD_CLOEXEC);
}

/* Reads a JS array's length, bounded: -1 (with an exception) when not an array or too long. */
static int64_t array_length(JSContext *ctx, JSValueConst array, int64_t max) {
  int64_t length;
  if (!JS_IsArray(ctx, array)) {
    JS_ThrowTypeError(ctx, "expected an array");
    return -1;
  }
  JSValue value = JS_GetPropertyStr(ctx, array, "length");
  int failed = JS_ToInt64(ctx, &length, value);
  JS_FreeValue(ctx, value);
  if (failed) return -1;
  if (length < 0 || length > max) {
    JS_ThrowRangeError(ctx, "array of %lld items, at most %lld allowed", (long long)length, (long long)max);
    return -1;
  }
  return length;
}

static void free_strings(JSContext *ctx, char **strings) {
  if (!strings) return;
  for (char **s = strings; *s; s++) JS_FreeCString(ctx, *s);
  free(strings);
}

/* A NULL-terminated copy of an array of strings, or NULL with an exception. */
static char **string_array(JSContext *ctx, JSValueConst array) {
  int64_t length = array_length(ctx, array, MAX_SPAWN_STRINGS);
  if (length < 0) return NULL;
  char **strings = calloc(length + 1, sizeof(char *));
  if (!strings) {
    JS_ThrowOutOfMemory(ctx);
    return NULL;
  }
  for (int64_t i = 0; i < length; i++) {
    JSValue item = JS_GetPropertyUint32(ctx, array, i);
    strings[i] = (char *)JS_ToCString(ctx, item);
    JS_FreeValue(ctx, item);
    if (!strings[i]) {
      free_strings(ctx, strings);
      return NULL;
    }
  }
  return strings;
}

static JSValue js_spawn(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  JSValue result = JS_EXCEPTION;
  const char *file = JS_ToCString(ctx, argv[0]);
  char **args = file ? string_array(ctx, argv[1]) : NULL;
  char **env = args ? string_array(ctx, argv[2]) : NULL;
  int64_t nfds = env ? array_length(ctx, argv[3], MAX_SPAWN_FDS) : -1;
  int32_t fds[MAX_SPAWN_FDS];
  /* Each source duplicated above every target first, so that no dup2 overwrites a later source. */
  int high[MAX_SPAWN_FDS];
  int64_t nhigh = 0;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int have_actions = 0, have_attr = 0;
  if (nfds < 0) goto done;
  for (int64_t i = 0; i < nfds; i++) {
    JSValue item = JS_GetPropertyUint32(ctx, argv[3], i);
    int failed = JS_ToInt32(ctx, &fds[i], item);
    JS_FreeValue(ctx, item);
    if (failed) goto done;
  }
  if (posix_spawn_file_actions_init(&actions) != 0) goto oom;
  have_actions = 1;
  if (posix_spawnattr_init(&attr) != 0) goto oom;
  have_attr = 1;
  for (; nhigh < nfds; nhigh++) {
    high[nhigh] = fcntl(fds[nhigh], F_DUPFD_CLOEXEC, MAX_SPAWN_FDS);
    if (high[nhigh] < 0) {
      result = errno_result(ctx);
      goto done;
    }
    if (posix_spawn_file_actions_adddup2(&actions, high[nhigh], (int)nhigh) != 0) goto oom;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int err = posix_spawn(&pid, file, &actions, &attr, args, env);
  result = JS_NewInt32(ctx, err == 0 ? pid : -err);
  goto done;
oom:
  JS_ThrowOutOfMemory(ctx);
done:
  for (int64_t i = 0; i < nhigh; i++) close(high[i]);
  if (have_actions) posix_spawn_file_actions_destroy(&actions);
  if (have_attr) posix_spawnattr_destroy(&attr);
  free_strings(ctx, env);
  free_strings(ctx, args);
  JS_FreeCString(ctx, file);
  return result;
}

static JSValue js_signal_fd(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
  int64_t length = array_length(ctx, argv[0], 64);
  if (length < 0) return JS_EXCEPTION;
  sigset_t set;
  sigemptyset(&set);
  for (int64_t i = 0; i < length; i++) {
    int32_t signal;
    JSValue item = JS_GetPropertyUint32(ctx, argv[0], i);
    int failed = JS_ToInt32(ctx, &signal, item);
    JS_FreeValue(ctx, item);
    if (failed) return JS_EXCEPTION;
    if (sigaddset(&set, signal) != 0) return errno_result(ctx);
  }
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return errno_result(ctx);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  return fd < 0 ? errno_result(ctx) : JS_NewInt32(ctx, fd);
}

static const JSCFunctionListEntry vmctr_functions[] = {
  JS_CFUNC_DEF("mount", 5, js_mount),
  JS_CFUNC_DEF("umount", 2, js_umount),
  JS_CFUNC_DEF("sync", 0, js_sync),
  JS_CFUNC_DEF("reboot", 0, js_reboot),
  JS_CFUNC_DEF("uname", 0, js_uname),
  JS_CFUNC_DEF("interfaceUp", 1, js_interface_up),
  JS_CFUNC_DEF("getpid", 0, js_getpid),
  JS_CFUNC_DEF("pipe", 0, js_pipe),
  JS_CFUNC_DEF("setNonBlocking", 1, js_set_non_blocking),
  JS_CFUNC_DEF("setCloseOnExec", 1, js_set_close_on_exec),
  JS_CFUNC_DEF("spawn", 4, js_spawn),
  JS_CFUNC_DEF("signalFd", 1, js_signal_fd),
  JS_PROP_INT32_DEF("O_CLOEXEC", O_CLOEXEC, 0),
  JS_PROP_INT32_DEF("O_NONBLOCK", O_NONBLOCK, 0),
  JS_PROP_INT32_DEF("MNT_DETACH", MNT_DETACH, 0),
};

static int vmctr_init(JSContext *ctx, JSModuleDef *m) {
  return JS_SetModuleExportList(ctx, m, vmctr_functions, sizeof vmctr_functions / sizeof vmctr_functions[0]);
}

JSModuleDef *js_init_module_vmctr(JSContext *ctx, const char *module_name) {
  JSModuleDef *m = JS_NewCModule(ctx, module_name, vmctr_init);
  if (m) JS_AddModuleExportList(ctx, m, vmctr_functions, sizeof vmctr_functions / sizeof vmctr_functions[0]);
  return m;
}
