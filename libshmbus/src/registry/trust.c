/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whom a client trusts with its messages (trust.h): the uid of the daemon
 * at the other end of the control socket, checked before the hello.
 */
#include "registry/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shmbus/shmbus.h"
#include "util/vec.h"

/* $SHMBUS_DAEMON_UID: a uid or user name whose daemon we trust.
 * @return 1 and *uid set; 0 when unset; SHMBUS_ERR_INVALID when it names
 * nobody (a typo must not pass for "unset"); -errno. */
static int bus_configured_uid(uid_t *uid)
{
    const char *v = secure_getenv("SHMBUS_DAEMON_UID");
    struct passwd pw, *found = NULL;
    size_t cap = 0;
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
    /* ERANGE: the entry does not fit; grow the buffer (util/vec.h
     * doubles it), never take it for "no such user". */
    do {
        if (SB_VEC_RESERVE(buf, cap, cap, 1, 4096) < 0) {
            free(buf);
            return -ENOMEM;
        }
        rc = getpwnam_r(v, &pw, buf, cap, &found);
    } while (rc == ERANGE && cap < (1u << 20));
    if (rc == 0 && found != NULL)
        *uid = pw.pw_uid;
    free(buf);
    if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return -rc;
    return found != NULL ? 1 : SHMBUS_ERR_INVALID;
}

int sb_bus_in_group(gid_t gid)
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

/* May nobody but root write directory @p fd (and so make, remove or
 * rename what is in it)? A sticky directory others may write, such as
 * /tmp, is not so: whoever makes a name there first owns what is below. */
static int bus_root_held(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 && (st.st_mode & 022) == 0;
}

/*
 * Open the directory of socket @p path one name at a time from "/",
 * never following a link (O_NOFOLLOW), so that what is judged is what is
 * connected to (bus_connect()). *name is set to the socket's name in it;
 * *held to whether every directory above it is root's and writable by
 * root only (bus_root_held()). @return an O_PATH descriptor, or -1 when
 * @p path is relative, holds "." or "..", a link, or is gone: then the
 * directory's owner is not trusted (bus_dir_owner()).
 */
static int bus_dir_walk(const char *path, const char **name, int *held)
{
    const char *p = path, *last = strrchr(path, '/');
    char comp[NAME_MAX + 1];
    int fd;

    *held = 0;
    if (path[0] != '/')
        return -1; /* relative: the directories above the cwd are unknown */
    fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    *held = 1;
    for (;;) {
        size_t n;
        int next;

        while (p < last && *p == '/')
            p++;
        if (fd < 0 || p >= last)
            break; /* failed, or at the socket's directory */
        n = strcspn(p, "/");
        if (n > NAME_MAX || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            close(fd);
            return -1; /* no such name, or one that steps back */
        }
        *held = *held && bus_root_held(fd);
        memcpy(comp, p, n);
        comp[n] = '\0';
        /* ELOOP or ENOTDIR on a link: it is not followed. */
        next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
        p += n;
    }
    *name = last + 1;
    return fd;
}

/*
 * Is @p uid the owner of socket directory @p dir (bus_dir_walk()), and is
 * that directory a safe place for a bus of several uids: writable by its
 * owner only, given to one of our groups (an admin's /run/shmbus for the
 * bus's group), and reached only through directories that root holds
 * (@p held)? Then only its owner (or root) can have put the socket there;
 * in a directory others may write, anyone could have made it first.
 */
static int bus_dir_owner(int dir, int held, uid_t uid)
{
    struct stat st;

    return dir >= 0 && held && fstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid &&
           (st.st_mode & 022) == 0 && sb_bus_in_group(st.st_gid);
}

/*
 * Connect @p s to socket @p path. Through "/proc/self/fd/DIR/NAME" when
 * the directory could be walked (bus_dir_walk(); *dir set), so that the
 * socket reached is the one in the directory judged, whatever is renamed
 * or swapped meanwhile; else by @p path (*dir -1). @return 0 or -errno.
 */
static int bus_connect(int s, const char *path, int *dir, int *held)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    const char *name = NULL;
    int n;

    *dir = bus_dir_walk(path, &name, held);
    if (*dir >= 0) {
        n = snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", *dir, name);
        if (n > 0 && (size_t)n < sizeof(a.sun_path)) {
            if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
                return 0;
            /* Nobody listens (ECONNREFUSED, or ENOENT: no socket). ENOENT
             * for a socket that is there means no /proc: connect by the
             * path, without the directory rule. */
            if (errno != ENOENT || faccessat(*dir, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                int e = errno;

                close(*dir);
                *dir = -1;
                return -e;
            }
        }
        close(*dir);
        *dir = -1;
    }
    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, strlen(path) + 1);
    return connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
}

/*
 * Connect @p s to @p path and judge the daemon there (trust.h): our
 * uid's, root's, the one $SHMBUS_DAEMON_UID names (all by SO_PEERCRED of
 * the connected socket alone), or the owner of a safe socket directory of
 * our group (bus_dir_owner(), judged on the descriptors the connection
 * went through). Anyone else could have planted the socket.
 */
int sb_bus_connect_trusted(int s, const char *path)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uid_t conf = (uid_t)-1; /* set when bus_configured_uid() returns 1 */
    int dir, held, rc = bus_connect(s, path, &dir, &held);

    if (rc < 0)
        return rc;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        rc = -errno;
    else if (cred.uid == getuid() || cred.uid == 0)
        rc = 0;
    else if ((rc = bus_configured_uid(&conf)) >= 0)
        rc = (rc == 1 && cred.uid == conf) || bus_dir_owner(dir, held, cred.uid)
                 ? 0
                 : SHMBUS_ERR_UNTRUSTED;
    if (dir >= 0)
        close(dir);
    return rc;
}
