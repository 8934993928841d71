/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's configuration (daemon/config.c): parsing on top of the
 * defaults, sizes with their suffixes, the options' bounds, --help, the
 * usage text printing the defaults sbd_config_defaults() sets, the
 * recording options (--record, --journal-*), the metrics options
 * (--metrics, --metrics-*), and the table of defaults in
 * docs/design.md agreeing with them.
 */
#include "testutil.h"

#include <getopt.h>

#include "config.h"
#include "fed/fed.h"
#include "shmbus/journal.h"

/* Parse the options @p args (NULL-terminated) after "shmbusd --bus tcfg"
 * into @p c. @return what sbd_config_parse() does. */
static int parse(struct sbd_config *c, const char *const *args)
{
    char *argv[32] = {"shmbusd", "--bus", "tcfg"};
    int argc = 3;

    for (; *args != NULL; args++)
        argv[argc++] = (char *)*args;
    optind = 0; /* glibc: start getopt_long() over */
    return sbd_config_parse(c, argc, argv);
}

static void test_config_parse_keeps_defaults(void **state)
{
    struct sbd_config c, d;

    (void)state;
    sbd_config_defaults(&d);
    assert_int_equal(parse(&c, (const char *const[]){NULL}), 0);
    assert_string_equal(c.bus, "tcfg");
    assert_int_equal(c.max_topics, d.max_topics);
    assert_int_equal(c.reap_interval_ms, d.reap_interval_ms);
    assert_int_equal(c.bridge_max_request, d.bridge_max_request);
    assert_int_equal(c.bridge, 0);
    assert_non_null(strstr(c.lock_path, "tcfg.lock"));
}

static void test_config_help(void **state)
{
    struct sbd_config c;

    (void)state;
    assert_int_equal(parse(&c, (const char *const[]){"--help", NULL}), 1);
}

static void test_config_sizes(void **state)
{
    struct sbd_config c;

    (void)state;
    assert_int_equal(parse(&c, (const char *const[]){"--max-segment", "2m", NULL}), 0);
    assert_int_equal(c.max_segment, 2ull << 20);
    assert_int_equal(parse(&c, (const char *const[]){"--max-shm", "3G", NULL}), 0);
    assert_int_equal(c.max_shm, 3ull << 30);
    assert_int_equal(parse(&c, (const char *const[]){"--max-segment", "0", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--max-segment", "1X", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--max-topics", "4K", NULL}), -1);
}

static void test_config_bounds(void **state)
{
    struct sbd_config c;

    (void)state;
    assert_int_equal(parse(&c, (const char *const[]){"--reap-interval", "1000", NULL}), 0);
    assert_int_equal(parse(&c, (const char *const[]){"--reap-interval", "1001", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-max-request", "1K", NULL}), 0);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-max-request", "1023", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-max-request", "2G", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-max-memory", "1M", NULL}), 0);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-max-memory", "1023K", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge-auth-timeout", "99", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--bridge", ":6379", NULL}), 0);
    assert_string_equal(c.bridge_host, SBD_BRIDGE_HOST_DEFAULT);
    assert_string_equal(c.bridge_port, "6379");
}

static void test_config_size_text(void **state)
{
    char s[SBD_SIZE_TEXT];

    (void)state;
    sbd_config_size_text(1ull << 30, s);
    assert_string_equal(s, "1G");
    sbd_config_size_text(3ull << 20, s);
    assert_string_equal(s, "3M");
    sbd_config_size_text(4096, s);
    assert_string_equal(s, "4K");
    sbd_config_size_text(1000, s);
    assert_string_equal(s, "1000");
}

/* A file @p name in @p dir holding @p text, mode @p mode; its path into
 * @p path. */
static void secret_file(char *path, size_t cap, const char *dir, const char *name, const char *text,
                        mode_t mode)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_config_metrics(void **state)
{
    struct sbd_config c;
    char dir[] = "/tmp/shmbus-tcfg-XXXXXX", tok[128], empty[128];

    (void)state;
    assert_int_equal(parse(&c, (const char *const[]){NULL}), 0);
    assert_int_equal(c.metrics, 0);
    assert_int_equal(c.metrics_max_slots, SBD_METRICS_MAX_SLOTS_DEFAULT);
    assert_int_equal(parse(&c, (const char *const[]){"--metrics", ":9464", NULL}), 0);
    assert_int_equal(c.metrics, 1);
    assert_int_equal(c.bridge, 0);
    assert_string_equal(c.metrics_host, SBD_BRIDGE_HOST_DEFAULT);
    assert_string_equal(c.metrics_port, "9464");
    assert_int_equal(parse(&c, (const char *const[]){"--metrics", "[::1]:0", NULL}), 0);
    assert_string_equal(c.metrics_host, "::1");
    assert_string_equal(c.metrics_port, "0");
    assert_int_equal(parse(&c, (const char *const[]){"--metrics", "9464", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--metrics", ":65536", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--metrics-max-slots", "0", NULL}), 0);
    assert_int_equal(c.metrics_max_slots, 0);
    assert_int_equal(parse(&c, (const char *const[]){"--metrics-max-slots", "x", NULL}), -1);
    assert_non_null(mkdtemp(dir));
    secret_file(tok, sizeof(tok), dir, "tok", "s3cr3t\n", 0600);
    secret_file(empty, sizeof(empty), dir, "empty", "\n", 0600);
    assert_int_equal(parse(&c, (const char *const[]){"--metrics-token-file", tok, NULL}), 0);
    assert_string_equal(c.metrics_token, "s3cr3t");
    assert_int_equal(parse(&c, (const char *const[]){"--metrics-token-file", empty, NULL}), -1);
    unlink(tok);
    unlink(empty);
    rmdir(dir);
}

static void test_config_nats(void **state)
{
    struct sbd_config c;
    char dir[] = "/tmp/shmbus-tcfg-XXXXXX", tok[128], user[128], bad_user[128];

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(parse(&c, (const char *const[]){NULL}), 0);
    assert_int_equal(c.nats, 0);
    assert_string_equal(c.nats_prefix, "shmbus");
    assert_int_equal(parse(&c, (const char *const[]){"--nats",
                                                     "nats://127.0.0.1:4222,tls://h:1,"
                                                     "h2,[::1]:4223",
                                                     NULL}),
                     0);
    assert_int_equal(c.nats, 1);
    /* The default origin: host up to its first dot, then the bus. */
    assert_non_null(strstr(c.nats_origin, "_tcfg"));
    assert_int_equal(sbd_fed_origin_ok(c.nats_origin), 1);
    static const char *const bad_urls[] = {
        "",    ",",    "a,",       "nats://",   "nats://u:p@h:1", "nats://h:0", "nats://h:65536",
        "h:x", "h :1", "http://h", "nats://h/x"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        assert_int_equal(parse(&c, (const char *const[]){"--nats", bad_urls[i], NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-prefix", "a.b",
                                                     "--nats-origin", "o-1", NULL}),
                     0);
    assert_string_equal(c.nats_prefix, "a.b");
    assert_string_equal(c.nats_origin, "o-1");
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-prefix", "a..b", NULL}),
                     -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-origin", "a.b", NULL}),
                     -1);
    /* Federation options without --nats. */
    assert_int_equal(parse(&c, (const char *const[]){"--federate", "a*", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--persist", "a*", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats-origin", "o", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats-prefix", "p", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--persist-replicas", "3", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--persist-max-age", "60", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--persist-max-bytes", "2G", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--persist-window", "16", NULL}), -1);
    /* Files: unreadable, one kind of credentials, token and user read. */
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-creds",
                                                     "/nonexistent/x.creds", NULL}),
                     -1);
    secret_file(tok, sizeof(tok), dir, "token", "s3cret\nmore\n", 0600);
    secret_file(user, sizeof(user), dir, "user", "me:pa:ss\n", 0644);
    secret_file(bad_user, sizeof(bad_user), dir, "bad_user", "nocolon\n", 0600);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--nats-token-file", tok, NULL}), 0);
    assert_string_equal(c.nats_token, "s3cret");
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--nats-user-file", user, NULL}), 0);
    assert_string_equal(c.nats_user, "me");
    assert_string_equal(c.nats_password, "pa:ss");
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--nats-user-file", bad_user, NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-user-file", user,
                                                     "--nats-token-file", tok, NULL}),
                     -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-cert", tok, NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--nats-cert", tok,
                                                     "--nats-key", tok, NULL}),
                     0);
    unlink(tok);
    unlink(user);
    unlink(bad_user);
    rmdir(dir);
}

static void test_config_fed_patterns(void **state)
{
    struct sbd_config c;

    (void)state;
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--federate",
                                        "prices.*,mode=reliable,capacity=4096,max-msg=64K,"
                                        "max-subs=8,stall-timeout=500",
                                        "--export", "log?", "--import", "cmd.[ab]", "--persist",
                                        "prices.eu", NULL}),
        0);
    assert_int_equal(c.n_fed, 4);
    assert_int_equal(c.fed[0].kind, SBD_FED_FEDERATE);
    assert_string_equal(c.fed[0].glob, "prices.*");
    assert_int_equal(c.fed[0].mode, SHMBUS_RELIABLE);
    assert_int_equal(c.fed[0].capacity, 4096);
    assert_int_equal(c.fed[0].max_msg_size, 64 * 1024);
    assert_int_equal(c.fed[0].max_subscribers, 8);
    assert_int_equal(c.fed[0].stall_timeout_ms, 500);
    assert_int_equal(c.fed[1].kind, SBD_FED_EXPORT);
    assert_int_equal(c.fed[2].kind, SBD_FED_IMPORT);
    assert_int_equal(c.fed[3].kind, SBD_FED_PERSIST);
    assert_int_equal(c.fed[3].mode, 0);
    static const char *const bad[][2] = {
        {"--federate", ""},
        {"--federate", "a b"},
        {"--federate", "a,mode=x"},
        {"--federate", "a,nokey"},
        {"--federate", "a,foo=1"},
        {"--import", "a,capacity=0"},
        {"--export", "a,mode=lossy"},
        {"--persist", "a,capacity=2"},
        {"--import", "a,max-msg=5G"},
        {"--federate", "a,mode="},
        /* Out of the bounds of a topic (capacity a power of two 2..2^24,
         * max-msg up to 16 MiB, max-subs 1..1024). */
        {"--import", "a,capacity=3"},
        {"--federate", "a,capacity=33554432"},
        {"--import", "a,max-msg=17M"},
        {"--federate", "a,max-subs=1025"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            parse(&c, (const char *const[]){"--nats", "h", bad[i][0], bad[i][1], NULL}), -1);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-replicas", "5",
                                        "--persist-max-age", "0", "--persist-max-bytes", "2G",
                                        "--persist-window", "65536", NULL}),
        0);
    assert_int_equal(c.persist_replicas, 5);
    assert_true(c.persist_max_bytes == 2ull << 30);
    assert_int_equal(c.persist_window, 65536);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-max-age", "3600", NULL}), 0);
    assert_int_equal(c.persist_max_age_s, 3600);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-replicas", "6", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--nats", "h", "--persist-window", "0", NULL}),
                     -1);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-max-age", "1K", NULL}), -1);
    /* The age in ns must fit JetStream's int64. */
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-max-age", "9223372036", NULL}),
        0);
    assert_int_equal(c.persist_max_age_s, 9223372036ull);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-max-age", "9223372037", NULL}),
        -1);
    assert_int_equal(
        parse(&c, (const char *const[]){"--nats", "h", "--persist-max-age", "18446744074", NULL}),
        -1);
}

/* The defaults as the usage text and the docs write them: option, value. */
struct shown {
    const char *opt;
    char value[SBD_SIZE_TEXT];
};

static size_t shown_defaults(struct shown *v)
{
    struct sbd_config d;
    size_t n = 0;

    sbd_config_defaults(&d);
#define SHOW_U32(o, x)  v[n].opt = (o), snprintf(v[n++].value, SBD_SIZE_TEXT, "%u", (unsigned)(x))
#define SHOW_SIZE(o, x) v[n].opt = (o), sbd_config_size_text((x), v[n++].value)
    SHOW_U32("--max-topics", d.max_topics);
    SHOW_U32("--max-clients", d.max_clients);
    SHOW_U32("--max-slots", d.max_slots);
    SHOW_SIZE("--max-segment", d.max_segment);
    SHOW_U32("--reap-interval", d.reap_interval_ms);
    SHOW_U32("--bridge-max-conns", d.bridge_max_conns);
    SHOW_U32("--bridge-max-subs", d.bridge_max_subs);
    SHOW_SIZE("--bridge-max-request", d.bridge_max_request);
    SHOW_SIZE("--bridge-max-output", d.bridge_max_output);
    SHOW_SIZE("--bridge-max-memory", d.bridge_max_memory);
    SHOW_SIZE("--bridge-max-sub-memory", d.bridge_max_sub_memory);
    SHOW_U32("--bridge-auth-timeout", d.bridge_auth_ms);
    SHOW_U32("--bridge-cmd-timeout", d.bridge_cmd_ms);
    SHOW_U32("--bridge-pub-timeout", d.bridge_pub_timeout_ms);
    v[n].opt = "--nats-prefix", snprintf(v[n++].value, SBD_SIZE_TEXT, "%.20s", d.nats_prefix);
    SHOW_U32("--persist-replicas", d.persist_replicas);
    SHOW_U32("--persist-max-age", d.persist_max_age_s);
    SHOW_SIZE("--persist-max-bytes", d.persist_max_bytes);
    SHOW_U32("--persist-window", d.persist_window);
#undef SHOW_U32
#undef SHOW_SIZE
    return n;
}

static void test_config_usage_prints_defaults(void **state)
{
    struct shown v[32];
    size_t n = shown_defaults(v), len = 0;
    char *text = NULL, want[64];
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    sbd_config_usage(f);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        const char *at = strstr(text, v[i].opt);

        assert_non_null(at);
        snprintf(want, sizeof(want), "(default %s", v[i].value);
        /* the option's default is the first one written after its name */
        assert_non_null(strstr(at, want));
        assert_true(strstr(at, want) == strstr(at, "(default "));
    }
    free(text);
}

static void test_config_docs_match_defaults(void **state)
{
    struct shown v[32];
    size_t n = shown_defaults(v);
    FILE *f = fopen(SHMBUS_DESIGN_MD, "r");
    char line[512], want[128];
    size_t found = 0;

    (void)state;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; i < n; i++) {
            snprintf(want, sizeof(want), "| `%s ", v[i].opt);
            if (strncmp(line, want, strlen(want)) != 0)
                continue;
            /* "| `--opt ARG` | DEFAULT |" */
            snprintf(want, sizeof(want), "` | %s |", v[i].value);
            if (strstr(line, want) == NULL)
                fail_msg("docs/design.md: %s: want default %s in: %s", v[i].opt, v[i].value, line);
            found++;
        }
    }
    fclose(f);
    assert_int_equal(found, n);
}

/* --record and --journal-*: their values, and what is refused. */
static void test_config_rec(void **state)
{
    struct sbd_config c;
    char dir[] = "/tmp/shmbus-tcfg.XXXXXX", file[sizeof(dir) + 8];
    uint64_t fds;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/f", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(parse(&c, (const char *const[]){NULL}), 0);
    assert_int_equal(c.n_rec, 0);
    assert_int_equal(c.journal_sync, SHMBUS_JOURNAL_SYNC_BATCH);
    assert_int_equal(
        parse(&c, (const char *const[]){"--record", "a*", "--record", "b", "--journal-dir", dir,
                                        "--journal-retain", "10m", "--journal-sync", "250",
                                        "--journal-segment-size", "64K", NULL}),
        0);
    assert_int_equal(c.n_rec, 2);
    assert_string_equal(c.rec_glob[1], "b");
    assert_string_equal(c.journal_dir, dir);
    assert_int_equal(c.journal_retain_ns, 600ull * 1000000000ull);
    assert_int_equal(c.journal_retain_bytes, 0);
    assert_int_equal(c.journal_sync, SHMBUS_JOURNAL_SYNC_INTERVAL);
    assert_int_equal(c.journal_sync_ms, 250);
    assert_int_equal(c.journal_segment_size, 64 << 10);
    /* 10M is a size, 10m an age; either order; "none". */
    assert_int_equal(
        parse(&c, (const char *const[]){"--record", "a", "--journal-dir", dir, "--journal-retain",
                                        "2d,10M", "--journal-sync", "none", NULL}),
        0);
    assert_int_equal(c.journal_retain_bytes, 10 << 20);
    assert_int_equal(c.journal_retain_ns, 2ull * 86400 * 1000000000ull);
    assert_int_equal(c.journal_sync, SHMBUS_JOURNAL_SYNC_NONE);
    /* Each topic may be recorded: its journal's descriptors are budgeted
     * (the reaper's pidfds get only what is left). */
    fds = sbd_config_fds(&c);
    c.n_rec = 0;
    assert_int_equal(fds - sbd_config_fds(&c), (uint64_t)c.max_topics * SBD_REC_FDS_PER_TOPIC);
    /* Refused. */
    static const char *const bad[][2] = {
        {"--journal-retain", "1h,2h"},
        {"--journal-retain", "1G,2G"},
        {"--journal-retain", "0s"},
        {"--journal-retain", "1,2,3"},
        {"--journal-retain", "h"},
        {"--journal-retain", "99999999999d"},
        {"--journal-sync", "0"},
        {"--journal-sync", "3600001"},
        {"--journal-sync", "fast"},
        {"--journal-segment-size", "65535"},
        {"--journal-segment-size", "1025G"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(&c, (const char *const[]){"--record", "a", "--journal-dir", dir, bad[i][0],
                                            bad[i][1], NULL}) != -1)
            fail_msg("%s %s accepted", bad[i][0], bad[i][1]);
    assert_int_equal(parse(&c, (const char *const[]){"--record", "a", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--journal-dir", dir, NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--journal-sync", "none", NULL}), -1);
    assert_int_equal(parse(&c, (const char *const[]){"--record", "a", "--journal-dir", file, NULL}),
                     -1);
    unlink(file);
    rmdir(dir);
    assert_int_equal(parse(&c, (const char *const[]){"--record", "a", "--journal-dir", dir, NULL}),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_parse_keeps_defaults),
        cmocka_unit_test(test_config_help),
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_config_size_text),
        cmocka_unit_test(test_config_metrics),
        cmocka_unit_test(test_config_nats),
        cmocka_unit_test(test_config_fed_patterns),
        cmocka_unit_test(test_config_rec),
        cmocka_unit_test(test_config_usage_prints_defaults),
        cmocka_unit_test(test_config_docs_match_defaults),
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
