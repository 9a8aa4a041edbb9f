/* nodelet-shim: `run` (plan on fd 3, status on fd 4). Execs go through the monitor's exec socket. */
#include "shim.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run();
  if (argc >= 2 && strcmp(argv[1], "version") == 0) {
    printf("nodelet-shim protocol %d\n", NL_PROTOCOL_VERSION);
    return 0;
  }
  fprintf(stderr, "usage: nodelet-shim run|version (plan on fd 3, status on fd 4)\n");
  return 2;
}
