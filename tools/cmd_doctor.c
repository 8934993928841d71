/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus doctor`: run the checks of doctor.h against this machine (its
 * uname, /proc/self/mounts, /dev/shm, logind.conf, limits, and the
 * runtime directory shmbus_bus_resolve() gives) and print one line per
 * check: OK, WARN or FAIL, what it found, and what to change; or, with
 * --json, one JSON object per check on its own line.
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "doctor.h"

void cli_doctor_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] doctor [--json]\n"
            "Check this machine for what breaks a shmbus bus, and say what to change:\n"
            "  kernel     Linux >= 5.16\n"
            "  syscalls   futex_waitv and pidfd_open work (not blocked by seccomp)\n"
            "  shm        /dev/shm is a writable tmpfs with at least 64 MiB free\n"
            "  removeipc  systemd-logind's RemoveIPC= (logind.conf and logind.conf.d/)\n"
            "             does not delete this user's segments at logout\n"
            "  nofile     RLIMIT_NOFILE holds shmbusd's default limits (%u)\n"
            "  rundir     the bus's runtime directory: owner, mode, and whether this\n"
            "             user may connect to its socket\n"
            "Each line reads: LEVEL CHECK what was found [-> what to change]. With\n"
            "--json, each line is {\"check\":..,\"level\":..,\"found\":..,\"fix\":..}\n"
            "(fix is \"\" when the level is OK).\n"
            "Exit status: 0 no check FAILed (WARNs allowed), 1 one did, 2 bad usage.\n",
            DOCTOR_NOFILE_MIN);
}

/* Print as text or as JSON lines (--json). */
static int doctor_json;

static int doctor_print(const char *name, const struct doctor_result *r)
{
    if (doctor_json) {
        printf("{\"check\":\"%s\",\"level\":\"%s\",\"found\":", name, doctor_level_name(r->level));
        cli_json_str(r->found);
        printf(",\"fix\":");
        cli_json_str(r->fix);
        printf("}\n");
        return r->level == DOCTOR_FAIL;
    }
    printf("%-4s %-9s %s", doctor_level_name(r->level), name, r->found);
    if (r->fix[0] != '\0')
        printf(" -> %s", r->fix);
    printf("\n");
    return r->level == DOCTOR_FAIL;
}

/* The checks that need no bus: kernel, syscalls, shm, removeipc, nofile. */
static int doctor_machine(void)
{
    struct doctor_result r;
    struct utsname u;
    struct rlimit rl = {0, 0};
    int fails = 0;

    if (uname(&u) < 0)
        snprintf(u.release, sizeof(u.release), "unknown");
    doctor_check_kernel(u.release, &r);
    fails += doctor_print("kernel", &r);
    doctor_check_syscalls(&r);
    fails += doctor_print("syscalls", &r);
    doctor_check_shm("/proc/self/mounts", "/dev/shm", &r);
    fails += doctor_print("shm", &r);
    doctor_check_removeipc("/etc/systemd/logind.conf", "/etc/systemd/logind.conf.d", getuid(), &r);
    fails += doctor_print("removeipc", &r);
    getrlimit(RLIMIT_NOFILE, &rl);
    doctor_check_nofile(rl.rlim_cur, rl.rlim_max, &r);
    fails += doctor_print("nofile", &r);
    return fails;
}

int cli_doctor_main(const char *bus, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct doctor_result r;
    int opt, rc, fails;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'j') {
            doctor_json = 1;
            continue;
        }
        if (opt == 'h') {
            cli_doctor_usage(stdout);
            return CLI_EXIT_OK;
        }
        return cli_usage_hint(argv[0]); /* getopt printed what was wrong */
    }
    if (optind < argc)
        return cli_usage_err(argv[0], "unexpected argument '%s'", argv[optind]);
    rc = shmbus_bus_resolve(bus, NULL, sock, sizeof(sock));
    /* A bad bus name is the caller's error, not the machine's. */
    if (rc == SHMBUS_ERR_BAD_NAME)
        return cli_usage_err(argv[0], "bad bus name");
    fails = doctor_machine();
    if (rc < 0) {
        snprintf(r.found, sizeof(r.found), "socket path: %s", shmbus_strerror(rc));
        snprintf(r.fix, sizeof(r.fix), "use a shorter $SHMBUS_RUNTIME_DIR");
        r.level = DOCTOR_FAIL;
    } else {
        doctor_check_rundir(sock, &r);
    }
    fails += doctor_print("rundir", &r);
    return fails > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
