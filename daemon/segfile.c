/*
 * Segment files of the bus in /dev/shm (segfile.h): their names, which
 * carry a generation so that a squatted name never blocks a topic, and the
 * check that a file found there is one this daemon may serve; creating a
 * new topic's segment under the first free name.
 */
#include "segfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "registry/admin.h"
#include "registry/wire.h"

/* Names a new topic's segment tries (sbd_seg_create()). */
#define SBD_SEG_TRIES 8

/*
 * The name of generation @p gen of topic @p topic's segment:
 * shmbus.BUS.TOPIC for 0, else shmbus.BUS..GEN.TOPIC with GEN in 16 hex
 * digits. A topic name never starts with '.', so the two forms never
 * meet; both fit SHMBUS_NAME_MAX (7 + 32 + 19 + 128 < 200).
 */
void sbd_seg_name(char *out, size_t cap, const char *bus, const char *topic, uint64_t gen)
{
    if (gen == 0)
        snprintf(out, cap, "shmbus.%s.%s", bus, topic);
    else
        snprintf(out, cap, "shmbus.%s..%016llx.%s", bus, (unsigned long long)gen, topic);
}

/* The topic whose segment of bus @p bus is named @p seg (seg_name()).
 * @return a pointer into @p seg, or NULL if it names no topic of the bus. */
const char *sbd_seg_topic(const char *bus, const char *seg)
{
    size_t blen = strlen(bus);
    const char *p = seg + strlen("shmbus.") + blen + 1;

    if (strncmp(seg, "shmbus.", 7) != 0 || strncmp(seg + 7, bus, blen) != 0 || seg[7 + blen] != '.')
        return NULL;
    if (p[0] == '.') {
        if (strspn(p + 1, "0123456789abcdef") != 16 || p[17] != '.')
            return NULL;
        p += 18;
    }
    return sb_wire_name_valid(p, SHMBUS_TOPIC_NAME_MAX) ? p : NULL;
}

/*
 * May the daemon serve the segment file @p st? Only a regular file of its
 * own uid that nobody else can read or write: mode 0600, or 0660 with the
 * bus's --group (a creator may still hold it narrower). Another user's
 * file, or one others could have written, is not ours to trust whatever
 * its header says. @return 0 if it may; SBD_SEG_UNTRUSTED (not ours: to be
 * removed if we may) or SBD_SEG_OPEN (ours, but open to others: a process
 * of our uid made it so, and it is left to it), with *why set.
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
int sbd_seg_open(const struct sbd_config *c, const char *seg)
{
    char path[SHMBUS_NAME_MAX + 2];
    const char *why;
    struct stat st;
    int fd, rc;

    snprintf(path, sizeof(path), "/%s", seg);
    fd = shm_open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0 && errno == ELOOP) {
        sbd_log(SBD_WARN, "segment %s: a symbolic link: never served", seg);
        return SBD_SEG_UNTRUSTED;
    }
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    rc = seg_untrusted(c, &st, &why);
    if (rc == 0)
        return fd;
    sbd_log(SBD_WARN, "segment %s: %s (uid %u, gid %u, mode %04o): never served", seg, why,
            (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
    close(fd);
    return rc;
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
