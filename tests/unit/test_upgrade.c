/* The handoff of a binary upgrade, as the new image reads it: the layouts it knows (1 and 2),
 * what it refuses, and a layout it does not know. The wire structures are written out here
 * again on purpose: an image of an older build wrote them, so they must not move. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gcorn/upgrade.h"

#define MAGIC UINT64_C(0x67636f726e555047)

typedef struct Prefix {
        uint64_t magic;
        uint32_t version, n_pids, n_fds, reserved;
} Prefix;

typedef struct Body {
        char old_version[32];
        uint32_t generation, last_generation;
        uint64_t requests_done, timeouts, crashes;
        int32_t heartbeat_fd;
        uint32_t n_listeners, n_workers, n_waiters;
} Body;

typedef struct Listener2 {
        uint32_t inherited;
        char fdname[64];
        char bind[256];
        char unix_path[108];
        char store_name[16];
} Listener2;

#define LISTENER1_SIZE 432u

/* A handoff of the given layout with one worker and one self-bound listener, written with
 * records of record_size bytes; returns its fd, named by $GCORN_UPGRADE_FD. */
static int make_handoff(uint32_t version, size_t record_size, const char *store_name) {
        Prefix p = { .magic = MAGIC, .version = version, .n_pids = 1, .n_fds = 1 };
        int32_t pid = 4242;
        int heartbeat = open("/dev/null", O_RDONLY);
        Body b = {
                .generation = 3,
                .last_generation = 3,
                .requests_done = 17,
                .heartbeat_fd = heartbeat,
                .n_listeners = 1,
                .n_workers = 1,
        };
        Listener2 l = { .inherited = 0 };
        UpgradeWorker w = { .pid = 4242, .generation = 3 };
        char env[32];
        int fd;

        ck_assert_int_ge(heartbeat, 0);
        snprintf(b.old_version, sizeof(b.old_version), "9.8.7");
        snprintf(l.bind, sizeof(l.bind), "unix:/run/x.sock");
        snprintf(l.unix_path, sizeof(l.unix_path), "/run/x.sock");
        snprintf(l.store_name, sizeof(l.store_name), "%s", store_name);
        fd = memfd_create("test-handoff", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 3);
        ck_assert_int_eq(write(fd, &p, sizeof(p)), (ssize_t) sizeof(p));
        ck_assert_int_eq(write(fd, &pid, sizeof(pid)), (ssize_t) sizeof(pid));
        ck_assert_int_eq(write(fd, &b, sizeof(b)), (ssize_t) sizeof(b));
        ck_assert_int_eq(write(fd, &l, record_size), (ssize_t) record_size);
        ck_assert_int_eq(write(fd, &w, sizeof(w)), (ssize_t) sizeof(w));
        snprintf(env, sizeof(env), "%d", fd);
        setenv("GCORN_UPGRADE_FD", env, 1);
        return fd;
}

START_TEST(test_wire_sizes) {
        /* What layout 1 images write: a change here breaks upgrades from them. */
        ck_assert_uint_eq(sizeof(Prefix), 24);
        ck_assert_uint_eq(sizeof(Body), 80);
        ck_assert_uint_eq(sizeof(Listener2), LISTENER1_SIZE + 16);
        ck_assert_uint_eq(sizeof(UpgradeWorker), 32);
}
END_TEST

START_TEST(test_layout_2) {
        int fd = make_handoff(2, sizeof(Listener2), "gcorn-1");

        ck_assert_int_eq(UPGRADE_LAYOUT_VERSION, 2);
        ck_assert_int_eq(upgrade_take_handoff(), 1);
        ck_assert_ptr_nonnull(upgrade_state());
        ck_assert(upgrade_state()->known);
        ck_assert_str_eq(upgrade_state()->old_version, "9.8.7");
        ck_assert_uint_eq(upgrade_state()->generation, 3);
        ck_assert_uint_eq(upgrade_state()->requests_done, 17);
        ck_assert_uint_eq(upgrade_state()->n_workers, 1);
        ck_assert_int_eq(upgrade_state()->workers[0].pid, 4242);
        /* Taken: the environment no longer names it, and it is closed. */
        ck_assert_ptr_null(getenv("GCORN_UPGRADE_FD"));
        ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
        upgrade_state_done();
}
END_TEST

START_TEST(test_layout_1_is_still_read) {
        make_handoff(1, LISTENER1_SIZE, "");

        ck_assert_int_eq(upgrade_take_handoff(), 1);
        ck_assert(upgrade_state()->known);
        ck_assert_uint_eq(upgrade_state()->n_workers, 1);
        upgrade_state_done();
}
END_TEST

START_TEST(test_record_size_must_match_the_layout) {
        make_handoff(2, LISTENER1_SIZE, "");
        ck_assert_int_eq(upgrade_take_handoff(), -EBADMSG);
        ck_assert_ptr_null(upgrade_state());
}
END_TEST

START_TEST(test_store_name_must_be_ours) {
        /* FDSTOREREMOVE=1 of a name gcorn does not give would drop what is not its own. */
        make_handoff(2, sizeof(Listener2), "http");
        ck_assert_int_eq(upgrade_take_handoff(), -EBADMSG);
        ck_assert_ptr_null(upgrade_state());
}
END_TEST

START_TEST(test_unknown_layout) {
        make_handoff(99, sizeof(Listener2), "gcorn-0");

        ck_assert_int_eq(upgrade_take_handoff(), 1);
        ck_assert(!upgrade_state()->known);
        /* The part every layout keeps: the workers to retire. */
        ck_assert_uint_eq(upgrade_state()->n_pids, 1);
        ck_assert_int_eq(upgrade_state()->pids[0], 4242);
        upgrade_state_done();
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("upgrade");
        TCase *tc = tcase_create("handoff");

        tcase_add_test(tc, test_wire_sizes);
        tcase_add_test(tc, test_layout_2);
        tcase_add_test(tc, test_layout_1_is_still_read);
        tcase_add_test(tc, test_record_size_must_match_the_layout);
        tcase_add_test(tc, test_store_name_must_be_ours);
        tcase_add_test(tc, test_unknown_layout);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
