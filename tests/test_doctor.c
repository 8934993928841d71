/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checks of `shmbus doctor` (tools/doctor.c): the kernel release and
 * /proc/self/mounts parsers, logind.conf's RemoveIPC= with comments,
 * sections and drop-ins read from fixture files, the descriptor limit,
 * /dev/shm's mount and the runtime directory against temporary files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "doctor.h"

/* A temporary directory per test: fixture files go in it. */
struct fixture {
    char dir[64];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/shmbus-doctor-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Write @p text to DIR/@p name. */
static void write_file(const struct fixture *f, const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void test_kernel_parse_releases(void **state)
{
    unsigned ma = 0, mi = 0;
    struct doctor_result r;

    (void)state;
    assert_int_equal(doctor_kernel_parse("6.1.0-18-amd64", &ma, &mi), 0);
    assert_int_equal(ma, 6);
    assert_int_equal(mi, 1);
    assert_int_equal(doctor_kernel_parse("5.16", &ma, &mi), 0);
    assert_int_equal(mi, 16);
    assert_int_equal(doctor_kernel_parse("6", &ma, &mi), -1);
    assert_int_equal(doctor_kernel_parse("x.1", &ma, &mi), -1);
    assert_int_equal(doctor_kernel_parse("5.", &ma, &mi), -1);
    doctor_check_kernel("5.15.0-91-generic", &r);
    assert_int_equal(r.level, DOCTOR_FAIL);
    doctor_check_kernel("5.16.0", &r);
    assert_int_equal(r.level, DOCTOR_OK);
    doctor_check_kernel("10.0", &r);
    assert_int_equal(r.level, DOCTOR_OK);
    doctor_check_kernel("garbage", &r);
    assert_int_equal(r.level, DOCTOR_WARN);
}

static void test_mounts_find_last_mount(void **state)
{
    struct doctor_mount m;
    const char *text = "proc /proc proc rw,nosuid 0 0\n"
                       "tmpfs /dev/shm tmpfs rw,nosuid,nodev,size=65536k 0 0\n"
                       "shm /dev/shm tmpfs ro,nosuid,size=1024k 0 0";

    (void)state;
    assert_int_equal(doctor_mounts_find(text, "/dev/shm", &m), 0);
    assert_string_equal(m.fstype, "tmpfs");
    assert_string_equal(m.options, "ro,nosuid,size=1024k");
    assert_int_equal(doctor_mounts_find(text, "/dev", &m), -1);
    assert_int_equal(doctor_mounts_find("", "/dev/shm", &m), -1);
    assert_int_equal(doctor_mounts_find("short line\n\n", "/dev/shm", &m), -1);
}

static void test_option_has_whole_words(void **state)
{
    (void)state;
    assert_int_equal(doctor_option_has("ro,nosuid", "ro"), 1);
    assert_int_equal(doctor_option_has("rw,nosuid,ro", "ro"), 1);
    assert_int_equal(doctor_option_has("rw,rootcontext=x", "ro"), 0);
    assert_int_equal(doctor_option_has("", "ro"), 0);
}

static void test_logind_sections_and_comments(void **state)
{
    int v = -5;

    (void)state;
    assert_int_equal(doctor_logind_removeipc("[Login]\n#RemoveIPC=no\n; RemoveIPC=no\n", &v), 0);
    assert_int_equal(doctor_logind_removeipc("[Other]\nRemoveIPC=no\n", &v), 0);
    assert_int_equal(doctor_logind_removeipc("[Login]\n  RemoveIPC = no  \n", &v), 1);
    assert_int_equal(v, 0);
    assert_int_equal(doctor_logind_removeipc("[Login]\nRemoveIPC=no\r\nRemoveIPC=yes\n", &v), 1);
    assert_int_equal(v, 1);
    assert_int_equal(doctor_logind_removeipc("[Login]\nRemoveIPC=off\n[X]\nRemoveIPC=1", &v), 1);
    assert_int_equal(v, 0);
    assert_int_equal(doctor_logind_removeipc("[Login]\nRemoveIPC=maybe\n", &v), -1);
    assert_int_equal(doctor_logind_removeipc("[Login]\nRemoveIPCs=no\nKillUserProcesses=no\n", &v),
                     0);
}

static void test_removeipc_dropins_override(void **state)
{
    struct fixture *f = *state;
    char conf[128], dropins[128];
    struct doctor_result r;

    snprintf(conf, sizeof(conf), "%s/logind.conf", f->dir);
    snprintf(dropins, sizeof(dropins), "%s/logind.conf.d", f->dir);
    /* No files at all: the default, yes, applies to a regular user only. */
    doctor_check_removeipc(conf, dropins, 1000, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    assert_non_null(strstr(r.fix, "RemoveIPC=no"));
    /* logind ignores the setting outside a [Login] section, and reads it
     * only when it starts. */
    assert_non_null(strstr(r.fix, "\"[Login]\""));
    assert_non_null(strstr(r.fix, "restart systemd-logind"));
    doctor_check_removeipc(conf, dropins, 999, &r);
    assert_int_equal(r.level, DOCTOR_OK);
    write_file(f, "logind.conf", "[Login]\nRemoveIPC=no\n");
    doctor_check_removeipc(conf, dropins, 1000, &r);
    assert_int_equal(r.level, DOCTOR_OK);
    /* Drop-ins come after logind.conf, in name order; other files don't count. */
    assert_int_equal(mkdir(dropins, 0700), 0);
    write_file(f, "logind.conf.d/10-a.conf", "[Login]\nRemoveIPC=yes\n");
    write_file(f, "logind.conf.d/20-b.conf", "[Login]\n# nothing\n");
    write_file(f, "logind.conf.d/90-z.conf.bak", "[Login]\nRemoveIPC=no\n");
    doctor_check_removeipc(conf, dropins, 1000, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    assert_non_null(strstr(r.found, "10-a.conf"));
    write_file(f, "logind.conf.d/30-c.conf", "[Login]\nRemoveIPC=no\n");
    doctor_check_removeipc(conf, dropins, 1000, &r);
    assert_int_equal(r.level, DOCTOR_OK);
}

static void test_nofile_bound(void **state)
{
    struct doctor_result r;

    (void)state;
    doctor_check_nofile(DOCTOR_NOFILE_MIN, DOCTOR_NOFILE_MIN, &r);
    assert_int_equal(r.level, DOCTOR_OK);
    doctor_check_nofile(1024, 524288, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    doctor_check_nofile(1024, 4096, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    assert_non_null(strstr(r.fix, "LimitNOFILE"));
}

static void test_shm_mount_checks(void **state)
{
    struct fixture *f = *state;
    char mounts[128], line[512];
    struct doctor_result r;

    snprintf(mounts, sizeof(mounts), "%s/mounts", f->dir);
    /* The fixture directory stands in for /dev/shm; statvfs() reads /tmp. */
    snprintf(line, sizeof(line), "tmpfs %s tmpfs rw,nosuid,nodev,noexec 0 0\n", f->dir);
    write_file(f, "mounts", line);
    doctor_check_shm(mounts, f->dir, &r);
    assert_int_not_equal(r.level, DOCTOR_FAIL);
    assert_non_null(strstr(r.found, "MiB free"));
    snprintf(line, sizeof(line), "tmpfs %s tmpfs ro,size=1k 0 0\n", f->dir);
    write_file(f, "mounts", line);
    doctor_check_shm(mounts, f->dir, &r);
    assert_int_equal(r.level, DOCTOR_FAIL);
    assert_non_null(strstr(r.fix, "read-write"));
    snprintf(line, sizeof(line), "/dev/sda1 %s ext4 rw 0 0\n", f->dir);
    write_file(f, "mounts", line);
    doctor_check_shm(mounts, f->dir, &r);
    assert_int_equal(r.level, DOCTOR_FAIL);
    write_file(f, "mounts", "proc /proc proc rw 0 0\n");
    doctor_check_shm(mounts, f->dir, &r);
    assert_int_equal(r.level, DOCTOR_FAIL);
}

static void test_rundir_socket(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char sock[sizeof(sa.sun_path)];
    struct doctor_result r;
    int s;

    snprintf(sock, sizeof(sock), "%s/missing/b.sock", f->dir);
    doctor_check_rundir(sock, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    snprintf(sock, sizeof(sock), "%s/b.sock", f->dir);
    doctor_check_rundir(sock, &r);
    assert_int_equal(r.level, DOCTOR_WARN);
    assert_non_null(strstr(r.found, "mode 0700"));
    s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    assert_true(s >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    doctor_check_rundir(sock, &r);
    close(s);
    assert_int_equal(r.level, DOCTOR_OK);
    assert_non_null(strstr(r.found, "socket owner"));
}

static void test_read_file_capped(void **state)
{
    struct fixture *f = *state;
    char path[128], buf[8];

    write_file(f, "long", "0123456789abcdef");
    snprintf(path, sizeof(path), "%s/long", f->dir);
    assert_int_equal(doctor_read_file(path, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "0123456");
    snprintf(path, sizeof(path), "%s/none", f->dir);
    assert_true(doctor_read_file(path, buf, sizeof(buf)) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_parse_releases),
        cmocka_unit_test(test_mounts_find_last_mount),
        cmocka_unit_test(test_option_has_whole_words),
        cmocka_unit_test(test_logind_sections_and_comments),
        cmocka_unit_test_setup_teardown(test_removeipc_dropins_override, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_nofile_bound),
        cmocka_unit_test_setup_teardown(test_shm_mount_checks, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rundir_socket, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_read_file_capped, fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests_name("doctor", tests, NULL, NULL);
}
