#ifndef HM_CHECK_H
#define HM_CHECK_H
/*
 * Glue for unit tests on the Check framework (Debian package 'check'): each TCase forks,
 * so a crash fails one test, not the binary; CK_DEFAULT_TIMEOUT bounds each test.
 * A test file defines `static Suite *suite(void)` and ends with HM_TEST_MAIN(suite).
 */
#include <check.h>
#include <stdlib.h>

#define HM_TEST_MAIN(suite_fn)                                                               \
    int main(void)                                                                           \
    {                                                                                        \
        SRunner *sr = srunner_create(suite_fn());                                            \
        srunner_run_all(sr, CK_NORMAL);                                                      \
        int failed = srunner_ntests_failed(sr);                                              \
        srunner_free(sr);                                                                    \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                         \
    }

#endif
