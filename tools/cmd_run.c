/* placeholder until the run command lands */
#include "commands.h"
#include <stdio.h>
int fa2_cmd_run(int argc, char **argv) { (void)argc; (void)argv; puts("fa2 run: not yet"); return 1; }
