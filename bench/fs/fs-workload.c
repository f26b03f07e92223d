/*
 * The workload of bench/fs, run inside the container (a vmctr guest or a
 * runc container) from the shared directory itself, so that both runtimes
 * run the same binary; static, because the default image has no compiler
 * and its libc is not this one. Each run does one operation, times only
 * that operation (CLOCK_MONOTONIC, in the container: no process start, no
 * exec round trip), and prints one JSON line:
 *
 *   {"op":"read","count":N,"bytes":B,"seconds":S}
 *
 *   fs-workload [--drop-caches] write PATH MIB BLOCK   write(2)s of BLOCK bytes to a new file, fsync, close
 *   fs-workload [--drop-caches] read PATH BLOCK        read(2)s of BLOCK bytes to the end
 *   fs-workload [--drop-caches] randread PATH COUNT    COUNT 4 KiB preads at distinct random aligned offsets
 *   fs-workload [--drop-caches] create DIR COUNT SIZE  COUNT new files of SIZE bytes each in DIR (made)
 *   fs-workload [--drop-caches] stat DIR COUNT         stat(2) of each
 *   fs-workload [--drop-caches] unlink DIR COUNT       unlink(2) of each (DIR is removed after, untimed)
 *
 * --drop-caches syncs and writes 3 to /proc/sys/vm/drop_caches first,
 * untimed: in a vmctr guest that empties the guest's page cache, dentries
 * and inodes; a runc container cannot (its /proc/sys is read-only), and
 * bench/fs drops the host's itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define NAME_MAX_LEN 4096

static void die(const char *what, const char *path) {
  fprintf(stderr, "fs-workload: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: fs-workload [--drop-caches] write PATH MIB BLOCK | read PATH BLOCK | randread PATH COUNT | create DIR COUNT SIZE | stat DIR COUNT | unlink DIR COUNT\n");
  exit(2);
}

static long number(const char *text) {
  char *end;
  errno = 0;
  long n = strtol(text, &end, 10);
  if (errno || *end || n <= 0) usage();
  return n;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void drop_caches(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || write(fd, "3\n", 2) != 2) die("cannot write", "/proc/sys/vm/drop_caches");
  close(fd);
}

static void report(const char *op, long count, long long bytes, double seconds) {
  printf("{\"op\":\"%s\",\"count\":%ld,\"bytes\":%lld,\"seconds\":%.6f}\n", op, count, bytes, seconds);
}

static char *buffer(size_t size) {
  char *b = aligned_alloc(PAGE, (size + PAGE - 1) / PAGE * PAGE);
  if (!b) die("cannot allocate", NULL);
  /* Not zeros: nothing on the way may treat the data as sparse. */
  for (size_t i = 0; i < size; i++) b[i] = (char)(i * 7 + 1);
  return b;
}

static void seq_write(const char *path, long mib, long block) {
  long long total = (long long)mib << 20;
  char *b = buffer(block);
  double t0 = now();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("cannot create", path);
  long count = 0;
  for (long long done = 0; done < total; count++) {
    size_t n = total - done < block ? (size_t)(total - done) : (size_t)block;
    ssize_t w = write(fd, b, n);
    if (w <= 0) die("cannot write", path);
    done += w;
  }
  if (fsync(fd) || close(fd)) die("cannot fsync", path);
  report("write", count, total, now() - t0);
}

static void seq_read(const char *path, long block) {
  char *b = buffer(block);
  double t0 = now();
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("cannot open", path);
  long long total = 0;
  long count = 0;
  for (;;) {
    ssize_t r = read(fd, b, block);
    if (r < 0) die("cannot read", path);
    if (r == 0) break;
    total += r;
    count++;
  }
  close(fd);
  report("read", count, total, now() - t0);
}

/* xorshift64: a fixed sequence, the same offsets in both runtimes. */
static uint64_t next_random(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void rand_read(const char *path, long count) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("cannot open", path);
  struct stat st;
  if (fstat(fd, &st)) die("cannot stat", path);
  long pages = st.st_size / PAGE;
  if (count > pages) {
    fprintf(stderr, "fs-workload: %s has %ld pages, fewer than %ld reads\n", path, pages, count);
    exit(1);
  }
  /* Distinct pages (the first COUNT of a shuffle): no read finds a page an earlier one brought into a cache. */
  long *order = malloc(pages * sizeof *order);
  if (!order) die("cannot allocate", NULL);
  for (long i = 0; i < pages; i++) order[i] = i;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (long i = 0; i < count; i++) {
    long j = i + (long)(next_random(&seed) % (uint64_t)(pages - i));
    long t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  char *b = buffer(PAGE);
  double t0 = now();
  for (long i = 0; i < count; i++)
    if (pread(fd, b, PAGE, (off_t)order[i] * PAGE) != PAGE) die("cannot read", path);
  double seconds = now() - t0;
  close(fd);
  report("randread", count, (long long)count * PAGE, seconds);
}

static void file_name(char *out, const char *dir, long i) {
  snprintf(out, NAME_MAX_LEN, "%s/f%06ld", dir, i);
}

static void create_files(const char *dir, long count, long size) {
  char name[NAME_MAX_LEN];
  char *b = buffer(size);
  if (mkdir(dir, 0755)) die("cannot make", dir);
  double t0 = now();
  for (long i = 0; i < count; i++) {
    file_name(name, dir, i);
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) die("cannot create", name);
    if (write(fd, b, size) != size) die("cannot write", name);
    if (close(fd)) die("cannot close", name);
  }
  report("create", count, (long long)count * size, now() - t0);
}

static void stat_files(const char *dir, long count) {
  char name[NAME_MAX_LEN];
  struct stat st;
  double t0 = now();
  for (long i = 0; i < count; i++) {
    file_name(name, dir, i);
    if (stat(name, &st)) die("cannot stat", name);
  }
  report("stat", count, 0, now() - t0);
}

static void unlink_files(const char *dir, long count) {
  char name[NAME_MAX_LEN];
  double t0 = now();
  for (long i = 0; i < count; i++) {
    file_name(name, dir, i);
    if (unlink(name)) die("cannot unlink", name);
  }
  double seconds = now() - t0;
  if (rmdir(dir)) die("cannot remove", dir);
  report("unlink", count, 0, seconds);
}

int main(int argc, char **argv) {
  int a = 1;
  if (a < argc && !strcmp(argv[a], "--drop-caches")) {
    drop_caches();
    a++;
  }
  if (a + 2 > argc) usage();
  const char *op = argv[a], *path = argv[a + 1];
  int left = argc - a - 2;
  char **arg = argv + a + 2;
  if (!strcmp(op, "write") && left == 2) seq_write(path, number(arg[0]), number(arg[1]));
  else if (!strcmp(op, "read") && left == 1) seq_read(path, number(arg[0]));
  else if (!strcmp(op, "randread") && left == 1) rand_read(path, number(arg[0]));
  else if (!strcmp(op, "create") && left == 2) create_files(path, number(arg[0]), number(arg[1]));
  else if (!strcmp(op, "stat") && left == 1) stat_files(path, number(arg[0]));
  else if (!strcmp(op, "unlink") && left == 1) unlink_files(path, number(arg[0]));
  else usage();
  return 0;
}
