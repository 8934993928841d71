/*
 * Whom a client trusts with its messages: a daemon of its own uid, root,
 * the uid or user $SHMBUS_DAEMON_UID names, or the owner of a socket
 * directory that only that owner may write, given to one of the client's
 * groups, below directories that only root may write. Anyone else could
 * have planted the socket (docs/protocol.md "Access control").
 */
#ifndef SHMBUS_REGISTRY_TRUST_H
#define SHMBUS_REGISTRY_TRUST_H

/*
 * Is the daemon at the other end of connected socket @p s, listening at
 * @p path, one we trust? Reads $SHMBUS_DAEMON_UID with secure_getenv().
 * @return 0 if trusted; SHMBUS_ERR_UNTRUSTED; SHMBUS_ERR_INVALID when
 * $SHMBUS_DAEMON_UID names no user; -errno. Thread-safe if the
 * environment is not changed concurrently; may block on the user
 * database (NSS).
 */
int sb_bus_peer_trusted(int s, const char *path);

#endif
