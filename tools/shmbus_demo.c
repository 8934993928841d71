/*
 * shmbus-demo: two processes over one ring. The parent publishes synthetic
 * prices (a random walk) on a topic; a child subscribes and prints each
 * price with its sequence number and its latency from publish to receipt.
 * Used by `make run` until the registry daemon exists.
 *
 *   shmbus-demo [--count N] [--interval-ms MS]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus/shmbus.h"

struct price {
    char symbol[8];
    int64_t price_micros;
    uint32_t last;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int subscriber(const char *name, int ready_fd)
{
    shmbus_topic *t;
    shmbus_sub *s;
    shmbus_msg m;
    struct price p;
    int rc;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    rc = shmbus_topic_attach(name, &t);
    if (rc == 0)
        rc = shmbus_sub_create(t, NULL, &s);
    if (rc < 0) {
        fprintf(stderr, "subscriber: %s\n", shmbus_strerror(rc));
        return 1;
    }
    if (write(ready_fd, "r", 1) != 1)
        return 1;
    close(ready_fd);
    while ((rc = shmbus_recv(s, &p, sizeof(p), &m, 1000000000ll)) >= 0 ||
           rc == SHMBUS_ERR_TIMEOUT) {
        if (rc < 0)
            continue;
        uint64_t now = realtime_ns();
        printf("sub  seq=%-4llu %s %9.5f  latency %6llu ns  lost %llu\n", (unsigned long long)m.seq,
               p.symbol, (double)p.price_micros / 1e6, (unsigned long long)(now - m.timestamp_ns),
               (unsigned long long)m.lost);
        fflush(stdout);
        if (p.last)
            break;
    }
    shmbus_sub_destroy(s);
    shmbus_topic_destroy(t);
    return rc < 0 && rc != SHMBUS_ERR_TIMEOUT ? 1 : 0;
}

static int publish_prices(shmbus_topic *t, int count, int interval_ms)
{
    struct timespec gap = {.tv_sec = interval_ms / 1000,
                           .tv_nsec = (interval_ms % 1000) * 1000000L};
    struct price p = {.symbol = "EURUSD", .price_micros = 1085000};
    unsigned seed = (unsigned)getpid();
    shmbus_pub *pub;
    int rc = shmbus_pub_create(t, &pub);

    for (int i = 0; rc == 0 && i < count; i++) {
        p.price_micros += (rand_r(&seed) % 201) - 100;
        p.last = (i == count - 1 || stop);
        rc = shmbus_publish(pub, &p, sizeof(p), 0);
        if (p.last)
            break;
        nanosleep(&gap, NULL);
    }
    if (rc < 0)
        fprintf(stderr, "publisher: %s\n", shmbus_strerror(rc));
    shmbus_pub_destroy(pub);
    return rc < 0;
}

static int parse_args(int argc, char **argv, int *count, int *interval_ms)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            *count = atoi(argv[++i]);
        else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
            *interval_ms = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: shmbus-demo [--count N] [--interval-ms MS]\n");
            return -1;
        }
    }
    return *count > 0 && *interval_ms >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = 256, .max_msg_size = 64};
    int count = 20, interval_ms = 100, fds[2], rc, status = 0;
    char name[64], c;
    shmbus_topic *t;
    pid_t kid;

    if (parse_args(argc, argv, &count, &interval_ms) < 0)
        return 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(name, sizeof(name), "shmbus-demo.%d", (int)getpid());
    rc = shmbus_topic_create(name, &o, &t);
    if (rc < 0 || pipe(fds) < 0) {
        fprintf(stderr, "shmbus-demo: %s\n", shmbus_strerror(rc < 0 ? rc : -errno));
        return 1;
    }
    printf("topic %s: %d prices, one every %d ms\n", name, count, interval_ms);
    fflush(stdout);
    kid = fork();
    if (kid == 0) {
        close(fds[0]);
        _exit(subscriber(name, fds[1]));
    }
    close(fds[1]);
    if (kid > 0 && read(fds[0], &c, 1) == 1)
        rc = publish_prices(t, count, interval_ms);
    else
        rc = 1;
    if (kid > 0)
        waitpid(kid, &status, 0);
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(name);
    return rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
