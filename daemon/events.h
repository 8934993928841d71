/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's events topic, `_shmbus.events`: what the daemon does (a
 * process reaped, a subscriber evicted, a claim unblocked, losses, dead
 * letters, a slow bridge client closed, segments refused or adopted,
 * federation links up and down), one JSON object per message, published
 * lossy so that no reader ever holds the daemon back. docs/protocol.md
 * "Events" is the schema. Only the daemon publishes there: the control
 * socket and the bridge refuse client publishers on `_shmbus.` topics
 * (sbd_events_reserved()).
 */
#ifndef SHMBUSD_EVENTS_H
#define SHMBUSD_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct sbd_registry;

/* The topic, and the prefix of the names only the daemon publishes on. */
#define SBD_EVENTS_TOPIC  "_shmbus.events"
#define SBD_EVENTS_PREFIX "_shmbus."
/* Its parameters: lossy, this many cells of at most this many bytes; an
 * event line is never longer (fields are bounded so that it fits). */
#define SBD_EVENTS_CAPACITY 1024u
#define SBD_EVENTS_MSG_MAX  1024u
/* The schema's version, the "v" of every event. */
#define SBD_EVENTS_VERSION 1

/* A field's kind. */
enum sbd_ev_kind { SBD_EV_STR, SBD_EV_U64 };

/* One field of an event: @p key (snake_case, a literal) and a string
 * (@p s, NUL-terminated, escaped as JSON) or a number (@p u). */
struct sbd_ev_field {
    const char *key;
    int kind; /* enum sbd_ev_kind */
    const char *s;
    uint64_t u;
};

#define SBD_EV_S(k, v) ((struct sbd_ev_field){.key = (k), .kind = SBD_EV_STR, .s = (v)})
#define SBD_EV_U(k, v) ((struct sbd_ev_field){.key = (k), .kind = SBD_EV_U64, .u = (uint64_t)(v)})

/*
 * Create (or, after a restart, reuse) `_shmbus.events` through @p r, as
 * the daemon creates its own topics, and a publisher on it; events flow
 * from then on. @p bus names the bus in every event. Control thread, once,
 * before the threads that emit events start. @return 0 or the error of
 * sbd_topic_open() / shmbus_pub_create() (logged).
 */
int sbd_events_start(struct sbd_registry *r, const char *bus);

/*
 * Start the events now if sbd_events_start() found something to wait for:
 * the topic's segment waiting to be taken over (a previous instance died
 * making it), or every publisher record of the topic held by dead
 * daemons (a restart loop) until the reaper frees them. Call after the
 * retries of waiting segments, once no segment of the topic waits any
 * more: taken over, or removed as abandoned (then the topic is made
 * anew). Control thread.
 */
void sbd_events_resume(struct sbd_registry *r);

/* Stop publishing: sbd_event() does nothing from then on. Control thread,
 * after the threads that emit events stopped. */
void sbd_events_stop(void);

/*
 * Publish one event of kind @p kind (snake_case) with fields @p f[0..n):
 * {"v":1,"time_ns":..,"bus":"..","event":"<kind>",<fields>}. Any daemon
 * thread; a mutex serialises the one publisher (events are rare), which
 * never blocks: the topic is lossy. Does nothing before sbd_events_start()
 * or after sbd_events_stop(). An event that would not fit in
 * SBD_EVENTS_MSG_MAX bytes is not published but counted and logged
 * (rate-limited); callers pass bounded fields, so none does.
 */
void sbd_event(const char *kind, const struct sbd_ev_field *f, unsigned n);

/*
 * Format an event into @p out (@p cap bytes, no NUL, no newline): the
 * line sbd_event() publishes, pure. Strings are escaped as JSON; bytes
 * that are not valid UTF-8 become U+FFFD. @return its length, or 0 if it
 * does not fit in @p cap.
 */
size_t sbd_event_format(char *out, size_t cap, const char *bus, uint64_t time_ns, const char *kind,
                        const struct sbd_ev_field *f, unsigned n);

/* 1 if topic @p name is reserved to the daemon (starts with
 * SBD_EVENTS_PREFIX): no client may publish there. */
int sbd_events_reserved(const char *name);

#endif
