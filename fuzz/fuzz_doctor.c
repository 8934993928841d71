/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the parsers of `shmbus doctor` (tools/doctor.c),
 * which read files of the host: the first byte picks one, the rest is the
 * text. doctor_mounts_find() on /proc/self/mounts, doctor_logind_removeipc()
 * on logind.conf, doctor_kernel_parse() on a kernel release. Each must end
 * without reading past the text's NUL; what they return must be within
 * their contract (NUL-terminated fields, a boolean, an untouched output
 * on refusal).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_mounts(const char *s)
{
    struct doctor_mount m;

    if (doctor_mounts_find(s, "/dev/shm", &m) == 0) {
        CHECK(strlen(m.fstype) < sizeof(m.fstype));
        CHECK(strlen(m.options) < sizeof(m.options));
        (void)doctor_option_has(m.options, "ro");
    }
}

static void fuzz_logind(const char *s)
{
    int v = 7, rc = doctor_logind_removeipc(s, &v);

    CHECK(rc >= -1 && rc <= 1);
    CHECK(rc == 1 ? (v == 0 || v == 1) : v == 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned ma = 7, mi = 7;
    char *s;

    /* No selector byte: nothing to parse. */
    if (size == 0)
        return 0;
    /* A string of exactly the input: ASan sees any read past its NUL. */
    s = malloc(size);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] % 3 == 0)
        fuzz_mounts(s);
    else if (data[0] % 3 == 1)
        fuzz_logind(s);
    else if (doctor_kernel_parse(s, &ma, &mi) != 0)
        CHECK(ma == 7 && mi == 7);
    free(s);
    return 0;
}
