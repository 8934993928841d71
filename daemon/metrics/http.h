/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint's HTTP/1.x request reader (http.c): a pure parser
 * of the bytes a client sent so far, bounded in size and header count,
 * that says whether the request is complete, malformed or too large, and
 * what it asks for. No I/O; fuzzed by fuzz/fuzz_metrics_http.c.
 */
#ifndef SHMBUSD_METRICS_HTTP_H
#define SHMBUSD_METRICS_HTTP_H

#include <stddef.h>

/* Longest request (request line and headers) read; a longer one is
 * answered 431. Prometheus sends about 300 bytes. */
#define SBM_HTTP_REQ_MAX 8192u
/* Most header lines; more is answered 431. */
#define SBM_HTTP_HEADERS_MAX 32u

enum sbm_http_status {
    SBM_HTTP_MORE = 0,   /* no blank line yet: read on */
    SBM_HTTP_OK = 1,     /* a complete, well-formed request */
    SBM_HTTP_BAD = -1,   /* malformed: 400 */
    SBM_HTTP_LARGE = -2, /* over SBM_HTTP_REQ_MAX or SBM_HTTP_HEADERS_MAX: 431 */
};

enum sbm_http_method { SBM_HTTP_GET, SBM_HTTP_HEAD, SBM_HTTP_OTHER };

/* What a complete request asks for. Pointers point into the parsed buffer. */
struct sbm_http_req {
    enum sbm_http_method method;
    int metrics;       /* its path is /metrics (any query string ignored) */
    const char *token; /* "Authorization: Bearer TOKEN": TOKEN; else NULL */
    size_t token_len;
};

/*
 * Read the request in @p buf (@p len bytes, any bytes, not NUL-terminated)
 * into @p out: a request line "METHOD SP /TARGET SP HTTP/1.0|1.1", header
 * lines "Name: value", and an empty line; lines end in CRLF or LF. Bytes
 * after the empty line (a body) are ignored. @p out is set only for
 * SBM_HTTP_OK. @return enum sbm_http_status.
 */
int sbm_http_parse(const char *buf, size_t len, struct sbm_http_req *out);

#endif
