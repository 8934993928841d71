/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JetStream streams for persisted topics (stream.h). Each --persist
 * pattern gets one stream with the subject filter the pattern maps to,
 * file storage, and limits retention, the oldest messages dropped at the
 * limits: what the stream holds does not depend on which consumers exist
 * yet, so a bus whose consumer is made after messages were published (two
 * daemons that start while the server is down, then connect in some
 * order) still gets them, and a bus that is gone for good holds nobody
 * back. The
 * stream may exist already (another bus made it, or an earlier run): it
 * is checked, and what differs is logged, not changed: an operator may
 * have tuned it.
 */
#include "fed/stream.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int stream_literal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == ':';
}

/* Check one token of a pattern, [@p b, @p e): NULL if it maps, else why not. */
static const char *stream_token_why(const char *b, const char *e)
{
    if (b == e)
        return "an empty token (\"..\", or a '.' at an end)";
    if (e - b == 1 && *b == '*')
        return NULL;
    for (const char *p = b; p < e; p++) {
        if (*p == '*' || *p == '?' || *p == '[' || *p == ']' || *p == '\\')
            return "a glob character inside a token (only a whole token may be '*')";
        if (!stream_literal_char(*p))
            return "a character no topic name has";
    }
    return NULL;
}

int sbf_stream_filter(const char *prefix, const char *pattern, char *out, size_t cap,
                      const char **why)
{
    size_t plen = strlen(prefix), n = 0;
    const char *b = pattern;

    *why = NULL;
    if (plen + 2 > cap)
        return -ENAMETOOLONG;
    memcpy(out, prefix, plen);
    n = plen;
    for (;;) {
        const char *e = strchr(b, '.');
        int last = e == NULL;

        if (last)
            e = b + strlen(b);
        *why = stream_token_why(b, e);
        if (*why != NULL)
            return -EINVAL;
        /* Room for '.', the token and the NUL. */
        if ((size_t)(e - b) + 2 > cap - n)
            return -ENAMETOOLONG;
        out[n++] = '.';
        if (last && e - b == 1 && *b == '*') {
            out[n++] = '>';
        } else {
            memcpy(out + n, b, (size_t)(e - b));
            n += (size_t)(e - b);
        }
        if (last)
            break;
        b = e + 1;
    }
    out[n] = '\0';
    return 0;
}

/* FNV-1a, 32 bits, over @p s and its NUL. */
static uint32_t stream_hash(uint32_t h, const char *s)
{
    do {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    } while (*s++ != '\0');
    return h;
}

void sbf_stream_name(const char *prefix, const char *pattern, char *out)
{
    uint32_t h = stream_hash(stream_hash(2166136261u, prefix), pattern);
    char text[SBD_NATS_NAME_MAX + 1 + SHMBUS_TOPIC_NAME_MAX + 1];
    size_t n;

    /* Dots, colons and glob characters become '_': a stream name is
     * [A-Za-z0-9_-]; the hash keeps apart what becomes alike. */
    snprintf(text, sizeof(text), "%s_%s", prefix, pattern);
    for (n = 0; text[n] != '\0' && n < SBF_STREAM_TEXT_MAX; n++)
        out[n] = stream_literal_char(text[n]) && text[n] != ':' ? text[n] : '_';
    snprintf(out + n, SBF_STREAM_NAME_MAX + 1 - n, "_%08" PRIx32, h);
}

int sbf_stream_match(const char *filter, const char *subj, size_t len)
{
    const char *f = filter, *s = subj, *end = subj + len;

    for (;;) {
        const char *fe = strchr(f, '.'), *se = memchr(s, '.', (size_t)(end - s));

        if (fe == NULL)
            fe = f + strlen(f);
        if (se == NULL)
            se = end;
        /* '>': one token or more, whatever they are. */
        if (fe - f == 1 && *f == '>')
            return se > s;
        if (se == s)
            return 0; /* an empty token matches nothing */
        if (!(fe - f == 1 && *f == '*') &&
            ((fe - f) != (se - s) || memcmp(f, s, (size_t)(se - s)) != 0))
            return 0;
        /* Both end together, or the match fails. */
        if (*fe == '\0' || se == end)
            return *fe == '\0' && se == end;
        f = fe + 1;
        s = se + 1;
    }
}

int sbf_stream_init(struct sbf_stream *s, const char *prefix, const char *pattern)
{
    const char *why;
    int rc;

    memset(s, 0, sizeof(*s));
    snprintf(s->pattern, sizeof(s->pattern), "%s", pattern);
    sbf_stream_name(prefix, pattern, s->name);
    rc = sbf_stream_filter(prefix, pattern, s->filter, sizeof(s->filter), &why);
    if (rc == -EINVAL)
        sbd_log(SBD_ERROR,
                "nats: --persist %s: cannot be a JetStream subject filter: %s; its topics are "
                "not persisted",
                pattern, why);
    else if (rc < 0)
        sbd_log(SBD_ERROR, "nats: --persist %s: its subject filter is too long", pattern);
    return rc;
}

uint32_t sbf_stream_replicas(natsConnection *nc, uint32_t configured)
{
    char **servers = NULL;
    int count = 0;

    if (configured != 0)
        return configured;
    /* Unknown (no connection yet): one replica works on any server. */
    if (nc == NULL || natsConnection_GetServers(nc, &servers, &count) != NATS_OK)
        return 1;
    for (int i = 0; i < count; i++)
        free(servers[i]);
    free(servers);
    return count >= 3 ? 3 : 1;
}

/* The configuration @p s is made with under @p o (strings are @p s's). */
static void stream_config(jsStreamConfig *c, const struct sbf_stream_opts *o, struct sbf_stream *s,
                          const char **subjects)
{
    jsStreamConfig_Init(c);
    subjects[0] = s->filter;
    c->Name = s->name;
    c->Subjects = subjects;
    c->SubjectsLen = 1;
    c->Retention = js_LimitsPolicy;
    c->Discard = js_DiscardOld;
    c->Storage = js_FileStorage;
    c->Replicas = (int64_t)o->replicas;
    c->MaxAge = (int64_t)(o->max_age_s * 1000000000ull);
    c->MaxBytes = o->max_bytes > (uint64_t)INT64_MAX ? -1 : (int64_t)o->max_bytes;
    c->Duplicates = (int64_t)o->dup_window_ns;
}

/* Log one difference of an existing stream (never a refusal). */
static void stream_differs(const struct sbf_stream *s, const char *what, int64_t has, int64_t want)
{
    sbd_log(SBD_WARN,
            "nats: stream %s (--persist %s) exists with %s %" PRId64 ", not %" PRId64
            "; used as it is",
            s->name, s->pattern, what, has, want);
}

/* Compare the existing stream's @p has with @p want (replicas only if
 * @p o says they were given: the default depends on the servers the
 * connection knows of yet). @return 0 if usable. */
static int stream_check(struct sbf_stream *s, const struct sbf_stream_opts *o,
                        const jsStreamConfig *has, const jsStreamConfig *want)
{
    /* Messages of our subjects would land in another stream, or none. */
    if (has->SubjectsLen != 1 || strcmp(has->Subjects[0], s->filter) != 0) {
        sbd_log(SBD_ERROR,
                "nats: stream %s (--persist %s) exists with other subjects than %s (%d of them, "
                "first %s); its topics are not persisted",
                s->name, s->pattern, s->filter, has->SubjectsLen,
                has->SubjectsLen > 0 ? has->Subjects[0] : "none");
        return -EIO;
    }
    if (has->Storage != want->Storage)
        sbd_log(SBD_WARN,
                "nats: stream %s (--persist %s) is kept in memory, not on disk: a "
                "server restart loses what it holds",
                s->name, s->pattern);
    if (has->Retention != want->Retention)
        stream_differs(s, "retention policy", has->Retention, want->Retention);
    if (has->Discard != want->Discard)
        stream_differs(s, "discard policy (0 old, 1 new)", has->Discard, want->Discard);
    if (o->replicas_given && has->Replicas != want->Replicas)
        stream_differs(s, "replicas", has->Replicas, want->Replicas);
    if (has->MaxAge != want->MaxAge)
        stream_differs(s, "max age (ns)", has->MaxAge, want->MaxAge);
    if (has->MaxBytes != want->MaxBytes)
        stream_differs(s, "max bytes", has->MaxBytes, want->MaxBytes);
    if (has->Duplicates < want->Duplicates)
        stream_differs(s, "a duplicate window (ns)", has->Duplicates, want->Duplicates);
    return 0;
}

int sbf_stream_transient(natsStatus st, jsErrCode jerr)
{
    switch ((int)jerr) {
    case 0:
    case JSNotEnabledErr: /* cnats's code for "no responders" */
        break;
    case JSClusterIncompleteErr:
    case JSClusterNoPeersErr:
    case JSClusterNotAssignedErr:
    case JSClusterNotAvailErr:
    case JSClusterNotLeaderErr:
    case JSClusterPeerNotMemberErr:
    case JSClusterServerNotMemberErr:
    case JSInsufficientResourcesErr:
    case JSStreamOfflineErr:
    case JSConsumerOfflineErr:
        return 1;
    default:
        return 0;
    }
    return st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || st == NATS_NOT_YET_CONNECTED ||
           st == NATS_CONNECTION_DISCONNECTED || st == NATS_CONNECTION_CLOSED;
}

int sbf_stream_log_fail(unsigned fails)
{
    return fails != 0 && (fails & (fails - 1)) == 0;
}

/* Log a failed JetStream request about @p s. @return -EAGAIN if asking
 * again may succeed, else -EIO. */
static int stream_fail(struct sbf_stream *s, const char *what, natsStatus st, jsErrCode jerr)
{
    natsStatus last = NATS_OK;
    const char *text = nats_GetLastError(&last);
    int again = sbf_stream_transient(st, jerr);

    /* The thread's last error text may be an older call's. */
    if (last != st)
        text = NULL;
    s->fails += s->fails < UINT_MAX;
    /* The same outage, asked about again: said at growing intervals. */
    if (again && !sbf_stream_log_fail(s->fails))
        return -EAGAIN;
    sbd_log(again ? SBD_WARN : SBD_ERROR,
            "nats: stream %s (--persist %s): %s: %s (JetStream error "
            "%d%s%s); %s",
            s->name, s->pattern, what, natsStatus_GetText(st), (int)jerr, text != NULL ? ": " : "",
            text != NULL ? text : "",
            again ? "asked again later (said again less and less often), its topics wait"
                  : "its topics are not persisted");
    return again ? -EAGAIN : -EIO;
}

/* Look the stream up and check it. @return 1 if it does not exist, 0 if
 * it is usable, -EAGAIN or -EIO if not (logged). */
static int stream_lookup(jsCtx *js, const struct sbf_stream_opts *o, struct sbf_stream *s,
                         const jsStreamConfig *want)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st;
    int rc;

    st = js_GetStreamInfo(&si, js, s->name, NULL, &jerr);
    if (st == NATS_OK) {
        s->fails = 0;
        rc = stream_check(s, o, si->Config, want);
        jsStreamInfo_Destroy(si);
        return rc;
    }
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return 1;
    /* Anything else: the server cannot tell us. */
    return stream_fail(s, "cannot look it up", st, jerr);
}

int sbf_stream_ensure(jsCtx *js, const struct sbf_stream_opts *o, struct sbf_stream *s)
{
    jsStreamConfig want;
    const char *subjects[1];
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st;
    int rc;

    s->ok = 0;
    stream_config(&want, o, s, subjects);
    rc = stream_lookup(js, o, s, &want);
    if (rc <= 0) {
        s->ok = rc == 0;
        return rc;
    }
    st = js_AddStream(&si, js, &want, NULL, &jerr);
    /* Another bus made it since we looked, with other options: check that. */
    if (st != NATS_OK && jerr == JSStreamNameExistErr) {
        rc = stream_lookup(js, o, s, &want);
        s->ok = rc == 0;
        return rc == 1 ? -EAGAIN : rc; /* deleted meanwhile: ask again */
    }
    if (st != NATS_OK)
        return stream_fail(s, "cannot create it", st, jerr);
    jsStreamInfo_Destroy(si);
    s->fails = 0;
    sbd_log(SBD_INFO, "nats: stream %s created for --persist %s (subjects %s, %u replica%s)",
            s->name, s->pattern, s->filter, o->replicas, o->replicas == 1 ? "" : "s");
    s->ok = 1;
    return 0;
}
