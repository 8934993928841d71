/*
 * shmbusd's configuration (daemon/config.c): parsing on top of the
 * defaults, sizes with their suffixes, the options' bounds, --help, the
 * usage text printing the defaults sbd_config_defaults() sets, and the
 * table of defaults in docs/design.md agreeing with them.
 */
#include "testutil.h"

#include <getopt.h>

#include "config.h"

/* Parse the options @p args (NULL-terminated) after "shmbusd --bus tcfg"
 * into @p c. @return what sbd_config_parse() does. */
static int parse(struct sbd_config *c, const char *const *args)
{
    char *argv[16] = {"shmbusd", "--bus", "tcfg"};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_parse_keeps_defaults),
        cmocka_unit_test(test_config_help),
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_config_size_text),
        cmocka_unit_test(test_config_usage_prints_defaults),
        cmocka_unit_test(test_config_docs_match_defaults),
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
