/* args.h — strict parsing of command-line option values, shared by the
 * fa2 subcommands. A value is accepted only if all of it parses: "12x",
 * "", " 3" and out-of-range numbers are rejected, never truncated. */
#ifndef FA2_TOOLS_ARGS_H
#define FA2_TOOLS_ARGS_H

#include <stdint.h>

/* A cursor over argv that understands "--name VALUE" and "--name=VALUE". */
typedef struct arg_cursor {
    int argc;
    char **argv;
    int i;             /* index of the current argument                    */
    const char *prog;  /* "fa2 run": prefix of error messages              */
    const char *name;  /* the current option's name, without "=VALUE"      */
    const char *value; /* inline value after '=', or NULL                  */
    char name_buf[64];
} arg_cursor;

void arg_cursor_init(arg_cursor *c, const char *prog, int argc, char **argv);

/* Advance to the next argument; returns 0 when none is left. Afterwards
 * c->name is the option ("--seqlen") and c->value its inline value if any. */
int arg_next(arg_cursor *c);

/* Did the current option come with "=VALUE"? Flags must not. */
int arg_has_inline_value(const arg_cursor *c);

/* The current option's value (inline or the next argument); prints
 * "PROG: --name needs a value" to stderr and returns NULL if there is none. */
const char *arg_value(arg_cursor *c);

/* Parse a whole decimal integer in [min, max]; on failure print
 * "PROG: --name: ..." to stderr and return -1, else 0. */
int arg_parse_i64(const arg_cursor *c, const char *text, int64_t min,
                  int64_t max, int64_t *out);
/* The same for an unsigned 64-bit value (decimal or 0x hex). */
int arg_parse_u64(const arg_cursor *c, const char *text, uint64_t *out);
/* "A,B": two integers, each in [min, max]. */
int arg_parse_i64_pair(const arg_cursor *c, const char *text, int64_t min,
                       int64_t max, int64_t *a, int64_t *b);
/* One of names[0..n-1] (exact match); returns its index or -1 with a
 * message listing the choices. */
int arg_parse_choice(const arg_cursor *c, const char *text,
                     const char *const *names, int n);

#endif
