/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal's files (libshmbus/src/journal/): seeks by time, retention
 * by bytes and by age, files deleted under a reader, an index that lags
 * or lies, listing and summary, and the files' permissions.
 */
#include "journaltest.h"

#include <time.h>

#include "journal/crc32c.h"
#include "journal/file.h"
#include "journal/format.h"

/* Messages 0..n-1 written in segments of 64 KiB. */
static void write_small_segments(const char *dir, uint64_t n)
{
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, n, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
}

/* Seeks by time: exact times, times between messages, both sides. */
static void test_journal_seek_time(void **state)
{
    const char *dir = *state;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;

    write_small_segments(dir, 8000);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 8000; s += 331) {
        /* jt_msg(): time 1 s + seq us */
        assert_shmbus_ok(shmbus_journal_seek_time(r, 1000000000ull + s * 1000u));
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
        assert_shmbus_ok(shmbus_journal_seek_time(r, 1000000000ull + s * 1000u + 1));
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s + 1);
    }
    assert_int_equal(shmbus_journal_seek_time(r, 1000000000ull - 1), SHMBUS_ERR_RANGE);
    assert_int_equal(shmbus_journal_seek_time(r, 1000000000ull + 7999u * 1000u + 1),
                     SHMBUS_ERR_RANGE);
    assert_shmbus_ok(shmbus_journal_seek_time(r, 1000000000ull + 7999u * 1000u));
    jt_read_range(r, 7999, 8000);
    shmbus_journal_reader_close(r);
}

/* Retention by bytes: the oldest files go, never the one written, and
 * the reader starts at what is left. */
static void test_journal_retain_bytes(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10, .retain_bytes = 256 << 10};
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_stats st;
    shmbus_journal_summary sum;
    shmbus_journal_record rec;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 20000, 100);
    shmbus_journal_stats_get(j, &st);
    assert_true(st.files_removed > 0);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_shmbus_ok(shmbus_journal_summary_get(dir, JT_TOPIC, &sum));
    /* What is left passes the limit by less than a file. */
    assert_true(sum.bytes <= (256 << 10) + (80 << 10));
    assert_true(sum.first_seq > 0);
    assert_int_equal(sum.last_seq, 19999);
    assert_int_equal(sum.records, 20000 - sum.first_seq);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_seek_seq(r, sum.first_seq - 1), SHMBUS_ERR_RANGE);
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    jt_check(&rec, sum.first_seq);
    shmbus_journal_reader_close(r);
}

/* Retention by age: files whose newest record is older go at a roll. */
static void test_journal_retain_age(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10, .retain_ns = 3600ull * 1000000000u};
    unsigned char buf[301];
    shmbus_journal *j;
    shmbus_journal_stats st;
    shmbus_journal_summary sum;
    uint64_t now = (uint64_t)time(NULL) * 1000000000ull;
    uint64_t s;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    /* 3000 messages two hours old, then 3000 of now. */
    for (s = 0; s < 6000; s++) {
        shmbus_msg m = jt_msg(buf, s);
        m.timestamp_ns = s < 3000 ? now - 7200ull * 1000000000u : now;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    shmbus_journal_stats_get(j, &st);
    assert_true(st.files_removed > 0);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_shmbus_ok(shmbus_journal_summary_get(dir, JT_TOPIC, &sum));
    /* Every old file went but the one that holds new messages too. */
    assert_true(sum.first_seq > 1500 && sum.first_seq <= 3000);
    assert_int_equal(sum.last_seq, 5999);
}

/* A limit smaller than one file: every file goes but the newest. */
static void test_journal_retain_keeps_newest(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10, .retain_bytes = 1};
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_stats st;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 3000, 100);
    shmbus_journal_stats_get(j, &st);
    assert_true(st.files_removed > 0);
    assert_int_equal(jt_count_segs(dir), 1);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_true(rec.seq > 0);
    shmbus_journal_reader_close(r);
    /* A writer reopening goes on from the last seq. */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.last_seq, 2999);
    assert_shmbus_ok(shmbus_journal_close(j));
}

/* A crash between starting a file and writing its header, or its first
 * record: the file is dropped, the one before is the last again. */
static void test_journal_torn_new_file(void **state)
{
    const char *dir = *state;
    shmbus_journal *j;
    shmbus_journal_stats st;
    struct sb_jr_file_hdr h;
    char name[32], path[256];
    FILE *f;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 100, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    /* A header cut at 100 bytes, as file 100. */
    memset(&h, 0, sizeof(h));
    h.magic = SB_JR_FILE_MAGIC;
    h.version = SB_JR_VERSION;
    jt_seg(name, 100);
    jt_path(path, sizeof(path), dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&h, 1, 100, f), 100);
    fclose(f);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.cut_bytes, 100);
    assert_int_equal(st.last_seq, 99);
    assert_int_equal(jt_count_segs(dir), 1);
    jt_append_range(j, 100, 200, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    {
        shmbus_journal_reader *r;
        assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
        jt_read_range(r, 0, 200);
        shmbus_journal_reader_close(r);
    }
}

/* A reader waiting in a file with no record when the writer crashed
 * there: the restarted writer drops that file and starts one of the same
 * name, and the reader goes on into the new one. */
static void test_journal_follow_restart(void **state)
{
    const char *dir = *state;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    struct sb_jr_file_hdr h;
    char name[32], path[256];
    FILE *f;
    int rc = 0;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 100, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    /* The crash: file 100 started, its header written, no record. */
    sb_jr_hdr_fill(&h, JT_TOPIC, 100);
    jt_seg(name, 100);
    jt_path(path, sizeof(path), dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&h, 1, sizeof(h), f), sizeof(h));
    fclose(f);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (uint64_t s = 0; s < 100; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    for (int i = 0; i < 5; i++)
        assert_int_equal(shmbus_journal_next(r, &rec), 0); /* in file 100, waiting */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 100, 150, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    /* Within a few of the reader's directory listings (50 ms apart). */
    for (int tries = 0; tries < 400 && (rc = shmbus_journal_next(r, &rec)) == 0; tries++)
        usleep(5000);
    assert_int_equal(rc, 1);
    jt_check(&rec, 100);
    jt_read_range(r, 101, 150);
    assert_int_equal(shmbus_journal_reader_damaged(r), 0);
    shmbus_journal_reader_close(r);
}

/* The only file, with no record, when the writer crashed: the restarted
 * writer removes it and starts a file of the same name; a reader that
 * waited in the deleted one moves into the new one. */
static void test_journal_follow_replaced(void **state)
{
    const char *dir = *state;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    struct sb_jr_file_hdr h;
    char name[32], path[256];
    FILE *f;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, JT_TOPIC);
    assert_int_equal(mkdir(path, 0700), 0);
    sb_jr_hdr_fill(&h, JT_TOPIC, 0);
    jt_seg(name, 0);
    jt_path(path, sizeof(path), dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&h, 1, sizeof(h), f), sizeof(h));
    fclose(f);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    for (int i = 0; i < 5; i++)
        assert_int_equal(shmbus_journal_next(r, &rec), 0); /* in file 0, waiting */
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 50, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    for (int tries = 0; tries < 400 && (rc = shmbus_journal_next(r, &rec)) == 0; tries++)
        usleep(5000);
    assert_int_equal(rc, 1);
    jt_check(&rec, 0);
    jt_read_range(r, 1, 50);
    shmbus_journal_reader_close(r);
}

/* Remove segment @p seq of the test topic (and its index). */
static void seg_remove(const char *dir, uint64_t seq)
{
    char name[40], path[256];

    jt_seg(name, seq);
    jt_path(path, sizeof(path), dir, name);
    assert_int_equal(unlink(path), 0);
    strcat(name, ".idx");
    jt_path(path, sizeof(path), dir, name);
    unlink(path);
}

/* First seqs of the test topic's segments, sorted, into @p seqs. */
static int seg_list(const char *dir, uint64_t *seqs, int cap)
{
    char path[256];
    struct dirent *de;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, JT_TOPIC);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && n < cap)
        if (strlen(de->d_name) == 20)
            seqs[n++] = strtoull(de->d_name, NULL, 10);
    closedir(d);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (seqs[b] < seqs[a]) {
                uint64_t t = seqs[a];
                seqs[a] = seqs[b];
                seqs[b] = t;
            }
    return n;
}

/* Files deleted under a reader: it ends the file it holds, then reports
 * the seqs of the files gone as a gap record, never silently. */
static void test_journal_deleted_under_reader(void **state)
{
    const char *dir = *state;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    uint64_t seqs[256];
    int n;

    write_small_segments(dir, 8000);
    n = seg_list(dir, seqs, 256);
    assert_true(n >= 6);
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    jt_check(&rec, 0);
    /* The file read, and the two after it, deleted. */
    seg_remove(dir, seqs[0]);
    seg_remove(dir, seqs[1]);
    seg_remove(dir, seqs[2]);
    for (uint64_t s = 1; s < seqs[1]; s++) {
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    assert_int_equal(rec.flags, SHMBUS_JOURNAL_GAP);
    assert_int_equal(rec.seq, seqs[1]);
    assert_int_equal(rec.count, seqs[3] - seqs[1]);
    jt_read_range(r, seqs[3], 8000);
    shmbus_journal_reader_close(r);
}

/* Overwrite @p len bytes at @p off of file @p name of the test topic. */
static void file_poke(const char *dir, const char *name, off_t off, const void *p, size_t len)
{
    char path[256];
    int fd;

    jt_path(path, sizeof(path), dir, name);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, len, off), (ssize_t)len);
    close(fd);
}

/* An index that lies (entries pointing at the wrong records, entries past
 * the file) and one that lags (cut short): seeks and the summary stay
 * right, and a writer reopening rebuilds it. */
static void test_journal_index_lies(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 1 << 20};
    struct sb_jr_index_entry e;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_summary sum;
    char idx[40], path[256];

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 3000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    jt_seg(idx, 0);
    strcat(idx, ".idx");
    /* The fifth entry, sealed but pointing one record off. */
    jt_path(path, sizeof(path), dir, idx);
    {
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, &e, sizeof(e), sizeof(struct sb_jr_index_hdr) + 4 * sizeof(e)),
                         sizeof(e));
        close(fd);
    }
    e.offset += 8;
    e.crc = sb_jr_crc32c(0, &e, offsetof(struct sb_jr_index_entry, crc)); /* resealed */
    file_poke(dir, idx, sizeof(struct sb_jr_index_hdr) + 4 * sizeof(e), &e, sizeof(e));
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    /* A seek to the lying entry's own seq starts before it, no damage. */
    assert_shmbus_ok(shmbus_journal_seek_seq(r, e.seq));
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    jt_check(&rec, e.seq);
    assert_int_equal(shmbus_journal_reader_damaged(r), 0);
    for (uint64_t s = 0; s < 3000; s += 101) {
        assert_shmbus_ok(shmbus_journal_seek_seq(r, s));
        assert_int_equal(shmbus_journal_next(r, &rec), 1);
        jt_check(&rec, s);
    }
    assert_shmbus_ok(shmbus_journal_summary_get(dir, JT_TOPIC, &sum));
    assert_int_equal(sum.records, 3000);
    assert_int_equal(sum.first_seq, 0);
    assert_int_equal(sum.last_seq, 2999);
    /* Lagging: cut to its header. A writer reopening rebuilds it whole. */
    assert_int_equal(truncate(path, sizeof(struct sb_jr_index_hdr)), 0);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, JT_TOPIC, &sum));
    assert_int_equal(sum.records, 3000);
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    assert_shmbus_ok(shmbus_journal_close(j));
    {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > (off_t)(sizeof(struct sb_jr_index_hdr) + 10 * sizeof(e)));
    }
    assert_shmbus_ok(shmbus_journal_seek_seq(r, 2500));
    jt_read_range(r, 2500, 3000);
    shmbus_journal_reader_close(r);
}

/* Listing: the topics with a journal, sorted; the summary of each. */
static void test_journal_list_summary(void **state)
{
    const char *dir = *state;
    static const char *const topics[] = {"b.two", "a.one", "c:three"};
    char names[4][SHMBUS_TOPIC_NAME_MAX + 1];
    char path[256];
    unsigned char buf[301];
    shmbus_journal_summary sum;
    shmbus_journal *j;

    for (int t = 0; t < 3; t++) {
        assert_shmbus_ok(shmbus_journal_open(dir, topics[t], NULL, &j));
        for (uint64_t s = 100; s < 200; s++) {
            shmbus_msg m = jt_msg(buf, s == 150 ? 160 : s);
            if (s > 150 && s < 160)
                continue;
            assert_true(shmbus_journal_append(j, &m) >= 0);
        }
        assert_shmbus_ok(shmbus_journal_close(j));
    }
    /* Not journals: a plain directory, a file, a hidden name. */
    snprintf(path, sizeof(path), "%s/empty.dir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/.hidden", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(shmbus_journal_list(dir, names, 4), 3);
    assert_string_equal(names[0], "a.one");
    assert_string_equal(names[1], "b.two");
    assert_string_equal(names[2], "c:three");
    assert_int_equal(shmbus_journal_list(dir, names, 1), 3);
    assert_int_equal(shmbus_journal_list(dir, NULL, 0), 3);
    assert_int_equal(shmbus_journal_list("/nonexistent/jt", names, 4), -ENOENT);

    assert_shmbus_ok(shmbus_journal_summary_get(dir, "b.two", &sum));
    /* 100..150, a gap 151..159 (150 jumped to 160, so 151.. are the gap), 160..199 */
    assert_int_equal(sum.first_seq, 100);
    assert_int_equal(sum.last_seq, 199);
    assert_int_equal(sum.first_time_ns, 1000000000ull + 100 * 1000u);
    assert_int_equal(sum.last_time_ns, 1000000000ull + 199 * 1000u);
    assert_int_equal(sum.gaps, 1);
    assert_int_equal(sum.gap_messages, 10);
    assert_int_equal(sum.records, 90);
    assert_int_equal(sum.files, 1);
    assert_true(sum.bytes > 90 * sizeof(struct sb_jr_rec));
    assert_int_equal(shmbus_journal_summary_get(dir, "empty.dir", &sum), -ENOENT);
    assert_int_equal(shmbus_journal_summary_get(dir, "nothere", &sum), -ENOENT);
    assert_int_equal(shmbus_journal_summary_get(dir, "../x", &sum), SHMBUS_ERR_BAD_NAME);
}

/* The files get the options' perm exactly (whatever the umask), the
 * directory x where r is. */
static void test_journal_perm(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.perm = 0640};
    char path[256], seg[32];
    shmbus_journal *j;
    struct stat st;
    mode_t old = umask(077);

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    jt_append_range(j, 0, 10, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    umask(old);
    jt_seg(seg, 0);
    jt_path(path, sizeof(path), dir, seg);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    snprintf(path, sizeof(path), "%s/%s", dir, JT_TOPIC);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
}

/* A seek to the seq after the last, when the newest file is a roll's new
 * file with no record yet: a place to stand, as at the end of any file. */
static void test_journal_seek_next_in_empty_file(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    unsigned char buf[301];
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    uint64_t s;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    /* Append until a roll starts the second file; its record stays buffered. */
    for (s = 0;; s++) {
        shmbus_msg m = jt_msg(buf, s);
        assert_int_equal(shmbus_journal_append(j, &m), 1);
        if (jt_count_segs(dir) == 2)
            break;
        assert_shmbus_ok(shmbus_journal_flush(j));
    }
    /* Message s started the new file, named s, and is not written yet:
     * the journal on disk ends at s - 1. */
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_int_equal(shmbus_journal_seek_seq(r, s + 1), SHMBUS_ERR_RANGE);
    assert_shmbus_ok(shmbus_journal_seek_seq(r, s));
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_int_equal(shmbus_journal_next(r, &rec), 1);
    jt_check(&rec, s);
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    shmbus_journal_reader_close(r);
}

/* Retention by age keeps files whose times are ahead of the clock (the
 * clock stepped back, or imported messages stamped by a clock ahead). */
static void test_journal_retain_age_future(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10, .retain_ns = 3600ull * 1000000000u};
    unsigned char buf[301];
    shmbus_journal *j;
    shmbus_journal_stats st;
    uint64_t now = (uint64_t)time(NULL) * 1000000000ull;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    for (uint64_t s = 0; s < 3000; s++) {
        shmbus_msg m = jt_msg(buf, s);
        m.timestamp_ns = now + 7200ull * 1000000000u;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    shmbus_journal_stats_get(j, &st);
    assert_int_equal(st.files_removed, 0);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(jt_count_segs(dir) > 1);
}

/* The first record of the only file damaged: seeks by time still find the
 * messages after it, the damage reported once before them. */
static void test_journal_seek_time_first_damaged(void **state)
{
    const char *dir = *state;
    shmbus_journal *j;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    shmbus_journal_summary sum;
    char seg[32];
    uint64_t bad = 12345;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, NULL, &j));
    jt_append_range(j, 0, 1000, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    jt_seg(seg, 0);
    file_poke(dir, seg,
              (off_t)(sizeof(struct sb_jr_file_hdr) + offsetof(struct sb_jr_rec, time_ns)), &bad,
              sizeof(bad));
    assert_shmbus_ok(shmbus_journal_reader_open(dir, JT_TOPIC, &r));
    assert_shmbus_ok(shmbus_journal_seek_time(r, 1000000000ull + 5u * 1000u));
    assert_int_equal(shmbus_journal_next(r, &rec), SHMBUS_ERR_CORRUPT);
    jt_read_range(r, 5, 1000);
    shmbus_journal_reader_close(r);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, JT_TOPIC, &sum));
    assert_int_equal(sum.first_seq, 1);
}

/* Retention by age past an oldest file whose header is damaged: its age
 * is its modification time, and it stops no retention of the others. */
static void test_journal_retain_age_damaged(void **state)
{
    const char *dir = *state;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    unsigned char buf[301], bad = 0xff;
    uint64_t now = (uint64_t)time(NULL) * 1000000000ull;
    struct timespec old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    shmbus_journal *j;
    shmbus_journal_stats st;
    char name[32], path[256];
    uint64_t s;

    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    for (s = 0; s < 3000; s++) {
        shmbus_msg m = jt_msg(buf, s);
        m.timestamp_ns = now - 7200ull * 1000000000u;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(jt_count_segs(dir) > 3);
    /* The oldest file's header fails its CRC; it was written two hours ago. */
    jt_seg(name, 0);
    file_poke(dir, name, offsetof(struct sb_jr_file_hdr, topic) + 150, &bad, 1);
    jt_path(path, sizeof(path), dir, name);
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);

    o.retain_ns = 3600ull * 1000000000u;
    assert_shmbus_ok(shmbus_journal_open(dir, JT_TOPIC, &o, &j));
    for (; s < 6000; s++) {
        shmbus_msg m = jt_msg(buf, s);
        m.timestamp_ns = now;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    shmbus_journal_stats_get(j, &st);
    assert_shmbus_ok(shmbus_journal_close(j));
    /* Every old file went but the one that holds new messages too. */
    assert_true(st.files_removed > 3);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_journal_seek_time, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_retain_bytes, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_retain_age, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_retain_keeps_newest, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_torn_new_file, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_follow_restart, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_follow_replaced, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_deleted_under_reader, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_index_lies, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_list_summary, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_perm, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_seek_next_in_empty_file, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_retain_age_future, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_seek_time_first_damaged, jt_setup,
                                        jt_teardown),
        cmocka_unit_test_setup_teardown(test_journal_retain_age_damaged, jt_setup, jt_teardown),
    };
    return cmocka_run_group_tests_name("journal_files", tests, NULL, NULL);
}
