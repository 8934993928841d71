/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whom a client trusts with its messages: a daemon of its own uid, root,
 * the uid or user $SHMBUS_DAEMON_UID names, or the owner of a socket
 * directory that only that owner may write, given to one of the client's
 * groups, below directories that only root may write. Anyone else could
 * have planted the socket (docs/protocol.md "Access control").
 */
#ifndef SHMBUS_REGISTRY_TRUST_H
#define SHMBUS_REGISTRY_TRUST_H

#include <sys/types.h>

/*
 * Connect socket @p s to the daemon's socket at @p path and judge the
 * daemon there: trusted when its uid (SO_PEERCRED) is ours, root's, or
 * the one $SHMBUS_DAEMON_UID names (read with secure_getenv()), or when
 * it owns the socket's directory and that directory is safe: the
 * directory is opened from "/" without following links and connected to
 * through its descriptor, so that what is judged is what is reached.
 * @return 0 if connected and trusted; SHMBUS_ERR_UNTRUSTED (connected);
 * SHMBUS_ERR_INVALID when $SHMBUS_DAEMON_UID names no user; -errno of
 * the connect (-ENOENT, -ECONNREFUSED: nobody listens) or another call.
 * Thread-safe if the environment is not changed concurrently; may block
 * on the user database (NSS).
 */
int sb_bus_connect_trusted(int s, const char *path);

/* Are we (real or effective gid, or a supplementary group) a member of
 * group @p gid? @return 1 or 0. Thread-safe. */
int sb_bus_in_group(gid_t gid);

#endif
