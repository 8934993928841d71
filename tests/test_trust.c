/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who a client trusts, and what the control socket gives a local user
 * (docs/design.md "Threat model"), tried as another local user would: a
 * client trusts a daemon of another uid only when told to or when the
 * socket's directory could have been made by nobody else; a uid holding
 * connections without a hello never locks others out, and one the bus
 * refuses takes no place from them (the daemon out of descriptors is in
 * stress/test_daemon_timing.c). Also what a client's control calls do
 * when the daemon hangs: they end at a deadline, whatever signals arrive,
 * and a slot asked for in vain is not left taken; and a --group bus end
 * to end.
 */
#include "trustutil.h"
#include "segfile.h"

#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/un.h>

/* A directory outside the test's own (removed at teardown, also after a
 * failure: trust_teardown()). */
static char trust_extra_dir[PATH_MAX - 16]; /* room for /shmbus below it */
/* A link that may have traded places with it (test_trust_socket_dir_swap()). */
static char trust_extra_link[PATH_MAX];

/* Put trust_extra_dir and trust_extra_link back in their places (the
 * swapper stopped), and remove the link. */
static void trust_unswap(void)
{
    struct stat st;

    if (trust_extra_link[0] == '\0')
        return;
    if (lstat(trust_extra_dir, &st) == 0 && S_ISLNK(st.st_mode))
        renameat2(AT_FDCWD, trust_extra_dir, AT_FDCWD, trust_extra_link, RENAME_EXCHANGE);
    unlink(trust_extra_link);
    trust_extra_link[0] = '\0';
}

static int trust_teardown(void **state)
{
    struct du_daemon *d = *state;
    struct stat st;

    tu_cleanup(); /* a swapper stops before the names are put back */
    trust_unswap();
    du_stop(d); /* it removes its socket and lock from the directory first */
    /* Never through a link: what it leads to is not the test's. */
    if (trust_extra_dir[0] != '\0' && lstat(trust_extra_dir, &st) == 0 && S_ISDIR(st.st_mode))
        du_remove_dir(trust_extra_dir);
    trust_extra_dir[0] = '\0';
    return du_teardown(state);
}

/*
 * A bus of several uids served by a non-root daemon (nobody's): a client
 * of another uid (root here) trusts it when $SHMBUS_DAEMON_UID names it,
 * or when it owns a socket directory nobody else may write that belongs to
 * one of the client's groups; else it refuses it. The /dev/shm lock name,
 * taken by a file the daemon may not remove, does not stop it either.
 */
static void test_trust_daemon_uid_configured(void **state)
{
    struct du_daemon *d = *state;
    const char *allow_root[] = {"--allow-uid", "0", NULL};
    char run[PATH_MAX], lock[PATH_MAX], uidstr[16];
    shmbus_bus *bus = NULL;
    int fd;

    du_nobody_ids(&d->uid, &d->gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(lock, sizeof(lock), "/dev/shm/shmbus-%s.lock", d->bus);
    fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* root's */
    assert_true(fd >= 0);
    close(fd);
    du_nobody_run_dir(d, run, d->gid, 0700);
    du_use_runtime_dir(d, run);
    snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)d->uid);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", uidstr, 1), 0);
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "shared", "across uids");
    shmbus_close(bus);

    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "12345", 1), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "no-such-user-here", 1), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_INVALID);
    assert_int_equal(unsetenv("SHMBUS_DAEMON_UID"), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_UNTRUSTED);

    assert_int_equal(du_stop(d), 0);
    assert_int_equal(unlink(lock), 0); /* still root's: the daemon could not remove it */
}

/*
 * A client that trusted the daemon (by $SHMBUS_DAEMON_UID) and lost it,
 * then meets at the socket a daemon it no longer trusts: its control
 * calls say so (SHMBUS_ERR_UNTRUSTED), not merely "daemon lost".
 */
static void test_trust_reconnect_untrusted(void **state)
{
    struct du_daemon *d = *state;
    const char *allow_root[] = {"--allow-uid", "0", NULL};
    shmbus_topic_entry e;
    char run[PATH_MAX];
    shmbus_bus *bus;

    du_nobody_ids(&d->uid, &d->gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    du_nobody_run_dir(d, run, d->gid, 0700);
    du_use_runtime_dir(d, run);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0);
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_int_equal(unsetenv("SHMBUS_DAEMON_UID"), 0);
    assert_shmbus_rc(shmbus_bus_check(bus), SHMBUS_ERR_UNTRUSTED);
    assert_shmbus_rc(shmbus_list(bus, NULL, &e, 1), SHMBUS_ERR_UNTRUSTED);
    shmbus_close(bus);
}

/* Child: as nobody, make directory arg, mode 0755. */
static int mkdir_as_nobody(void *arg)
{
    return du_become_nobody() < 0 || mkdir(arg, 0755) < 0;
}

/* Child: connect as root with nobody's group as a supplementary one.
 * @return 0 if shmbus_connect() returned *arg, else 1. */
static int connect_in_nogroup(void *arg)
{
    const struct du_daemon *d = arg;
    shmbus_bus *bus = NULL;
    int rc;

    if (setgroups(1, &d->gid) < 0)
        return 1;
    rc = shmbus_connect(d->bus, &bus);
    if (rc == 0)
        du_roundtrip(bus, "shared", "by the directory");
    shmbus_close(bus);
    return rc == d->status ? 0 : 1;
}

/* Does a client of nobody's group get @p want from shmbus_connect()? */
static void connect_nogroup(const struct du_daemon *d, int want)
{
    struct du_daemon c = *d;

    c.status = want;
    assert_int_equal(du_wait_ms(tu_fork(connect_in_nogroup, &c), DU_READY_MS), 0);
}

/* Restart the daemon (nobody's, allowing root) with runtime directory
 * @p run, then see what a client of nobody's group makes of it. */
static void connect_by_dir(struct du_daemon *d, const char *run, int want)
{
    const char *allow_root[] = {"--allow-uid", "0", NULL};

    assert_int_equal(du_stop(d), 0);
    du_use_runtime_dir(d, run);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0); /* to see it up */
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_int_equal(unsetenv("SHMBUS_DAEMON_UID"), 0);
    connect_nogroup(d, want);
}

/*
 * A client trusts the owner of the socket's directory only where nobody
 * else could have made that directory: every directory above it root's
 * and writable by root only. In /tmp anyone may make it first: nobody
 * makes one there and serves the bus from it, and a root client of
 * nobody's group refuses that daemon. The same directory under /run, which
 * root holds, is the admin's setup, and trusted; not when its group may
 * write it.
 */
static void test_trust_socket_dir_root_held(void **state)
{
    struct du_daemon *d = *state;
    char run[PATH_MAX], link[PATH_MAX];
    struct stat st;

    du_nobody_ids(&d->uid, &d->gid);
    snprintf(trust_extra_dir, sizeof(trust_extra_dir), "/tmp/shmbus-sq-%s", d->bus);
    assert_int_equal(du_wait_ms(tu_fork(mkdir_as_nobody, trust_extra_dir), DU_READY_MS), 0);
    assert_int_equal(chown(trust_extra_dir, d->uid, d->gid), 0); /* nogroup, as mkdir gave */
    connect_by_dir(d, trust_extra_dir, SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(du_stop(d), 0);
    du_remove_dir(trust_extra_dir);

    snprintf(trust_extra_dir, sizeof(trust_extra_dir), "/run/shmbus-ttest.XXXXXX");
    if (stat("/run", &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0 ||
        mkdtemp(trust_extra_dir) == NULL) {
        trust_extra_dir[0] = '\0';
        skip(); /* no /run that root holds to stand for the admin's */
    }
    assert_int_equal(chmod(trust_extra_dir, 0755), 0);
    snprintf(run, sizeof(run), "%s/shmbus", trust_extra_dir);
    assert_int_equal(mkdir(run, 0750), 0);
    assert_int_equal(chown(run, d->uid, d->gid), 0);
    connect_by_dir(d, run, 0);
    /* Reached through a link: whoever may change the link chooses the
     * directory, so its owner is not trusted for it. */
    snprintf(link, sizeof(link), "%s/ln", trust_extra_dir);
    assert_int_equal(symlink(run, link), 0);
    snprintf(link, sizeof(link), "%s/ln/", trust_extra_dir);
    assert_int_equal(setenv("SHMBUS_RUNTIME_DIR", link, 1), 0);
    connect_nogroup(d, SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(setenv("SHMBUS_RUNTIME_DIR", run, 1), 0);
    assert_int_equal(chmod(run, 0770), 0);
    connect_nogroup(d, SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(chmod(run, 0750), 0); /* for the daemon's stop */
}

/* Child: as nobody, trade the places of trust_extra_dir and
 * trust_extra_link (a link to /run, which root holds) until killed.
 * @return 1 or 2 only on a failure. */
static int swap_as_nobody(void *arg)
{
    (void)arg;
    if (du_become_nobody() < 0)
        return 1;
    for (;;)
        if (renameat2(AT_FDCWD, trust_extra_dir, AT_FDCWD, trust_extra_link, RENAME_EXCHANGE) < 0)
            return 2;
}

#define SWAP_CONNECTS 2000

/* Child: as root in nobody's group, connect SWAP_CONNECTS times.
 * @return 0 if no connection was trusted, else 1. */
static int connect_while_swapped(void *arg)
{
    const struct du_daemon *d = arg;
    int trusted = 0;

    if (setgroups(1, &d->gid) < 0)
        return 1;
    for (int i = 0; i < SWAP_CONNECTS; i++) {
        shmbus_bus *bus = NULL;

        trusted += shmbus_connect(d->bus, &bus) == 0;
        shmbus_close(bus);
    }
    return trusted != 0;
}

/*
 * Nobody serves the bus from its directory in /tmp and keeps trading its
 * place with a link to /run (renameat2 RENAME_EXCHANGE): a client that
 * judged one and reached the other would trust nobody's daemon. None of
 * its connections is trusted (a few dozen were, in 2000, when the path
 * was looked up once per check).
 */
static void test_trust_socket_dir_swap(void **state)
{
    struct du_daemon *d = *state;
    pid_t kid;

    du_nobody_ids(&d->uid, &d->gid);
    snprintf(trust_extra_dir, sizeof(trust_extra_dir), "/tmp/shmbus-sq-%s", d->bus);
    assert_int_equal(du_wait_ms(tu_fork(mkdir_as_nobody, trust_extra_dir), DU_READY_MS), 0);
    assert_int_equal(chown(trust_extra_dir, d->uid, d->gid), 0);
    connect_by_dir(d, trust_extra_dir, SHMBUS_ERR_UNTRUSTED);
    snprintf(trust_extra_link, sizeof(trust_extra_link), "/tmp/shmbus-sl-%s", d->bus);
    assert_int_equal(symlink("/run", trust_extra_link), 0);
    assert_int_equal(lchown(trust_extra_link, d->uid, d->gid), 0);
    kid = tu_fork(swap_as_nobody, NULL);
    assert_int_equal(du_wait_ms(tu_fork(connect_while_swapped, d), 60000), 0);
    assert_int_equal(kill(kid, SIGKILL), 0);
    assert_int_equal(tu_wait(kid), 128 + SIGKILL); /* it swapped all along */
    trust_unswap();
}

#define HOGS 70 /* more than the daemon's 64 places before hello */

struct hog {
    const char *sock;
    int ready;
};

/* Child: as nobody, open HOGS connections and never say hello. */
static int hog_run(void *arg)
{
    const struct hog *h = arg;

    if (du_become_nobody() < 0)
        return 1;
    for (int i = 0; i < HOGS; i++)
        if (du_raw_connect(h->sock) < 0)
            return 1;
    du_signal(h->ready);
    pause();
    return 0;
}

/*
 * An allowed uid (nobody) holds more connections without a hello than the
 * daemon has places for them: the daemon's own uid still connects at once;
 * the hog cannot lock it out.
 */
static void test_trust_prehello_places_shared(void **state)
{
    struct du_daemon *d = *state;
    struct hog h = {.sock = d->sock};
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    du_nobody_ids(&uid, &gid);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    du_fork_ready(hog_run, &h, &h.ready);
    du_sleep_ms(100); /* the daemon accepts them all (or refuses the last) */
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "t", "in");
    shmbus_close(bus);
}

#define FEW_CLIENTS   8 /* --max-clients of test_trust_clients_owner_kept() */
#define OTHERS_PLACES 6 /* all but the last quarter */

/* Child: as nobody, connect FEW_CLIENTS times and stay; signal ready
 * only if OTHERS_PLACES connections were served and the rest refused
 * for the limit. */
static int clients_hog_run(void *arg)
{
    struct hog *h = arg;
    shmbus_bus *bus[FEW_CLIENTS];
    int ok = 0, limited = 0;

    if (du_become_nobody() < 0)
        return 1;
    for (int i = 0; i < FEW_CLIENTS; i++) {
        int rc = shmbus_connect(h->sock, &bus[i]);

        ok += rc == 0;
        limited += rc == SHMBUS_ERR_LIMIT;
    }
    if (ok != OTHERS_PLACES || limited != FEW_CLIENTS - OTHERS_PLACES)
        return 2;
    du_signal(h->ready);
    pause();
    return 0;
}

/*
 * An allowed uid (nobody) takes all the client places it can: the last
 * quarter stays the daemon's uid's, which still connects; once every
 * place is taken, it is refused for the limit too.
 */
static void test_trust_clients_owner_kept(void **state)
{
    struct du_daemon *d = *state;
    struct hog h = {.sock = d->bus}; /* a bus name here, for shmbus_connect() */
    shmbus_bus *mine[FEW_CLIENTS - OTHERS_PLACES], *over;
    uid_t uid;
    gid_t gid;

    du_nobody_ids(&uid, &gid);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    du_fork_ready(clients_hog_run, &h, &h.ready);
    for (int i = 0; i < FEW_CLIENTS - OTHERS_PLACES; i++)
        assert_shmbus_ok(shmbus_connect(d->bus, &mine[i]));
    du_roundtrip(mine[0], "t", "kept");
    assert_shmbus_rc(shmbus_connect(d->bus, &over), SHMBUS_ERR_LIMIT);
    for (int i = 0; i < FEW_CLIENTS - OTHERS_PLACES; i++)
        shmbus_close(mine[i]);
}

#define OWNER_WAITING 40 /* the owner's connections without a hello */

/*
 * A uid the bus does not allow (nobody, on a bus open to another uid: its
 * socket is 0666) can never say hello, so it takes no place before hello
 * from anyone: the owner's 40 connections waiting for their hello all
 * survive nobody's flood, and each is then served.
 */
static void test_trust_prehello_not_allowed_last(void **state)
{
    struct du_daemon *d = *state;
    const char *allow_other[] = {"--allow-uid", "12345", NULL};
    struct hog h = {.sock = d->sock};
    struct du_reply r;
    int mine[OWNER_WAITING], last;
    char run[PATH_MAX];
    uid_t uid;
    gid_t gid;

    du_nobody_stopped(d, &uid, &gid);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    snprintf(run, sizeof(run), "%s/shmbus", d->dir);
    assert_int_equal(rmdir(run), 0); /* made again 0711: an existing one is kept */
    assert_int_equal(du_launch(d, allow_other), 0);
    for (int i = 0; i < OWNER_WAITING; i++)
        assert_true((mine[i] = du_raw_connect(d->sock)) >= 0);
    du_fork_ready(hog_run, &h, &h.ready);
    /* Answered only once every connection before it was accepted or
     * refused (the daemon accepts in order). */
    last = du_raw_connect(d->sock);
    assert_true(last >= 0);
    assert_int_equal(du_raw_hello(last, 1, (uint32_t)getpid()), 0);
    du_raw_ok(last, 1, &r);
    close(last);
    for (int i = 0; i < OWNER_WAITING; i++) {
        assert_int_equal(du_raw_hello(mine[i], 1, (uint32_t)getpid()), 0);
        du_raw_ok(mine[i], 1, &r);
        close(mine[i]);
    }
}

#define HANG_GIVE_UP_MS 25000 /* a call that answers "timed out" takes 10 s */

static void on_usr1(int sig)
{
    (void)sig;
}

struct hung_call {
    shmbus_bus *bus;
    shmbus_topic *topic; /* NULL: a LIST; else a SUB_ADD on it */
    shmbus_sub *sub;
    int rc;
    _Atomic int done;
};

static void *hung_call_run(void *arg)
{
    struct hung_call *h = arg;
    shmbus_topic_entry e;

    if (h->topic == NULL)
        h->rc = shmbus_list(h->bus, NULL, &e, 1);
    else
        h->rc = shmbus_sub_create(h->topic, NULL, &h->sub);
    /* release: rc before done; pairs with the acquire load below. */
    atomic_store_explicit(&h->done, 1, memory_order_release);
    return NULL;
}

/*
 * Make control call @p h while the daemon is stopped (SIGSTOP), and
 * interrupt the calling thread with a signal every 20 ms (no SA_RESTART)
 * until it returns or HANG_GIVE_UP_MS pass. The daemon is continued
 * either way. @return the time the call took, in ms.
 */
static int64_t call_hung(struct du_daemon *d, struct hung_call *h)
{
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    int64_t start = du_now_ms();
    pthread_t th;

    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    assert_int_equal(kill(d->pid, SIGSTOP), 0);
    assert_int_equal(pthread_create(&th, NULL, hung_call_run, h), 0);
    /* acquire: pairs with the release store of done; rc is visible. */
    while (!atomic_load_explicit(&h->done, memory_order_acquire) &&
           du_now_ms() - start < HANG_GIVE_UP_MS) {
        pthread_kill(th, SIGUSR1);
        du_sleep_ms(20);
    }
    assert_int_equal(kill(d->pid, SIGCONT), 0); /* also ends a call still waiting */
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    return du_now_ms() - start;
}

/* A control call to a hung daemon times out 10 s after it was sent,
 * however many signals interrupt the wait (a deadline, not a timeout
 * restarted by every EINTR). */
static void test_trust_control_call_deadline(void **state)
{
    struct du_daemon *d = *state;
    struct hung_call h = {0};
    int64_t took;

    assert_shmbus_ok(shmbus_connect(d->bus, &h.bus));
    took = call_hung(d, &h);
    print_message("LIST to a stopped daemon, signalled every 20 ms: %lld ms\n", (long long)took);
    assert_shmbus_rc(h.rc, SHMBUS_ERR_TIMEOUT);
    assert_true(took < HANG_GIVE_UP_MS);
    shmbus_close(h.bus);
}

/*
 * A SUB_ADD that times out (the daemon stopped) leaves no slot taken: the
 * daemon, continued, takes one and answers, but the answer cannot reach
 * the client any more, so it frees the slot at once rather than when the
 * client process dies.
 */
static void test_trust_sub_add_timeout_frees_slot(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    struct hung_call h = {0};
    shmbus_topic_entry e;
    shmbus_bus *other;

    assert_shmbus_ok(shmbus_connect(d->bus, &h.bus));
    assert_shmbus_ok(shmbus_open(h.bus, "late", &o, 0, &h.topic));
    call_hung(d, &h);
    assert_shmbus_rc(h.rc, SHMBUS_ERR_TIMEOUT);
    du_sleep_ms(300); /* the daemon has read the request and answered */
    assert_shmbus_ok(shmbus_connect(d->bus, &other));
    assert_int_equal(shmbus_list(other, NULL, &e, 1), 1);
    assert_int_equal(du_slots_of(h.topic, getpid()), 0);
    shmbus_close(other);
    shmbus_topic_destroy(h.topic);
    shmbus_close(h.bus);
}

/* Child: as nobody, publish and receive one message on topic "g" of the
 * bus arg. @return 0, or 1 + the failing step. */
static int group_member_run(void *arg)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    char buf[64];

    if (du_become_nobody() < 0)
        return 1;
    if (shmbus_connect(arg, &bus) < 0 || shmbus_open(bus, "g", &o, 0, &t) < 0)
        return 2;
    if (shmbus_sub_create(t, NULL, &sub) < 0 || shmbus_pub_create(t, &pub) < 0)
        return 3;
    if (shmbus_publish(pub, "member", 6, 0) < 0 ||
        shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS) != 6)
        return 4;
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return 0;
}

/*
 * A bus given to a group (--group): its runtime directory, socket and
 * segments are the group's (0710, 0660, 0660), a member of another uid
 * uses a topic, and a restarted daemon takes the group's segments over
 * (0660 and the bus's group pass its trust check).
 */
static void test_trust_group_bus(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    const char *group[] = {"--group", NULL, NULL};
    char gidstr[16], run[PATH_MAX], seg[PATH_MAX];
    shmbus_topic_entry e;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_bus *bus;
    pid_t kid;
    uid_t uid;
    gid_t gid;

    du_nobody_ids(&uid, &gid);
    snprintf(gidstr, sizeof(gidstr), "%u", (unsigned)gid);
    group[1] = gidstr;
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    snprintf(run, sizeof(run), "%s/shmbus", d->dir);
    assert_int_equal(rmdir(run), 0); /* an existing one would keep its mode */
    assert_int_equal(du_launch(d, group), 0);
    du_assert_mode_group(run, 0710, gid);
    du_assert_mode_group(d->sock, 0660, gid);

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "g", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub)); /* keeps the topic through a crash */
    snprintf(seg, sizeof(seg), "/dev/shm/" SBD_SEG_PREFIX "%s.g", d->bus);
    du_assert_mode_group(seg, 0660, gid);
    kid = tu_fork(group_member_run, d->bus);
    assert_int_equal(du_wait_ms(kid, DU_READY_MS), 0);

    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, group), 0);
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_string_equal(e.name, "g");
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

#define TRUST_MANY_GROUPS 100 /* more than SO_PEERGROUPS's first try holds */

struct many_kid {
    const char *bus;
    uid_t uid;
    gid_t gid; /* the bus's --group */
};

/* Child: as nobody whose primary group is not the bus's and who is in it
 * only as the last of TRUST_MANY_GROUPS supplementary groups, as a
 * directory user may be: connect. @return 0 when the daemon let it in. */
static int many_groups_run(void *arg)
{
    const struct many_kid *k = arg;
    gid_t groups[TRUST_MANY_GROUPS], other = k->gid + 2000;
    shmbus_bus *bus = NULL;
    int rc;

    for (int i = 0; i < TRUST_MANY_GROUPS; i++)
        groups[i] = k->gid + 1000 + (gid_t)i;
    groups[TRUST_MANY_GROUPS - 1] = k->gid;
    if (setgroups(TRUST_MANY_GROUPS, groups) < 0 || setresgid(other, other, other) < 0 ||
        setresuid(k->uid, k->uid, k->uid) < 0)
        return 2;
    rc = shmbus_connect(k->bus, &bus);
    shmbus_close(bus);
    return rc == 0 ? 0 : 1;
}

/* A member of a --group bus through one of many supplementary groups is
 * let in (the daemon reads all of SO_PEERGROUPS, not the first 64). */
static void test_trust_group_member_of_many(void **state)
{
    struct du_daemon *d = *state;
    const char *group[] = {"--group", NULL, NULL};
    char gidstr[16], run[PATH_MAX];
    struct many_kid k = {.bus = d->bus};

    du_nobody_stopped(d, &k.uid, &k.gid);
    snprintf(gidstr, sizeof(gidstr), "%u", (unsigned)k.gid);
    group[1] = gidstr;
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    snprintf(run, sizeof(run), "%s/shmbus", d->dir);
    assert_int_equal(rmdir(run), 0); /* an existing one would keep its mode */
    assert_int_equal(du_launch(d, group), 0);
    assert_int_equal(du_wait_ms(tu_fork(many_groups_run, &k), DU_READY_MS), 0);
}

#define TRUST_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define TRUST_TEST_ARGS(f, extra)                                                                  \
    cmocka_unit_test_prestate_setup_teardown(f, du_setup, du_teardown, (void *)(extra))

static const char *const allow_nobody[] = {"--allow-uid", "nobody", NULL};
static const char *const allow_nobody_few[] = {"--allow-uid", "nobody", "--max-clients", "8", NULL};

int main(void)
{
    const struct CMUnitTest tests[] = {
        TRUST_TEST(test_trust_daemon_uid_configured),
        TRUST_TEST(test_trust_reconnect_untrusted),
        cmocka_unit_test_setup_teardown(test_trust_socket_dir_root_held, du_setup, trust_teardown),
        cmocka_unit_test_setup_teardown(test_trust_socket_dir_swap, du_setup, trust_teardown),
        TRUST_TEST_ARGS(test_trust_prehello_places_shared, allow_nobody),
        TRUST_TEST(test_trust_prehello_not_allowed_last),
        TRUST_TEST_ARGS(test_trust_clients_owner_kept, allow_nobody_few),
        TRUST_TEST(test_trust_control_call_deadline),
        TRUST_TEST(test_trust_sub_add_timeout_frees_slot),
        TRUST_TEST(test_trust_group_bus),
        TRUST_TEST(test_trust_group_member_of_many),
    };

    tu_init();
    return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
