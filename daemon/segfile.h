/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Segment files of the bus in /dev/shm: names and trust. A topic's
 * segment is shmbus.BUS.TOPIC, or shmbus.BUS..GEN.TOPIC when that name was
 * taken (registry.c topic_create()); the daemon serves only files of its
 * own uid that nobody else can write.
 */
#ifndef SHMBUSD_SEGFILE_H
#define SHMBUSD_SEGFILE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"

/* sbd_seg_open(): a file the daemon may not serve. Not ours (another
 * uid's, a link, not a regular file): removed if the daemon may. */
#define SBD_SEG_UNTRUSTED SHMBUS_ERR_DENIED
/* Ours, but open to others (mode or group): left to whoever of our uid
 * made it so. */
#define SBD_SEG_OPEN (-EPERM)

/* Every segment name starts with this, then the bus's name and a '.':
 * SBD_SEG_PREFIX BUS "." TOPIC, or SBD_SEG_PREFIX BUS ".." GEN "." TOPIC
 * with GEN in SBD_SEG_GEN_DIGITS hex digits (sbd_seg_name()). Shell
 * scripts that match segment files say so where they spell it out. */
#define SBD_SEG_PREFIX     "shmbus."
#define SBD_SEG_GEN_DIGITS 16

/*
 * Write the name of generation @p gen (0: the first name) of topic
 * @p topic's segment of bus @p bus into @p out (@p cap bytes,
 * SHMBUS_NAME_MAX + 1 suffice): shmbus.BUS.TOPIC for 0, else
 * shmbus.BUS..GEN.TOPIC. A topic name never starts with '.', so the two
 * forms never meet; both fit SHMBUS_NAME_MAX (7 + 32 + 19 + 128 < 200).
 * Inline, so that tests and tools that make or look for segments of a bus
 * spell names the daemon's way without linking it.
 */
static inline void sbd_seg_name(char *out, size_t cap, const char *bus, const char *topic,
                                uint64_t gen)
{
    if (gen == 0)
        snprintf(out, cap, SBD_SEG_PREFIX "%s.%s", bus, topic);
    else
        snprintf(out, cap, SBD_SEG_PREFIX "%s..%0*llx.%s", bus, SBD_SEG_GEN_DIGITS,
                 (unsigned long long)gen, topic);
}

/* Write the start that every segment name of bus @p bus shares,
 * SBD_SEG_PREFIX BUS ".", into @p out (@p cap bytes; SHMBUS_BUS_NAME_MAX +
 * 16 suffice). */
static inline void sbd_seg_bus_prefix(char *out, size_t cap, const char *bus)
{
    snprintf(out, cap, SBD_SEG_PREFIX "%s.", bus);
}

/* The topic whose segment of bus @p bus is named @p seg, of any
 * generation. @return a pointer into @p seg, or NULL if it names none. */
const char *sbd_seg_topic(const char *bus, const char *seg);

/*
 * Open segment @p seg read-write, without following a symbolic link or
 * blocking on a FIFO, and check the file opened (fstat on the descriptor,
 * so a name swapped meanwhile changes nothing): a regular file of our
 * euid, mode 0600, or 0660 with the bus's --group, with no other name.
 * What was judged goes to @p st (st_ino 0 if nothing was), for
 * sbd_seg_unlink_same(). @return the descriptor (the caller's);
 * SBD_SEG_UNTRUSTED or SBD_SEG_OPEN, logged with the owner and mode; or
 * -errno.
 */
int sbd_seg_open(const struct sbd_config *c, const char *seg, struct stat *st);

/* lstat() segment @p seg into @p st. @return 0, or -errno with
 * st->st_ino 0. */
int sbd_seg_stat(const char *seg, struct stat *st);

/* Remove segment @p seg if the name still leads to the file @p judged
 * describes (device and inode, as sbd_seg_open() or sbd_seg_stat() saw
 * it): never a file put at the name since. @return 0; -ESTALE if it is
 * another file, gone, or @p judged is empty (st_ino 0); -errno. */
int sbd_seg_unlink_same(const char *seg, const struct stat *judged);

/*
 * Create the segment of new topic @p topic with options @p o (its perm
 * the final mode). Its first name may be taken (by a file another user
 * planted in /dev/shm, or one this daemon cannot serve, left in place):
 * it then takes a name with a random generation (sbd_seg_name()), which
 * nobody can have planted in advance, so a squatted name never blocks a
 * topic. Clients get the segment as a descriptor; the name matters only
 * to a restarted daemon, which finds each topic by sbd_seg_topic().
 * @return 0 with the name in @p seg (@p cap bytes) and the topic in
 * *out (the caller's); or -errno / a shmbus error, @p seg the last name
 * tried.
 */
int sbd_seg_create(const struct sbd_config *c, const char *topic, const shmbus_topic_opts *o,
                   char *seg, size_t cap, shmbus_topic **out);

/* A segment file of the bus found in /dev/shm (sbd_seg_scan()). */
struct sbd_seg_found {
    char name[256]; /* any name /dev/shm holds; sbd_seg_topic() judges it */
    struct timespec mtime;
    /* Judged once, when listed, for the sort: where the topic starts in
     * name (-1: names no topic of the bus), and a generation name? */
    int topic_at;
    int generation;
};

/*
 * List the files of bus @p bus in /dev/shm (shmbus.BUS.*) in the order a
 * starting daemon takes them over, so that of two segments of one topic
 * the same one is served whatever order the directory lists them in: a
 * topic's segments together, a generation name before the first name
 * (the daemon made it because the first name was taken, so its clients
 * used it), the newest first, then by name. @return how many, with the
 * list in *out (the caller frees it); or -errno (logged by no one).
 */
long sbd_seg_scan(const char *bus, struct sbd_seg_found **out);

/* Is @p seg a generation name of bus @p bus's segments? */
int sbd_seg_has_generation(const char *bus, const char *seg);

#endif
