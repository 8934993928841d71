/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Segment files of the bus in /dev/shm (segfile.h): their names, which
 * carry a generation so that a squatted name never blocks a topic, and the
 * check that a file found there is one this daemon may serve; creating a
 * new topic's segment under the first free name.
 */
#include "segfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "registry/admin.h"
#include "registry/wire.h"
#include "util/name.h"
#include "util/vec.h"

/* Names a new topic's segment tries (sbd_seg_create()). */
#define SBD_SEG_TRIES 8

/* What follows SBD_SEG_PREFIX BUS "." in @p seg, or NULL if @p seg does
 * not start so. */
static const char *seg_after_bus(const char *bus, const char *seg)
{
    size_t plen = strlen(SBD_SEG_PREFIX), blen = strlen(bus);

    if (strncmp(seg, SBD_SEG_PREFIX, plen) != 0 || strncmp(seg + plen, bus, blen) != 0 ||
        seg[plen + blen] != '.')
        return NULL;
    return seg + plen + blen + 1;
}

/* The topic whose segment of bus @p bus is named @p seg (sbd_seg_name()).
 * @return a pointer into @p seg, or NULL if it names no topic of the bus. */
const char *sbd_seg_topic(const char *bus, const char *seg)
{
    const char *p = seg_after_bus(bus, seg);

    if (p == NULL)
        return NULL;
    if (p[0] == '.') {
        /* ".GEN." */
        if (strspn(p + 1, "0123456789abcdef") != SBD_SEG_GEN_DIGITS ||
            p[1 + SBD_SEG_GEN_DIGITS] != '.')
            return NULL;
        p += SBD_SEG_GEN_DIGITS + 2;
    }
    return sb_name_valid(p, SHMBUS_TOPIC_NAME_MAX) ? p : NULL;
}

/*
 * May the daemon serve the segment file @p st? Only a regular file of its
 * own uid that nobody else can read or write: mode 0600, or 0660 with the
 * bus's --group (a creator may still hold it narrower). Another user's
 * file, or one others could have written, is not ours to trust whatever
 * its header says. @return 0 if it may; SBD_SEG_UNTRUSTED (not ours: to be
 * removed if we may) or SBD_SEG_OPEN (ours, but open to others, or with
 * another name: a process that may write it made it so, and it is left
 * to it), with *why set.
 */
static int seg_untrusted(const struct sbd_config *c, const struct stat *st, const char **why)
{
    mode_t allowed = c->have_group && st->st_gid == c->group ? 0660 : 0600;

    *why = NULL;
    if (!S_ISREG(st->st_mode))
        *why = "not a regular file";
    else if (st->st_uid != geteuid())
        *why = "another user's file";
    if (*why != NULL)
        return SBD_SEG_UNTRUSTED;
    if (st->st_nlink != 1) {
        /* A hard link (made by someone who may write it) would have the
         * daemon serve one file as two topics; which name is the
         * segment's cannot be told, so neither is served nor removed. */
        *why = "it has other names (hard links)";
        return SBD_SEG_OPEN;
    }
    if (((st->st_mode & 07777) & ~allowed) == 0)
        return 0;
    *why = "others may read or write it (mode or group)";
    return SBD_SEG_OPEN;
}

/*
 * Open segment @p seg without following a link or blocking on a FIFO, and
 * check what was opened (fstat on the descriptor: the name may be swapped
 * meanwhile). @return the descriptor; SBD_SEG_UNTRUSTED or SBD_SEG_OPEN
 * (logged); -errno.
 */
int sbd_seg_open(const struct sbd_config *c, const char *seg, struct stat *st)
{
    char path[SHMBUS_NAME_MAX + 2];
    const char *why;
    int fd, rc;

    st->st_ino = 0;
    snprintf(path, sizeof(path), "/%s", seg);
    fd = shm_open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0 && errno == ELOOP) {
        sbd_log(SBD_WARN, "segment %s: a symbolic link: never served", seg);
        sbd_seg_stat(seg, st); /* the link itself: harmless to remove */
        return SBD_SEG_UNTRUSTED;
    }
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        int e = errno;

        st->st_ino = 0;
        close(fd);
        return -e;
    }
    rc = seg_untrusted(c, st, &why);
    if (rc == 0)
        return fd;
    sbd_log(SBD_WARN, "segment %s: %s (uid %u, gid %u, mode %04o): never served", seg, why,
            (unsigned)st->st_uid, (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777));
    close(fd);
    return rc;
}

int sbd_seg_stat(const char *seg, struct stat *st)
{
    char path[SHMBUS_NAME_MAX + 16];

    snprintf(path, sizeof(path), "/dev/shm/%s", seg);
    if (lstat(path, st) == 0)
        return 0;
    st->st_ino = 0;
    return -errno;
}

int sbd_seg_unlink_same(const char *seg, const struct stat *judged)
{
    struct stat now;

    if (judged->st_ino == 0 || sbd_seg_stat(seg, &now) < 0 || now.st_dev != judged->st_dev ||
        now.st_ino != judged->st_ino)
        return -ESTALE;
    return shmbus_topic_unlink(seg);
}
/*
 * Create segment @p seg. Under --group it is created 0600, given to the
 * group, and only then opened to it (0660): never readable by the
 * daemon's primary group meanwhile. @return 0 or -errno (-EEXIST: the
 * name is taken).
 */
static int seg_create_one(const struct sbd_config *c, const char *seg, const shmbus_topic_opts *o,
                          shmbus_topic **out)
{
    shmbus_topic_opts mine = *o;
    int rc, fd;

    mine.perm = 0600;
    rc = shmbus_topic_create(seg, &mine, out);
    if (rc < 0 || !c->have_group)
        return rc;
    fd = sb_admin_topic_fd(*out);
    if (fchown(fd, (uid_t)-1, c->group) < 0 || fchmod(fd, (mode_t)o->perm) < 0) {
        rc = -errno;
        shmbus_topic_destroy(*out);
        *out = NULL;
        shmbus_topic_unlink(seg);
    }
    return rc;
}

int sbd_seg_create(const struct sbd_config *c, const char *topic, const shmbus_topic_opts *o,
                   char *seg, size_t cap, shmbus_topic **out)
{
    uint64_t gen = 0;
    int rc = -EEXIST;

    for (int i = 0; i < SBD_SEG_TRIES && rc == -EEXIST; i++) {
        if (i > 0 && getrandom(&gen, sizeof(gen), 0) != (ssize_t)sizeof(gen))
            return -errno;
        sbd_seg_name(seg, cap, c->bus, topic, gen);
        rc = seg_create_one(c, seg, o, out);
        if (rc == -EEXIST)
            sbd_log(SBD_WARN,
                    "segment name %s is taken by a file this daemon did not create: "
                    "trying another",
                    seg);
    }
    return rc;
}

/* A generation name (shmbus.BUS..GEN.TOPIC)? */
int sbd_seg_has_generation(const char *bus, const char *seg)
{
    const char *topic = sbd_seg_topic(bus, seg);

    return topic != NULL && seg_after_bus(bus, seg)[0] == '.';
}

/*
 * Segments of one topic together, the one to serve first: a generation
 * name before the first name (only the daemon makes generation names, and
 * only because the first name was taken: its clients used that one), then
 * the newest (mtime: set when the creator sized it; nothing write()s a
 * segment, and writes through a mapping of tmpfs leave it), then by name.
 */
static int seg_order(const void *pa, const void *pb)
{
    const struct sbd_seg_found *a = pa, *b = pb;
    int c = strcmp(a->topic_at >= 0 ? a->name + a->topic_at : "",
                   b->topic_at >= 0 ? b->name + b->topic_at : "");

    if (c != 0)
        return c;
    c = b->generation - a->generation;
    if (c != 0)
        return c;
    if (a->mtime.tv_sec != b->mtime.tv_sec)
        return a->mtime.tv_sec > b->mtime.tv_sec ? -1 : 1;
    if (a->mtime.tv_nsec != b->mtime.tv_nsec)
        return a->mtime.tv_nsec > b->mtime.tv_nsec ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Add @p name of bus @p bus (its mtime from @p dir) to the list, with
 * what seg_order() compares judged once here rather than at every
 * comparison. @return 0 or -ENOMEM. */
static int seg_found_add(DIR *dir, const char *bus, const char *name, struct sbd_seg_found **v,
                         size_t *n, size_t *cap)
{
    struct sbd_seg_found *f;
    const char *topic;
    struct stat st;

    if (SB_VEC_RESERVE(*v, *cap, *n, 1, 64) < 0)
        return -ENOMEM;
    f = &(*v)[(*n)++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        st.st_mtim = (struct timespec){0}; /* gone: its adoption says so */
    f->mtime = st.st_mtim;
    topic = sbd_seg_topic(bus, f->name);
    f->topic_at = topic != NULL ? (int)(topic - f->name) : -1;
    f->generation = topic != NULL && seg_after_bus(bus, f->name)[0] == '.';
    return 0;
}

long sbd_seg_scan(const char *bus, struct sbd_seg_found **out)
{
    char prefix[SHMBUS_BUS_NAME_MAX + 16];
    DIR *dir = opendir("/dev/shm");
    struct sbd_seg_found *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;

    *out = NULL;
    if (dir == NULL)
        return -errno;
    sbd_seg_bus_prefix(prefix, sizeof(prefix), bus);
    errno = 0;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            rc = seg_found_add(dir, bus, e->d_name, &v, &n, &cap);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno; /* a listing cut short */
    closedir(dir);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), seg_order);
    *out = v;
    return (long)n;
}
