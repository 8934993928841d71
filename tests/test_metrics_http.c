/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint's pure parts: the HTTP request reader
 * (daemon/metrics/http.h) on complete, partial, malformed and oversized
 * requests and its bearer token; and the exposition writer
 * (daemon/metrics/expo.h) escaping label values and HELP text.
 */
#include "testutil.h"

#include <string.h>

#include "metrics/expo.h"
#include "metrics/http.h"

static int parse(const char *s, struct sbm_http_req *r)
{
    return sbm_http_parse(s, strlen(s), r);
}

static void test_http_reads_get_and_head(void **state)
{
    struct sbm_http_req r;

    (void)state;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), SBM_HTTP_OK);
    assert_int_equal(r.method, SBM_HTTP_GET);
    assert_true(r.metrics);
    assert_null(r.token);
    assert_int_equal(parse("HEAD /metrics?x=1 HTTP/1.0\n\n", &r), SBM_HTTP_OK);
    assert_int_equal(r.method, SBM_HTTP_HEAD);
    assert_true(r.metrics);
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\nbody", &r), SBM_HTTP_OK);
    assert_int_equal(r.method, SBM_HTTP_OTHER);
    assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n", &r), SBM_HTTP_OK);
    assert_false(r.metrics);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &r), SBM_HTTP_OK);
    assert_false(r.metrics);
}

static void test_http_waits_for_the_blank_line(void **state)
{
    struct sbm_http_req r;

    (void)state;
    assert_int_equal(parse("", &r), SBM_HTTP_MORE);
    assert_int_equal(parse("GET /metr", &r), SBM_HTTP_MORE);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), SBM_HTTP_MORE);
}

static void test_http_refuses_malformed(void **state)
{
    static const char *const bad[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics HTTP/1.1 x\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nX: a\001b\r\n\r\n",
    };
    struct sbm_http_req r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &r) != SBM_HTTP_BAD)
            fail_msg("accepted: %s", bad[i]);
}

static void test_http_bounds_size_and_headers(void **state)
{
    static char buf[SBM_HTTP_REQ_MAX + 64];
    struct sbm_http_req r;
    size_t n;

    (void)state;
    /* A request line that never ends within the bound. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    assert_int_equal(sbm_http_parse(buf, sizeof(buf), &r), SBM_HTTP_LARGE);
    assert_int_equal(sbm_http_parse(buf, SBM_HTTP_REQ_MAX - 1, &r), SBM_HTTP_MORE);
    /* One header too many. */
    n = (size_t)sprintf(buf, "GET /metrics HTTP/1.1\r\n");
    for (unsigned i = 0; i <= SBM_HTTP_HEADERS_MAX; i++)
        n += (size_t)sprintf(buf + n, "X-%u: y\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    assert_int_equal(sbm_http_parse(buf, n, &r), SBM_HTTP_LARGE);
}

static void test_http_reads_the_bearer_token(void **state)
{
    struct sbm_http_req r;

    (void)state;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nauthorization:  bearer s3cr3t \r\n\r\n", &r),
                     SBM_HTTP_OK);
    assert_int_equal(r.token_len, 6);
    assert_memory_equal(r.token, "s3cr3t", 6);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\r\n", &r),
                     SBM_HTTP_OK);
    assert_null(r.token);
}

static void test_expo_escapes_labels_and_help(void **state)
{
    struct sbm_out o = {0};

    (void)state;
    sbm_out_label(&o, "a\\b\"c\nd");
    assert_string_equal(o.p, "a\\\\b\\\"c\\nd");
    o.len = 0;
    sbm_out_label(&o, "\"");
    assert_string_equal(o.p, "\\\"");
    o.len = 0;
    sbm_out_family(&o, "x_total", "counter", "say \"hi\"\\\n");
    assert_string_equal(o.p, "# HELP x_total say \"hi\"\\\\\\n\n# TYPE x_total counter\n");
    assert_false(o.oom);
    sbm_out_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_reads_get_and_head),
        cmocka_unit_test(test_http_waits_for_the_blank_line),
        cmocka_unit_test(test_http_refuses_malformed),
        cmocka_unit_test(test_http_bounds_size_and_headers),
        cmocka_unit_test(test_http_reads_the_bearer_token),
        cmocka_unit_test(test_expo_escapes_labels_and_help),
    };

    return cmocka_run_group_tests_name("metrics_http", tests, NULL, NULL);
}
