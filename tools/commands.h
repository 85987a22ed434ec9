/* commands.h — the subcommands of the fa2 program. Each lives in its own
 * tools/cmd_NAME.c, takes the arguments after its name, and returns the
 * process exit status (0 ok, 1 check failed / runtime error, 2 usage). */
#ifndef FA2_TOOLS_COMMANDS_H
#define FA2_TOOLS_COMMANDS_H

int fa2_cmd_run(int argc, char **argv);   /* tools/cmd_run.c   */
int fa2_cmd_trace(int argc, char **argv); /* tools/cmd_trace.c */
int fa2_cmd_bench(int argc, char **argv); /* tools/cmd_bench.c */
int fa2_cmd_sim(int argc, char **argv);   /* tools/cmd_sim.c   */
int fa2_cmd_verify(int argc, char **argv); /* tools/cmd_verify.c */

#endif
