/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the journal's reader, recovery and summary
 * (libshmbus/src/journal/): arbitrary bytes as a topic's segment files
 * and index, in a private directory under /tmp (never /dev/shm). Input:
 *   byte 0      flags: 1 a valid file header first, 2 a valid index header
 *               first, 4 the segment's body built as valid records from
 *               specs (then damaged), 8 a second segment after the first
 *   bytes 1..2  length of the segment's part (little-endian); the rest is
 *               the index's part, and with flag 4, after the index's 64
 *               bytes, (offset u16, xor u8) triples that damage the records
 * A spec is 5 bytes: payload length (u8), flags (u8), seq step (u8),
 * count (u8), time step (u8); its payload follows it.
 * The reader must end without reading outside what it read, allocate
 * nothing the file sizes, return only 1, 0 or SHMBUS_ERR_CORRUPT (with
 * damage it can say where), and reach the end in bounded calls; seeks,
 * the summary, and a writer's recovery must hold the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "journal/crc32c.h"
#include "journal/file.h"
#include "journal/format.h"
#include "shmbus/journal.h"

#define TOPIC "fz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[64];

/* The private directory, made once, removed at exit. */
static void fz_rm(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_journal: could not remove %s\n", fz_dir);
}

static void fz_init(void)
{
    char path[128];

    if (fz_dir[0] != '\0')
        return;
    strcpy(fz_dir, "/tmp/shmbus-fuzz-journal-XXXXXX");
    CHECK(mkdtemp(fz_dir) != NULL);
    snprintf(path, sizeof(path), "%s/%s", fz_dir, TOPIC);
    CHECK(mkdir(path, 0700) == 0);
    atexit(fz_rm);
}

/* Replace file @p name of the topic with @p len bytes of @p p. */
static void fz_put(const char *name, const void *p, size_t len)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s/%s", fz_dir, TOPIC, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(len == 0 || write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static void fz_del(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s/%s", fz_dir, TOPIC, name);
    unlink(path);
}

/* Encode the specs of @p in (@p n bytes) as valid records after a
 * header into @p out (room for @p cap), damaged by @p dmg triples.
 * @return bytes of @p out used. */
static size_t fz_build(const uint8_t *in, size_t n, const uint8_t *dmg, size_t dn, uint8_t *out,
                       size_t cap)
{
    size_t o = sizeof(struct sb_jr_file_hdr), i = 0;
    uint64_t seq = 0, t = 1000;

    while (i + 5 <= n) {
        struct sb_jr_rec h = {0};
        uint32_t len = in[i];
        if (i + 5 + len > n || o + sb_jr_rec_size(len) > cap)
            break;
        h.len = in[i + 1] & SHMBUS_JOURNAL_GAP ? 0 : len;
        h.flags = in[i + 1] & 3;
        seq += in[i + 2];
        h.seq = seq;
        h.count = h.flags & SHMBUS_JOURNAL_GAP ? 1 + in[i + 3] : 1;
        t += in[i + 4];
        h.time_ns = t;
        h.pid = 7;
        h.mark = sb_jr_rec_mark(o);
        h.crc = sb_jr_crc32c(sb_jr_crc32c(0, (const uint8_t *)&h + 8, sizeof(h) - 8), in + i + 5,
                             h.len);
        memcpy(out + o, &h, sizeof(h));
        memcpy(out + o + sizeof(h), in + i + 5, h.len);
        memset(out + o + sizeof(h) + h.len, 0, (size_t)(sb_jr_rec_size(h.len) - sizeof(h) - h.len));
        o += (size_t)sb_jr_rec_size(h.len);
        seq += h.count;
        i += 5 + len;
    }
    for (size_t k = 0; k + 3 <= dn; k += 3) {
        size_t at = (size_t)(dmg[k] | dmg[k + 1] << 8);
        if (at < o)
            out[at] ^= dmg[k + 2];
    }
    return o;
}

/* Read to the end, checking every answer; @return records read. A
 * reader fresh from open or a seek has counted no damage it reports here
 * but what a seek skipped. */
static uint64_t fz_read_all(shmbus_journal_reader *r)
{
    shmbus_journal_record rec;
    shmbus_journal_damage d;
    uint64_t got = 0, corrupt = 0;

    for (int calls = 0; calls < 100000; calls++) {
        int rc = shmbus_journal_next(r, &rec);
        if (rc == 0)
            return got;
        if (rc == SHMBUS_ERR_CORRUPT) {
            corrupt++;
            CHECK(shmbus_journal_reader_damage(r, &d) == 0);
            CHECK(memchr(d.file, '\0', sizeof(d.file)) != NULL);
            CHECK(memchr(d.what, '\0', sizeof(d.what)) != NULL);
            /* counted when found: by this call, or by the seek before it */
            CHECK(shmbus_journal_reader_damaged(r) >= corrupt);
            continue;
        }
        CHECK(rc == 1);
        CHECK(rec.count >= 1 && rec.len <= SB_JR_PAYLOAD_MAX);
        CHECK((rec.flags & SHMBUS_JOURNAL_GAP) ? rec.len == 0 : rec.count == 1);
        if (rec.len > 0) {
            volatile uint8_t sink = ((const uint8_t *)rec.data)[rec.len - 1];
            (void)sink; /* ASan: the payload is readable to its end */
        }
        got++;
    }
    CHECK(!"the reader never reached the end");
    return got;
}

static void fz_run(uint64_t key)
{
    shmbus_journal_reader *r;
    shmbus_journal_summary sum;
    shmbus_journal *j;
    shmbus_journal_stats st;
    int rc;

    CHECK(shmbus_journal_reader_open(fz_dir, TOPIC, &r) == 0);
    fz_read_all(r);
    rc = shmbus_journal_seek_seq(r, key);
    CHECK(rc == 0 || rc == SHMBUS_ERR_RANGE);
    fz_read_all(r);
    rc = shmbus_journal_seek_time(r, key);
    CHECK(rc == 0 || rc == SHMBUS_ERR_RANGE);
    fz_read_all(r);
    shmbus_journal_reader_close(r);
    rc = shmbus_journal_summary_get(fz_dir, TOPIC, &sum);
    CHECK(rc == 0 || rc == SHMBUS_ERR_BAD_MAGIC || rc == SHMBUS_ERR_VERSION || rc == -ENOENT);
    if (rc == 0)
        CHECK(sum.first_seq == UINT64_MAX ? sum.records == 0 : sum.records > 0);
    /* Recovery: the files it accepts end in whole records afterwards. */
    rc = shmbus_journal_open(fz_dir, TOPIC, NULL, &j);
    CHECK(rc == 0 || rc == SHMBUS_ERR_BAD_MAGIC || rc == SHMBUS_ERR_VERSION ||
          rc == SHMBUS_ERR_CORRUPT);
    if (rc != 0)
        return;
    CHECK(shmbus_journal_close(j) == 0);
    /* ... so a second recovery finds nothing to cut. */
    CHECK(shmbus_journal_open(fz_dir, TOPIC, NULL, &j) == 0);
    shmbus_journal_stats_get(j, &st);
    CHECK(st.cut_bytes == 0);
    CHECK(shmbus_journal_close(j) == 0);
    CHECK(shmbus_journal_reader_open(fz_dir, TOPIC, &r) == 0);
    fz_read_all(r);
    shmbus_journal_reader_close(r);
}

/* The segment file's bytes into @p seg (room for 64 KiB), as flags 1
 * and 4 say. @return its length. */
static size_t fz_segment(uint8_t flags, const uint8_t *data, size_t seg_len, const uint8_t *idx,
                         size_t idx_len, uint8_t *seg, size_t cap)
{
    size_t o = 0;

    if (flags & 1) {
        struct sb_jr_file_hdr h;
        sb_jr_hdr_fill(&h, TOPIC, 0);
        memcpy(seg, &h, sizeof(h));
        o = sizeof(h);
    }
    if (flags & 4) {
        size_t dn = idx_len > 64 ? idx_len - 64 : 0;
        o = fz_build(data, seg_len, idx + (idx_len - dn), dn, seg, cap);
        if (!(flags & 1))
            memset(seg, 0, sizeof(struct sb_jr_file_hdr));
        return o;
    }
    memcpy(seg + o, data, seg_len < cap - o ? seg_len : cap - o);
    return o + (seg_len < cap - o ? seg_len : cap - o);
}

/* The index file's bytes, as flag 2 says. */
static void fz_index(uint8_t flags, const uint8_t *idx, size_t idx_len)
{
    uint8_t ibuf[sizeof(struct sb_jr_index_hdr) + 64];
    struct sb_jr_index_hdr h = {.magic = SB_JR_INDEX_MAGIC,
                                .version = SB_JR_VERSION,
                                .header_len = sizeof(h),
                                .entry_len = sizeof(struct sb_jr_index_entry)};
    size_t n = idx_len < 64 ? idx_len : 64;

    if (!(flags & 2)) {
        fz_put("00000000000000000000.idx", idx, idx_len);
        return;
    }
    h.crc = sb_jr_crc32c(0, &h, sizeof(h));
    memcpy(ibuf, &h, sizeof(h));
    memcpy(ibuf + sizeof(h), idx, n);
    fz_put("00000000000000000000.idx", ibuf, sizeof(h) + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t seg[1 << 16];
    size_t seg_len, idx_len, o;
    const uint8_t *idx;
    uint64_t key = 0;
    uint8_t flags;

    fz_init();
    if (size < 3)
        return 0; /* no room for the flags and the split */
    flags = data[0];
    seg_len = (size_t)(data[1] | data[2] << 8);
    data += 3;
    size -= 3;
    if (seg_len > size)
        seg_len = size;
    idx = data + seg_len;
    idx_len = size - seg_len;
    if (idx_len >= 8)
        memcpy(&key, idx, 8);
    o = fz_segment(flags, data, seg_len, idx, idx_len, seg, sizeof(seg));
    fz_put("00000000000000000000", seg, o);
    fz_index(flags, idx, idx_len);
    if (flags & 8) {
        struct sb_jr_file_hdr h;
        sb_jr_hdr_fill(&h, TOPIC, 1000);
        fz_put("00000000000000001000", &h, sizeof(h));
    }
    fz_run(key);
    fz_del("00000000000000001000");
    fz_del("00000000000000001000.idx");
    return 0;
}
