/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JetStream streams for persisted topics (daemon/fed/stream.c): the
 * mapping of --persist patterns to subject filters and stream names, NATS
 * subject matching, and creating and checking streams on a real
 * nats-server with JetStream that the test starts on a free loopback port
 * with a store in a temporary directory (both gone on every exit: the
 * server dies with the test through PR_SET_PDEATHSIG, the directory in the
 * teardown or at exit).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "fed/stream.h"

static pid_t server_pid = -1;
static char store_dir[64];
static char server_url[64];
static natsConnection *nc;
static jsCtx *js;

/* A loopback port nobody listens on now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void server_kill(void)
{
    char cmd[128];

    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    if (store_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", store_dir);
        store_dir[0] = '\0';
    }
}

static pid_t server_spawn(int port)
{
    char p[16], log[96];
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    snprintf(p, sizeof(p), "%d", port);
    snprintf(log, sizeof(log), "%s/server.log", store_dir);
    execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p, "-js", "-sd", store_dir, "-l",
           log, (char *)NULL);
    _exit(127);
}

/* Connect to the server just spawned, for up to 10 s. */
static int server_connect(void)
{
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 50000000};

        if (natsConnection_ConnectTo(&nc, server_url) == NATS_OK)
            return 0;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            return -1; /* it exited: the port was taken meanwhile */
        }
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(store_dir, sizeof(store_dir), "/tmp/shmbus-js-XXXXXX");
    if (mkdtemp(store_dir) == NULL) {
        store_dir[0] = '\0';
        return -1;
    }
    atexit(server_kill);
    for (int tries = 0; tries < 5; tries++) {
        int port = free_port();

        snprintf(server_url, sizeof(server_url), "nats://127.0.0.1:%d", port);
        server_pid = server_spawn(port);
        if (server_pid > 0 && server_connect() == 0)
            return natsConnection_JetStream(&js, nc, NULL) == NATS_OK ? 0 : -1;
        server_kill();
        if (mkdtemp(strcpy(store_dir, "/tmp/shmbus-js-XXXXXX")) == NULL)
            return -1;
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    server_kill();
    nats_Close();
    return 0;
}

static void assert_filter(const char *pattern, const char *want)
{
    char out[SBF_STREAM_FILTER_MAX + 1];
    const char *why;

    assert_int_equal(sbf_stream_filter("shmbus", pattern, out, sizeof(out), &why), 0);
    assert_string_equal(out, want);
}

static void assert_refused(const char *pattern)
{
    char out[SBF_STREAM_FILTER_MAX + 1];
    const char *why;

    assert_int_equal(sbf_stream_filter("shmbus", pattern, out, sizeof(out), &why), -EINVAL);
    assert_non_null(why);
}

static void test_stream_filter_maps_tokens(void **state)
{
    char out[12];
    const char *why;

    (void)state;
    assert_filter("orders", "shmbus.orders");
    assert_filter("md.*", "shmbus.md.>");
    assert_filter("*", "shmbus.>");
    assert_filter("a.*.c", "shmbus.a.*.c");
    assert_filter("*.b", "shmbus.*.b");
    assert_filter("x:y.a-b_c", "shmbus.x:y.a-b_c");
    assert_refused("a..b");
    assert_refused("a.");
    assert_refused(".a");
    assert_refused("");
    assert_refused("md*");
    assert_refused("a.b*.c");
    assert_refused("a?");
    assert_refused("[ab].c");
    assert_refused("a\\*");
    assert_refused("a b");
    assert_refused("a.>");
    /* too long for the buffer: refused, not cut */
    assert_int_equal(sbf_stream_filter("shmbus", "abcdef", out, sizeof(out), &why), -ENAMETOOLONG);
    assert_int_equal(sbf_stream_filter("shmbus", "abcd", out, sizeof(out), &why), 0);
    assert_string_equal(out, "shmbus.abcd");
}

static void assert_stream_name_valid(const char *name)
{
    size_t n = strlen(name);

    assert_true(n > 9 && n <= SBF_STREAM_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-');
    }
}

static void test_stream_name_valid_and_distinct(void **state)
{
    char a[SBF_STREAM_NAME_MAX + 1], b[SBF_STREAM_NAME_MAX + 1];
    char longpat[SHMBUS_TOPIC_NAME_MAX + 1];

    (void)state;
    sbf_stream_name("shmbus", "md.*", a);
    assert_stream_name_valid(a);
    assert_memory_equal(a, "shmbus_md__", 11);
    sbf_stream_name("shmbus", "md_*", b);
    assert_stream_name_valid(b);
    assert_string_not_equal(a, b);
    sbf_stream_name("shmbus.x", "md.*", b);
    assert_string_not_equal(a, b);
    sbf_stream_name("shmbus", "md.*", b);
    assert_string_equal(a, b);
    memset(longpat, 'z', sizeof(longpat) - 1);
    longpat[sizeof(longpat) - 1] = '\0';
    sbf_stream_name("shmbus", longpat, a);
    assert_stream_name_valid(a);
    longpat[5] = 'y';
    sbf_stream_name("shmbus", longpat, b);
    assert_string_not_equal(a, b);
}

static int match(const char *filter, const char *subj)
{
    return sbf_stream_match(filter, subj, strlen(subj));
}

static void test_stream_match_subjects(void **state)
{
    (void)state;
    assert_true(match("shmbus.md.>", "shmbus.md.a"));
    assert_true(match("shmbus.md.>", "shmbus.md.a.b.c"));
    assert_false(match("shmbus.md.>", "shmbus.md"));
    assert_false(match("shmbus.md.>", "shmbus.mdx.a"));
    assert_true(match("shmbus.a.*.c", "shmbus.a.b.c"));
    assert_false(match("shmbus.a.*.c", "shmbus.a.b.b.c"));
    assert_false(match("shmbus.a.*.c", "shmbus.a.b"));
    assert_true(match("shmbus.orders", "shmbus.orders"));
    assert_false(match("shmbus.orders", "shmbus.orders.x"));
    assert_false(match("shmbus.orders", "shmbus.order"));
    assert_false(match("shmbus.orders.x", "shmbus.orders"));
    assert_false(match("shmbus.*", "shmbus."));
    assert_false(match("shmbus.>", "shmbus..a"));
    assert_false(match("shmbus.*.b", "shmbus..b"));
    assert_true(match("shmbus.>", "shmbus.x"));
}

static struct sbf_stream_opts opts(uint64_t max_bytes)
{
    struct sbf_stream_opts o = {.prefix = "shmbus",
                                .replicas = 1,
                                .max_age_s = 0,
                                .max_bytes = max_bytes,
                                .dup_window_ns = SBF_STREAM_DUP_WINDOW_NS};
    return o;
}

static void test_stream_created_then_checked(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;
    jsStreamInfo *si = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "md.*"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    assert_true(s.ok);
    assert_int_equal(js_GetStreamInfo(&si, js, s.name, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], "shmbus.md.>");
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->Config->Retention, js_LimitsPolicy);
    assert_int_equal(si->Config->Discard, js_DiscardOld);
    assert_int_equal(si->Config->MaxBytes, 1 << 20);
    assert_int_equal(si->Config->Duplicates, (int64_t)SBF_STREAM_DUP_WINDOW_NS);
    jsStreamInfo_Destroy(si);
    /* it captures the topics the pattern covers */
    assert_int_equal(js_Publish(&pa, js, "shmbus.md.x.y", "m", 1, NULL, &jerr), NATS_OK);
    assert_string_equal(pa->Stream, s.name);
    jsPubAck_Destroy(pa);
    /* a second start finds it and uses it */
    s.ok = 0;
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    assert_true(s.ok);
}

static void test_stream_keeps_messages_for_a_late_consumer(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsSubOptions so;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "late"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    /* published while no bus has a consumer yet (both daemons came up
     * while the server was down, the exporter connected first) */
    assert_int_equal(js_Publish(&pa, js, "shmbus.late", "early", 5, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(pa);
    jsSubOptions_Init(&so);
    so.Stream = s.name;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckExplicit;
    assert_int_equal(js_PullSubscribe(&sub, js, s.filter, "lateimporter", NULL, &so, &jerr),
                     NATS_OK);
    assert_int_equal(natsSubscription_Fetch(&list, sub, 1, 5000, &jerr), NATS_OK);
    assert_int_equal(list.Count, 1);
    assert_int_equal(natsMsg_GetDataLength(list.Msgs[0]), 5);
    assert_memory_equal(natsMsg_GetData(list.Msgs[0]), "early", 5);
    natsMsgList_Destroy(&list);
    natsSubscription_Destroy(sub);
}

static void test_stream_differences_logged_not_changed(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20), other = opts(2u << 20);
    struct sbf_stream s;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    (void)state;
    other.max_age_s = 3600;
    other.replicas_given = 1;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "diff"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    assert_int_equal(sbf_stream_ensure(js, &other, &s), 0);
    assert_true(s.ok);
    assert_int_equal(js_GetStreamInfo(&si, js, s.name, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->MaxBytes, 1 << 20);
    assert_int_equal(si->Config->MaxAge, 0);
    jsStreamInfo_Destroy(si);
}

/* Run sbf_stream_ensure() with stderr (sbd_log()'s, before
 * sbd_log_start()) in @p log. */
static int ensure_logged(const struct sbf_stream_opts *o, struct sbf_stream *s, char *log,
                         size_t cap)
{
    FILE *tmp = tmpfile();
    int saved = dup(2), rc;
    size_t n;

    assert_non_null(tmp);
    assert_true(saved >= 0);
    fflush(stderr);
    assert_true(dup2(fileno(tmp), 2) == 2);
    rc = sbf_stream_ensure(js, o, s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(log, 1, cap - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    return rc;
}

static void test_stream_replicas_checked_only_when_given(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;
    char log[2048];

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "repl"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    /* the default, resolved from fewer servers than the stream was made
     * with: nothing to say */
    o.replicas = 3;
    assert_int_equal(ensure_logged(&o, &s, log, sizeof(log)), 0);
    assert_null(strstr(log, "replicas"));
    /* --persist-replicas 3: the difference is said, the stream used */
    o.replicas_given = 1;
    assert_int_equal(ensure_logged(&o, &s, log, sizeof(log)), 0);
    assert_non_null(strstr(log, "replicas 1, not 3"));
    assert_true(s.ok);
}

static void test_stream_other_subjects_refused(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;
    jsStreamConfig c;
    const char *subjects[] = {"elsewhere.>"};
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "taken"), 0);
    jsStreamConfig_Init(&c);
    c.Name = s.name;
    c.Subjects = subjects;
    c.SubjectsLen = 1;
    assert_int_equal(js_AddStream(&si, js, &c, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);
    s.ok = 1;
    assert_int_equal(sbf_stream_ensure(js, &o, &s), -EIO);
    assert_false(s.ok);
}

static void test_stream_overlap_refused_by_server(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream a, b;

    (void)state;
    /* "ov.*" captures ov.x: a stream for "ov.x" would overlap it */
    assert_int_equal(sbf_stream_init(&a, "shmbus", "ov.*"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &a), 0);
    assert_int_equal(sbf_stream_init(&b, "shmbus", "ov.x"), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &b), -EIO);
    assert_false(b.ok);
    assert_true(a.ok);
}

static void test_stream_bad_pattern_logged(void **state)
{
    struct sbf_stream s;

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "md?"), -EINVAL);
    assert_false(s.ok);
}

static void test_stream_replicas_default(void **state)
{
    (void)state;
    assert_int_equal(sbf_stream_replicas(nc, 0), 1);
    assert_int_equal(sbf_stream_replicas(nc, 5), 5);
    assert_int_equal(sbf_stream_replicas(NULL, 0), 1);
}

static void test_stream_no_answer_asked_again(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;
    jsOptions jo;
    jsCtx *quick = NULL;

    (void)state;
    jsOptions_Init(&jo);
    jo.Wait = 200;
    assert_int_equal(natsConnection_JetStream(&quick, nc, &jo), NATS_OK);
    assert_int_equal(sbf_stream_init(&s, "shmbus", "later"), 0);
    /* a server that does not answer: asked again later, not refused */
    assert_int_equal(kill(server_pid, SIGSTOP), 0);
    assert_int_equal(sbf_stream_ensure(quick, &o, &s), -EAGAIN);
    assert_false(s.ok);
    assert_int_equal(kill(server_pid, SIGCONT), 0);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), 0);
    assert_true(s.ok);
    jsCtx_Destroy(quick);
}

/* What is asked again: the passing states of a server or cluster (no
 * answer, nobody answering yet, no leader, a connection the link remakes),
 * never a refusal of what was asked. */
static void test_stream_transient_failures(void **state)
{
    (void)state;
    assert_true(sbf_stream_transient(NATS_TIMEOUT, 0));
    /* cnats's "no responders" from a cluster electing its leader */
    assert_true(sbf_stream_transient(NATS_NO_RESPONDERS, JSNotEnabledErr));
    assert_true(sbf_stream_transient(NATS_CONNECTION_CLOSED, 0));
    assert_true(sbf_stream_transient(NATS_ERR, JSClusterNotAvailErr));
    assert_true(sbf_stream_transient(NATS_ERR, JSClusterNotLeaderErr));
    assert_true(sbf_stream_transient(NATS_ERR, JSClusterNoPeersErr));
    assert_true(sbf_stream_transient(NATS_ERR, JSStreamOfflineErr));
    assert_true(sbf_stream_transient(NATS_ERR, JSConsumerOfflineErr));
    assert_false(sbf_stream_transient(NATS_ERR, JSStreamSubjectOverlapErr));
    assert_false(sbf_stream_transient(NATS_ERR, JSStreamInvalidConfig));
    assert_false(sbf_stream_transient(NATS_NOT_FOUND, JSStreamNotFoundErr));
    assert_false(sbf_stream_transient(NATS_ERR, 0));
    /* the 1st, 2nd, 4th, 8th... failure of a series is logged */
    assert_false(sbf_stream_log_fail(0));
    assert_true(sbf_stream_log_fail(1));
    assert_true(sbf_stream_log_fail(2));
    assert_false(sbf_stream_log_fail(3));
    assert_true(sbf_stream_log_fail(64));
    assert_false(sbf_stream_log_fail(65));
}

/* Last: it closes the shared connection. A connection closed for good is
 * one the daemon's link makes again: asked again later, not refused. */
static void test_stream_server_gone_asked_again(void **state)
{
    struct sbf_stream_opts o = opts(1u << 20);
    struct sbf_stream s;

    (void)state;
    assert_int_equal(sbf_stream_init(&s, "shmbus", "gone"), 0);
    natsConnection_Close(nc);
    assert_int_equal(sbf_stream_ensure(js, &o, &s), -EAGAIN);
    assert_false(s.ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_filter_maps_tokens),
        cmocka_unit_test(test_stream_name_valid_and_distinct),
        cmocka_unit_test(test_stream_match_subjects),
        cmocka_unit_test(test_stream_created_then_checked),
        cmocka_unit_test(test_stream_keeps_messages_for_a_late_consumer),
        cmocka_unit_test(test_stream_differences_logged_not_changed),
        cmocka_unit_test(test_stream_replicas_checked_only_when_given),
        cmocka_unit_test(test_stream_other_subjects_refused),
        cmocka_unit_test(test_stream_overlap_refused_by_server),
        cmocka_unit_test(test_stream_bad_pattern_logged),
        cmocka_unit_test(test_stream_replicas_default),
        cmocka_unit_test(test_stream_no_answer_asked_again),
        cmocka_unit_test(test_stream_transient_failures),
        cmocka_unit_test(test_stream_server_gone_asked_again),
    };
    return cmocka_run_group_tests_name("fed_stream", tests, group_setup, group_teardown);
}
