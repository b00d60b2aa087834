/*
 * The C API test suite: every misuse returns its documented status and never
 * crashes; the sans-IO path carries a network between two hospitals; a node
 * is shared by several threads. Run by tests/c/run.sh, plainly, under
 * AddressSanitizer + UBSan, and under valgrind.
 *
 *   c_api_test PATIENTS.ndjson WORKDIR
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "careledger.h"

static int failures = 0;
static int checks = 0;
static const char *workdir;
static uint8_t *patients_data;
static size_t patients_len;

#define CHECK(condition)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(condition)) {                                                    \
            failures++;                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #condition);                                               \
        }                                                                      \
    } while (0)

/* A call must return exactly `expected`. */
#define EXPECT_STATUS(call, expected)                                          \
    do {                                                                       \
        careledger_status got_ = (call);                                       \
        checks++;                                                              \
        if (got_ != (expected)) {                                              \
            char detail_[512] = "";                                            \
            size_t len_ = 0;                                                   \
            careledger_last_error(detail_, sizeof detail_, &len_);             \
            failures++;                                                        \
            fprintf(stderr, "%s:%d: %s\n  returned %u (%s), expected %s: %s\n", \
                    __FILE__, __LINE__, #call, (unsigned)got_,                 \
                    careledger_status_str(got_), #expected, detail_);          \
        }                                                                      \
    } while (0)

#define EXPECT_OK(call) EXPECT_STATUS(call, CARELEDGER_OK)

static const uint8_t KEY_A[CARELEDGER_STORAGE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t KEY_B[CARELEDGER_STORAGE_KEY_LEN] = {8, 7, 6, 5, 4, 3, 2, 1};

static void path_in_workdir(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", workdir, name);
}

static careledger_node *create_node(const char *file, const uint8_t *key, const char *name) {
    char path[4096];
    careledger_node *node = NULL;
    path_in_workdir(path, sizeof path, file);
    EXPECT_OK(careledger_node_create(path, key, CARELEDGER_STORAGE_KEY_LEN, name, &node));
    return node;
}

static size_t last_error_len(void) {
    size_t len = 0;
    careledger_last_error(NULL, 0, &len);
    return len;
}

/* Carries every waiting message of `from` into `log` (the transport), acking each. */
typedef struct {
    uint8_t *data[256];
    size_t len[256];
    size_t count;
} transport;

static void drain(careledger_node *from, transport *log) {
    careledger_outgoing *message = NULL;
    for (;;) {
        message = NULL;
        EXPECT_OK(careledger_node_poll_outgoing(from, &message));
        if (!message) return;
        if (log->count < 256) {
            size_t len = careledger_outgoing_len(message);
            log->data[log->count] = malloc(len);
            memcpy(log->data[log->count], careledger_outgoing_data(message), len);
            log->len[log->count] = len;
            log->count++;
        }
        EXPECT_OK(careledger_node_ack_outgoing(from, message));
        careledger_outgoing_free(message);
    }
}

static careledger_status deliver(careledger_node *to, const char *net, transport *log,
                                 careledger_receive_report *report) {
    return careledger_network_receive(to, net, (const uint8_t *const *)log->data, log->len,
                                      log->count, log->count, report);
}

static void transport_free(transport *log) {
    size_t i;
    for (i = 0; i < log->count; i++) free(log->data[i]);
    log->count = 0;
}

static void test_version_and_status_text(void) {
    CHECK(strcmp(careledger_version(), "") != 0);
    CHECK(strcmp(careledger_status_str(CARELEDGER_OK), "ok") == 0);
    CHECK(strcmp(careledger_status_str(CARELEDGER_WRONG_STORAGE_KEY),
                 "wrong storage key for this store") == 0);
    CHECK(strcmp(careledger_status_str(7), "unknown status code") == 0);
    CHECK(strcmp(careledger_status_str(0xFFFFFFFFu), "unknown status code") == 0);
    CHECK(CARELEDGER_OK == 0 && CARELEDGER_NULL_PARAMETER == 2 && CARELEDGER_INVALID_FHIR == 300);
}

/* NULL for every pointer argument of every function. */
static void test_null_arguments(careledger_node *node, const char *net) {
    careledger_node *out_node = NULL;
    careledger_bytes *bytes = NULL;
    careledger_string_list *list = NULL;
    careledger_member_list *members = NULL;
    careledger_outgoing *outgoing = NULL;
    char buf[128];
    size_t len = 0;
    uint64_t seq = 0;
    const uint8_t one = 1;
    const uint8_t *messages[1] = {NULL};
    size_t lengths[1] = {1};
    char path[4096];
    path_in_workdir(path, sizeof path, "null.sqlite");

    /* Frees and accessors accept NULL. */
    careledger_node_free(NULL);
    careledger_bytes_free(NULL);
    careledger_string_list_free(NULL);
    careledger_member_list_free(NULL);
    careledger_outgoing_free(NULL);
    CHECK(careledger_bytes_data(NULL) == NULL && careledger_bytes_len(NULL) == 0);
    CHECK(careledger_bytes_str(NULL) == NULL);
    CHECK(careledger_string_list_count(NULL) == 0 && careledger_string_list_get(NULL, 0) == NULL);
    CHECK(careledger_member_list_count(NULL) == 0);
    CHECK(careledger_member_list_name(NULL, 0) == NULL);
    CHECK(careledger_member_list_author_id(NULL, 0) == NULL);
    CHECK(careledger_member_list_fingerprint(NULL, 0) == NULL);
    CHECK(careledger_outgoing_network_id(NULL) == NULL && careledger_outgoing_data(NULL) == NULL);
    CHECK(careledger_outgoing_len(NULL) == 0);

    EXPECT_STATUS(careledger_last_error(buf, sizeof buf, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_last_error(NULL, 10, &len), CARELEDGER_NULL_PARAMETER);

    EXPECT_STATUS(careledger_node_create(NULL, KEY_A, 32, "n.example", &out_node), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_create(path, NULL, 32, "n.example", &out_node), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, NULL, &out_node), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "n.example", NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_open(NULL, KEY_A, 32, &out_node), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_open(path, NULL, 32, &out_node), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_open(path, KEY_A, 32, NULL), CARELEDGER_NULL_PARAMETER);
    CHECK(out_node == NULL);
    CHECK(last_error_len() > 0);

    EXPECT_STATUS(careledger_node_author_id(NULL, buf, sizeof buf, &len), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_author_id(node, NULL, sizeof buf, &len), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_author_id(node, buf, sizeof buf, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_fingerprint(NULL, buf, sizeof buf, &len), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_fingerprint(node, NULL, sizeof buf, &len), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_fingerprint(node, buf, sizeof buf, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_key_package(NULL, &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_key_package(node, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_networks(NULL, &list), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_networks(node, NULL), CARELEDGER_NULL_PARAMETER);

    EXPECT_STATUS(careledger_network_create(NULL, "care", &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_create(node, NULL, &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_create(node, "care", NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_invite(NULL, net, &one, 1), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_invite(node, NULL, &one, 1), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_invite(node, net, NULL, 1), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join(NULL, &one, 1, "care", &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join(node, NULL, 1, "care", &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join(node, &one, 1, NULL, &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join(node, &one, 1, "care", NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_remove(NULL, net, "00"), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_remove(node, NULL, "00"), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_remove(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_members(NULL, net, &members), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_members(node, NULL, &members), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_members(node, net, NULL), CARELEDGER_NULL_PARAMETER);

    EXPECT_STATUS(careledger_import_fhir(NULL, net, "x", &one, 1, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_import_fhir(node, NULL, "x", &one, 1, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_import_fhir(node, net, NULL, &one, 1, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_import_fhir(node, net, "x", NULL, 1, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_patient(NULL, net, "p", &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_patient(node, NULL, "p", &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_patient(node, net, NULL, &bytes), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_patient(node, net, "p", NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patients(NULL, net, &list), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patients(node, NULL, &list), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patients(node, net, NULL), CARELEDGER_NULL_PARAMETER);

    EXPECT_STATUS(careledger_network_sync(NULL, net, path, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_sync(node, NULL, path, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_sync(node, net, NULL, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join_from_relay(NULL, path, net, "care"), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join_from_relay(node, NULL, net, "care"), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join_from_relay(node, path, NULL, "care"), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_join_from_relay(node, path, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_announce(NULL, net), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_announce(node, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_poll_outgoing(NULL, &outgoing), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_poll_outgoing(node, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_ack_outgoing(NULL, outgoing), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_node_ack_outgoing(node, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_receive(NULL, net, messages, lengths, 1, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_receive(node, NULL, messages, lengths, 1, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_receive(node, net, NULL, lengths, 1, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_receive(node, net, messages, NULL, 1, 0, NULL), CARELEDGER_NULL_PARAMETER);
    /* messages[0] is NULL with a length of 1. */
    EXPECT_STATUS(careledger_network_receive(node, net, messages, lengths, 1, 0, NULL), CARELEDGER_NULL_PARAMETER);
    /* An empty batch needs no arrays. */
    EXPECT_OK(careledger_network_receive(node, net, NULL, NULL, 0, 0, NULL));
    EXPECT_STATUS(careledger_network_relay_cursor(NULL, net, &seq), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_relay_cursor(node, NULL, &seq), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_relay_cursor(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_ledger_verify(NULL, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_ledger_verify(node, NULL, NULL), CARELEDGER_NULL_PARAMETER);

    /* Nothing was written to any output on failure. */
    CHECK(bytes == NULL && list == NULL && members == NULL && outgoing == NULL && seq == 0);
}

static void test_bad_strings_and_arguments(careledger_node *node, const char *net) {
    careledger_node *out_node = NULL;
    careledger_bytes *bytes = NULL;
    careledger_string_list *list = NULL;
    careledger_member_list *members = NULL;
    char path[4096];
    char author[CARELEDGER_AUTHOR_ID_LEN + 1];
    size_t len = 0;
    const char bad_utf8[] = {'c', 'a', (char)0xff, 'e', 0};
    path_in_workdir(path, sizeof path, "args.sqlite");

    EXPECT_STATUS(careledger_node_create(bad_utf8, KEY_A, 32, "n.example", &out_node), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, bad_utf8, &out_node), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_network_create(node, bad_utf8, &bytes), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_export_patient(node, net, bad_utf8, &bytes), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_patients(node, bad_utf8, &list), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_import_fhir(node, net, bad_utf8, (const uint8_t *)"{}", 2, NULL), CARELEDGER_INVALID_UTF8);
    CHECK(bytes == NULL);

    /* A storage key of the wrong length. */
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 31, "n.example", &out_node), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_node_open(path, KEY_A, 0, &out_node), CARELEDGER_INVALID_ARGUMENT);
    /* Names must be printable ASCII without spaces. */
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "two words", &out_node), CARELEDGER_INVALID_NAME);
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "", &out_node), CARELEDGER_INVALID_NAME);
    CHECK(out_node == NULL);
    /* Ids that are not ids. */
    EXPECT_STATUS(careledger_network_members(node, "not hex", &members), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_announce(node, ""), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_remove(node, net, "abc"), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_announce(node, "00112233445566778899aabbccddeeff"), CARELEDGER_UNKNOWN_NETWORK);
    EXPECT_OK(careledger_node_author_id(node, author, sizeof author, &len));
    /* Ourselves as an author id is valid hex, but a removal needs another member. */
    memset(author, 'a', CARELEDGER_AUTHOR_ID_LEN);
    EXPECT_STATUS(careledger_network_remove(node, net, author), CARELEDGER_UNKNOWN_MEMBER);
    EXPECT_STATUS(careledger_export_patient(node, net, "no-such-patient", &bytes), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_network_invite(node, net, (const uint8_t *)"junk", 4), CARELEDGER_INVALID_KEY_PACKAGE);
    EXPECT_STATUS(careledger_network_join(node, (const uint8_t *)"junk", 4, "x", &bytes), CARELEDGER_INVALID_WELCOME);
    CHECK(bytes == NULL && list == NULL && members == NULL);
}

static void test_buffers(careledger_node *node) {
    char small[8];
    char exact[CARELEDGER_FINGERPRINT_LEN + 1];
    char detail[4];
    size_t len = 0;

    EXPECT_STATUS(careledger_node_fingerprint(node, small, sizeof small, &len), CARELEDGER_BUFFER_TOO_SMALL);
    CHECK(len == CARELEDGER_FINGERPRINT_LEN);
    /* Asking for the length only. */
    len = 0;
    EXPECT_STATUS(careledger_node_fingerprint(node, NULL, 0, &len), CARELEDGER_BUFFER_TOO_SMALL);
    CHECK(len == CARELEDGER_FINGERPRINT_LEN);
    /* One byte short of the NUL. */
    EXPECT_STATUS(careledger_node_fingerprint(node, exact, CARELEDGER_FINGERPRINT_LEN, &len), CARELEDGER_BUFFER_TOO_SMALL);
    EXPECT_OK(careledger_node_fingerprint(node, exact, sizeof exact, &len));
    CHECK(len == CARELEDGER_FINGERPRINT_LEN && strlen(exact) == CARELEDGER_FINGERPRINT_LEN);
    EXPECT_STATUS(careledger_node_author_id(node, small, sizeof small, &len), CARELEDGER_BUFFER_TOO_SMALL);
    CHECK(len == CARELEDGER_AUTHOR_ID_LEN);

    /* The last error is kept until the next call and reports its own size. */
    EXPECT_STATUS(careledger_node_fingerprint(node, small, sizeof small, &len), CARELEDGER_BUFFER_TOO_SMALL);
    EXPECT_STATUS(careledger_last_error(detail, sizeof detail, &len), CARELEDGER_BUFFER_TOO_SMALL);
    CHECK(len > sizeof detail);
    CHECK(last_error_len() == len);
    /* A successful call clears it. */
    EXPECT_OK(careledger_node_fingerprint(node, exact, sizeof exact, &len));
    CHECK(last_error_len() == 0);
}

static void test_store_misuse(void) {
    char path[4096], garbage[4096];
    careledger_node *node = NULL, *again = NULL;
    FILE *file;

    path_in_workdir(path, sizeof path, "misuse.sqlite");
    /* Opening before creating. */
    EXPECT_STATUS(careledger_node_open(path, KEY_A, 32, &node), CARELEDGER_NO_IDENTITY);
    CHECK(node == NULL);
    node = create_node("misuse.sqlite", KEY_A, "misuse.example");
    careledger_node_free(node);
    /* Creating twice, the wrong key, a file that is not a store. */
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "misuse.example", &again), CARELEDGER_ALREADY_CREATED);
    EXPECT_STATUS(careledger_node_open(path, KEY_B, 32, &again), CARELEDGER_WRONG_STORAGE_KEY);
    CHECK(again == NULL);
    path_in_workdir(garbage, sizeof garbage, "not-a-store.sqlite");
    file = fopen(garbage, "wb");
    CHECK(file != NULL);
    if (file) {
        fputs("this is not an SQLite database, but it is long enough to have a header.....", file);
        fclose(file);
    }
    EXPECT_STATUS(careledger_node_open(garbage, KEY_A, 32, &again), CARELEDGER_STORE_IO);
    /* A directory where the file should be. */
    EXPECT_STATUS(careledger_node_open(workdir, KEY_A, 32, &again), CARELEDGER_STORE_IO);
    CHECK(again == NULL);
    /* The right key still opens it: the failed attempts changed nothing. */
    EXPECT_OK(careledger_node_open(path, KEY_A, 32, &again));
    careledger_node_free(again);
}

/* Import, free, reopen: everything acknowledged is still there. */
static void test_invalid_fhir_and_reopen(void) {
    char path[4096];
    careledger_node *node = create_node("reopen.sqlite", KEY_A, "reopen.example");
    careledger_bytes *network = NULL, *chart = NULL, *chart_again = NULL;
    careledger_string_list *patients = NULL, *networks = NULL;
    careledger_import_report report;
    const char *invalid = "{\"resourceType\":\"Patient\",\"id\":\"not a valid id!\"}\n"
                          "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\"}\n";
    const char *truncated = "{\"resourceType\":\"Patient\",\"id\":\"p1\"";
    char net[256] = "";
    size_t half = patients_len / 2;

    path_in_workdir(path, sizeof path, "reopen.sqlite");
    EXPECT_OK(careledger_network_create(node, "care", &network));
    if (network) snprintf(net, sizeof net, "%s", careledger_bytes_str(network));

    EXPECT_STATUS(careledger_import_fhir(node, net, "invalid.ndjson", (const uint8_t *)invalid, strlen(invalid), &report),
                  CARELEDGER_INVALID_FHIR);
    CHECK(last_error_len() > 0);
    EXPECT_STATUS(careledger_import_fhir(node, net, "truncated.ndjson", (const uint8_t *)truncated, strlen(truncated), NULL),
                  CARELEDGER_INVALID_FHIR);
    /* A real file cut in half mid-line: all or nothing. */
    while (half > 0 && patients_data[half - 1] == '\n') half--;
    EXPECT_STATUS(careledger_import_fhir(node, net, "half.ndjson", patients_data, half, NULL), CARELEDGER_INVALID_FHIR);
    EXPECT_OK(careledger_patients(node, net, &patients));
    CHECK(careledger_string_list_count(patients) == 0);
    careledger_string_list_free(patients);
    patients = NULL;

    EXPECT_OK(careledger_import_fhir(node, net, "Patient.ndjson", patients_data, patients_len, &report));
    CHECK(report.patients > 0 && report.resources == report.patients);
    EXPECT_OK(careledger_patients(node, net, &patients));
    CHECK(careledger_string_list_count(patients) == report.patients);
    if (careledger_string_list_count(patients) > 0)
        EXPECT_OK(careledger_export_patient(node, net, careledger_string_list_get(patients, 0), &chart));
    careledger_node_free(node);

    /* Reopen the freed store. */
    node = NULL;
    EXPECT_OK(careledger_node_open(path, KEY_A, 32, &node));
    EXPECT_OK(careledger_node_networks(node, &networks));
    CHECK(careledger_string_list_count(networks) == 1);
    CHECK(networks && strcmp(careledger_string_list_get(networks, 0), net) == 0);
    CHECK(careledger_string_list_get(networks, 1) == NULL);
    if (careledger_string_list_count(patients) > 0) {
        EXPECT_OK(careledger_export_patient(node, net, careledger_string_list_get(patients, 0), &chart_again));
        CHECK(chart && chart_again && careledger_bytes_len(chart) == careledger_bytes_len(chart_again) &&
              memcmp(careledger_bytes_data(chart), careledger_bytes_data(chart_again), careledger_bytes_len(chart)) == 0);
    }
    EXPECT_OK(careledger_ledger_verify(node, net, NULL));
    /* Importing the same data again changes nothing. */
    EXPECT_OK(careledger_import_fhir(node, net, "Patient.ndjson", patients_data, patients_len, &report));
    CHECK(report.changes == 0);

    careledger_bytes_free(chart);
    careledger_bytes_free(chart_again);
    careledger_string_list_free(patients);
    careledger_string_list_free(networks);
    careledger_bytes_free(network);
    careledger_node_free(node);
}

/* Two hospitals over the integrator's own transport, then forged and tampered bytes. */
static void test_sans_io(void) {
    careledger_node *a = create_node("sansio-a.sqlite", KEY_A, "hospital-a.example");
    careledger_node *b = create_node("sansio-b.sqlite", KEY_B, "hospital-b.example");
    careledger_bytes *network = NULL, *key_package = NULL, *joined = NULL;
    careledger_bytes *chart_a = NULL, *chart_b = NULL;
    careledger_string_list *patients = NULL;
    careledger_member_list *members = NULL;
    careledger_outgoing *foreign = NULL;
    careledger_receive_report report;
    careledger_import_report imported;
    careledger_ledger_report ledger;
    transport log = {{0}, {0}, 0}, entries = {{0}, {0}, 0};
    const char *net = "";
    size_t i;
    uint64_t cursor = 0;
    uint8_t *tampered = NULL;

    EXPECT_OK(careledger_network_create(a, "care", &network));
    if (network) net = careledger_bytes_str(network);
    EXPECT_OK(careledger_node_key_package(b, &key_package));
    EXPECT_OK(careledger_network_invite(a, net, careledger_bytes_data(key_package), careledger_bytes_len(key_package)));
    EXPECT_STATUS(careledger_network_invite(a, net, careledger_bytes_data(key_package), careledger_bytes_len(key_package)),
                  CARELEDGER_COMMIT_PENDING);

    /* The invitation's commit comes back through the transport and wins; the
     * Welcome follows in A's outbox. */
    EXPECT_OK(careledger_network_announce(a, net));
    drain(a, &log);
    EXPECT_OK(deliver(a, net, &log, &report));
    CHECK(report.commits_applied == 1);
    drain(a, &log);
    CHECK(log.count >= 2);
    EXPECT_STATUS(careledger_network_join(b, (const uint8_t *)"x", 1, "care", &joined), CARELEDGER_INVALID_WELCOME);
    /* Try each message as the Welcome until one opens (the transport does not know which is which). */
    for (i = 0; i < log.count && !joined; i++) {
        careledger_status s = careledger_network_join(b, log.data[i], log.len[i], "care", &joined);
        CHECK(s == CARELEDGER_OK || s == CARELEDGER_INVALID_WELCOME);
    }
    CHECK(joined && strcmp(careledger_bytes_str(joined), net) == 0);
    EXPECT_OK(deliver(b, net, &log, &report));
    EXPECT_OK(careledger_network_relay_cursor(b, net, &cursor));
    CHECK(cursor == log.count);
    EXPECT_OK(careledger_network_members(b, net, &members));
    CHECK(careledger_member_list_count(members) == 2);
    CHECK(careledger_member_list_author_id(members, 2) == NULL);
    CHECK(members && strlen(careledger_member_list_author_id(members, 0)) == CARELEDGER_AUTHOR_ID_LEN);

    /* A imports; its entries travel; B reads the same chart. */
    EXPECT_OK(careledger_import_fhir(a, net, "Patient.ndjson", patients_data, patients_len, &imported));
    drain(a, &entries);
    drain(b, &entries);
    CHECK(entries.count > 0);
    EXPECT_OK(deliver(b, net, &entries, &report));
    CHECK(report.accepted == imported.entries && report.rejected == 0);
    EXPECT_OK(careledger_patients(b, net, &patients));
    CHECK(careledger_string_list_count(patients) == imported.patients);
    if (careledger_string_list_count(patients) > 0) {
        EXPECT_OK(careledger_export_patient(a, net, careledger_string_list_get(patients, 0), &chart_a));
        EXPECT_OK(careledger_export_patient(b, net, careledger_string_list_get(patients, 0), &chart_b));
        CHECK(chart_a && chart_b && careledger_bytes_len(chart_a) == careledger_bytes_len(chart_b) &&
              memcmp(careledger_bytes_data(chart_a), careledger_bytes_data(chart_b), careledger_bytes_len(chart_a)) == 0);
    }
    /* Delivering the same messages again: duplicates, nothing rejected. */
    EXPECT_OK(deliver(b, net, &entries, &report));
    CHECK(report.duplicates >= imported.entries && report.accepted == 0);

    /* Tampered: every single-byte flip of a real entry message is refused. */
    if (entries.count > 0) {
        size_t len = entries.len[0], position, rejected = 0, flips = 0;
        tampered = malloc(len);
        for (position = 0; position < len; position += 1 + len / 97) {
            const uint8_t *one[1];
            size_t one_len[1];
            memcpy(tampered, entries.data[0], len);
            tampered[position] ^= 0x20;
            one[0] = tampered;
            one_len[0] = len;
            flips++;
            if (careledger_network_receive(b, net, one, one_len, 1, 0, &report) == CARELEDGER_MESSAGE_REJECTED &&
                report.rejected == 1 && report.accepted == 0)
                rejected++;
        }
        CHECK(flips > 50);
        CHECK(rejected == flips);
        /* Truncated. */
        {
            const uint8_t *one[1] = {entries.data[0]};
            size_t one_len[1] = {len / 2};
            EXPECT_STATUS(careledger_network_receive(b, net, one, one_len, 1, 0, &report), CARELEDGER_MESSAGE_REJECTED);
            CHECK(report.rejected == 1);
            CHECK(last_error_len() > 0);
        }
    }
    /* Forged: random bytes, an empty message, and a mix with genuine ones. */
    {
        uint8_t noise[300];
        const uint8_t *batch[3];
        size_t batch_len[3];
        for (i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)(i * 131 + 7);
        batch[0] = noise;
        batch_len[0] = sizeof noise;
        batch[1] = noise;
        batch_len[1] = 0;
        batch[2] = entries.count ? entries.data[0] : noise;
        batch_len[2] = entries.count ? entries.len[0] : sizeof noise;
        EXPECT_STATUS(careledger_network_receive(b, net, batch, batch_len, 3, 0, &report), CARELEDGER_MESSAGE_REJECTED);
        CHECK(report.rejected == 2 && report.duplicates == 1);
    }
    /* A message from A's outbox cannot be acknowledged on B. */
    EXPECT_OK(careledger_network_announce(a, net));
    EXPECT_OK(careledger_node_poll_outgoing(a, &foreign));
    CHECK(foreign != NULL);
    CHECK(foreign && strcmp(careledger_outgoing_network_id(foreign), net) == 0);
    EXPECT_STATUS(careledger_node_ack_outgoing(b, foreign), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_OK(careledger_node_ack_outgoing(a, foreign));
    EXPECT_OK(careledger_node_ack_outgoing(a, foreign)); /* twice is harmless */

    /* Nothing B stored was affected; its ledger verifies. */
    EXPECT_OK(careledger_ledger_verify(b, net, &ledger));
    CHECK(ledger.entries == imported.entries + 1 && ledger.problems == 0 && ledger.forks == 0);

    free(tampered);
    transport_free(&log);
    transport_free(&entries);
    careledger_outgoing_free(foreign);
    careledger_member_list_free(members);
    careledger_string_list_free(patients);
    careledger_bytes_free(chart_a);
    careledger_bytes_free(chart_b);
    careledger_bytes_free(joined);
    careledger_bytes_free(key_package);
    careledger_bytes_free(network);
    careledger_node_free(a);
    careledger_node_free(b);
}

/* A node shared by several threads: calls are serialised, results are right,
 * and each thread has its own last error. */
typedef struct {
    careledger_node *node;
    const char *net;
    const char *patient;
    size_t chart_len;
    int index;
    int failed;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    int round;
    for (round = 0; round < 8; round++) {
        careledger_bytes *chart = NULL;
        careledger_string_list *patients = NULL;
        char fingerprint[CARELEDGER_FINGERPRINT_LEN + 1];
        size_t len = 0, detail_len = 1;
        if (careledger_export_patient(w->node, w->net, w->patient, &chart) != CARELEDGER_OK ||
            careledger_bytes_len(chart) != w->chart_len)
            w->failed++;
        careledger_bytes_free(chart);
        if (careledger_patients(w->node, w->net, &patients) != CARELEDGER_OK ||
            careledger_string_list_count(patients) == 0)
            w->failed++;
        careledger_string_list_free(patients);
        if (w->index % 2 == 0) {
            /* This thread fails on purpose; the others' last errors stay empty. */
            if (careledger_node_fingerprint(w->node, fingerprint, 4, &len) != CARELEDGER_BUFFER_TOO_SMALL)
                w->failed++;
            careledger_last_error(NULL, 0, &detail_len);
            if (detail_len == 0) w->failed++;
        } else {
            if (careledger_node_fingerprint(w->node, fingerprint, sizeof fingerprint, &len) != CARELEDGER_OK)
                w->failed++;
            careledger_last_error(NULL, 0, &detail_len);
            if (detail_len != 0) w->failed++;
        }
        if (careledger_ledger_verify(w->node, w->net, NULL) != CARELEDGER_OK) w->failed++;
    }
    return NULL;
}

static void test_threads(void) {
    careledger_node *node = create_node("threads.sqlite", KEY_A, "threads.example");
    careledger_bytes *network = NULL, *chart = NULL;
    careledger_string_list *patients = NULL;
    pthread_t threads[4];
    worker workers[4];
    int i;

    EXPECT_OK(careledger_network_create(node, "care", &network));
    EXPECT_OK(careledger_import_fhir(node, careledger_bytes_str(network), "Patient.ndjson", patients_data,
                                     patients_len, NULL));
    EXPECT_OK(careledger_patients(node, careledger_bytes_str(network), &patients));
    EXPECT_OK(careledger_export_patient(node, careledger_bytes_str(network),
                                        careledger_string_list_get(patients, 0), &chart));
    for (i = 0; i < 4; i++) {
        workers[i].node = node;
        workers[i].net = careledger_bytes_str(network);
        workers[i].patient = careledger_string_list_get(patients, 0);
        workers[i].chart_len = careledger_bytes_len(chart);
        workers[i].index = i;
        workers[i].failed = 0;
        CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
    }
    /* The main thread imports meanwhile. */
    EXPECT_OK(careledger_import_fhir(node, careledger_bytes_str(network), "Patient.ndjson", patients_data,
                                     patients_len, NULL));
    for (i = 0; i < 4; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].failed == 0);
    }
    careledger_bytes_free(chart);
    careledger_string_list_free(patients);
    careledger_bytes_free(network);
    careledger_node_free(node);
}

int main(int argc, char **argv) {
    FILE *file;
    long size;
    careledger_node *node;
    careledger_bytes *network = NULL;
    const char *net = "00";

    if (argc != 3) {
        fprintf(stderr, "usage: %s PATIENTS.ndjson WORKDIR\n", argv[0]);
        return 2;
    }
    workdir = argv[2];
    file = fopen(argv[1], "rb");
    if (!file || fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) <= 0 || fseek(file, 0, SEEK_SET) != 0 ||
        !(patients_data = malloc((size_t)size)) || fread(patients_data, 1, (size_t)size, file) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(file);
    patients_len = (size_t)size;

    node = create_node("main.sqlite", KEY_A, "main.example");
    EXPECT_OK(careledger_network_create(node, "care", &network));
    if (network) net = careledger_bytes_str(network);

    test_version_and_status_text();
    test_null_arguments(node, net);
    test_bad_strings_and_arguments(node, net);
    test_buffers(node);
    test_store_misuse();
    test_invalid_fhir_and_reopen();
    test_sans_io();
    test_threads();

    careledger_bytes_free(network);
    careledger_node_free(node);
    free(patients_data);
    printf("c_api_test: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
