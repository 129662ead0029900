#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "hm_check.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/hems-cfg-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

START_TEST(defaults_are_valid)
{
    struct hm_config c;
    char err[256];
    hm_config_defaults(&c);
    ck_assert_str_eq(c.cwmp_listen, "127.0.0.1:7547");
    ck_assert_str_eq(c.admin_listen, "127.0.0.1:7557");
    ck_assert_int_eq(hm_config_validate(&c, err, sizeof(err)), 0);
    hm_config_free(&c);
}
END_TEST

START_TEST(file_then_overrides)
{
    struct hm_config c;
    char err[256];
    hm_config_defaults(&c);
    char *p = write_tmp("; comment\n[server]\ncwmp_listen = 0.0.0.0:7548\n[http]\n"
                        "max_headers = 32\n[log]\nlevel = debug\n");
    ck_assert_int_eq(hm_config_load(&c, p, err, sizeof(err)), 0);
    unlink(p);
    ck_assert_str_eq(c.cwmp_listen, "0.0.0.0:7548");
    ck_assert_uint_eq(c.max_headers, 32);
    ck_assert_int_eq(c.log_level, HM_LOG_DEBUG);
    ck_assert_int_eq(hm_config_set(&c, "http.max_headers=8", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.max_headers, 8);
    ck_assert_int_eq(hm_config_set(&c, "idle_timeout_ms=5", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.idle_timeout_ms, 5);
    struct hm_config d;
    hm_config_copy(&d, &c);
    hm_config_free(&c);
    ck_assert_str_eq(d.cwmp_listen, "0.0.0.0:7548");
    hm_config_free(&d);
}
END_TEST

START_TEST(errors_name_file_line_and_key)
{
    struct hm_config c;
    char err[256];
    hm_config_defaults(&c);
    char *p = write_tmp("[http]\nmax_headers = 10\nmax_body_bytes = lots\n");
    ck_assert_int_eq(hm_config_load(&c, p, err, sizeof(err)), HM_EBADCONF);
    ck_assert_msg(strstr(err, ":3:") && strstr(err, "max_body_bytes"), "%s", err);
    unlink(p);
    p = write_tmp("[nosuch]\nkey = 1\n");
    ck_assert_int_eq(hm_config_load(&c, p, err, sizeof(err)), HM_EBADCONF);
    ck_assert_msg(strstr(err, "unknown configuration key 'nosuch.key'"), "%s", err);
    unlink(p);
    p = write_tmp("orphan = 1\n");
    ck_assert_int_eq(hm_config_load(&c, p, err, sizeof(err)), HM_EBADCONF);
    ck_assert_msg(strstr(err, "outside a [section]"), "%s", err);
    unlink(p);
    ck_assert_int_eq(hm_config_load(&c, "/nonexistent/x.conf", err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(hm_config_set(&c, "pin_threads=maybe", err, sizeof(err)), HM_EBADCONF);
    ck_assert_int_eq(hm_config_set(&c, "log.level=loud", err, sizeof(err)), HM_EBADCONF);
    ck_assert_int_eq(hm_config_set(&c, "shards=-1", err, sizeof(err)), HM_EBADCONF);
    ck_assert_int_eq(hm_config_set(&c, "noequals", err, sizeof(err)), HM_EBADCONF);
    ck_assert_int_eq(hm_config_set(&c, "server.cwmp_listen=nonsense", err, sizeof(err)), 0);
    ck_assert_int_eq(hm_config_validate(&c, err, sizeof(err)), HM_EBADCONF);
    ck_assert_msg(strstr(err, "cwmp_listen"), "%s", err);
    hm_config_free(&c);
}
END_TEST

START_TEST(hostport_parsing)
{
    struct sockaddr_storage ss;
    ck_assert_int_gt(hm_parse_hostport("127.0.0.1:7547", &ss), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_gt(hm_parse_hostport("[::1]:7547", &ss), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(hm_parse_hostport("127.0.0.1", &ss), HM_EBADCONF);
    ck_assert_int_eq(hm_parse_hostport("127.0.0.1:99999", &ss), HM_EBADCONF);
    ck_assert_int_eq(hm_parse_hostport("localhost:80", &ss), HM_EBADCONF);
    ck_assert_int_eq(hm_parse_hostport("[::1:80", &ss), HM_EBADCONF);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_are_valid);
    tcase_add_test(tc, file_then_overrides);
    tcase_add_test(tc, errors_name_file_line_and_key);
    tcase_add_test(tc, hostport_parsing);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
