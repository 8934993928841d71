/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The links of shmbus-nats-bench: how one side sends and receives, the same
 * calls for both things measured. Through shmbus, a side is a process on one
 * bus (shmbus_connect, shmbus_open): what it publishes reaches the other bus
 * only through the two shmbusd and the NATS server between them. Through
 * NATS, a side is a plain cnats connection to the same server: core
 * publish and a synchronous subscription, or JetStream asynchronous
 * publishes and a pull consumer acknowledging each message, as shmbusd's
 * importer does.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "bench_nats.h"

int nb_nats_fail(const char *what, natsStatus s)
{
    fprintf(stderr, NB_NAME "[%ld]: %s: %s (%s)\n", (long)getpid(), what, natsStatus_GetText(s),
            nats_GetLastError(NULL));
    return -1;
}

/* ------------------------------------------------------------------ shmbus */

static int link_open_shm(struct nb_link *l, const char *bus, const char *in, const char *out)
{
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    /* Only what matters is asked for: a topic the importing daemon created
     * first, with the bus's defaults, matches any zero field. */
    shmbus_topic_opts topt = {.mode = l->kind == NB_PERSIST ? SHMBUS_RELIABLE : SHMBUS_LOSSY,
                              .capacity = (uint32_t)l->o->capacity};
    /* Both sides block in shmbus_recv(), as a cnats subscriber blocks in
     * natsSubscription_NextMsg(): on 2 vCPUs shared with two daemons and a
     * server, a spinning reader takes the CPU the path needs. */
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = -1};
    int rc = shmbus_connect(bus, &l->bus);

    if (rc < 0) {
        fprintf(stderr, NB_NAME ": cannot connect to bus %s\n", bus);
        return bench_fail("shmbus_connect", rc);
    }
    if (in != NULL) {
        snprintf(name, sizeof(name), NB_TOPIC_PREFIX "%s", in);
        if (bench_ep_open_bus(&l->in, l->bus, name, &topt, 0, &so) != 0)
            return -1;
    }
    if (out != NULL) {
        snprintf(name, sizeof(name), NB_TOPIC_PREFIX "%s", out);
        if (bench_ep_open_bus(&l->out, l->bus, name, &topt, 1, NULL) != 0)
            return -1;
    }
    return 0;
}

/* -------------------------------------------------------------------- NATS */

static int link_connect(struct nb_link *l)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);

    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, l->o->url);
    /* Latency runs: each publish goes out at once. Without it cnats 3.4
     * leaves a lone message to its flusher thread, which waits 1 ms for
     * more before writing. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(opts, l->o->send_asap != 0);
    if (s == NATS_OK)
        s = natsConnection_Connect(&l->nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK)
        return nb_nats_fail("connecting to the NATS server", s);
    return 0;
}

/* The baseline's stream: its own, named after the one it copies (if any). */
static void link_stream_name(const struct nb_opts *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s", o->stream_base[0] != '\0' ? o->stream_base : NB_STREAM_BASE);
}

static int link_js(struct nb_link *l)
{
    jsOptions jo;
    natsStatus s;

    jsOptions_Init(&jo);
    /* The window of shmbusd's exporter (--persist-window): at most this many
     * publishes wait for their acknowledgement; the next one waits. */
    jo.PublishAsync.MaxPending = (int64_t)l->o->window;
    jo.PublishAsync.StallWait = (int64_t)l->o->timeout_ms;
    s = natsConnection_JetStream(&l->js, l->nc, &jo);
    if (s != NATS_OK)
        return nb_nats_fail("natsConnection_JetStream", s);
    return 0;
}

static int link_subscribe(struct nb_link *l, const char *subj)
{
    char stream[64];
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    if (l->kind == NB_CORE) {
        s = natsConnection_SubscribeSync(&l->sub, l->nc, subj);
        if (s != NATS_OK)
            return nb_nats_fail("natsConnection_SubscribeSync", s);
        return 0;
    }
    link_stream_name(l->o, stream, sizeof(stream));
    jsSubOptions_Init(&so);
    so.Stream = stream;
    /* An ephemeral pull consumer from now on, each message acknowledged
     * (the server's defaults otherwise), as the daemon's durable one. */
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.AckPolicy = js_AckExplicit;
    s = js_PullSubscribe(&l->sub, l->js, subj, NULL, NULL, &so, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, NB_NAME ": pull consumer on %s in stream %s: JetStream error %d\n", subj,
                stream, (int)jerr);
        return nb_nats_fail("js_PullSubscribe", s);
    }
    return 0;
}

static int link_open_nats(struct nb_link *l, const char *in, const char *out)
{
    char subj[64];

    if (link_connect(l) != 0)
        return -1;
    if (l->kind == NB_PERSIST && link_js(l) != 0)
        return -1;
    if (in != NULL) {
        snprintf(subj, sizeof(subj), NB_SUBJECT_PREFIX "%s", in);
        if (link_subscribe(l, subj) != 0)
            return -1;
    }
    if (out != NULL)
        snprintf(l->subj_out, sizeof(l->subj_out), NB_SUBJECT_PREFIX "%s", out);
    return 0;
}

/* The name of the stream that holds subject @p subj into @p out. @return 0 or -1. */
static int link_stream_of(jsCtx *js, const char *subj, char *out, size_t cap)
{
    jsStreamNamesList *names = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    natsStatus s;
    int rc = -1;

    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = subj;
    s = js_StreamNames(&names, js, &jo, &jerr);
    if (s == NATS_OK && names->Count == 1 && strlen(names->List[0]) < cap) {
        snprintf(out, cap, "%s", names->List[0]);
        rc = 0;
    } else if (s == NATS_OK || s == NATS_NOT_FOUND) {
        fprintf(stderr, NB_NAME ": %d streams hold subject %s, not one\n",
                s == NATS_OK ? names->Count : 0, subj);
    } else {
        fprintf(stderr, NB_NAME ": the streams of %s: JetStream error %d\n", subj, (int)jerr);
        nb_nats_fail("js_StreamNames", s);
    }
    jsStreamNamesList_Destroy(names);
    return rc;
}

int nb_stream_prepare(struct nb_opts *o)
{
    struct nb_link l = {.o = o, .kind = NB_PERSIST};
    char like_name[64];
    const char *subjects[1] = {NB_SUBJECT_PREFIX "js"};
    jsStreamInfo *like = NULL;
    jsStreamInfo *si = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    natsStatus s;
    int rc = -1;

    if (link_connect(&l) != 0 || link_js(&l) != 0)
        goto out;
    jsStreamConfig_Init(&cfg);
    cfg.Storage = js_FileStorage;
    cfg.Replicas = 1;
    /* The daemons' stream, when asked: the same storage, replicas, limits
     * and duplicate window, on a subject no daemon imports. */
    if (o->stream_of != NULL) {
        if (link_stream_of(l.js, o->stream_of, like_name, sizeof(like_name)) != 0)
            goto out;
        s = js_GetStreamInfo(&like, l.js, like_name, NULL, &jerr);
        if (s != NATS_OK) {
            fprintf(stderr, NB_NAME ": stream %s: JetStream error %d\n", like_name, (int)jerr);
            nb_nats_fail("js_GetStreamInfo", s);
            goto out;
        }
        cfg = *like->Config;
        snprintf(o->stream_base, sizeof(o->stream_base), "%.40s_BASE", like_name);
        printf("baseline stream %s: a copy of %s (storage %s, %" PRId64 " replicas)\n",
               o->stream_base, like_name, cfg.Storage == js_FileStorage ? "file" : "memory",
               cfg.Replicas);
    }
    link_stream_name(o, like_name, sizeof(like_name));
    cfg.Name = like_name;
    cfg.Description = NULL;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    s = js_AddStream(&si, l.js, &cfg, NULL, &jerr);
    /* Made by an earlier round: the same config, nothing to do. */
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        fprintf(stderr, NB_NAME ": creating stream %s: JetStream error %d\n", like_name, (int)jerr);
        nb_nats_fail("js_AddStream", s);
        goto out;
    }
    rc = 0;
out:
    jsStreamInfo_Destroy(si);
    jsStreamInfo_Destroy(like);
    nb_link_close(&l);
    return rc;
}

/* ------------------------------------------------------------------- links */

int nb_link_open(struct nb_link *l, const struct nb_opts *o, enum nb_kind kind, const char *bus,
                 const char *in, const char *out)
{
    int rc;

    memset(l, 0, sizeof(*l));
    l->o = o;
    l->kind = kind;
    rc = o->shm ? link_open_shm(l, bus, in, out) : link_open_nats(l, in, out);
    if (rc != 0)
        nb_link_close(l);
    return rc;
}

void nb_link_close(struct nb_link *l)
{
    bench_ep_close(&l->in);
    bench_ep_close(&l->out);
    shmbus_close(l->bus);
    natsMsgList_Destroy(&l->fetched);
    /* Unsubscribing deletes the ephemeral JetStream consumer. */
    if (l->sub != NULL)
        natsSubscription_Unsubscribe(l->sub);
    natsSubscription_Destroy(l->sub);
    jsCtx_Destroy(l->js);
    natsConnection_Destroy(l->nc);
    memset(l, 0, sizeof(*l));
}

int nb_send(struct nb_link *l, const void *buf, size_t len)
{
    natsStatus s;
    int rc;

    if (l->o->shm) {
        /* Lossy: never waits (0); reliable: waits for the ring, gated by
         * the exporter until JetStream acknowledged, at most the timeout. */
        rc = shmbus_publish(l->out.pub, buf, len, (int64_t)l->o->timeout_ms * 1000000);
        if (rc == SHMBUS_ERR_OVERRUN && l->kind == NB_CORE)
            return 1;
        if (rc < 0) {
            l->send_errors++;
            return bench_fail("shmbus_publish", rc);
        }
        return 0;
    }
    if (l->kind == NB_CORE)
        s = natsConnection_Publish(l->nc, l->subj_out, buf, (int)len);
    else
        s = js_PublishAsync(l->js, l->subj_out, buf, (int)len, NULL);
    if (s != NATS_OK) {
        l->send_errors++;
        return nb_nats_fail(l->kind == NB_CORE ? "natsConnection_Publish" : "js_PublishAsync", s);
    }
    return 0;
}

int nb_flush(struct nb_link *l)
{
    jsPubOptions po;
    natsStatus s;

    if (l->o->shm)
        return 0;
    if (l->kind == NB_CORE) {
        s = natsConnection_FlushTimeout(l->nc, (int64_t)l->o->timeout_ms);
        return s == NATS_OK ? 0 : nb_nats_fail("natsConnection_FlushTimeout", s);
    }
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)l->o->timeout_ms;
    s = js_PublishAsyncComplete(l->js, &po);
    return s == NATS_OK ? 0 : nb_nats_fail("js_PublishAsyncComplete", s);
}

/* Copy @p m into @p buf (truncated to @p cap). @return its length, at least 1. */
static int link_take(const natsMsg *m, void *buf, size_t cap)
{
    int len = natsMsg_GetDataLength(m);
    size_t n = (size_t)len < cap ? (size_t)len : cap;

    memcpy(buf, natsMsg_GetData(m), n);
    /* An empty message is not "nothing came": 1 byte is too short anyway. */
    return len > 0 ? len : 1;
}

static int link_recv_js(struct nb_link *l, void *buf, size_t cap, uint64_t timeout_ms)
{
    natsMsg *m;
    natsStatus s;
    int len;

    if (l->next == l->fetched.Count) {
        natsMsgList_Destroy(&l->fetched);
        l->next = 0;
        s = natsSubscription_Fetch(&l->fetched, l->sub, (int)l->o->batch, (int64_t)timeout_ms,
                                   NULL);
        if (s == NATS_TIMEOUT)
            return 0;
        if (s != NATS_OK)
            return nb_nats_fail("natsSubscription_Fetch", s);
        if (l->fetched.Count == 0)
            return 0;
    }
    m = l->fetched.Msgs[l->next++];
    len = link_take(m, buf, cap);
    /* Acknowledged once it is ours, as the importer acknowledges once the
     * message is in the ring; natsMsg_Ack does not wait for the server. */
    s = natsMsg_Ack(m, NULL);
    if (s != NATS_OK)
        return nb_nats_fail("natsMsg_Ack", s);
    return len;
}

int nb_recv(struct nb_link *l, void *buf, size_t cap, uint64_t timeout_ms)
{
    natsMsg *m = NULL;
    natsStatus s;
    int len;

    if (l->o->shm) {
        len = shmbus_recv(l->in.sub, buf, cap, NULL, (int64_t)timeout_ms * 1000000);
        if (len == SHMBUS_ERR_TIMEOUT || len == -EAGAIN || len == -EINTR)
            return 0;
        if (len < 0)
            return bench_fail("shmbus_recv", len);
        /* An empty message is not "nothing came". */
        return len > 0 ? len : 1;
    }
    if (l->kind == NB_PERSIST)
        return link_recv_js(l, buf, cap, timeout_ms);
    s = natsSubscription_NextMsg(&m, l->sub, (int64_t)timeout_ms);
    if (s == NATS_TIMEOUT)
        return 0;
    /* A slow-consumer notice: cnats dropped messages; they are counted by
     * nb_dropped() and, missing, as lost. */
    if (s == NATS_SLOW_CONSUMER)
        return 0;
    if (s != NATS_OK)
        return nb_nats_fail("natsSubscription_NextMsg", s);
    len = link_take(m, buf, cap);
    natsMsg_Destroy(m);
    return len;
}

uint64_t nb_dropped(struct nb_link *l)
{
    int64_t n = 0;

    if (l->o->shm || l->sub == NULL || l->kind != NB_CORE)
        return 0;
    if (natsSubscription_GetDropped(l->sub, &n) != NATS_OK || n < 0)
        return 0;
    return (uint64_t)n;
}
