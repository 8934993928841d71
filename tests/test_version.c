/* SPDX-License-Identifier: Apache-2.0 */
/* The shared library's version agrees with the header it was built with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "shmbus/shmbus.h"

static void string_matches_header(void **state)
{
    (void)state;
    assert_string_equal(shmbus_version(), SHMBUS_VERSION_STRING);
}

static void number_matches_parts(void **state)
{
    char s[32];

    (void)state;
    assert_int_equal(shmbus_version_number(), SHMBUS_VERSION);
    snprintf(s, sizeof s, "%d.%d.%d", SHMBUS_VERSION_MAJOR, SHMBUS_VERSION_MINOR,
             SHMBUS_VERSION_PATCH);
    assert_string_equal(s, SHMBUS_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(string_matches_header),
        cmocka_unit_test(number_matches_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
