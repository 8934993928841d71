/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Name rules, in one place for the library, the daemon and the tool:
 * topic, group and segment names are 1..max characters of [A-Za-z0-9._:-],
 * not starting with '.' (so that no name is "." or "..", nor a hidden file
 * in /dev/shm); bus names are 1..SHMBUS_BUS_NAME_MAX characters of
 * [A-Za-z0-9_-] (they name a socket file and prefix segment names, so
 * they hold no '.'). Pure functions, no shared state. Header-only (static
 * inline): the tool links the shared library, whose internal symbols are
 * hidden, and checks a group name before it connects (tools/cmd_sub.c).
 */
#ifndef SHMBUS_UTIL_NAME_H
#define SHMBUS_UTIL_NAME_H

#include <stddef.h>

#include "shmbus/shmbus.h"

/* The rule for a topic or group name in words, for error messages: one
 * text everywhere a name is refused (the daemon's replies, the bridge's,
 * the tool's), built from the limits so that it cannot drift from them.
 * SB_NAME_STR() expands a limit macro before it stringizes it. */
#define SB_NAME_STR_(x) #x
#define SB_NAME_STR(x)  SB_NAME_STR_(x)
#define SB_NAME_RULE(max)                                                                          \
    "1-" SB_NAME_STR(max) " characters of A-Z a-z 0-9 _ . : -, not starting with '.'"
#define SB_NAME_TOPIC_RULE SB_NAME_RULE(SHMBUS_TOPIC_NAME_MAX)
#define SB_NAME_GROUP_RULE SB_NAME_RULE(SHMBUS_GROUP_NAME_MAX)

/* 1 if @p s (NULL: no) is a valid name of at most @p max characters:
 * SHMBUS_TOPIC_NAME_MAX for a topic, SHMBUS_GROUP_NAME_MAX for a group,
 * SHMBUS_NAME_MAX for a segment. Else 0. */
static inline int sb_name_valid(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || s[0] == '\0' || s[0] == '.')
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok || n >= max)
            return 0;
    }
    return 1;
}

/* 1 if @p s (NULL: no) is a valid bus name, else 0. */
static inline int sb_name_bus_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok || n >= SHMBUS_BUS_NAME_MAX)
            return 0;
    }
    return 1;
}

#endif
