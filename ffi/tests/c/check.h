/*
 * The checks of the C tests: each counts in checks_passed or checks_failed, and a failure prints
 * its file, line and what was expected.
 */
#ifndef HARK_TEST_CHECK_H
#define HARK_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int checks_passed, checks_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            checks_passed++;                                                                       \
        } else {                                                                                   \
            checks_failed++;                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *got_ = (got);                                                                  \
        if (got_ != NULL && strcmp(got_, (want)) == 0) {                                           \
            checks_passed++;                                                                       \
        } else {                                                                                   \
            checks_failed++;                                                                       \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #got,    \
                    got_ ? got_ : "(NULL)", (want));                                               \
        }                                                                                          \
    } while (0)

#define CHECK_RES(got, want)                                                                       \
    do {                                                                                           \
        int got_ = (int)(got);                                                                     \
        if (got_ == (int)(want)) {                                                                 \
            checks_passed++;                                                                       \
        } else {                                                                                   \
            checks_failed++;                                                                       \
            fprintf(stderr, "%s:%d: %s is %s, expected %s\n", __FILE__, __LINE__, #got,            \
                    hark_result_str(got_), hark_result_str((int)(want)));                          \
        }                                                                                          \
    } while (0)

#endif
