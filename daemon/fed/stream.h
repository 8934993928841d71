/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JetStream streams of persisted topics (stream.c): one stream per
 * --persist pattern, named from the prefix and the pattern, capturing the
 * subject filter the pattern maps to, created at start or, if it exists,
 * checked (what differs from the options is logged). The pure parts (the
 * mapping of a pattern to a filter, the name, NATS subject matching) take
 * no connection and are what the tests and the topic records use; the
 * rest talks to the server and blocks for at most cnats's request timeout.
 */
#ifndef SHMBUSD_FED_STREAM_H
#define SHMBUSD_FED_STREAM_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shmbus/shmbus.h"

/* A stream name: [A-Za-z0-9_-], the sanitised text cut at
 * SBF_STREAM_TEXT_MAX, '_' and 8 hex digits of a hash of prefix and
 * pattern (two patterns that sanitise alike get different names). */
#define SBF_STREAM_TEXT_MAX 48u
#define SBF_STREAM_NAME_MAX (SBF_STREAM_TEXT_MAX + 9u)
/* A subject filter: PREFIX '.' mapped pattern (a trailing "*" becomes ">",
 * one character for one). */
#define SBF_STREAM_FILTER_MAX (SBD_NATS_NAME_MAX + 1u + SHMBUS_TOPIC_NAME_MAX)
/* The stream's duplicate window: how long JetStream remembers a
 * Nats-Msg-Id. A resend within it is dropped by the server; one later (a
 * daemon down longer, then resending what it held) reaches the importers,
 * whose order tracker or ring drops it (docs/design.md). */
#define SBF_STREAM_DUP_WINDOW_NS (120ull * 1000000000ull)

/* The options a stream is made or checked against. */
struct sbf_stream_opts {
    const char *prefix;     /* --nats-prefix */
    uint32_t replicas;      /* resolved: sbf_stream_replicas() */
    int replicas_given;     /* --persist-replicas set: an existing stream's are checked */
    uint64_t max_age_s;     /* --persist-max-age; 0 no limit */
    uint64_t max_bytes;     /* --persist-max-bytes */
    uint64_t dup_window_ns; /* SBF_STREAM_DUP_WINDOW_NS */
};

/* One --persist pattern's stream. */
struct sbf_stream {
    char pattern[SHMBUS_TOPIC_NAME_MAX + 1];
    char name[SBF_STREAM_NAME_MAX + 1];
    char filter[SBF_STREAM_FILTER_MAX + 1];
    int ok; /* created or checked: its topics may use it */
    /* Requests about it that failed in a row, asked again; each of the
     * 1st, 2nd, 4th, 8th... is logged, so a long outage costs a few lines. */
    unsigned fails;
};

/*
 * Map the --persist glob @p pattern to the subject filter under @p prefix
 * into @p out (@p cap bytes). Tokens between dots must be literal topic
 * characters ([A-Za-z0-9_:-]) or exactly "*": a "*" matches one token, a
 * final "*" the rest of the name (one token or more: "a.*" is "a.>").
 * @return 0, or -EINVAL with *@p why (a static text) when the pattern has
 * an empty token, a glob character in a token ('?', '[', '\\', '*' beside
 * other characters) or a character no topic name has; -ENAMETOOLONG if
 * @p cap is short.
 */
int sbf_stream_filter(const char *prefix, const char *pattern, char *out, size_t cap,
                      const char **why);

/* The stream name for @p pattern under @p prefix into @p out
 * (SBF_STREAM_NAME_MAX + 1 bytes). Pure. */
void sbf_stream_name(const char *prefix, const char *pattern, char *out);

/* 1 if the subject @p subj (@p len bytes) matches the NATS filter
 * @p filter ('*' one token, '>' one or more final tokens), else 0. */
int sbf_stream_match(const char *filter, const char *subj, size_t len);

/* Fill @p s for @p pattern: its name and filter, ok = 0.
 * @return 0, or sbf_stream_filter()'s error (logged, naming the pattern). */
int sbf_stream_init(struct sbf_stream *s, const char *prefix, const char *pattern);

/* Replicas for new streams: @p configured if not 0, else 3 when @p nc knows
 * of 3 servers or more (given and discovered), else 1. Blocks not. */
uint32_t sbf_stream_replicas(natsConnection *nc, uint32_t configured);

/* Could a JetStream request that failed with @p st and @p jerr succeed
 * if asked again? Yes for no answer in time, nobody answering (cnats says
 * JSNotEnabledErr then: a cluster still electing its leader looks so),
 * a connection down or closed (the link makes a new one), and the
 * cluster's passing states (no leader, not available, offline, too few
 * peers for the replicas while a server is down). No for a refusal of
 * what was asked. Pure. */
int sbf_stream_transient(natsStatus st, jsErrCode jerr);

/* 1 if failure number @p fails (1 for the first) of a series is to be
 * logged: the 1st, 2nd, 4th, 8th... Pure. */
int sbf_stream_log_fail(unsigned fails);

/* Create the stream @p s or check the one that exists against @p o: a
 * stream whose subjects are not exactly s->filter is refused (its
 * messages would go elsewhere); other differences (storage, retention,
 * discard, replicas, limits, a duplicate window shorter than o's) are
 * logged and the stream used. Sets s->ok. Blocks up to the JetStream
 * context's request timeout (jsOptions.Wait) per request, two or three.
 * @return 0; -EAGAIN: no answer (a timeout, no JetStream listening yet, a
 * connection down): ask again later; -EIO: refused for good. Logged. */
int sbf_stream_ensure(jsCtx *js, const struct sbf_stream_opts *o, struct sbf_stream *s);

#endif
