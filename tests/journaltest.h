/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the journal tests (test_journal.c, test_journal_files.c,
 * stress/stress_journal.c): a private directory under /tmp removed (and a
 * file system mounted at its mnt/ unmounted) on every exit path of a test, messages of known
 * content by seq, and a check that a record read back is the message written.
 */
#ifndef SHMBUS_TESTS_JOURNALTEST_H
#define SHMBUS_TESTS_JOURNALTEST_H

#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/mount.h>

#include "shmbus/journal.h"

#define JT_TOPIC "jt.topic"

/* Remove one entry of a tree (nftw callback). */
static inline int jt_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh private directory under /tmp into @p dir (room for 64). */
static inline void jt_dir_make(char *dir)
{
    strcpy(dir, "/tmp/shmbus-jt-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

/* Remove @p dir and everything in it. */
static inline void jt_dir_remove(const char *dir)
{
    nftw(dir, jt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* cmocka setup and teardown: *state is the directory's path. */
static inline int jt_setup(void **state)
{
    char *dir = malloc(64);
    if (dir == NULL)
        return -1;
    jt_dir_make(dir);
    *state = dir;
    return 0;
}

static inline int jt_teardown(void **state)
{
    char mnt[96];

    /* A test that mounted a small file system there (ENOSPC) and failed
     * before it unmounted: unmount before removing anything. */
    snprintf(mnt, sizeof(mnt), "%s/mnt", (const char *)*state);
    umount2(mnt, MNT_DETACH);
    jt_dir_remove(*state);
    free(*state);
    return 0;
}

/* Payload length of the message of @p seq: 0..300 bytes, varied. */
static inline uint32_t jt_len(uint64_t seq)
{
    return (uint32_t)((seq * 7919u) % 301u);
}

/* Fill @p buf with the payload of @p seq (jt_len(seq) bytes). */
static inline void jt_fill(unsigned char *buf, uint64_t seq)
{
    uint32_t len = jt_len(seq);
    for (uint32_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seq * 31u + i);
}

/* The message of @p seq, its payload in @p buf (room for 301 bytes). */
static inline shmbus_msg jt_msg(unsigned char *buf, uint64_t seq)
{
    shmbus_msg m;

    memset(&m, 0, sizeof(m));
    jt_fill(buf, seq);
    m.data = buf;
    m.len = jt_len(seq);
    m.seq = seq;
    m.timestamp_ns = 1000000000ull + seq * 1000u;
    m.publisher_pid = 4242;
    return m;
}

/* Append the messages @p from .. @p to - 1 to @p j, flushing every @p batch. */
static inline void jt_append_range(shmbus_journal *j, uint64_t from, uint64_t to, unsigned batch)
{
    unsigned char buf[301];

    for (uint64_t s = from; s < to; s++) {
        shmbus_msg m = jt_msg(buf, s);
        assert_int_equal(shmbus_journal_append(j, &m), 1);
        if ((s + 1) % batch == 0)
            assert_shmbus_ok(shmbus_journal_flush(j));
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
}

/* Check that @p rec is the message of @p seq. */
static inline void jt_check(const shmbus_journal_record *rec, uint64_t seq)
{
    unsigned char buf[301];

    assert_int_equal(rec->flags, 0);
    assert_int_equal(rec->seq, seq);
    assert_int_equal(rec->count, 1);
    assert_int_equal(rec->len, jt_len(seq));
    assert_int_equal(rec->timestamp_ns, 1000000000ull + seq * 1000u);
    assert_int_equal(rec->publisher_pid, 4242);
    jt_fill(buf, seq);
    if (rec->len > 0)
        assert_memory_equal(rec->data, buf, rec->len);
}

/* Read the messages @p from .. @p to - 1 from @p r, then the end. */
static inline void jt_read_range(shmbus_journal_reader *r, uint64_t from, uint64_t to)
{
    shmbus_journal_record rec;

    for (uint64_t s = from; s < to; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
}

/* Path of the file @p name of the test topic in @p dir, into @p out. */
static inline void jt_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s/%s", dir, JT_TOPIC, name);
}

/* Segment file @p seq's name. */
static inline void jt_seg(char out[32], uint64_t seq)
{
    snprintf(out, 32, "%020llu", (unsigned long long)seq);
}

/* Number of segment files of the test topic in @p dir. */
static inline int jt_count_segs(const char *dir)
{
    char path[256];
    struct dirent *de;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, JT_TOPIC);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strlen(de->d_name) == 20 && de->d_name[0] >= '0' && de->d_name[0] <= '9';
    closedir(d);
    return n;
}

#endif
