/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal (libshmbus/src/journal/): CRC32C, records written and read
 * back, files rolled, duplicates and gaps, recovery of a torn tail, damage
 * in the middle, seeks by seq, bad input, a full file system, and
 * symbolic links in a journal, never followed.
 */
#include "journaltest.h"

#include <signal.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "journal/crc32c.h"
#include "journal/file.h"
#include "journal/format.h"

static void test_crc32c_known_answer(void **state)
{
    unsigned char big[1000];
    (void)state;

    assert_int_equal(sb_jr_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sb_jr_crc32c(0, "123456789", 9), 0xE3069283u);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 13 + 5);
    /* In two pieces it is the same CRC as in one. */
    assert_int_equal(sb_jr_crc32c_sw(sb_jr_crc32c_sw(0, big, 333), big + 333, 667),
                     sb_jr_crc32c_sw(0, big, 1000));
    if (!sb_jr_crc32c_hw_available())
        skip();
    assert_int_equal(sb_jr_crc32c_hw(0, "123456789", 9), 0xE3069283u);
    for (size_t n = 0; n + 3 <= sizeof(big); n += 37)
        assert_int_equal(sb_jr_crc32c_hw(0, big + 3, n), sb_jr_crc32c_sw(0, big + 3, n));
}

/* 100,000 records written and read back identical and in order. */
static void test_journal_roundtrip(void **state)
{
    const char *dir = *state;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_stats st;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_true(st.last_seq == UINT64_MAX);
    jt_append_range(j, 0, 100000, 100);
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.records, 100000);
    assert_int_equal(st.last_seq, 99999);
    assert_int_equal(st.gaps, 0);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    jt_read_range(r, 0, 100000);
    assert_int_equal(shmbus_journal_reader_damaged(r), 0);
    shmbus_journal_reader_close(r);
}

/* Small segments: many files, named by their first seq, read in order;
 * a reopened writer goes on where it stopped. */
static void test_journal_roll(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_stats st;
    int segs;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 6000, 50);
    assert_shmbus_ok(shmbus_journal_close(j));
    segs = jt_count_segs(dir);
    assert_true(segs >= 10);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.last_seq, 5999);
    assert_int_equal(st.cut_bytes, 0);
    jt_append_range(j, 6000, 9000, 50);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(jt_count_segs(dir) > segs);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    jt_read_range(r, 0, 9000);
    shmbus_journal_reader_close(r);
}

/* Seqs at or below the last are skipped; a jump is a gap record. */
static void test_journal_dups_gaps(void **state)
{
    const char *dir = *state;
    unsigned char buf[301];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;
    shmbus_msg m;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 10, 4);
    for (uint64_t s = 5; s < 10; s++) {
        m = jt_msg(buf, s);
        assert_int_equal(shmbus_journal_append(j, &m), 0);
    }
    m = jt_msg(buf, 15);
    assert_int_equal(shmbus_journal_append(j, &m), 1);
    m = jt_msg(buf, 16);
    m.flags = SHMBUS_MSG_IMPORTED;
    assert_int_equal(shmbus_journal_append(j, &m), 1);
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.duplicates, 5);
    assert_int_equal(st.gaps, 1);
    assert_int_equal(st.gap_messages, 5);
    assert_int_equal(st.last_seq, 16);
    assert_shmbus_ok(shmbus_journal_close(j));

    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 10; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.flags, SHMBUS_JOURNAL_GAP);
    assert_int_equal(rec.seq, 10);
    assert_int_equal(rec.count, 5);
    assert_int_equal(rec.len, 0);
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    jt_check(&rec, 15);
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.seq, 16);
    assert_int_equal(rec.flags, SHMBUS_JOURNAL_IMPORTED);
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    shmbus_journal_reader_close(r);
}

/* What each sync policy reports as durable; a record larger than the
 * write buffer; one larger than the format allows. */
static void test_journal_sync_big(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.sync = SHMBUS_JOURNAL_SYNC_BATCH};
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;
    size_t big = 3u << 20;
    unsigned char *p = malloc(big);
    shmbus_msg m = {.data = p, .len = (uint32_t)big, .seq = 10, .timestamp_ns = 5};

    assert_non_null(p);
    for (size_t i = 0; i < big; i++)
        p[i] = (unsigned char)(i * 7);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 10, 100);
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.synced_seq, 9);
    assert_int_equal(shmbus_journal_append(j, &m), 1);
    assert_shmbus_ok(shmbus_journal_flush(j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.synced_seq, 10);
    m.len = (256u << 20) + 1; /* never read: refused by its length */
    m.seq = 11;
    assert_int_equal(shmbus_journal_append(j, &m), SHMBUS_ERR_TOO_BIG);
    assert_shmbus_ok(shmbus_journal_close(j));

    o = (shmbus_journal_opts){.sync = SHMBUS_JOURNAL_SYNC_NONE};
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 11, 20, 100);
    shmbus_journal_stats_get(j, &st);
    assert_true(st.synced_seq == UINT64_MAX);
    assert_shmbus_ok(shmbus_journal_close(j));
    o = (shmbus_journal_opts){.sync = SHMBUS_JOURNAL_SYNC_INTERVAL, .sync_interval_ms = 3600000};
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 20, 30, 100);
    shmbus_journal_stats_get(j, &st);
    assert_true(st.synced_seq == UINT64_MAX); /* the hour has not passed */
    assert_shmbus_ok(shmbus_journal_close(j));

    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 10; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.seq, 10);
    assert_int_equal(rec.len, big);
    assert_memory_equal(rec.data, p, big);
    jt_read_range(r, 11, 30);
    shmbus_journal_reader_close(r);
    free(p);
}

/* Bytes of file @p name of the test topic. */
static off_t file_size(const char *dir, const char *name)
{
    char path[256];
    struct stat st;

    jt_path(path, sizeof(path), dir, name);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Append @p n bytes of @p byte to file @p name of the test topic. */
static void file_append(const char *dir, const char *name, int byte, size_t n)
{
    char path[256];
    unsigned char junk[512];
    FILE *f;

    memset(junk, byte, sizeof(junk));
    jt_path(path, sizeof(path), dir, name);
    f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, n, f), n);
    fclose(f);
}

/* A record cut mid-way, then garbage after it: the reopened writer cuts
 * both, keeps everything before, and goes on from the last good seq. */
static void test_journal_torn_tail(void **state)
{
    const char *dir = *state;
    char seg[32], path[256];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_stats st;
    off_t size;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 1000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    jt_seg(seg, 0);
    size = file_size(dir, seg);
    jt_path(path, sizeof(path), dir, seg);
    /* The last record (999: jt_len 0 + 48 + 7.. bytes) cut in its header. */
    assert_int_equal(truncate(path, size - 20), 0);

    /* A reader before recovery: the torn tail of the newest file is "not
     * yet", never damage. */
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    jt_read_range(r, 0, 999);
    shmbus_journal_reader_close(r);

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.last_seq, 998);
    assert_int_equal(st.cut_bytes, (uint64_t)(size - 20) - (uint64_t)file_size(dir, seg));
    assert_true(st.cut_bytes > 0);
    jt_append_range(j, 999, 1100, 100);
    assert_shmbus_ok(shmbus_journal_close(j));

    /* Garbage after whole records: cut to the byte. */
    file_append(dir, seg, 0xab, 200);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.cut_bytes, 200);
    assert_int_equal(st.last_seq, 1099);
    assert_shmbus_ok(shmbus_journal_close(j));

    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    jt_read_range(r, 0, 1100);
    assert_int_equal(shmbus_journal_reader_damaged(r), 0);
    shmbus_journal_reader_close(r);
}

/* Offset of the record of @p seq in segment 0, found by walking it. */
static uint64_t record_offset(const char *dir, uint64_t seq)
{
    uint64_t off = sizeof(struct sb_jr_file_hdr);

    (void)dir;
    for (uint64_t s = 0; s < seq; s++)
        off += sb_jr_rec_size(jt_len(s));
    return off;
}

/* One flipped byte mid-file: SHMBUS_ERR_CORRUPT once, where it is, then
 * the rest; a writer reopening keeps the records after it. */
static void test_journal_flipped_byte(void **state)
{
    const char *dir = *state;
    char seg[32], path[256];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_damage d;
    shmbus_journal_stats st;
    uint64_t off = record_offset(dir, 500);
    unsigned char c;
    int fd;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 1000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    jt_seg(seg, 0);
    jt_path(path, sizeof(path), dir, seg);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)off + 50), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off + 50), 1);
    close(fd);

    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_reader_damage(r, &d), -ENOENT);
    for (uint64_t s = 0; s < 500; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_journal_reader_damage(r, &d), 0);
    assert_string_equal(d.file, seg);
    assert_int_equal(d.offset, off);
    assert_int_equal(d.skipped, sb_jr_rec_size(jt_len(500)));
    assert_int_equal(d.seq, 499);
    assert_string_equal(d.what, "bad CRC");
    jt_read_range(r, 501, 1000);
    assert_int_equal(shmbus_journal_reader_damaged(r), 1);
    shmbus_journal_reader_close(r);

    /* Damage in the middle is not a torn tail: nothing is cut. */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.cut_bytes, 0);
    assert_int_equal(st.last_seq, 999);
    assert_shmbus_ok(shmbus_journal_close(j));
}

/* Set the len field of the record of @p seq in segment 0 to @p len. */
static void poke_len(const char *dir, uint64_t seq, uint32_t len)
{
    char seg[32], path[256];
    int fd;

    jt_seg(seg, 0);
    jt_path(path, sizeof(path), dir, seg);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &len, sizeof(len),
                            (off_t)(record_offset(dir, seq) + offsetof(struct sb_jr_rec, len))),
                     (ssize_t)sizeof(len));
    close(fd);
}

/* A damaged length mid-file makes its record pass the file's end: it is
 * damage, not a torn tail. A writer reopening cuts none of the good
 * records after it; a reader of the finished file resyncs at the next. */
static void test_journal_flipped_len(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    char seg[40], path[256];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_damage d;
    shmbus_journal_stats st;

    /* One file: the last, which recovery reads. */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 1000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    poke_len(dir, 500, 1u << 24);
    /* No index (it is only a hint): recovery scans the whole file. */
    jt_seg(seg, 0);
    strcat(seg, ".idx");
    jt_path(path, sizeof(path), dir, seg);
    assert_int_equal(unlink(path), 0);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.cut_bytes, 0);
    assert_int_equal(st.last_seq, 999);
    assert_shmbus_ok(shmbus_journal_close(j));
    /* A reader of that file, the newest, does not wait at the record for
     * bytes that will never come: good records follow it. */
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 500; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_journal_reader_damage(r, &d), 0);
    assert_int_equal(d.offset, record_offset(dir, 500));
    assert_int_equal(d.skipped, sb_jr_rec_size(jt_len(500)));
    assert_string_equal(d.what, "bad length");
    jt_read_range(r, 501, 1000);
    shmbus_journal_reader_close(r);
    jt_dir_remove(dir);
    assert_int_equal(mkdir(dir, 0700), 0);

    /* Several files: the first is finished, a reader resyncs in it. */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 1000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(jt_count_segs(dir) > 1);
    poke_len(dir, 100, 1u << 24);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 100; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_journal_reader_damage(r, &d), 0);
    assert_int_equal(d.offset, record_offset(dir, 100));
    assert_int_equal(d.skipped, sb_jr_rec_size(jt_len(100)));
    jt_read_range(r, 101, 1000);
    assert_int_equal(shmbus_journal_reader_damaged(r), 1);
    shmbus_journal_reader_close(r);
}

/* Seeks by seq over several files: each seq, the end, and both sides. */
static void test_journal_seek_seq(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    unsigned char buf[301];
    shmbus_msg m;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 10, 5010, 100);
    m = jt_msg(buf, 5020); /* a gap 5010..5019 */
    assert_int_equal(shmbus_journal_append(j, &m), 1);
    assert_shmbus_ok(shmbus_journal_close(j));

    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 10; s < 5010; s += 97) {
        assert_shmbus_ok(shmbus_journal_seek_seq(r, s));
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s + 1);
    }
    assert_shmbus_ok(shmbus_journal_seek_seq(r, 5015));
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.flags, SHMBUS_JOURNAL_GAP);
    assert_int_equal(rec.seq, 5010);
    assert_int_equal(rec.count, 10);
    assert_shmbus_ok(shmbus_journal_seek_seq(r, 5021)); /* the last + 1 */
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    assert_int_equal(shmbus_journal_seek_seq(r, 5022), SHMBUS_ERR_RANGE);
    assert_int_equal(shmbus_journal_seek_seq(r, 9), SHMBUS_ERR_RANGE);
    assert_int_equal(shmbus_journal_seek_seq(r, 0), SHMBUS_ERR_RANGE);
    assert_shmbus_ok(shmbus_journal_seek_seq(r, 10));
    for (uint64_t s = 10; s < 5010; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.flags, SHMBUS_JOURNAL_GAP);
    jt_read_range(r, 5020, 5021);
    shmbus_journal_reader_close(r);
}

/* Write a file of @p len bytes, @p data, as segment 0 of the test topic. */
static void plant_segment(const char *dir, const void *data, size_t len)
{
    char path[256], seg[32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, JT_TOPIC);
    assert_int_equal(mkdir(path, 0700), 0);
    jt_seg(seg, 0);
    jt_path(path, sizeof(path), dir, seg);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_journal_bad_input(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 1000};
    shmbus_journal *j, *j2;
    shmbus_journal_reader *r;
    char path[256];
    FILE *f;

    assert_int_equal(shmbus_journal_open("/nonexistent/jt", JT_TOPIC, NULL, &j), -ENOENT);
    assert_null(j);
    assert_int_equal(shmbus_journal_reader_open(dir, JT_TOPIC, &r), -ENOENT);
    assert_null(r);
    assert_int_equal(shmbus_journal_open(dir, "../x", NULL, &j), SHMBUS_ERR_BAD_NAME);
    assert_int_equal(shmbus_journal_open(dir, ".hidden", NULL, &j), SHMBUS_ERR_BAD_NAME);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, &o, &j), SHMBUS_ERR_INVALID);
    o = (shmbus_journal_opts){.sync = SHMBUS_JOURNAL_SYNC_BATCH, .sync_interval_ms = 5};
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, &o, &j), SHMBUS_ERR_INVALID);
    o = (shmbus_journal_opts){.perm = 0777};
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, &o, &j), SHMBUS_ERR_INVALID);
    o = (shmbus_journal_opts){.perm = 0641}; /* below 0666, but an x bit */
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, &o, &j), SHMBUS_ERR_INVALID);
    o = (shmbus_journal_opts){.reserved[2] = 1};
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, &o, &j), SHMBUS_ERR_INVALID);

    /* A file where the topic's directory should be. */
    snprintf(path, sizeof(path), "%s/a.file", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(shmbus_journal_open(dir, "a.file", NULL, &j), -ENOTDIR);
    assert_int_equal(shmbus_journal_reader_open(dir, "a.file", &r), -ENOTDIR);
    assert_int_equal(shmbus_journal_open(path, JT_TOPIC, NULL, &j), -ENOTDIR);

    /* One writer per topic. */
    assert_shmbus_ok(shmbus_journal_open(dir, "t2", NULL, &j));
    assert_int_equal(shmbus_journal_open(dir, "t2", NULL, &j2), -EBUSY);
    assert_null(j2);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_shmbus_ok(shmbus_journal_open(dir, "t2", NULL, &j2));
    assert_shmbus_ok(shmbus_journal_close(j2));
    assert_int_equal(shmbus_journal_close(NULL), 0);
    shmbus_journal_reader_close(NULL);
}

/* A crafted file of record headers every 56 bytes, each with its mark and
 * a length reaching the file's end and a bad CRC: each resync candidate
 * costs its length, so a reader and a recovery would take the square of
 * the size (minutes for 8 MiB). Both give up and report or cut it fast. */
static void test_journal_resync_bounded(void **state)
{
    const char *dir = *state;
    size_t size = 8u << 20;
    unsigned char *b = calloc(1, size);
    struct sb_jr_file_hdr h;
    struct timespec t0, t1;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;

    assert_non_null(b);
    sb_jr_hdr_fill(&h, JT_TOPIC, 0);
    memcpy(b, &h, sizeof(h));
    for (size_t off = sizeof(h); off + sizeof(struct sb_jr_rec) <= size; off += 56) {
        struct sb_jr_rec rh = {.mark = sb_jr_rec_mark(off), .count = 1, .crc = 1};
        rh.len = (uint32_t)((size - off - sizeof(rh)) & ~(size_t)7);
        memcpy(b + off, &rh, sizeof(rh));
    }
    plant_segment(dir, b, size);
    free(b);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    shmbus_journal_reader_close(r);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.cut_bytes, size - sizeof(h));
    assert_shmbus_ok(shmbus_journal_close(j));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 30);
}

/* A file named as a segment that is no journal file. */
static void test_journal_bad_magic(void **state)
{
    const char *dir = *state;
    static const char text[] = "this is not a journal, just a text file of some length\n";
    shmbus_journal *j;

    plant_segment(dir, text, sizeof(text));
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), SHMBUS_ERR_BAD_MAGIC);
    assert_null(j);
}

/* Another topic's journal under this topic's name (a directory copied or
 * renamed): its last file is refused as its older ones are. */
static void test_journal_other_topic(void **state)
{
    const char *dir = *state;
    char from[256], to[256];
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(dir, "other.topic", NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    snprintf(from, sizeof(from), "%s/other.topic", dir);
    snprintf(to, sizeof(to), "%s/%s", dir, JT_TOPIC);
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), SHMBUS_ERR_BAD_MAGIC);
    assert_null(j);
}

/* A journal of another format version. */
static void test_journal_other_version(void **state)
{
    const char *dir = *state;
    struct sb_jr_file_hdr h;
    shmbus_journal *j;

    memset(&h, 0, sizeof(h));
    h.magic = SB_JR_FILE_MAGIC;
    h.version = SB_JR_VERSION + 1;
    h.header_len = sizeof(h);
    plant_segment(dir, &h, sizeof(h));
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), SHMBUS_ERR_VERSION);
}

/* The last file's whole header fails its CRC: left alone for an operator. */
static void test_journal_bad_header_crc(void **state)
{
    const char *dir = *state;
    struct sb_jr_file_hdr h;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;

    sb_jr_hdr_fill(&h, JT_TOPIC, 0);
    h.created_ns ^= 1;
    plant_segment(dir, &h, sizeof(h));
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), SHMBUS_ERR_CORRUPT);
    assert_int_equal(jt_count_segs(dir), 1);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    shmbus_journal_reader_close(r);
}

/* A full file system: the writer fails with -ENOSPC, and what was flushed
 * before is intact, readable, and continued by a new writer. */
static void test_journal_enospc(void **state)
{
    const char *dir = *state;
    char mnt[256];
    unsigned char payload[4000];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;
    uint64_t s, flushed = 0;
    int rc = 0;

    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0)
        skip(); /* mounting is not permitted here */
    memset(payload, 0x5a, sizeof(payload));
    rc = shmbus_journal_open(mnt, JT_TOPIC, NULL, &j);
    for (s = 0; rc >= 0 && s < 1000; s++) {
        shmbus_msg m = {.data = payload, .len = sizeof(payload), .seq = s, .timestamp_ns = s};
        rc = shmbus_journal_append(j, &m);
        if (rc >= 0 && s % 4 == 3) {
            rc = shmbus_journal_flush(j);
            if (rc == 0)
                flushed = s + 1;
        }
    }
    if (j != NULL) {
        shmbus_journal_stats_get(j, &st);
        assert_int_equal(shmbus_journal_append(j, &(shmbus_msg){.seq = 5000}), rc);
        shmbus_journal_close(j);
    }
    if (rc == -ENOSPC && flushed > 0) {
        assert_shmbus_ok(shmbus_journal_reader_open(mnt, JT_TOPIC, &r));
        for (s = 0; s < flushed; s++) {
            assert_int_equal(shmbus_journal_next(r, &rec), 1);
            assert_int_equal(rec.seq, s);
            assert_int_equal(rec.len, sizeof(payload));
        }
        /* Whole records up to where the writer failed, never a torn one. */
        while ((rc = shmbus_journal_next(r, &rec)) == 1)
            assert_int_equal(rec.seq, s++);
        assert_int_equal(shmbus_journal_reader_damaged(r), 0);
        shmbus_journal_reader_close(r);
        assert_shmbus_ok(shmbus_journal_open(mnt, JT_TOPIC, NULL, &j));
        shmbus_journal_stats_get(j, &st);
        assert_int_equal(st.cut_bytes, 0);
        assert_int_equal(st.last_seq, s - 1);
        shmbus_journal_close(j);
        rc = -ENOSPC;
    }
    umount2(mnt, MNT_DETACH); /* and jt_teardown() if an assertion ends the test first */
    assert_int_equal(rc, -ENOSPC);
    assert_true(flushed > 0);
}

/* A flush that fails (here on the file size limit, as on a full disk)
 * loses what it held: the writer's counters then count only what the
 * files hold, never an append whose record never reached the disk. */
static void test_journal_failed_flush_counts(void **state)
{
    const char *dir = *state;
    struct rlimit old, lim = {.rlim_cur = 48 << 10, .rlim_max = RLIM_INFINITY};
    unsigned char payload[3000];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;
    uint64_t s, held = 0;
    int rc = 0;

    memset(payload, 0x3c, sizeof(payload));
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (s = 0; rc >= 0 && s < 1000; s++) {
        shmbus_msg m = {.data = payload, .len = sizeof(payload), .seq = s, .timestamp_ns = s};
        rc = shmbus_journal_append(j, &m);
        if (rc >= 0 && s % 3 == 2)
            rc = shmbus_journal_flush(j);
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, -EFBIG);
    shmbus_journal_stats_get(j, &st);
    shmbus_journal_close(j);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    while (shmbus_journal_next(r, &rec) == 1)
        held++;
    shmbus_journal_reader_close(r);
    assert_true(held > 0);
    assert_int_equal(st.records, held);
    assert_int_equal(st.last_seq, held - 1);
}

/* A symbolic link at DIR/TOPIC (whoever may write in DIR could plant one
 * to send the writer's files anywhere) is never followed: every open
 * refuses it with -ELOOP, nothing is made where it points, and listing
 * passes it over. */
static void test_journal_symlink_dir(void **state)
{
    const char *dir = *state;
    char target[128], link[128], names[2][SHMBUS_TOPIC_NAME_MAX + 1];
    shmbus_journal_reader *r;
    shmbus_journal_summary s;
    shmbus_journal *j;

    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    snprintf(link, sizeof(link), "%s/%s", dir, JT_TOPIC);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), -ELOOP);
    assert_null(j);
    assert_int_equal(tu_dir_entries(target), 0);
    assert_int_equal(shmbus_journal_reader_open(dir, JT_TOPIC, &r), -ELOOP);
    assert_null(r);
    assert_int_equal(shmbus_journal_summary_get(dir, JT_TOPIC, &s), -ELOOP);
    assert_int_equal(shmbus_journal_retain(dir, JT_TOPIC, JT_TOPIC, 0, 0, NULL), -ELOOP);
    /* A journal where it points is listed by its own name only. */
    assert_shmbus_ok(shmbus_journal_open(dir, "elsewhere", NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_int_equal(shmbus_journal_list(dir, names, 2), 1);
    assert_string_equal(names[0], "elsewhere");
}

/* Replace DIR/JT_TOPIC/@p name by a symbolic link to @p to. */
static void symlink_in(const char *dir, const char *name, const char *to)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s/%s", dir, JT_TOPIC, name);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(to, path), 0);
}

/* The size of file @p path, or -1. */
static long long victim_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A symbolic link at a file in DIR/TOPIC (the lock, an index, a segment)
 * is never followed: the writer refuses it with -ELOOP before it could
 * create, truncate or write through it, the reader and the summary
 * likewise, and the file it points to is left as it was. */
static void test_journal_symlink_file(void **state)
{
    const char *dir = *state;
    char victim[128], seg[32], idx[32], path[128];
    shmbus_journal_record rec;
    shmbus_journal_reader *r;
    shmbus_journal_summary s;
    shmbus_journal *j;
    int fd;

    snprintf(victim, sizeof(victim), "%s/victim", dir);
    fd = open(victim, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    sb_jr_file_name(seg, 0, 0);
    sb_jr_file_name(idx, 0, 1);
    /* The lock. */
    symlink_in(dir, SB_JR_LOCK_NAME, victim);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), -ELOOP);
    /* The index, which a writer rebuilds (O_TRUNC) where it lags. */
    snprintf(path, sizeof(path), "%s/%s/%s", dir, JT_TOPIC, SB_JR_LOCK_NAME);
    assert_int_equal(unlink(path), 0);
    symlink_in(dir, idx, victim);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), -ELOOP);
    assert_int_equal(victim_size(victim), 4);
    /* The segment. */
    snprintf(path, sizeof(path), "%s/%s/%s", dir, JT_TOPIC, idx);
    assert_int_equal(unlink(path), 0);
    symlink_in(dir, seg, victim);
    assert_int_equal(shmbus_journal_open(dir, JT_TOPIC, NULL, &j), -ELOOP);
    assert_int_equal(shmbus_journal_summary_get(dir, JT_TOPIC, &s), -ELOOP);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_next(r, &rec), -ELOOP);
    shmbus_journal_reader_close(r);
    assert_int_equal(victim_size(victim), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test_setup_teardown(test_journal_roundtrip, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_roll, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_dups_gaps, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_sync_big, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_torn_tail, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_flipped_byte, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_flipped_len, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_seek_seq, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_bad_input, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_resync_bounded, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_bad_magic, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_other_topic, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_other_version, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_bad_header_crc, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_enospc, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_failed_flush_counts, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_symlink_dir, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_symlink_file, jt_setup, jt_teardown),
    };
    return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
