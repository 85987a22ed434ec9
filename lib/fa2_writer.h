/* fa2_writer.h — text output with escaping, into a stream or into a
 * caller's buffer: printf-style text, JSON strings, CSV fields, and flat
 * JSON objects member by member. The one writer of the project: the
 * simulator's reports (sim/report.c) and the fa2 program (tools/) both
 * write through it, so a name holding '"', ',' or a newline never breaks
 * the JSON or CSV around it. */
#ifndef FA2_WRITER_H
#define FA2_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fa2_writer {
    FILE *f;      /* the stream, or NULL: into buf                       */
    char *buf;    /* NUL-terminated, truncated to size                   */
    size_t size;
    size_t len;   /* bytes written, or that would have been (into buf)   */
    int count;    /* members of the JSON object being written            */
} fa2_writer;

void fa2_writer_file(fa2_writer *w, FILE *f);
void fa2_writer_buffer(fa2_writer *w, char *buf, size_t size);

/* printf into the writer. */
void fa2_put(fa2_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s as a JSON string: quoted, with '"', '\\' and control characters escaped. */
void fa2_put_json_string(fa2_writer *w, const char *s);
/* s as one CSV field (RFC 4180): quoted, inner quotes doubled, when it
 * holds a comma, a quote or a line break; as it is otherwise. */
void fa2_put_csv_field(fa2_writer *w, const char *s);

/* A flat JSON object on one line (JSON Lines). A number that is not finite
 * (inf, NaN) has no JSON form and is written as null. */
void fa2_json_begin(fa2_writer *w);
void fa2_json_string(fa2_writer *w, const char *key, const char *value);
void fa2_json_int(fa2_writer *w, const char *key, int64_t value);
void fa2_json_uint(fa2_writer *w, const char *key, uint64_t value);
void fa2_json_number(fa2_writer *w, const char *key, double value);
void fa2_json_bool(fa2_writer *w, const char *key, int value);
void fa2_json_null(fa2_writer *w, const char *key);
/* "key": [v0, v1, ...] of integers. */
void fa2_json_int_array(fa2_writer *w, const char *key, const int32_t *v,
                        int64_t n);
/* Close the object and end the line (a stream is flushed). */
void fa2_json_end(fa2_writer *w);

#endif /* FA2_WRITER_H */
