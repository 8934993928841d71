/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus rm`: remove topics through the bus's daemon
 * (shmbus_topic_remove()). Each TOPIC is tried in turn; a refusal is
 * reported by its error's name and the next one is tried (the daemon's
 * log says which process held a busy topic). Without
 * --force a topic in use is refused (SHMBUS_ERR_BUSY); with it, the
 * processes that use it get SHMBUS_ERR_TOPIC_GONE.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"

void cli_rm_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] rm [--force] TOPIC...\n"
            "Remove each TOPIC from the bus: its segment is unlinked and the name may be\n"
            "created again at once, with other options. A topic in use (a live process\n"
            "has it open, or owns a subscriber slot or publisher record in it) is refused\n"
            "unless --force is given; then those processes get SHMBUS_ERR_TOPIC_GONE on\n"
            "their next publish, receive or wait. Only the daemon's uid, root and the uid\n"
            "that created a topic may remove it; the daemon's _shmbus. topics and topics\n"
            "it records or federates cannot be removed.\n"
            "\n"
            "Options:\n"
            "  --force          remove topics even while they are in use\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n"
            "\n"
            "Exit status: 0 every TOPIC removed, 1 one or more not, 2 bad usage.\n",
            SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_HELP, OPT_FORCE };

static const struct option rm_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                        {"help", no_argument, NULL, OPT_HELP},
                                        {"force", no_argument, NULL, OPT_FORCE},
                                        {NULL, 0, NULL, 0}};

/* What a refusal means to the user, after the library's name for it. A
 * busy topic is one a live process uses, which --force overrides, or one
 * the daemon records or federates, which it does not (the reply's code
 * is the same: docs/protocol.md). */
static const char *rm_hint(int rc, unsigned flags)
{
    if (rc == SHMBUS_ERR_BUSY && (flags & SHMBUS_REMOVE_FORCE))
        return " (the daemon records or federates it: not removable while it runs)";
    if (rc == SHMBUS_ERR_BUSY)
        return " (a process uses it, see `shmbus stat`, and --force removes it anyway;"
               " or the daemon records or federates it, and it stays)";
    if (rc == -ENOENT)
        return " (no such topic on this bus)";
    return "";
}

int cli_rm_main(const char *bus, int argc, char **argv)
{
    const char *cmd = argv[0];
    unsigned flags = 0;
    shmbus_bus *b = NULL;
    char name[SHMBUS_BUS_NAME_MAX + 1];
    int opt, rc, status = CLI_EXIT_OK;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", rm_opts, NULL)) != -1) {
        if (opt == OPT_BUS)
            bus = optarg;
        else if (opt == OPT_FORCE)
            flags |= SHMBUS_REMOVE_FORCE;
        else if (opt == OPT_HELP) {
            cli_rm_usage(stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_usage_hint(cmd); /* getopt printed what was wrong */
        }
    }
    if (optind >= argc)
        return cli_usage_err(cmd, "no topic given");
    rc = cli_connect(bus, name, &b);
    if (rc != 0)
        return rc;
    for (int i = optind; i < argc; i++) {
        rc = shmbus_topic_remove(b, argv[i], flags);
        if (rc == 0)
            continue;
        cli_err("rm %s: %s%s", argv[i], shmbus_strerror(rc), rm_hint(rc, flags));
        status = CLI_EXIT_FAIL;
    }
    shmbus_close(b);
    return status;
}
