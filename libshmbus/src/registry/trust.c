/*
 * Whom a client trusts with its messages (trust.h): the uid of the daemon
 * at the other end of the control socket, checked before the hello.
 */
#include "registry/trust.h"

#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shmbus/shmbus.h"

/* $SHMBUS_DAEMON_UID: a uid or user name whose daemon we trust.
 * @return 1 and *uid set; 0 when unset; SHMBUS_ERR_INVALID when it names
 * nobody (a typo must not pass for "unset"); -errno. */
static int bus_configured_uid(uid_t *uid)
{
    const char *v = secure_getenv("SHMBUS_DAEMON_UID");
    struct passwd pw, *found = NULL;
    size_t cap = 1024;
    char *buf = NULL, *end;
    unsigned long n;
    int rc;

    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno == 0 && *end == '\0' && v[0] >= '0' && v[0] <= '9' && n <= UINT32_MAX) {
        *uid = (uid_t)n;
        return 1;
    }
    /* ERANGE: the entry does not fit; grow the buffer, never take it for
     * "no such user". */
    do {
        char *grown = realloc(buf, cap *= 4);

        if (grown == NULL) {
            free(buf);
            return -ENOMEM;
        }
        buf = grown;
        rc = getpwnam_r(v, &pw, buf, cap, &found);
    } while (rc == ERANGE && cap < (1u << 20));
    if (rc == 0 && found != NULL)
        *uid = pw.pw_uid;
    free(buf);
    if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return -rc;
    return found != NULL ? 1 : SHMBUS_ERR_INVALID;
}

/* Are we a member of group @p gid? */
static int bus_in_group(gid_t gid)
{
    int n = getgroups(0, NULL), in = 0;
    gid_t *groups;

    if (gid == getgid() || gid == getegid())
        return 1;
    if (n <= 0)
        return 0; /* no supplementary groups */
    groups = malloc((size_t)n * sizeof(*groups));
    if (groups == NULL)
        return 0;
    n = getgroups(n, groups);
    for (int i = 0; i < n && !in; i++)
        in = groups[i] == gid;
    free(groups);
    return in;
}

/* Can nobody but root change what directory @p dir (absolute, without
 * links) leads to: every directory on the way root's, and writable by root
 * only? A sticky directory others may write, such as /tmp, is not: whoever
 * creates a name there first owns what is below it. */
static int bus_path_root_held(char *dir)
{
    struct stat st;

    for (char *slash = strrchr(dir, '/'); slash != NULL; slash = strrchr(dir, '/')) {
        *slash = '\0';
        if (lstat(slash == dir ? "/" : dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
            (st.st_mode & 022) != 0)
            return 0;
    }
    return 1;
}

/*
 * Is @p uid the owner of the socket @p path's directory, and is that
 * directory a safe place for a bus of several uids: writable by its owner
 * only, given to one of our groups (an admin's /run/shmbus for the bus's
 * group), and reached only through directories that root holds
 * (bus_path_root_held())? Then only its owner (or root) can have put the
 * socket there; in a directory others may write, anyone could have made
 * it first.
 */
static int bus_dir_owner(const char *path, uid_t uid)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *real;
    const char *slash = strrchr(path, '/');
    struct stat st;
    int ok;

    if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir))
        return 0;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 022) != 0 || !bus_in_group(st.st_gid))
        return 0;
    real = realpath(dir, NULL);
    ok = real != NULL && bus_path_root_held(real);
    free(real);
    return ok;
}

/*
 * Is the daemon at the other end of @p s, listening at @p path, one we
 * trust with our messages? (trust.h) Our uid's, root's, the one $SHMBUS_DAEMON_UID
 * names, or the owner of a safe socket directory of our group
 * (bus_dir_owner()). Anyone else could have planted the socket.
 */
int sb_bus_peer_trusted(int s, const char *path)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uid_t conf = (uid_t)-1; /* set when bus_configured_uid() returns 1 */
    int rc;

    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -errno;
    if (cred.uid == getuid() || cred.uid == 0)
        return 0;
    rc = bus_configured_uid(&conf);
    if (rc < 0)
        return rc;
    if (rc == 1 && cred.uid == conf)
        return 0;
    return bus_dir_owner(path, cred.uid) ? 0 : SHMBUS_ERR_UNTRUSTED;
}
