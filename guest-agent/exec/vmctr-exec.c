/*
 * vmctr-exec: starts one container process for the guest agent and stays
 * beside it until it ends, so that the agent's single event loop never
 * forks into a half-set-up child: chroot, setgroups, setsid with a
 * controlling pty, a private UTS namespace for the hostname, and reaping
 * orphans (it is a child subreaper, as the agent may be PID 1).
 *
 * The UTS namespace is this process's, made before the fork, so that the
 * container's processes share it and a process joining the container later
 * (an exec) gets it from /proc/<this pid>/ns/uts: --join-uts.
 *
 *   vmctr-exec [--root DIR] [--cwd DIR] [--uid N] [--gid N] [--groups N,N,...]
 *              [--hostname NAME | --join-uts FD] [--cgroup DIR] [--rlimit NAME=SOFT:HARD]...
 *              [--tty ROWS COLS] -- FILE [ARG...]
 *
 * The environment is the container's. File descriptors from the agent:
 *   0, 1, 2  stdio (with --tty the helper relays them to the pty instead)
 *   3        control lines from the agent: "signal N", "resize ROWS COLS";
 *            end of file means the agent is gone: the container is killed
 *   4        status lines to the agent: "started PID" then "exit N" or
 *            "signal N"; or a single "error CODE MESSAGE" (125 set-up
 *            failed, 126 not executable, 127 not found, as docker reports)
 * The final status is written only after every process of the container has
 * ended and (with --tty) all pty output was relayed, so it ends the output.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define CONTROL_FD 3
#define STATUS_FD 4
#define MAX_GROUPS 256
#define MAX_RLIMITS 16
#define RELAY_BUFFER 65536

struct rlimit_setting {
  int resource;
  struct rlimit limit;
};

struct options {
  const char *root, *cwd, *hostname;
  const char *cgroup; /* the app's cgroup v2 directory, to join before the fork; NULL for none */
  int join_uts; /* an fd open on a UTS namespace to enter, -1 for none */
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_GROUPS];
  size_t ngroups;
  struct rlimit_setting rlimits[MAX_RLIMITS];
  size_t nrlimits;
  int tty;
  struct winsize size;
  char **argv;
};

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},           {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},         {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},         {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},       {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

/* Reports a failure to start on the status fd and exits. */
static void fail(int code, const char *format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  dprintf(STATUS_FD, "error %d %s\n", code, message);
  _exit(1);
}

static unsigned long parse_number(const char *text, const char *what) {
  char *end;
  errno = 0;
  unsigned long value = strtoul(text, &end, 10);
  if (errno || end == text || *end) fail(125, "vmctr-exec: bad %s: %s", what, text);
  return value;
}

static rlim_t parse_limit(const char *text) {
  return strcmp(text, "unlimited") == 0 ? RLIM_INFINITY : (rlim_t)parse_number(text, "rlimit value");
}

static void parse_rlimit(struct options *o, char *spec) {
  char *eq = strchr(spec, '='), *colon = eq ? strchr(eq, ':') : NULL;
  if (!colon) fail(125, "vmctr-exec: rlimit is not NAME=SOFT:HARD: %s", spec);
  if (o->nrlimits == MAX_RLIMITS) fail(125, "vmctr-exec: more than %d rlimits", MAX_RLIMITS);
  *eq = *colon = 0;
  struct rlimit_setting *r = &o->rlimits[o->nrlimits++];
  r->resource = -1;
  for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++) {
    if (strcmp(rlimit_names[i].name, spec) == 0) r->resource = rlimit_names[i].resource;
  }
  if (r->resource < 0) fail(125, "unknown rlimit type: %s", spec);
  r->limit.rlim_cur = parse_limit(eq + 1);
  r->limit.rlim_max = parse_limit(colon + 1);
}

static void parse_groups(struct options *o, char *list) {
  for (char *item = strtok(list, ","); item; item = strtok(NULL, ",")) {
    if (o->ngroups == MAX_GROUPS) fail(125, "vmctr-exec: more than %d groups", MAX_GROUPS);
    o->groups[o->ngroups++] = (gid_t)parse_number(item, "group id");
  }
}

static void parse_options(struct options *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->join_uts = -1;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *flag = argv[i];
    int needs = strcmp(flag, "--tty") == 0 ? 2 : 1;
    if (i + needs >= argc) fail(125, "vmctr-exec: %s needs a value", flag);
    char *value = argv[i + 1];
    if (strcmp(flag, "--root") == 0) o->root = value;
    else if (strcmp(flag, "--cwd") == 0) o->cwd = value;
    else if (strcmp(flag, "--hostname") == 0) o->hostname = value;
    else if (strcmp(flag, "--cgroup") == 0) o->cgroup = value;
    else if (strcmp(flag, "--join-uts") == 0) o->join_uts = (int)parse_number(value, "fd");
    else if (strcmp(flag, "--uid") == 0) o->uid = (uid_t)parse_number(value, "uid");
    else if (strcmp(flag, "--gid") == 0) o->gid = (gid_t)parse_number(value, "gid");
    else if (strcmp(flag, "--groups") == 0) parse_groups(o, value);
    else if (strcmp(flag, "--rlimit") == 0) parse_rlimit(o, value);
    else if (strcmp(flag, "--tty") == 0) {
      o->tty = 1;
      o->size.ws_row = (unsigned short)parse_number(value, "rows");
      o->size.ws_col = (unsigned short)parse_number(argv[i + 2], "cols");
    } else fail(125, "vmctr-exec: unknown option %s", flag);
    i += needs;
  }
  if (i + 1 >= argc) fail(125, "vmctr-exec: no command after --");
  if (o->hostname && o->join_uts >= 0) fail(125, "vmctr-exec: --hostname and --join-uts together");
  o->argv = &argv[i + 1];
}

/* Moves this process into the cgroup v2 directory `dir` (its cgroup.procs takes "0" for the writer). */
static void join_cgroup(const char *dir) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path) fail(125, "vmctr-exec: cgroup path too long");
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(125, "cgroup %s: %s", dir, strerror(errno));
  if (write(fd, "0", 1) != 1) fail(125, "join cgroup %s: %s", dir, strerror(errno));
  close(fd);
}

/* mkdir -p inside the chroot, as docker creates a missing working directory. */
static void make_dirs(const char *path) {
  char buffer[4096];
  if (snprintf(buffer, sizeof buffer, "%s", path) >= (int)sizeof buffer) fail(125, "cwd too long");
  for (char *p = buffer + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char saved = *p;
      *p = 0;
      if (mkdir(buffer, 0755) < 0 && errno != EEXIST) fail(125, "mkdir %s: %s", buffer, strerror(errno));
      if (!(*p = saved)) return;
    }
  }
}

/* In the child: everything between fork and execve. Errors go to error_fd as "CODE MESSAGE". */
static void exec_container(const struct options *o, int slave, int error_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  /* Failures are reported by the parent, which reads error_fd. */
  if (dup2(error_fd, STATUS_FD) < 0) _exit(1);
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);

  if (setsid() < 0) fail(125, "setsid: %s", strerror(errno));
  if (o->tty) {
    if (ioctl(slave, TIOCSCTTY, 0) < 0) fail(125, "TIOCSCTTY: %s", strerror(errno));
    for (int fd = 0; fd < 3; fd++) {
      if (dup2(slave, fd) < 0) fail(125, "dup2 pty: %s", strerror(errno));
    }
  }
  if (o->root) {
    if (chdir(o->root) < 0 || chroot(".") < 0) fail(125, "chroot %s: %s", o->root, strerror(errno));
  }
  const char *cwd = o->cwd ? o->cwd : "/";
  if (chdir(cwd) < 0) {
    if (errno != ENOENT) fail(125, "chdir %s: %s", cwd, strerror(errno));
    make_dirs(cwd);
    if (chdir(cwd) < 0) fail(125, "chdir %s: %s", cwd, strerror(errno));
  }
  for (size_t i = 0; i < o->nrlimits; i++) {
    if (setrlimit(o->rlimits[i].resource, &o->rlimits[i].limit) < 0) fail(125, "setrlimit: %s", strerror(errno));
  }
  if (setgroups(o->ngroups, o->groups) < 0) fail(125, "setgroups: %s", strerror(errno));
  if (setgid(o->gid) < 0) fail(125, "setgid %u: %s", o->gid, strerror(errno));
  if (setuid(o->uid) < 0) fail(125, "setuid %u: %s", o->uid, strerror(errno));

  execvp(o->argv[0], o->argv);
  const char *file = o->argv[0];
  if (errno == ENOENT && !strchr(file, '/')) fail(127, "exec: \"%s\": executable file not found in $PATH", file);
  if (errno == ENOENT || errno == ENOTDIR) fail(127, "exec: \"%s\": no such file or directory", file);
  if (errno == EACCES || errno == EPERM || errno == EISDIR) fail(126, "exec: \"%s\": permission denied", file);
  fail(126, "exec: \"%s\": %s", file, strerror(errno));
}

/* Reads /proc/PID/stat's parent pid; -1 if the process is gone. */
static pid_t parent_of(const char *pid) {
  char path[64], stat[512];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return -1;
  stat[n] = 0;
  /* The command name may hold spaces and parentheses: parse after the last ')'. */
  char *after = strrchr(stat, ')');
  int ppid;
  return after && sscanf(after + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/*
 * The container ends with its main process, as with docker: kill whatever it
 * left behind. Orphans reparent to this subreaper, so killing our children and
 * reaping one at a time until none are left catches every descendant.
 */
static void kill_leftovers(void) {
  pid_t self = getpid();
  for (;;) {
    DIR *proc = opendir("/proc");
    if (proc) {
      for (struct dirent *entry; (entry = readdir(proc));) {
        if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9' && parent_of(entry->d_name) == self) {
          kill((pid_t)atoi(entry->d_name), SIGKILL);
        }
      }
      closedir(proc);
    }
    if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD) return;
  }
}

struct buffer {
  char data[RELAY_BUFFER];
  size_t length;
};

/* Moves bytes from `from` into the buffer; returns 0 at end of file or on EIO (pty closed). */
static int fill(struct buffer *b, int from) {
  ssize_t n = read(from, b->data, sizeof b->data);
  if (n > 0) b->length = (size_t)n;
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

/* Writes as much of the buffer as `to` takes now; returns 0 if `to` is gone. */
static int drain(struct buffer *b, int to) {
  ssize_t n = write(to, b->data, b->length);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  memmove(b->data, b->data + n, b->length - (size_t)n);
  b->length -= (size_t)n;
  return 1;
}

struct supervisor {
  const struct options *o;
  pid_t child;
  int master;             /* pty master, -1 without --tty */
  int signals;            /* signalfd for SIGCHLD */
  int child_status, child_done;
  char control[256];
  size_t control_length;
};

static void handle_control_line(struct supervisor *s, const char *line) {
  int a, b;
  if (sscanf(line, "signal %d", &a) == 1) {
    /* With a tty the signal goes to the foreground job, as a terminal would send it. */
    if (!s->child_done) kill(s->o->tty ? -s->child : s->child, a);
  } else if (sscanf(line, "resize %d %d", &a, &b) == 2 && s->master >= 0) {
    struct winsize size = {.ws_row = (unsigned short)a, .ws_col = (unsigned short)b};
    ioctl(s->master, TIOCSWINSZ, &size);
  }
}

/* Returns 0 once the agent has closed the control fd. */
static int read_control(struct supervisor *s) {
  ssize_t n = read(CONTROL_FD, s->control + s->control_length, sizeof s->control - 1 - s->control_length);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return 0;
  s->control_length += (size_t)n;
  s->control[s->control_length] = 0;
  char *line = s->control, *newline;
  while ((newline = strchr(line, '\n'))) {
    *newline = 0;
    handle_control_line(s, line);
    line = newline + 1;
  }
  s->control_length -= (size_t)(line - s->control);
  memmove(s->control, line, s->control_length);
  /* A line longer than the buffer is not ours: drop it rather than stall. */
  if (s->control_length == sizeof s->control - 1) s->control_length = 0;
  return 1;
}

static void reap(struct supervisor *s) {
  struct signalfd_siginfo info;
  while (read(s->signals, &info, sizeof info) > 0) {}
  int status;
  for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
    if (pid == s->child) {
      s->child_status = status;
      s->child_done = 1;
    }
  }
}

static void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Relays stdio and the pty (with --tty), serves control lines, until the main process has ended. */
static void supervise(struct supervisor *s) {
  static struct buffer in, out; /* stdin to pty, pty to stdout */
  int control_open = 1, stdin_open = s->master >= 0, master_open = s->master >= 0;
  if (s->master >= 0) {
    set_nonblocking(0);
    set_nonblocking(1);
    set_nonblocking(s->master);
  }
  set_nonblocking(CONTROL_FD);
  /* After the main process ends, the loop goes on only until the pty has no more output. */
  while (!s->child_done || master_open || out.length) {
    struct pollfd fds[5];
    int n = 0, i_control = -1, i_signals, i_stdin = -1, i_master = -1, i_stdout = -1;
    if (control_open && !s->child_done) fds[i_control = n++] = (struct pollfd){CONTROL_FD, POLLIN, 0};
    fds[i_signals = n++] = (struct pollfd){s->signals, POLLIN, 0};
    if (stdin_open && !in.length) fds[i_stdin = n++] = (struct pollfd){0, POLLIN, 0};
    short master_events = (short)((master_open && !out.length ? POLLIN : 0) | (in.length ? POLLOUT : 0));
    if (master_events) fds[i_master = n++] = (struct pollfd){s->master, master_events, 0};
    if (out.length) fds[i_stdout = n++] = (struct pollfd){1, POLLOUT, 0};
    if (poll(fds, (nfds_t)n, -1) < 0 && errno != EINTR) break;

    if (i_control >= 0 && fds[i_control].revents && !read_control(s)) {
      control_open = 0;
      if (!s->child_done) kill(-s->child, SIGKILL);
    }
    if (fds[i_signals].revents) {
      reap(s);
      /* Leftovers may hold the pty open: kill them, then the pty's end of file follows its last output. */
      if (s->child_done) kill_leftovers();
    }
    if (i_stdin >= 0 && fds[i_stdin].revents && !fill(&in, 0)) stdin_open = 0;
    if (i_master >= 0 && (fds[i_master].revents & POLLOUT) && !drain(&in, s->master)) in.length = 0;
    if (i_master >= 0 && (fds[i_master].revents & (POLLIN | POLLHUP | POLLERR)) && !out.length &&
        !fill(&out, s->master)) {
      master_open = 0;
    }
    if (i_stdout >= 0 && fds[i_stdout].revents && !drain(&out, 1)) {
      out.length = 0; /* the agent stopped reading: nothing left to deliver to */
      master_open = 0;
    }
  }
}

int main(int argc, char **argv) {
  struct options o;
  fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC);
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
  parse_options(&o, argc, argv);

  /* The container's orphans come to this process, not to the agent (PID 1): it kills and reaps them before the final status. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail(125, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  struct supervisor s = {.o = &o, .master = -1};
  s.signals = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (s.signals < 0) fail(125, "signalfd: %s", strerror(errno));

  /* Into the app's cgroup before the fork, so every process of the app counts in it. */
  if (o.cgroup) join_cgroup(o.cgroup);
  /* Before the fork: the container's processes inherit it (see the top). */
  if (o.hostname) {
    if (unshare(CLONE_NEWUTS) < 0) fail(125, "unshare UTS namespace: %s", strerror(errno));
    if (sethostname(o.hostname, strlen(o.hostname)) < 0) fail(125, "sethostname: %s", strerror(errno));
  } else if (o.join_uts >= 0) {
    if (setns(o.join_uts, CLONE_NEWUTS) < 0) fail(125, "setns UTS namespace: %s", strerror(errno));
    /* Not for the container's process. */
    if (close(o.join_uts) < 0) fail(125, "close UTS namespace fd: %s", strerror(errno));
  }

  int slave = -1;
  if (o.tty) {
    s.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s.master < 0 || grantpt(s.master) < 0 || unlockpt(s.master) < 0) fail(125, "pty: %s", strerror(errno));
    const char *name = ptsname(s.master);
    slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (slave < 0) fail(125, "open pty slave: %s", strerror(errno));
    if (ioctl(s.master, TIOCSWINSZ, &o.size) < 0) fail(125, "TIOCSWINSZ: %s", strerror(errno));
  }

  int errors[2];
  if (pipe2(errors, O_CLOEXEC) < 0) fail(125, "pipe: %s", strerror(errno));
  s.child = fork();
  if (s.child < 0) fail(125, "fork: %s", strerror(errno));
  if (s.child == 0) {
    close(errors[0]);
    exec_container(&o, slave, errors[1]);
  }
  close(errors[1]);
  if (slave >= 0) close(slave);
  /* Without a tty the child has the stdio pipes; ours must close so the agent sees their end. */
  if (!o.tty) {
    for (int fd = 0; fd < 3; fd++) close(fd);
  }

  char error[600];
  ssize_t n, length = 0;
  while ((n = read(errors[0], error + length, sizeof error - 1 - (size_t)length)) > 0 ||
         (n < 0 && errno == EINTR)) {
    if (n > 0) length += n;
  }
  close(errors[0]);
  if (length > 0) {
    waitpid(s.child, NULL, 0);
    error[length] = 0;
    dprintf(STATUS_FD, "%s", error);
    return 0;
  }
  dprintf(STATUS_FD, "started %d\n", s.child);

  supervise(&s);
  if (!s.child_done) {
    waitpid(s.child, &s.child_status, 0);
  }
  kill_leftovers();
  if (WIFSIGNALED(s.child_status)) dprintf(STATUS_FD, "signal %d\n", WTERMSIG(s.child_status));
  else dprintf(STATUS_FD, "exit %d\n", WEXITSTATUS(s.child_status));
  return 0;
}
