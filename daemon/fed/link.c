/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's link to NATS (link.h): cnats options, the connection's
 * callbacks, and the link thread that (re)makes the connection and runs
 * the core-NATS import.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed/import.h"
#include "fed/link.h"
#include "fed/state.h"
#include "events.h"
#include "log.h"
#include "util/clock.h"

/* The link thread looks at the connection at least this often (ms). */
#define LINK_TICK_MS 100
/* The longest sbf_link_stop() waits for cnats's last callback. */
#define LINK_CLOSE_WAIT_MS 5000

natsConnection *sbf_link_conn(struct sbf_link *l)
{
    /* acquire: pairs with the release that published a new connection;
     * the read lock keeps it from being destroyed meanwhile. */
    return atomic_load_explicit(&l->nc, memory_order_acquire);
}

void sbf_link_error(struct sbf_link *l, const char *what)
{
    int seen = 0;

    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&l->errors, 1, memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    for (unsigned i = 0; i < l->nerrs && !seen; i++)
        seen = strncmp(l->errs[i], what, sizeof(l->errs[i]) - 1) == 0;
    if (seen) {
        l->err_repeats++;
    } else {
        snprintf(l->errs[l->next_err], sizeof(l->errs[0]), "%s", what);
        l->next_err = (l->next_err + 1) % SBF_LINK_ERRS;
        if (l->nerrs < SBF_LINK_ERRS)
            l->nerrs++;
    }
    pthread_mutex_unlock(&l->mu);
    if (!seen)
        sbd_log(SBD_ERROR, "nats: %s", what);
}

/* The link works again: say how often the errors logged came again, and
 * forget them (they are logged again if they come back). */
static void link_healed(struct sbf_link *l)
{
    uint64_t again;

    pthread_mutex_lock(&l->mu);
    again = l->err_repeats;
    l->err_repeats = 0;
    l->nerrs = l->next_err = 0;
    pthread_mutex_unlock(&l->mu);
    if (again > 0)
        sbd_log(SBD_WARN, "nats: the errors above came %llu more times before this",
                (unsigned long long)again);
}

/* The state while not connected. */
static uint32_t link_down_state(struct sbf_link *l)
{
    /* relaxed: a flag read for monitoring. */
    return atomic_load_explicit(&l->ever_connected, memory_order_relaxed) ? SHMBUS_NATS_RECONNECTING
                                                                          : SHMBUS_NATS_CONNECTING;
}

/* Connected (first time, or again): state, server, max_payload, log. */
static void link_up(struct sbd_fed *f, natsConnection *nc, int again)
{
    struct sbf_link *l = &f->link;
    char url[sizeof(l->server)] = "";

    if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
        url[0] = '\0';
    /* relaxed, all: independent monitoring values; the exporters read
     * max_payload as a bound that may be a reconnect late. */
    atomic_store_explicit(&l->max_payload, natsConnection_GetMaxPayload(nc), memory_order_relaxed);
    atomic_store_explicit(&l->ever_connected, 1, memory_order_relaxed);
    atomic_store_explicit(&l->state, SHMBUS_NATS_CONNECTED, memory_order_relaxed);
    if (again)
        atomic_fetch_add_explicit(&l->reconnects, 1, memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    memcpy(l->server, url, sizeof(l->server));
    pthread_mutex_unlock(&l->mu);
    link_healed(l);
    sbd_log(SBD_INFO, "nats: %s %s as %s (max payload %lld bytes)",
            again ? "reconnected to" : "connected to", url, f->cfg->nats_origin,
            (long long)natsConnection_GetMaxPayload(nc));
    sbd_event("link_up", (struct sbd_ev_field[]){SBD_EV_S("server", url)}, 1);
}

static void on_connected(natsConnection *nc, void *arg)
{
    link_up(arg, nc, 0);
}

static void on_reconnected(natsConnection *nc, void *arg)
{
    link_up(arg, nc, 1);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    struct sbd_fed *f = arg;
    struct sbf_link *l = &f->link;
    char was[sizeof(l->server)];

    (void)nc;
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&l->state, link_down_state(l), memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    memcpy(was, l->server, sizeof(was));
    l->server[0] = '\0';
    pthread_mutex_unlock(&l->mu);
    /* relaxed: a flag; at our own stop the close is no news. */
    if (was[0] == '\0' || atomic_load_explicit(&l->stop, memory_order_relaxed))
        return;
    sbd_log(SBD_WARN,
            "nats: disconnected from %s: reconnecting; meanwhile up to %d bytes of "
            "exported messages wait, the rest are lost_out",
            was, SBF_RECONNECT_BUF);
    sbd_event("link_down", (struct sbd_ev_field[]){SBD_EV_S("server", was)}, 1);
}

static void on_closed(natsConnection *nc, void *arg)
{
    struct sbd_fed *f = arg;
    struct sbf_link *l = &f->link;
    const char *unused = NULL;
    natsStatus why;
    char what[200];
    int stopping;

    /* relaxed: stop is also published under mu below, where it matters. */
    stopping = atomic_load_explicit(&l->stop, memory_order_relaxed);
    /* The status only, as in link_make(): the text is cnats's buffer. */
    why = stopping ? NATS_OK : natsConnection_GetLastError(nc, &unused);
    if (why != NATS_OK) {
        snprintf(what, sizeof(what), "connection closed: %s (a new one in %d ms)",
                 natsStatus_GetText(why), SBF_LINK_REMAKE_MS);
        sbf_link_error(l, what);
    }
    atomic_store_explicit(&l->state, stopping ? SHMBUS_NATS_CLOSED : link_down_state(l),
                          memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    l->server[0] = '\0';
    l->closed++;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
    struct sbd_fed *f = arg;
    const char *detail = NULL;
    char what[256];

    (void)sub;
    /* A slow import: cnats dropped messages, counted by the importer from
     * the subscription's drop count (lost_in). Logged once per episode. */
    if (natsConnection_GetLastError(nc, &detail) == NATS_OK || detail == NULL)
        detail = "";
    snprintf(what, sizeof(what), "%s%s%s", natsStatus_GetText(err), detail[0] ? ": " : "", detail);
    sbf_link_error(&f->link, what);
}

/* Split --nats's list into @p urls (pointers into @p buf). */
static int split_urls(char *buf, const char **urls, int cap)
{
    int n = 0;

    for (char *p = buf; p != NULL && n < cap;) {
        char *comma = strchr(p, ',');

        if (comma != NULL)
            *comma = '\0';
        urls[n++] = p;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return n;
}

/* The options' cnats calls, in turn; the first that fails names itself. */
static natsStatus link_options(struct sbd_fed *f, natsOptions *o, const char **step)
{
    const struct sbd_config *c = f->cfg;
    char urlbuf[sizeof(c->nats_urls)], name[96];
    const char *urls[SBD_NATS_URLS_MAX / 2 + 1];
    int n;
    natsStatus s;

    memcpy(urlbuf, c->nats_urls, sizeof(urlbuf));
    n = split_urls(urlbuf, urls, (int)(sizeof(urls) / sizeof(urls[0])));
    snprintf(name, sizeof(name), "shmbusd %s", c->nats_origin);
#define STEP(call)                                                                                 \
    do {                                                                                           \
        *step = #call;                                                                             \
        if ((s = (call)) != NATS_OK)                                                               \
            return s;                                                                              \
    } while (0)
    STEP(natsOptions_SetServers(o, urls, n));
    STEP(natsOptions_SetName(o, name));
    /* Our own publishes never come back to us. */
    STEP(natsOptions_SetNoEcho(o, true));
    STEP(natsOptions_SetRetryOnFailedConnect(o, true, on_connected, f));
    STEP(natsOptions_SetMaxReconnect(o, -1));
    STEP(natsOptions_SetReconnectWait(o, SBF_RECONNECT_WAIT_MS));
    STEP(natsOptions_SetReconnectBufSize(o, SBF_RECONNECT_BUF));
    STEP(natsOptions_SetMaxPendingMsgs(o, SBF_PENDING_MSGS));
    STEP(natsOptions_SetWriteDeadline(o, SBF_WRITE_DEADLINE_MS));
    /* Every publish is written at once by the thread that makes it:
     * cnats's flusher otherwise waits up to a millisecond before writing
     * a lone message, which is most of federation's one-way latency. A
     * write that blocks is bounded by the write deadline above. */
    STEP(natsOptions_SetSendAsap(o, true));
    /* A server that stops answering (SIGSTOP, a cut link) is found in a
     * few seconds, not cnats's default two minutes. */
    STEP(natsOptions_SetPingInterval(o, 2000));
    STEP(natsOptions_SetMaxPingsOut(o, 2));
    STEP(natsOptions_SetDisconnectedCB(o, on_disconnected, f));
    STEP(natsOptions_SetReconnectedCB(o, on_reconnected, f));
    STEP(natsOptions_SetClosedCB(o, on_closed, f));
    STEP(natsOptions_SetErrorHandler(o, on_error, f));
    if (c->nats_creds[0] != '\0')
        STEP(natsOptions_SetUserCredentialsFromFiles(o, c->nats_creds, NULL));
    if (c->nats_token[0] != '\0')
        STEP(natsOptions_SetToken(o, c->nats_token));
    if (c->nats_user[0] != '\0')
        STEP(natsOptions_SetUserInfo(o, c->nats_user, c->nats_password));
    if (c->nats_ca[0] != '\0' || c->nats_cert[0] != '\0')
        STEP(natsOptions_SetSecure(o, true));
    if (c->nats_ca[0] != '\0')
        STEP(natsOptions_LoadCATrustedCertificates(o, c->nats_ca));
    if (c->nats_cert[0] != '\0')
        STEP(natsOptions_LoadCertificatesChain(o, c->nats_cert, c->nats_key));
#undef STEP
    return NATS_OK;
}

int sbf_link_init(struct sbd_fed *f)
{
    struct sbf_link *l = &f->link;
    const char *step = "natsOptions_Create";
    pthread_condattr_t ca;
    natsStatus s;

    pthread_mutex_init(&l->mu, NULL);
    /* link_nap()'s deadlines are CLOCK_MONOTONIC's. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_store_explicit(&l->state, SHMBUS_NATS_CONNECTING, memory_order_relaxed);
    s = natsOptions_Create(&l->opts);
    if (s == NATS_OK)
        s = link_options(f, l->opts, &step);
    if (s != NATS_OK) {
        sbd_log(SBD_ERROR, "nats: %s: %s%s%s", step, natsStatus_GetText(s),
                nats_GetLastError(NULL) != NULL ? ": " : "",
                nats_GetLastError(NULL) != NULL ? nats_GetLastError(NULL) : "");
        return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
    }
    return 0;
}

/* Wait on the link's condition, under l->mu, until @p ms passed, or
 * (@p stoppable) stop is set, or (@p seen not NULL) a connection closed
 * since l->closed was *@p seen. */
static void link_nap(struct sbf_link *l, unsigned ms, int stoppable, const uint64_t *seen)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    /* relaxed: stop is stored under mu by sbf_link_stop(). */
    while (!(stoppable && atomic_load_explicit(&l->stop, memory_order_relaxed)) &&
           (seen == NULL || l->closed == *seen))
        if (pthread_cond_timedwait(&l->cond, &l->mu, &ts) == ETIMEDOUT)
            break;
}

/* Make a connection (the first, or one to replace one cnats closed):
 * publish it, let its users move to it, and destroy the old one after a
 * grace period. Link thread. */
static void link_make(struct sbd_fed *f)
{
    struct sbf_link *l = &f->link;
    natsConnection *old = atomic_load_explicit(&l->nc, memory_order_relaxed), *nc = NULL;
    natsStatus s;

    if (old != NULL) {
        pthread_mutex_lock(&l->mu);
        link_nap(l, SBF_LINK_REMAKE_MS, 1, NULL);
        pthread_mutex_unlock(&l->mu);
        if (atomic_load_explicit(&l->stop, memory_order_relaxed))
            return;
    }
    /* Tries each server once (cnats's connect timeout each), then goes on
     * in cnats's threads: NATS_NOT_YET_CONNECTED is the usual answer for
     * a server that cannot be reached yet. */
    s = natsConnection_Connect(&nc, l->opts);
    if (s == NATS_OK)
        link_up(f, nc, 0);
    if (s == NATS_NOT_YET_CONNECTED) {
        /* Say once why the first attempt failed (credentials refused, or
         * nobody listening); cnats goes on trying. */
        const char *unused = NULL;
        natsStatus why = natsConnection_GetLastError(nc, &unused);
        char what[256];

        /* The status only: the text cnats hands out is the connection's
         * own buffer, which its threads (and the closed callback's call)
         * rewrite while we would read it. */
        if (why == NATS_OK || why == NATS_NOT_YET_CONNECTED || why == NATS_NO_SERVER)
            snprintf(what, sizeof(what), "no server reachable at %.160s yet: retrying",
                     f->cfg->nats_urls);
        else
            snprintf(what, sizeof(what), "cannot connect yet: %s: retrying",
                     natsStatus_GetText(why));
        sbf_link_error(l, what);
    }
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        char what[200];

        snprintf(what, sizeof(what), "cannot make a connection: %s (again in %d ms)",
                 natsStatus_GetText(s), SBF_LINK_REMAKE_MS);
        sbf_link_error(l, what);
        natsConnection_Destroy(nc);
        pthread_mutex_lock(&l->mu);
        link_nap(l, SBF_LINK_REMAKE_MS, 1, NULL);
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->gen++;
    /* release: the exporters' sbf_link_conn() sees the connection made. */
    atomic_store_explicit(&l->nc, nc, memory_order_release);
    sbf_fed_relinked(f, nc);
    if (old != NULL) {
        /* No exporter still holds the old one once a grace period passed. */
        urcu_memb_synchronize_rcu();
        natsConnection_Destroy(old);
    }
}

static void *link_main(void *arg)
{
    struct sbd_fed *f = arg;
    struct sbf_link *l = &f->link;

    urcu_memb_register_thread();
    /* relaxed: stop is stored under mu and the thread is woken after. */
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        natsConnection *nc = atomic_load_explicit(&l->nc, memory_order_relaxed);
        uint64_t seen;

        /* Closed for good: cnats gave up on it (the closed callback may
         * come later than the status, or before nc was published). */
        if (nc == NULL || natsConnection_Status(nc) == NATS_CONN_STATUS_CLOSED) {
            link_make(f);
            continue;
        }
        if (sbf_import_poll(f, LINK_TICK_MS))
            continue;
        pthread_mutex_lock(&l->mu);
        seen = l->closed;
        link_nap(l, LINK_TICK_MS, 1, &seen);
        pthread_mutex_unlock(&l->mu);
    }
    urcu_memb_unregister_thread();
    return NULL;
}

int sbf_link_start(struct sbd_fed *f)
{
    int rc = pthread_create(&f->link.th, NULL, link_main, f);

    if (rc != 0)
        return -rc;
    f->link.started = 1;
    return 0;
}

void sbf_link_stop(struct sbd_fed *f)
{
    struct sbf_link *l = &f->link;
    natsConnection *nc;

    pthread_mutex_lock(&l->mu);
    atomic_store_explicit(&l->stop, 1, memory_order_relaxed);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = 0;
    /* relaxed: the link thread, its only writer, was joined above. */
    nc = atomic_load_explicit(&l->nc, memory_order_relaxed);
    if (nc != NULL) {
        /* Each connection made ends with one closed callback, its last:
         * wait for it, so that no callback runs once f is freed. The
         * link thread ended: gen is ours to read. */
        natsConnection_Close(nc);
        pthread_mutex_lock(&l->mu);
        for (int i = 0; i < LINK_CLOSE_WAIT_MS / LINK_TICK_MS && l->closed < l->gen; i++) {
            uint64_t seen = l->closed;

            link_nap(l, LINK_TICK_MS, 0, &seen);
        }
        if (l->closed < l->gen)
            sbd_log(SBD_WARN, "nats: cnats did not report the connection closed in %d ms",
                    LINK_CLOSE_WAIT_MS);
        pthread_mutex_unlock(&l->mu);
        natsConnection_Destroy(nc);
        /* relaxed: every thread that read it is stopped by now. */
        atomic_store_explicit(&l->nc, NULL, memory_order_relaxed);
    }
    /* Only now, the read loop joined: cnats 3.4's may still hand a
     * message to a subscription another thread destroys (writing freed
     * memory; fixed in cnats 3.5, PR 638). */
    sbf_import_drop(f);
    atomic_store_explicit(&l->state, SHMBUS_NATS_CLOSED, memory_order_relaxed);
    natsOptions_Destroy(l->opts);
    l->opts = NULL;
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
}
