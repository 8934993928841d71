/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the control protocol: a connection to shmbusd, the
 * record it keeps of each topic handle opened through it, and the calls
 * the ring's hooks (ring/hooks.h, implemented in hooks.c) make through
 * it. None of this is on the publish or receive path. registry/ may
 * include ring/ and shm/ (never the reverse); the daemon takes its
 * daemon-facing headers (admin.h, relay.h, wire.h...), never this one.
 */
#ifndef SHMBUS_REGISTRY_CLIENT_H
#define SHMBUS_REGISTRY_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/wire.h"

struct shmbus_bus {
    pthread_mutex_t lock; /* one request in flight per connection; the lists below */
    int sock;
    int lost;     /* the daemon hung up: the next call reconnects first */
    uint32_t pid; /* the connection belongs to this process (not to fork children) */
    uint32_t next_req;
    uint32_t session;
    uint32_t daemon_pid; /* of the daemon that said hello last */
    /* The caller's reference plus one per topic handle: the connection
     * outlives shmbus_close() until its last topic is destroyed, so the
     * daemon never takes back slots still in use. acq_rel on the drop:
     * the last dropper sees every other dropper's use. */
    _Atomic uint32_t refs;
    char name[SHMBUS_BUS_NAME_MAX + 1];
    char path[108];              /* the control socket, for reconnecting */
    struct sb_topic_reg *topics; /* open topic handles, re-registered with a new daemon */
};

/*
 * The record of a topic handle opened through the daemon (shmbus_open()),
 * which the handle points to (ring.h reg): the daemon's id for it and, under
 * the bus's lock, what this process holds of it, told again to a daemon
 * that replaces a lost one (re-registration, client.c).
 */
struct sb_topic_reg {
    shmbus_bus *bus;           /* holds a reference for the handle */
    shmbus_topic *topic;       /* the handle */
    struct sb_topic_reg *next; /* the bus's list */
    uint32_t id;               /* the daemon's topic id */
    uint32_t npubs;            /* publishers created through the handle */
    uint32_t nslots;
    size_t slots_cap;
    uint32_t *slots; /* slots the daemon handed out for its subscribers */
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
};

/* Register topic handle @p t (named @p name, the daemon's @p id) with
 * @p bus: link its record into the bus's list and take a reference on the
 * bus. hooks.c's sb_hook_topic_closing() undoes it. @return 0 or -ENOMEM. */
int sb_topic_reg_attach(shmbus_bus *bus, shmbus_topic *t, uint32_t id, const char *name);

/* Take a reference for a topic handle. */
void sb_bus_ref_get(shmbus_bus *bus);
/* Drop a reference; the last one closes the connection. */
void sb_bus_ref_put(shmbus_bus *bus);

/*
 * One request and its reply. @p reply receives the OK body (at most
 * @p cap bytes), @p fd a descriptor sent with it (NULL: none expected).
 * @return the reply body length; the daemon's error code;
 *         SHMBUS_ERR_DAEMON_LOST; SHMBUS_ERR_PROTOCOL;
 *         SHMBUS_ERR_PROTO_VERSION; SHMBUS_ERR_TIMEOUT (no reply in
 *         SB_BUS_REPLY_TIMEOUT_S); SHMBUS_ERR_INVALID in a forked child.
 * Thread-safe; blocks for one round trip.
 */
int sb_bus_call(shmbus_bus *bus, uint16_t type, const void *body, uint32_t len, void *reply,
                uint32_t cap, int *fd);

/* A request about topic @p t (its bus): the body's first field is the
 * topic id, filled in here under the connection's lock, after any
 * reconnect. @return as sb_bus_call(); SHMBUS_ERR_TOPIC_GONE for a topic
 * no daemon serves any more (-ENOENT if its segment could not be marked
 * gone: a truncated one). */
int sb_bus_topic_call(shmbus_topic *t, uint16_t type, void *body, uint32_t len, void *reply,
                      uint32_t cap);

/* Tell the daemon about a publisher of @p t, a topic opened through it,
 * or that the handle closes (CLOSE, PUB_ADD, PUB_DEL: bodies without a
 * reply). */
int sb_bus_ref(shmbus_topic *t, uint16_t type);

/* Ask the daemon where it records topic @p t (JOURNAL): its journal
 * directory into @p dir (@p cap bytes). @return 0; -ENOENT (not
 * recorded); -ENAMETOOLONG (longer than @p cap); SHMBUS_ERR_PROTOCOL (a
 * reply that is not a NUL-terminated absolute path); as
 * sb_bus_topic_call(). Blocks for one round trip. */
int sb_bus_journal_dir(shmbus_topic *t, char *dir, size_t cap);

/* Give slot @p slot of @p t back to the daemon (SUB_DEL), or free it here
 * when no daemon's books hold it (client.c slot_release_locked()).
 * SHMBUS_ERR_INVALID in a forked child: the slot is the parent's. */
int sb_bus_slot_release(shmbus_topic *t, uint32_t slot);

#endif
