/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recording: the daemon writes the topics that --record patterns match to
 * journals in --journal-dir (shmbus/journal.h, docs/journal.md), each
 * from its first message: a registry listener seats the recorder's
 * subscriber under topic_lock, before any client gets the topic, and
 * recorder threads poll, append and flush. On a reliable topic the
 * subscriber is held (registry/relay.h): the ring keeps what is not yet
 * durable. A write error (a full disk) stops the topic's recording at
 * once, with a log line and an event, and it is retried with back-off.
 * docs/design.md "Recording" tells the whole story; the rest of the
 * daemon sees only this header.
 */
#ifndef SHMBUSD_REC_H
#define SHMBUSD_REC_H

#include <stddef.h>

#include "config.h"
#include "registry.h"

struct sbd_rec;

/* The lock file in --journal-dir that one daemon holds (flock) for its
 * life: a topic name never starts with '.', so it is no journal's. */
#define SBD_REC_LOCK_NAME ".shmbusd.lock"

/* Take --journal-dir's lock, which the daemon keeps for its life (*@p fd
 * stays open, forks included): two daemons (two buses) recording into one
 * directory would continue or set aside each other's journals of the same
 * topic name. Before detaching: a refusal is the start's, said on stderr.
 * No --record: *@p fd = -1, returns 0. @return 0, or -EBUSY (another
 * daemon holds it) or -errno, both said on stderr. */
int sbd_rec_lock(const struct sbd_config *cfg, int *fd);

/* Start recording: the recorder threads and the registry listener, which
 * seats a recorder on each topic there already and on every topic added
 * from now on that a --record pattern matches. Call before any thread
 * other than the control thread may add topics (before the bridge), and
 * before the reaper runs (a topic adopted from a dead daemon is then still
 * gated where that daemon's recorder left it). No --record: *out = NULL,
 * returns 0. @return 0 or -errno (out of memory, no thread). */
int sbd_rec_start(const struct sbd_config *cfg, struct sbd_registry *reg, struct sbd_rec **out);

/* Stop recording: no topic is seated any more, the threads stop, every
 * journal is flushed (synced unless --journal-sync none) and closed, and
 * the subscribers go (their slots stop gating). The journals then hold
 * everything the recorders read. Before the registry goes and before
 * sbd_events_stop(). Accepts NULL. */
void sbd_rec_stop(struct sbd_rec *r);

/* The journal directory of topic @p topic into @p out (@p cap bytes, NUL
 * included): --journal-dir if the daemon records the topic (its recorder
 * may be stopped for now: the journal is there all the same). Any thread.
 * @return 0; -ENOENT (not recorded, or NULL @p r); -ENAMETOOLONG. */
int sbd_rec_dir(struct sbd_rec *r, const char *topic, char *out, size_t cap);

#endif
