/*
 * The client side of the control protocol: a connection to shmbusd, and
 * the calls the topic, publisher and subscriber code make through it.
 * None of this is on the publish or receive path.
 */
#ifndef SHMBUS_REGISTRY_CLIENT_H
#define SHMBUS_REGISTRY_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
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
    char path[108];       /* the control socket, for reconnecting */
    shmbus_topic *topics; /* open topic handles (ring.h bus_next), re-registered
                             with a new daemon */
};

/* Link topic @p t (named @p name) into its bus's list. */
void sb_bus_topic_add(shmbus_bus *bus, shmbus_topic *t, const char *name);
/* Unlink it. */
void sb_bus_topic_del(shmbus_bus *bus, shmbus_topic *t);
/* Count a publisher (+1/-1) or a slot (add/remove) of @p t, for
 * re-registration. @return 0 or -ENOMEM. */
int sb_bus_topic_pubs(shmbus_bus *bus, shmbus_topic *t, int delta);
int sb_bus_topic_slot(shmbus_bus *bus, shmbus_topic *t, uint32_t slot, int add);

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

/* Tell the daemon about a publisher or subscriber of @p t (CLOSE, PUB_ADD,
 * PUB_DEL, SUB_DEL: bodies without a reply). */
int sb_bus_ref(shmbus_topic *t, uint16_t type, uint32_t slot);

#endif
