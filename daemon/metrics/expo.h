/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format, version 0.0.4 (expo.c): a
 * growing output buffer and the pieces of the format written into it,
 * HELP and TYPE lines and escaped label values. Topic and group names
 * are user input: every label value goes through sbm_out_label().
 * One thread's buffer; not thread-safe.
 */
#ifndef SHMBUSD_METRICS_EXPO_H
#define SHMBUSD_METRICS_EXPO_H

#include <stddef.h>

/* The Content-Type of the format. */
#define SBM_EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A buffer; zeroed is empty. Once a write runs out of memory (oom) every
 * later one is dropped, so that the caller checks once at the end. */
struct sbm_out {
    char *p;
    size_t len, cap;
    int oom;
};

/* Append printf-formatted text. */
void sbm_out_fmt(struct sbm_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append @p n bytes at @p s. */
void sbm_out_put(struct sbm_out *o, const char *s, size_t n);

/* Append @p v as the inside of a label value: backslash, double quote and
 * line feed escaped (\\, \", \n); other bytes as they are. */
void sbm_out_label(struct sbm_out *o, const char *v);

/* Append the "# HELP" (@p help escaped: backslash and line feed) and
 * "# TYPE" lines of metric @p name of @p type ("counter", "gauge"). */
void sbm_out_family(struct sbm_out *o, const char *name, const char *type, const char *help);

/* Free the buffer; it is empty again. */
void sbm_out_free(struct sbm_out *o);

#endif
