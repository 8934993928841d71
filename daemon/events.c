/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The events topic (events.h): formats one JSON object per event and
 * publishes it, lossy, on `_shmbus.events`. Events are rare (a death, an
 * eviction, a loss report at most every 100 ms per subscriber), so one
 * publisher behind one mutex serves every daemon thread; a lossy publish
 * never waits for readers, so the mutex is held for a formatting and a
 * copy, never longer. An event that cannot be published (it would not
 * fit, or the publish failed) is counted and logged at most once a second.
 */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "registry.h"
#include "shmbus/shmbus.h"
#include "util/clock.h"
#include "util/utf8.h"

/* Least time between two lines about events not published. */
#define EVENTS_WARN_NS 1000000000ull

static struct {
    pthread_mutex_t lock;
    shmbus_pub *pub;           /* NULL: not started, or stopped */
    const struct sbd_topic *t; /* its topic, while pub is set */
    char bus[SHMBUS_NAME_MAX + 1];
    uint64_t failed;  /* events not published since the last line said so */
    uint64_t warn_ns; /* CLOCK_MONOTONIC of that line */
    char line[SBD_EVENTS_MSG_MAX];
    /* The control thread's alone: what the start found in the way, that
     * sbd_events_resume() starts again after (enum ev_wait). */
    int waiting;
} ev = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* What a start that failed waits for. */
enum ev_wait {
    EV_WAIT_NONE,    /* nothing: started, or failed for good */
    EV_WAIT_SEGMENT, /* the topic's segment to be taken over, or removed */
    EV_WAIT_RECORD,  /* a publisher record, all held by dead daemons */
};

/* Append @p n bytes of @p s at out[*at] if they fit in @p cap. @return 0,
 * or -1 (nothing written) if they do not. */
static int ev_put(char *out, size_t cap, size_t *at, const char *s, size_t n)
{
    if (n > cap - *at)
        return -1;
    memcpy(out + *at, s, n);
    *at += n;
    return 0;
}

/* The JSON escape of byte @p c (a quote, a backslash or a control byte)
 * into @p esc. @return its length, or 0 if @p c needs none. */
static size_t ev_escape(unsigned char c, char esc[7])
{
    static const char hex[] = "0123456789abcdef";

    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    }
    if (c >= 0x20)
        return 0;
    memcpy(esc, "\\u00", 4);
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
}

/* Append @p s as a quoted JSON string: quotes, backslashes and control
 * bytes escaped, bytes that are not valid UTF-8 replaced by U+FFFD.
 * @return 0 or -1 (does not fit). */
static int ev_str(char *out, size_t cap, size_t *at, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    char esc[7];
    size_t n;

    if (ev_put(out, cap, at, "\"", 1) < 0)
        return -1;
    while (p < end) {
        n = ev_escape(*p, esc);
        if (n > 0) {
            if (ev_put(out, cap, at, esc, n) < 0)
                return -1;
            p++;
            continue;
        }
        n = sb_utf8_seq(p, end);
        if (n == 0) {
            /* Not UTF-8 (a name never is; an error text might be): the
             * replacement character keeps the line valid JSON. */
            if (ev_put(out, cap, at, "\\ufffd", 6) < 0)
                return -1;
            p++;
            continue;
        }
        if (ev_put(out, cap, at, (const char *)p, n) < 0)
            return -1;
        p += n;
    }
    return ev_put(out, cap, at, "\"", 1);
}

/* Append ,"key": and the field's value. @return 0 or -1 (does not fit). */
static int ev_field(char *out, size_t cap, size_t *at, const struct sbd_ev_field *f)
{
    char num[24];
    int len;

    if (ev_put(out, cap, at, ",", 1) < 0 || ev_str(out, cap, at, f->key) < 0 ||
        ev_put(out, cap, at, ":", 1) < 0)
        return -1;
    if (f->kind == SBD_EV_STR)
        return ev_str(out, cap, at, f->s != NULL ? f->s : "");
    len = snprintf(num, sizeof(num), "%llu", (unsigned long long)f->u);
    return ev_put(out, cap, at, num, (size_t)len);
}

size_t sbd_event_format(char *out, size_t cap, const char *bus, uint64_t time_ns, const char *kind,
                        const struct sbd_ev_field *f, unsigned n)
{
    char head[64];
    size_t at = 0;
    int len;

    len = snprintf(head, sizeof(head), "{\"v\":%d,\"time_ns\":%llu,\"bus\":", SBD_EVENTS_VERSION,
                   (unsigned long long)time_ns);
    if (ev_put(out, cap, &at, head, (size_t)len) < 0 || ev_str(out, cap, &at, bus) < 0 ||
        ev_put(out, cap, &at, ",\"event\":", 9) < 0 || ev_str(out, cap, &at, kind) < 0)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (ev_field(out, cap, &at, &f[i]) < 0)
            return 0;
    if (ev_put(out, cap, &at, "}", 1) < 0)
        return 0;
    return at;
}

int sbd_events_reserved(const char *name)
{
    return strncmp(name, SBD_EVENTS_PREFIX, sizeof(SBD_EVENTS_PREFIX) - 1) == 0;
}

/* Count an event of @p kind not published (@p why) and say so, at most
 * once every EVENTS_WARN_NS. Under ev.lock. */
static void events_failed(const char *kind, const char *why)
{
    uint64_t now = sb_mono_ns();

    ev.failed++;
    if (ev.warn_ns != 0 && now - ev.warn_ns < EVENTS_WARN_NS)
        return;
    sbd_log(SBD_WARN, "events: a \"%s\" event not published: %s (%llu not published)", kind, why,
            (unsigned long long)ev.failed);
    ev.failed = 0;
    ev.warn_ns = now;
}

void sbd_event(const char *kind, const struct sbd_ev_field *f, unsigned n)
{
    size_t len;
    int rc;

    pthread_mutex_lock(&ev.lock);
    /* Before the start or after the stop there is no topic to publish on. */
    if (ev.pub == NULL) {
        pthread_mutex_unlock(&ev.lock);
        return;
    }
    len = sbd_event_format(ev.line, sizeof(ev.line), ev.bus, sb_real_ns(), kind, f, n);
    if (sbd_topic_broken(ev.t)) {
        /* A client truncated the segment (guard.h): the mapping is private
         * zeroes that no reader sees, and the topic is no longer served. */
        events_failed(kind, "its segment was truncated");
    } else if (len == 0) {
        events_failed(kind, "longer than the topic's largest message");
    } else {
        /* Timeout 0: the topic is lossy, so this never waits anyway. */
        rc = shmbus_publish(ev.pub, ev.line, len, 0);
        if (rc < 0)
            events_failed(kind, shmbus_strerror(rc));
    }
    pthread_mutex_unlock(&ev.lock);
}

int sbd_events_start(struct sbd_registry *r, const char *bus)
{
    struct sb_wire_open req;
    struct sbd_topic *t;
    shmbus_pub *pub;
    char why[160] = "";
    int created, rc, was = ev.waiting;

    memset(&req, 0, sizeof(req));
    memcpy(req.name, SBD_EVENTS_TOPIC, sizeof(SBD_EVENTS_TOPIC));
    req.mode = SHMBUS_LOSSY;
    req.capacity = SBD_EVENTS_CAPACITY;
    req.max_msg_size = SBD_EVENTS_MSG_MAX;
    rc = sbd_topic_open(r, &req, &t, &created, why, sizeof(why));
    ev.waiting = rc == SHMBUS_ERR_NOT_READY ? EV_WAIT_SEGMENT : EV_WAIT_NONE;
    if (ev.waiting) {
        sbd_log(SBD_WARN,
                "events: topic %s: its segment waits to be taken over: no events until "
                "it is, or until it is removed as abandoned",
                SBD_EVENTS_TOPIC);
        return rc;
    }
    if (rc < 0) {
        sbd_log(SBD_ERROR, "events: cannot open topic %s: %s%s%s", SBD_EVENTS_TOPIC,
                shmbus_strerror(rc), why[0] ? ": " : "", why);
        return rc;
    }
    rc = shmbus_pub_create(t->t, &pub);
    if (rc == SHMBUS_ERR_NO_SLOT) {
        /* Every record held by a daemon killed before its reaper freed the
         * records of the one before (a restart loop): ours frees them, and
         * each retry tries again, said once. */
        if (was != EV_WAIT_RECORD)
            sbd_log(SBD_WARN,
                    "events: every publisher record of %s is taken: no events until the "
                    "reaper frees those of dead processes",
                    SBD_EVENTS_TOPIC);
        ev.waiting = EV_WAIT_RECORD;
        return rc;
    }
    if (rc < 0) {
        sbd_log(SBD_ERROR, "events: cannot publish on %s: %s", SBD_EVENTS_TOPIC,
                shmbus_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&ev.lock);
    snprintf(ev.bus, sizeof(ev.bus), "%s", bus);
    ev.pub = pub;
    ev.t = t;
    pthread_mutex_unlock(&ev.lock);
    return 0;
}

void sbd_events_resume(struct sbd_registry *r)
{
    /* Only a start that found something to wait for is tried again: any
     * other failure (--max-shm, a topic of other options) stays. */
    if (!ev.waiting)
        return;
    if (sbd_events_start(r, r->cfg->bus) == 0)
        sbd_log(SBD_INFO, "events: publishing on %s", SBD_EVENTS_TOPIC);
}

void sbd_events_stop(void)
{
    shmbus_pub *pub;

    pthread_mutex_lock(&ev.lock);
    pub = ev.pub;
    ev.pub = NULL;
    ev.t = NULL;
    pthread_mutex_unlock(&ev.lock);
    shmbus_pub_destroy(pub);
}
