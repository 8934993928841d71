/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's metrics options (--metrics, --metrics-token-file,
 * --metrics-max-slots): parsed for config.c (config_int.h), with their
 * part of the usage text. The endpoint itself is metrics/metrics.h.
 */
#include <stdio.h>

#include "config.h"
#include "config_int.h"

void sbd_config_metrics_usage(FILE *f, const struct sbd_config *d)
{
    fprintf(f,
            "Prometheus metrics (off unless --metrics is given; docs/design.md \"Metrics\"):\n"
            "  --metrics [ADDR]:PORT  serve GET /metrics over HTTP in Prometheus's text\n"
            "                      format; ADDR a numeric IPv4 or [IPv6] address (default\n"
            "                      " SBD_BRIDGE_HOST_DEFAULT
            "). Without a token only loopback peers whose uid\n"
            "                      the bus allows get an answer, as on the bridge\n"
            "  --metrics-token-file FILE  every scrape, local or not, must send\n"
            "                      \"Authorization: Bearer TOKEN\", TOKEN the first line\n"
            "                      of FILE (needed for scrapes from other hosts)\n"
            "  --metrics-max-slots N  lag and loss series of at most N busy subscriber\n"
            "                      slots a topic, the lowest numbers; 0 turns them off\n"
            "                      (default %u)\n",
            d->metrics_max_slots);
}

int sbd_config_metrics_option(struct sbd_config *c, int opt, const char *arg)
{
    int bad;

    switch (opt) {
    case SBD_OPT_METRICS:
        bad = sbd_config_listen(arg, c->metrics_host, sizeof(c->metrics_host), c->metrics_port,
                                sizeof(c->metrics_port));
        c->metrics = !bad;
        break;
    case SBD_OPT_MTOKEN:
        /* sbd_config_token() said why. */
        return sbd_config_token(arg, c->metrics_token, sizeof(c->metrics_token));
    default: /* SBD_OPT_MSLOTS */
        bad = sbd_config_number(arg, &c->metrics_max_slots);
        break;
    }
    if (bad)
        fprintf(stderr, "shmbusd: bad value '%s' (see --help)\n", arg);
    return bad ? -1 : 0;
}
