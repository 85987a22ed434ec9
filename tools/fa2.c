/* fa2.c — the fa2 command-line program: dispatch to a subcommand. */
#include "config.h"
#include "commands.h"
#include "fa2.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", fa2_cmd_run, "run one attention problem and check it (default)"},
    {"trace", fa2_cmd_trace, "print the tiled algorithm step by step on a tiny problem"},
    {"bench", fa2_cmd_bench, "time the CPU backends over a grid, next to sgemm"},
    {"sim", fa2_cmd_sim, "simulate HBM/L2/shared-memory traffic of standard attention, FA1, FA2"},
    {"verify", fa2_cmd_verify, "check another implementation's outputs (.npy files) against the oracle"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: fa2 [COMMAND] [OPTIONS]   (fa2 COMMAND --help for options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nfa2 %s\n", fa2_version_string());
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fa2_cmd_run(0, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fa2 %s\n", fa2_version_string());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    if (argv[1][0] == '-') /* options without a command: `fa2 run` */
        return fa2_cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "fa2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
