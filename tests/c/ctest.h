/* ctest.h - a tiny assert-based runner for the C tests of src/base.
 *
 * A test is a function declared with CTEST(name); it registers itself at
 * start-up (constructor) and main.c runs every registered test in order.
 * CHECK(cond) fails the test and returns from it; in a thread function
 * use TCHECK(cond), which records the failure and returns NULL.
 */
#ifndef MG_CTEST_H
#define MG_CTEST_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*ctest_fn)(void);
void ctest_register(const char *name, ctest_fn fn);
void ctest_fail(const char *file, int line, const char *what);
/* Whether the test build runs under ThreadSanitizer (slower: smaller
 * iteration counts). */
int ctest_slow(void);

#define CTEST(name)                                                        \
    static void name(void);                                                \
    __attribute__((constructor)) static void name##_register(void)         \
    {                                                                      \
        ctest_register(#name, name);                                       \
    }                                                                      \
    static void name(void)

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            ctest_fail(__FILE__, __LINE__, #cond);                         \
            return;                                                        \
        }                                                                  \
    } while (0)

#define TCHECK(cond)                                                       \
    do {                                                                   \
        if (!(cond)) {                                                     \
            ctest_fail(__FILE__, __LINE__, #cond);                         \
            return NULL;                                                   \
        }                                                                  \
    } while (0)

/* Iterations: n normally, n / 10 (at least 1) under TSan. */
#define CT_ITERS(n) (ctest_slow() ? ((n) / 10 > 0 ? (n) / 10 : 1) : (n))

#endif
