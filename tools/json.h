/* json.h — write one flat JSON object, key by key, to a stream. Strings
 * are escaped; a number that is not finite (inf, NaN) has no JSON form and
 * is written as null. */
#ifndef FA2_TOOLS_JSON_H
#define FA2_TOOLS_JSON_H

#include <stdint.h>
#include <stdio.h>

typedef struct json_writer {
    FILE *f;
    int count; /* members written so far */
} json_writer;

void json_begin(json_writer *w, FILE *f);
void json_string(json_writer *w, const char *key, const char *value);
void json_int(json_writer *w, const char *key, int64_t value);
void json_uint(json_writer *w, const char *key, uint64_t value);
void json_number(json_writer *w, const char *key, double value);
void json_bool(json_writer *w, const char *key, int value);
void json_null(json_writer *w, const char *key);
/* "key": [v0, v1, ...] of integers. */
void json_int_array(json_writer *w, const char *key, const int32_t *v,
                    int64_t n);
/* Close the object and end the line. */
void json_end(json_writer *w);

#endif
