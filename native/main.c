/* nodelet-shim: `run` (plan on fd 3, status on fd 4). Execs go through the monitor's exec socket.
 * `dial <netns|-> <port>`: port-forward's connection into a pod's network namespace (dial.c). */
#include "shim.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run();
  if (argc >= 2 && strcmp(argv[1], "dial") == 0) return cmd_dial(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "version") == 0) {
    printf("nodelet-shim protocol %d\n", NL_PROTOCOL_VERSION);
    return 0;
  }
  fprintf(stderr, "usage: nodelet-shim run|version (plan on fd 3, status on fd 4) | dial <netns|-> <port>\n");
  return 2;
}
