/*
 * What shmbusd does to a topic segment beyond the public API: planning a
 * segment's size, handing out subscriber slots on behalf of clients,
 * numbering named consumer groups, and taking back what a client that left
 * without cleaning up still held. Used by the daemon only.
 */
#ifndef SHMBUS_REGISTRY_ADMIN_H
#define SHMBUS_REGISTRY_ADMIN_H

#include <stdint.h>

#include "shmbus/shmbus.h"

/* The options @p o means once defaults are applied (into @p eff) and the
 * segment size they take. @return 0, or SHMBUS_ERR_INVALID. */
int sb_admin_plan(const shmbus_topic_opts *o, shmbus_topic_opts *eff, uint64_t *size);

/* The topic's segment file (still owned by the topic handle). */
int sb_admin_topic_fd(const shmbus_topic *t);

/* Take a free slot for process @p pid: state INIT, pid set.
 * @return the slot index, or SHMBUS_ERR_NO_SLOT. */
int sb_admin_slot_take(const shmbus_topic *t, uint32_t pid);

/*
 * Free slot @p idx. A slot its owner already left (INIT) just becomes FREE.
 * One still in use (the client closed its connection without destroying
 * its subscriber) is taken back: its group membership is dropped and it
 * stops gating publishers, who are woken.
 */
void sb_admin_slot_free(const shmbus_topic *t, uint32_t idx);

/*
 * The 1-based number of the group named @p name, numbering a new group
 * (the first never named) when none has the name yet.
 * @return the number, or SHMBUS_ERR_LIMIT when every group is named.
 */
int sb_admin_group_number(const shmbus_topic *t, const char *name);

#endif
