/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd: the registry daemon of one bus. It takes the bus lock, takes
 * over the segments a previous instance left, listens on the bus's control
 * socket and serves clients until SIGTERM or SIGINT, then removes the
 * topics no live process uses and the socket (registry.h
 * sbd_registry_fini()).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "events.h"
#include "bridge/bridge.h"
#include "metrics/metrics.h"
#include "guard.h"
#include "log.h"
#include "loss.h"
#include "notify.h"
#include "reaped.h"
#include "reaper.h"
#include "rec/rec.h"
#include "registry.h"
#include "rundir.h"
#include "segfile.h"

/*
 * Take over the segments a previous instance of this bus left: processes
 * may still be exchanging messages on them (registry.h
 * sbd_registry_adopt(): what cannot be taken over yet is retried, what is
 * not a topic of ours is left alone). @return 0, or -1 (logged) if
 * /dev/shm cannot be listed or a segment to retry cannot be queued.
 */
static int adopt_segments(const struct sbd_config *c, struct sbd_registry *reg)
{
    struct sbd_seg_found *segs;
    long count = sbd_seg_scan(c->bus, &segs);
    unsigned n[SBD_ADOPT_NOMEM + 1] = {0};

    /* Serving without the previous instance's topics (or with a listing
     * cut short) would have every reconnecting client take its topic for
     * gone. */
    if (count < 0) {
        sbd_log(SBD_ERROR, "cannot list /dev/shm to take over the bus's segments: %s",
                strerror((int)-count));
        return -1;
    }
    /* The events topic first, so that its events flow before the other
     * segments are taken over (events.h): a reader of the previous
     * instance's events topic hears of them. */
    for (int events = 1; events >= 0; events--) {
        for (long i = 0; i < count; i++) {
            const char *topic = sbd_seg_topic(c->bus, segs[i].name);

            if ((topic != NULL && strcmp(topic, SBD_EVENTS_TOPIC) == 0) == events)
                n[sbd_registry_adopt(reg, segs[i].name)]++;
        }
        if (events)
            sbd_events_start(reg, c->bus);
    }
    free(segs);
    if (n[SBD_ADOPTED] + n[SBD_ADOPT_LATER] + n[SBD_ADOPT_LEFT] + n[SBD_ADOPT_REMOVED] +
            n[SBD_ADOPT_UNTRUSTED] >
        0)
        sbd_log(SBD_INFO,
                "took over %u topics a previous instance left; %u to retry, %u left alone, "
                "%u removed, %u not ours",
                n[SBD_ADOPTED], n[SBD_ADOPT_LATER], n[SBD_ADOPT_LEFT], n[SBD_ADOPT_REMOVED],
                n[SBD_ADOPT_UNTRUSTED]);
    return n[SBD_ADOPT_NOMEM] > 0 ? -1 : 0;
}

/*
 * Detach from the terminal. The parent exits once the child reports that
 * it listens (so `shmbusd && shmbus pub ...` works), or fails with it.
 * @return the write end of the ready pipe in the child, or -1 on error.
 */
static int detach(void)
{
    int p[2];
    char ok = 0;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        _exit(read(p[0], &ok, 1) == 1 && ok == 1 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0)
        return -1;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    return p[1];
}

/* Make room for the descriptors of every client and topic. */
static void raise_fd_limit(const struct sbd_config *c)
{
    struct rlimit rl;
    rlim_t need;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    need = (rlim_t)sbd_config_fds(c);
    if (rl.rlim_cur < need)
        sbd_log(SBD_WARN,
                "descriptor limit %llu is below the %llu that --max-clients, --max-topics "
                "and --bridge-max-conns need",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
    /* The rest watches the owners that segments name (reaper.h), up to
     * SBD_REAPER_PROCS_PER_TOPIC a topic: fewer, and the others are
     * looked up in /proc at every scan. */
    else if (rl.rlim_cur - need < (rlim_t)c->max_topics * SBD_REAPER_PROCS_PER_TOPIC)
        sbd_log(SBD_INFO,
                "descriptor limit %llu leaves pidfds for %llu of the processes segments name "
                "(%u a topic would take %llu): the others are looked up in /proc at every scan",
                (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur - need),
                SBD_REAPER_PROCS_PER_TOPIC,
                (unsigned long long)c->max_topics * SBD_REAPER_PROCS_PER_TOPIC);
}

/*
 * Say how dead processes will be found (the reaper, reaper.h): pidfds, or
 * else a look at /proc at every scan. Without either the daemon refuses to
 * start: kill(pid, 0) alone cannot tell a reused pid from the process that
 * died, and a dead publisher's claim would stall its topic. @return 0 or -1.
 */
static int liveness_probe(const struct sbd_config *c)
{
    int pidfd_err, proc_err;
    unsigned m = sbd_reaper_probe(&pidfd_err, &proc_err);

    if (m == (SBD_REAP_PIDFD | SBD_REAP_PROC)) {
        sbd_log(SBD_INFO, "dead processes: watched through pidfds");
        return 0;
    }
    if (m == SBD_REAP_PIDFD) {
        sbd_log(SBD_WARN,
                "dead processes: watched through pidfds, but /proc/self/stat cannot be read "
                "(%s): start times unknown, a reused pid passes for its dead owner until it exits",
                strerror(-proc_err));
        return 0;
    }
    if (m == SBD_REAP_PROC) {
        sbd_log(SBD_WARN,
                "dead processes: pidfd_open() fails (%s): falling back to a look at /proc (pid "
                "and start time) of every process at every scan, each %u ms (--reap-interval)",
                strerror(-pidfd_err), c->reap_interval_ms);
        return 0;
    }
    sbd_log(SBD_ERROR,
            "cannot tell dead processes: pidfd_open() fails (%s) and /proc/self/stat cannot be "
            "read (%s); a pid alone cannot tell a reused pid from a dead process: allow "
            "pidfd_open() or mount /proc",
            strerror(-pidfd_err), strerror(-proc_err));
    return -1;
}

static int serve(const struct sbd_config *cfg, int ready_fd)
{
    struct sbd_registry reg;
    struct sbd_control ctl;
    struct sbd_loss *loss;
    struct sbd_rec *rec;
    struct sbd_metrics *metrics;
    int rc;

    if (sbd_registry_init(&reg, cfg) < 0) {
        sbd_log(SBD_ERROR, "out of memory");
        return 1;
    }
    if (adopt_segments(cfg, &reg) < 0) {
        sbd_events_stop();
        sbd_registry_fini(&reg, 0);
        return 1;
    }
    /* Before the reaper (in the control loop) frees a dead daemon's
     * recorder slots, and before the bridge may add topics. */
    rc = sbd_rec_start(cfg, &reg, &rec);
    if (rc < 0) {
        sbd_log(SBD_ERROR, "journal: cannot start recording: %s", shmbus_strerror(rc));
        sbd_events_stop();
        sbd_registry_fini(&reg, 0);
        return 1;
    }
    rc = sbd_control_open(&ctl, cfg, &reg);
    if (rc < 0) {
        sbd_log(SBD_ERROR, "cannot listen on %s: %s", cfg->sock_path, shmbus_strerror(rc));
        sbd_rec_stop(rec);
        sbd_events_stop();
        sbd_registry_fini(&reg, 0);
        return 1;
    }
    ctl.bridge = NULL;
    ctl.fed = NULL;
    ctl.rec = rec;
    if (cfg->bridge) {
        rc = sbd_bridge_start(cfg, &reg, &ctl.bridge);
        if (rc < 0) {
            sbd_log(SBD_ERROR, "bridge: cannot listen on %s port %s: %s", cfg->bridge_host,
                    cfg->bridge_port, shmbus_strerror(rc));
            goto fail_bridge;
        }
    }
    /* Federation connects in the background: an unreachable server does
     * not keep the bus from serving. */
    rc = sbd_fed_start(cfg, &reg, &ctl.fed);
    if (rc < 0) {
        sbd_log(SBD_ERROR, "nats: cannot start federation: %s", shmbus_strerror(rc));
        goto fail_fed;
    }
    rc = sbd_metrics_start(cfg, &reg, ctl.bridge, ctl.fed, &metrics);
    if (rc < 0) {
        sbd_log(SBD_ERROR, "metrics: cannot listen on %s port %s: %s", cfg->metrics_host,
                cfg->metrics_port, shmbus_strerror(rc));
        goto fail_metrics;
    }
    sbd_log(SBD_INFO, "serving bus '%s' on %s (pid %d)", cfg->bus, cfg->sock_path, (int)getpid());
    if (ready_fd >= 0) {
        char ok = 1;

        if (write(ready_fd, &ok, 1) != 1)
            sbd_log(SBD_WARN, "cannot tell the parent we are ready");
        close(ready_fd);
    }
    sbd_notify("READY=1\nSTATUS=serving bus '%s' on %s\nMAINPID=%d", cfg->bus, cfg->sock_path,
               (int)getpid());
    /* Without it the bus still serves, only with no "loss" events (logged). */
    sbd_loss_start(&reg, &loss);
    rc = sbd_control_run(&ctl);
    if (rc < 0)
        sbd_log(SBD_ERROR, "event loop: %s", shmbus_strerror(rc));
    sbd_notify("STOPPING=1\nSTATUS=stopping");
    sbd_loss_stop(loss);
    sbd_metrics_stop(metrics); /* before what it reads */
    sbd_fed_stop(ctl.fed);
    sbd_bridge_stop(ctl.bridge);
    sbd_rec_stop(rec);  /* after the bridge: no topic is added any more */
    sbd_reaped_flush(); /* the deaths of the last passes */
    sbd_events_stop();
    sbd_control_close(&ctl);
    sbd_registry_fini(&reg, 1);
    sbd_log(SBD_INFO, "stopped: socket removed");
    return rc < 0 ? 1 : 0;

    /* What started before a failure, stopped in the reverse order. */
fail_metrics:
    sbd_fed_stop(ctl.fed);
fail_fed:
    sbd_bridge_stop(ctl.bridge);
fail_bridge:
    sbd_rec_stop(rec);
    sbd_events_stop();
    sbd_control_close(&ctl);
    sbd_registry_fini(&reg, 0);
    return 1;
}

int main(int argc, char **argv)
{
    struct sbd_config cfg;
    int rc, lock_fds[2], ready_fd = -1, rec_lock;
    sigset_t stop_signals;

    rc = sbd_config_parse(&cfg, argc, argv);
    if (rc == 2) {
        /* This binary's version, and that of the libshmbus it runs with. */
        printf("shmbusd %s (libshmbus %s)\n", SHMBUS_VERSION_STRING, shmbus_version());
        return 0;
    }
    if (rc != 0) {
        sbd_config_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    /* Before detaching: a journal directory in use is the start's error. */
    if (sbd_rec_lock(&cfg, &rec_lock) < 0)
        return 2;
    if (!cfg.foreground && (ready_fd = detach()) < 0) {
        sbd_log(SBD_ERROR, "cannot detach: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Before the first thread (the log writer's): see the function. */
    if ((rc = sbd_control_block_signals(&stop_signals)) < 0) {
        sbd_log(SBD_ERROR, "cannot block the stop signals: %s", strerror(-rc));
        return 1;
    }
    if ((rc = sbd_log_start()) < 0)
        sbd_log(SBD_WARN, "no log writer thread (%s): a stderr nobody reads can block the daemon",
                strerror(-rc));
    if (sbd_guard_init() < 0) {
        sbd_log(SBD_ERROR, "cannot install the SIGBUS guard: %s", strerror(errno));
        return 1;
    }
    if (liveness_probe(&cfg) < 0)
        return 1;
    if (sbd_rundir_prepare(&cfg) < 0 || sbd_bus_lock(&cfg, lock_fds) < 0)
        return 1;
    cfg.bus_exclusive = lock_fds[1] >= 0;
    raise_fd_limit(&cfg);
    urcu_memb_register_thread();
    rc = serve(&cfg, ready_fd);
    urcu_memb_unregister_thread();
    sbd_bus_unlock(&cfg, lock_fds);
    if (rec_lock >= 0)
        close(rec_lock);
    return rc;
}
