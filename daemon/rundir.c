/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime directory and the bus lock (rundir.h). The directory is what
 * keeps other users from squatting the socket and lock names: they cannot
 * create anything in it. The lock in /dev/shm, a sticky directory anyone
 * may write, only adds the exclusion of a daemon of the same bus in
 * another runtime directory; a planted file there costs that, never the
 * bus.
 */
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "registry/trust.h"

/* The mode a runtime directory we create gets: others need to search it
 * only to reach the socket when they may connect. */
static mode_t rundir_mode(const struct sbd_config *c)
{
    if (c->n_allow_uid > 0 || c->n_allow_gid > 0)
        return 0711;
    return c->have_group ? 0710 : 0700;
}

/* Why the directory open on @p fd cannot be trusted, or NULL. */
static const char *rundir_untrusted(int fd, struct stat *st)
{
    if (fstat(fd, st) < 0)
        return strerror(errno);
    if (st->st_uid != geteuid())
        return "it belongs to another user";
    if (st->st_mode & 022)
        return "group or others may write it";
    return NULL;
}

/* The name of group @p gid, or its number, in @p buf. */
static const char *rundir_group_name(gid_t gid, char *buf, size_t cap)
{
    struct group gr, *found = NULL;
    char tmp[4096];

    if (getgrgid_r(gid, &gr, tmp, sizeof(tmp), &found) == 0 && found != NULL)
        snprintf(buf, cap, "%s", gr.gr_name);
    else
        snprintf(buf, cap, "%u", (unsigned)gid);
    return buf;
}

/* Give the directory we just created the group and mode the options ask
 * for (mkdir() left it 0700 at most). @return 0 or -1 (logged). */
static int rundir_settle(const struct sbd_config *c, int fd)
{
    char name[64];

    /* Membership was checked (rundir_group_usable()): anything else. */
    if (c->have_group && fchown(fd, (uid_t)-1, c->group) < 0) {
        sbd_log(SBD_ERROR, "cannot give runtime directory %s to group %s: %s", c->run_dir,
                rundir_group_name(c->group, name, sizeof(name)), strerror(errno));
        return -1;
    }
    if (fchmod(fd, rundir_mode(c)) < 0) {
        sbd_log(SBD_ERROR, "runtime directory %s: %s", c->run_dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* An existing directory is never changed (it may be /run or someone's
 * home given by mistake): warn when the options' peers cannot reach the
 * socket through it. */
static void rundir_check_reach(const struct sbd_config *c, const struct stat *st)
{
    mode_t want = rundir_mode(c);
    char name[64];

    if (c->have_group && st->st_gid != c->group && (st->st_mode & 01) == 0)
        sbd_log(SBD_WARN,
                "runtime directory %s belongs to group %u, not %s: members of %s cannot "
                "reach the socket (chgrp %s %s)",
                c->run_dir, (unsigned)st->st_gid, rundir_group_name(c->group, name, sizeof(name)),
                name, name, c->run_dir);
    else if ((st->st_mode & want & 011) != (want & 011))
        sbd_log(SBD_WARN,
                "runtime directory %s has mode %04o: the %s cannot reach the socket (chmod "
                "%04o %s)",
                c->run_dir, (unsigned)(st->st_mode & 07777),
                (want & 01) ? "allowed uids and groups" : "members of --group",
                (unsigned)((st->st_mode & 07777) | (want & 011)), c->run_dir);
}

/* Under --group, may we give our files to the group? Root may; another
 * user only to a group it is a member of (chown(2)). @return 0 or -1
 * (logged, naming the membership needed). */
static int rundir_group_usable(const struct sbd_config *c)
{
    struct passwd pw, *me = NULL;
    char name[64], buf[4096];

    if (!c->have_group || geteuid() == 0 || sb_bus_in_group(c->group))
        return 0;
    if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &me) != 0)
        me = NULL;
    rundir_group_name(c->group, name, sizeof(name));
    sbd_log(SBD_ERROR,
            "--group %s: this daemon's user (%s, uid %u) is not a member of group %s, so it "
            "cannot give the bus's socket and segments to it: add it (usermod -aG %s %s) and "
            "start the daemon in a new login",
            name, me != NULL ? pw.pw_name : "?", (unsigned)geteuid(), name, name,
            me != NULL ? pw.pw_name : "USER");
    return -1;
}

int sbd_rundir_prepare(const struct sbd_config *c)
{
    int created, fd, rc = 0;
    const char *why;
    struct stat st;

    if (rundir_group_usable(c) < 0)
        return -1;
    created = mkdir(c->run_dir, 0700) == 0;
    if (!created && errno != EEXIST) {
        sbd_log(SBD_ERROR,
                "cannot create runtime directory %s: %s (set $SHMBUS_RUNTIME_DIR or "
                "$XDG_RUNTIME_DIR, or have %s made for this user)",
                c->run_dir, strerror(errno), c->run_dir);
        return -1;
    }
    /* O_NOFOLLOW: a link planted at the name is refused, not followed. */
    fd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        sbd_log(SBD_ERROR, "runtime directory %s: %s: refusing to use it", c->run_dir,
                errno == ENOTDIR || errno == ELOOP ? "not a directory" : strerror(errno));
        return -1;
    }
    why = rundir_untrusted(fd, &st);
    if (why == NULL && created)
        rc = rundir_settle(c, fd);
    else if (why == NULL)
        rundir_check_reach(c, &st);
    close(fd);
    if (why != NULL) {
        sbd_log(SBD_ERROR,
                "runtime directory %s: %s (uid %u, mode %04o): refusing to keep the bus's "
                "socket there",
                c->run_dir, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return rc;
}

/* A lock file made and removed under us this many times in a row is not
 * ours to win: lock_open_file() gives up. */
#define LOCK_OPEN_TRIES 16

/* Open the file at @p path read-write: an existing one without O_CREAT,
 * else a new one with O_EXCL. With fs.protected_regular set (the
 * systemd default), the kernel refuses an O_CREAT open of another user's
 * file in a sticky directory such as /dev/shm even to root (EACCES),
 * which would leave a planted lock in place. @return the descriptor or
 * -errno (-EAGAIN when it came and went LOCK_OPEN_TRIES times). */
static int lock_open_file(const char *path)
{
    for (int i = 0; i < LOCK_OPEN_TRIES; i++) {
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

        if (fd >= 0 || errno != ENOENT)
            return fd >= 0 ? fd : -errno;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
        /* Made meanwhile: open it as it is, and judge it. */
    }
    return -EAGAIN; /* made and removed under us each time: someone plays with it */
}

/* Is the file at @p path still the one @p st describes? */
static int lock_same(const char *path, const struct stat *st)
{
    struct stat now;

    return lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* Does a process hold a lock on the file open on @p fd? */
static int lock_held(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/*
 * Open lock file @p path. @return its descriptor; -EPERM (logged as
 * @p level) when it is not a regular file of ours that only we may write
 * (a link, another user's file we may not even open, or one others may
 * write), with what it is in *judged for its removal; -EEXIST (logged)
 * for another user's file that a process holds locked, which root may
 * open: maybe the lock of a daemon of the bus run by that user, never
 * removed; -errno (logged).
 */
static int lock_open(const char *path, enum sbd_level level, struct stat *judged)
{
    int fd = lock_open_file(path), opened = fd >= 0;

    if (fd == -ENOENT || fd == -EAGAIN) {
        sbd_log(level, "cannot open lock file %s: %s", path, strerror(-fd));
        return fd;
    }
    /* Not opened (a link, a file we may not open, a socket, a directory):
     * O_PATH to see it. */
    if (!opened)
        fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, judged) < 0)
        judged->st_ino = 0; /* gone meanwhile: nothing to remove */
    else if (opened && S_ISREG(judged->st_mode) && judged->st_uid == geteuid() &&
             (judged->st_mode & 022) == 0)
        return fd;
    else if (opened && S_ISREG(judged->st_mode) && lock_held(fd)) {
        sbd_log(level,
                "lock file %s is uid %u's and locked: a daemon of this bus may run as that "
                "user; its segments are left alone",
                path, (unsigned)judged->st_uid);
        close(fd);
        return -EEXIST;
    }
    sbd_log(level,
            "lock file %s was not made by this daemon's user (not a regular file, or "
            "another user's, or writable by others)",
            path);
    if (fd >= 0)
        close(fd);
    return -EPERM;
}

/* Is @p fd still the file at @p path (not unlinked by a daemon that
 * stopped after we opened it)? */
static int lock_current(const char *path, int fd)
{
    struct stat a, b;

    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

static void lock_busy(const struct sbd_config *c, const char *path, int fd)
{
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    sbd_log(SBD_ERROR, "bus '%s' is already served by shmbusd pid %s (lock %s)", c->bus,
            pid[0] ? pid : "?", path);
}

/*
 * Take the lock at @p path: an OFD write lock, which the kernel drops when
 * we die. A stopping daemon unlinks the file while it still holds the
 * lock, so a lock won on a file no longer at the path is stale: try again.
 * @return the lock's descriptor; -EBUSY (logged) when another daemon holds
 * it; -EPERM and *judged (lock_open()); -errno.
 */
static int lock_take(const struct sbd_config *c, const char *path, enum sbd_level level,
                     struct stat *judged)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char pid[32];

    for (;;) {
        int fd = lock_open(path, level, judged);

        if (fd < 0)
            return fd;
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            lock_busy(c, path, fd);
            close(fd);
            return -EBUSY;
        }
        if (!lock_current(path, fd)) {
            close(fd);
            continue;
        }
        snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
            sbd_log(SBD_WARN, "cannot write pid to %s: %s", path, strerror(errno));
        return fd;
    }
}

/* Remove what lock_open() judged at @p path, if it is still there and we
 * may (in the sticky /dev/shm: root, or its owner); a directory only when
 * empty. @return 0 or -1 (logged). */
static int lock_remove(const char *path, const struct stat *judged)
{
    int rc;

    if (judged->st_ino == 0 || !lock_same(path, judged))
        return -1; /* gone, or replaced meanwhile: not what was judged */
    rc = S_ISDIR(judged->st_mode) ? rmdir(path) : unlink(path);
    if (rc < 0) {
        sbd_log(SBD_WARN, "cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    sbd_log(SBD_WARN, "lock file %s removed", path);
    return 0;
}

/* The /dev/shm lock: whatever is planted at its name is removed if we
 * may (lock_remove()) and no process holds it locked (lock_open()), and
 * the lock taken again; else we do without it (c->bus_exclusive).
 * Best effort: a planter racing the removal can make it again first.
 * @return the descriptor, -1 without it, or -EBUSY. */
static int lock_take_shm(const struct sbd_config *c)
{
    struct stat judged;
    int fd = lock_take(c, c->shm_lock_path, SBD_WARN, &judged);

    if (fd == -EPERM && lock_remove(c->shm_lock_path, &judged) == 0)
        fd = lock_take(c, c->shm_lock_path, SBD_WARN, &judged);
    if (fd == -EBUSY)
        return fd;
    if (fd < 0)
        sbd_log(SBD_WARN,
                "serving without lock %s: a daemon of bus '%s' started with another runtime "
                "directory would not be excluded",
                c->shm_lock_path, c->bus);
    return fd < 0 ? -1 : fd;
}

/* Remove lock @p path if it is still our file @p fd (a stopped daemon's
 * successor may have replaced it), then release it: the unlink comes
 * first, with the lock held (lock_take()). */
static void lock_drop(const char *path, int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && lock_same(path, &st))
        unlink(path);
    close(fd);
}

int sbd_bus_lock(const struct sbd_config *c, int fds[2])
{
    struct stat judged;

    fds[0] = lock_take(c, c->lock_path, SBD_ERROR, &judged);
    if (fds[0] < 0)
        return -1;
    fds[1] = lock_take_shm(c);
    if (fds[1] == -EBUSY) {
        lock_drop(c->lock_path, fds[0]);
        return -1;
    }
    return 0;
}

void sbd_bus_unlock(const struct sbd_config *c, int fds[2])
{
    if (fds[1] >= 0)
        lock_drop(c->shm_lock_path, fds[1]);
    lock_drop(c->lock_path, fds[0]);
}
