/* SPDX-License-Identifier: Apache-2.0 */
/* Segment creation, attachment and header validation (shm/segment.c). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>

#include "shm/segment.h"
#include "util/name.h"

static shmbus_topic_opts small_opts(void)
{
    return (shmbus_topic_opts){.mode = SHMBUS_RELIABLE,
                               .capacity = 64,
                               .max_msg_size = 200,
                               .max_subscribers = 4,
                               .max_groups = 2};
}

static void test_segment_create_attach_roundtrip(void **state)
{
    (void)state;
    const char *name = tu_name("rt");
    shmbus_topic_opts o = small_opts();
    shmbus_topic *a, *b;
    shmbus_topic_info ia, ib;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &a));
    assert_shmbus_ok(shmbus_topic_attach(name, &b));
    assert_shmbus_ok(shmbus_topic_info_get(a, &ia));
    assert_shmbus_ok(shmbus_topic_info_get(b, &ib));
    assert_int_equal(ia.mode, SHMBUS_RELIABLE);
    assert_int_equal(ib.capacity, 64);
    assert_int_equal(ib.max_msg_size, 200);
    assert_int_equal(ib.max_subscribers, 4);
    assert_int_equal(ib.max_groups, 2);
    assert_int_equal(ia.segment_size, ib.segment_size);
    shmbus_topic_destroy(a);
    shmbus_topic_destroy(b);
    shmbus_topic_destroy(NULL);
}

static void test_segment_create_existing_fails(void **state)
{
    (void)state;
    const char *name = tu_name("dup");
    shmbus_topic *a, *b = (shmbus_topic *)&b;

    assert_shmbus_ok(shmbus_topic_create(name, NULL, &a));
    assert_shmbus_rc(shmbus_topic_create(name, NULL, &b), -EEXIST);
    assert_null(b);
    shmbus_topic_destroy(a);
}

static void test_segment_names_validated(void **state)
{
    (void)state;
    char longname[SHMBUS_NAME_MAX + 2];
    const char *bad[] = {"", ".x", "a/b", "sp ace", "tab\t", "../etc", "ü"};
    shmbus_topic *t;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(shmbus_topic_create(bad[i], NULL, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_create(NULL, NULL, &t), SHMBUS_ERR_INVALID);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_shmbus_rc(shmbus_topic_create(longname, NULL, &t), SHMBUS_ERR_INVALID);
    longname[SHMBUS_NAME_MAX] = '\0';
    assert_int_equal(sb_name_valid(longname, SHMBUS_NAME_MAX), 1);
    assert_shmbus_rc(shmbus_topic_attach("a/b", &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_unlink(""), SHMBUS_ERR_INVALID);
}

static void test_segment_options_validated(void **state)
{
    (void)state;
    const char *name = tu_name("opts");
    shmbus_topic_opts bad[] = {
        {.capacity = 3}, {.capacity = 1u << 25},    {.max_msg_size = (16u << 20) + 1},
        {.mode = 7},     {.max_subscribers = 1025}, {.max_groups = 257},
        {.perm = 01777},
    };
    shmbus_topic *t;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(shmbus_topic_create(name, &bad[i], &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), -ENOENT);
}

static void test_segment_perm_applied(void **state)
{
    (void)state;
    const char *name = tu_name("perm");
    shmbus_topic_opts o = {.perm = 0640};
    char path[128];
    struct stat st;
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    shmbus_topic_destroy(t);
}

static void test_segment_no_space_is_an_error(void **state)
{
    (void)state;
    const char *name = tu_name("huge");
    shmbus_topic_opts o = {.capacity = 1u << 24, .max_msg_size = 16u << 20};
    shmbus_topic *t;

    /* 2^24 cells of 16 MiB: far beyond any /dev/shm. */
    assert_shmbus_rc(shmbus_topic_create(name, &o, &t), SHMBUS_ERR_NO_SPACE);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), -ENOENT);
}

static void test_segment_damaged_headers_rejected(void **state)
{
    (void)state;
    const char *name = tu_name("dmg");
    shmbus_topic_opts o = small_opts();
    struct sb_shm_header *h, saved;
    shmbus_topic *t;
    size_t len;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    shmbus_topic_destroy(t);
    h = (struct sb_shm_header *)tu_raw_map(name, &len);
    memcpy(&saved, h, sizeof(saved));

    h->magic ^= 1;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_BAD_MAGIC);
    memcpy(h, &saved, sizeof(saved));
    atomic_store(&h->version, (SB_LAYOUT_MAJOR + 1) << 16);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_VERSION);
    atomic_store(&h->version, 0);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_NOT_READY);
    memcpy(h, &saved, sizeof(saved));
    h->capacity = 48;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_INVALID);
    memcpy(h, &saved, sizeof(saved));
    h->cells_off += 64;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_INVALID);
    memcpy(h, &saved, sizeof(saved));
    /* The pending tables: an offset or a count that would move a member's
     * entries elsewhere (into the cells, past the mapping). */
    h->acks_off += 32;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_INVALID);
    memcpy(h, &saved, sizeof(saved));
    h->ack_entries = 1u << 30;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_INVALID);
    memcpy(h, &saved, sizeof(saved));
    h->mode = SHMBUS_LOSSY; /* a lossy topic has no tables: its geometry differs */
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_INVALID);
    memcpy(h, &saved, sizeof(saved));
    h->max_msg_size = 100000; /* geometry now larger than the file */
    h->cell_size = 100032;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_TRUNCATED);
    memcpy(h, &saved, sizeof(saved));
    h->header_len = 1;
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_VERSION);
    memcpy(h, &saved, sizeof(saved));
    assert_shmbus_ok(shmbus_topic_attach(name, &t));
    shmbus_topic_destroy(t);
    munmap(h, len);
}

/* Reliable topics carry one pending table per group between the
 * publisher records and the cells; lossy ones none. Reserved options are
 * refused, not ignored. */
static void test_segment_pending_tables_laid_out(void **state)
{
    (void)state;
    shmbus_topic_opts o = small_opts();
    struct sb_seg_params p = {.mode = SHMBUS_RELIABLE,
                              .capacity = 64,
                              .max_msg_size = 200,
                              .max_subs = 4,
                              .max_groups = 3,
                              .max_pubs = 2};
    struct sb_geom g;
    shmbus_topic *t;

    assert_shmbus_ok(sb_geom_plan(&p, &g));
    assert_int_equal(g.ack_entries, SB_ACK_ENTRIES);
    assert_int_equal(g.acks_off, g.pubs_off + 2 * sizeof(struct sb_shm_pubrec));
    assert_int_equal(g.acktab_size,
                     sizeof(struct sb_shm_acktab) + SB_ACK_ENTRIES * sizeof(struct sb_shm_pending));
    assert_int_equal(g.cells_off, g.acks_off + 3 * g.acktab_size);
    assert_int_equal(g.cells_off % SB_LINE, 0);
    p.mode = SHMBUS_LOSSY;
    assert_shmbus_ok(sb_geom_plan(&p, &g));
    assert_int_equal(g.ack_entries, 0);
    assert_int_equal(g.cells_off, g.acks_off);

    o.reserved[6] = 1;
    assert_shmbus_rc(shmbus_topic_create(tu_name("resv"), &o, &t), SHMBUS_ERR_INVALID);
}

static void test_segment_truncated_files_rejected(void **state)
{
    (void)state;
    const char *name = tu_name("trunc");
    char path[128];
    shmbus_topic *t;
    int fd;

    snprintf(path, sizeof(path), "/%s", name);
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_NOT_READY);
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_TRUNCATED);
    close(fd);

    /* A valid segment cut short after creation. */
    shmbus_topic_unlink(name);
    shmbus_topic_opts o = small_opts();
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    shmbus_topic_destroy(t);
    fd = shm_open(path, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4096), 0);
    close(fd);
    assert_shmbus_rc(shmbus_topic_attach(name, &t), SHMBUS_ERR_TRUNCATED);
}

/* Random headers in a buffer of exactly map_len bytes: validation must
 * never read past it (ASan) and must accept only consistent geometry. */
static void test_segment_validate_random_headers(void **state)
{
    (void)state;
    unsigned seed = 12345;

    for (int i = 0; i < 20000; i++) {
        uint64_t map_len = (uint64_t)(rand_r(&seed) % 2048);
        uint8_t *buf = malloc(map_len ? map_len : 1);
        struct sb_geom g;
        assert_non_null(buf);
        for (uint64_t j = 0; j < map_len; j++)
            buf[j] = (uint8_t)rand_r(&seed);
        if (map_len >= sizeof(struct sb_shm_header) && (i & 1)) {
            struct sb_shm_header *h = (struct sb_shm_header *)buf;
            h->magic = SB_SHM_MAGIC;
            atomic_store(&h->version, SB_LAYOUT_VERSION);
            h->header_len = sizeof(*h);
        }
        if (sb_geom_validate(buf, map_len, &g) == 0) {
            assert_true(g.total_len <= map_len);
            assert_true(g.acks_off + (uint64_t)g.max_groups * g.acktab_size <= g.cells_off);
            assert_true(g.cells_off + (uint64_t)g.capacity * g.cell_size <= map_len);
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_create_attach_roundtrip),
        cmocka_unit_test(test_segment_create_existing_fails),
        cmocka_unit_test(test_segment_names_validated),
        cmocka_unit_test(test_segment_options_validated),
        cmocka_unit_test(test_segment_perm_applied),
        cmocka_unit_test(test_segment_no_space_is_an_error),
        cmocka_unit_test(test_segment_damaged_headers_rejected),
        cmocka_unit_test(test_segment_pending_tables_laid_out),
        cmocka_unit_test(test_segment_truncated_files_rejected),
        cmocka_unit_test(test_segment_validate_random_headers),
    };
    tu_init();
    return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
