/*
 * The C API test suite: every misuse returns its documented status and never
 * crashes; the sans-IO path carries a network between two hospitals; a node
 * is shared by several threads; a hospital shares consented charts into a
 * study where a lab trains, predicts, is audited and re-verified, and a
 * revocation takes a patient out; an insurer's rules adjudicate shared
 * claims by themselves and the hospital re-checks every outcome. Run by
 * tests/c/run.sh, plainly, under AddressSanitizer + UBSan, and under valgrind.
 *
 *   c_api_test PATIENTS.ndjson WORKDIR
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
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

/* True if `path` or any file SQLite or careledger keeps beside it exists. */
static int store_files_exist(const char *path) {
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal", ".creating", ".creating-journal"};
    char name[4200];
    size_t i;
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        FILE *file;
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        file = fopen(name, "rb");
        if (file) {
            fclose(file);
            return 1;
        }
    }
    return 0;
}

/* The last error is a sentence, not a Rust or MLS debug value. */
static void check_plain_last_error(int line) {
    static const char *debug_words[] = {"EndOfStream", "UnknownValue", "TrailingData", "InvalidVectorLength",
                                        "DecodingError", "LibraryError", "Error {", "Some(", "None", "\\\""};
    char detail[1024] = "";
    size_t len = 0, i;
    careledger_last_error(detail, sizeof detail, &len);
    checks++;
    if (len < 20) {
        failures++;
        fprintf(stderr, "%s:%d: last error too short to act on: %s\n", __FILE__, line, detail);
    }
    for (i = 0; i < sizeof debug_words / sizeof debug_words[0]; i++) {
        checks++;
        if (strstr(detail, debug_words[i])) {
            failures++;
            fprintf(stderr, "%s:%d: last error shows debug text '%s': %s\n", __FILE__, line, debug_words[i], detail);
        }
    }
}
#define CHECK_PLAIN_LAST_ERROR() check_plain_last_error(__LINE__)

static size_t last_error_len(void) {
    size_t len = 0;
    careledger_last_error(NULL, 0, &len);
    return len;
}

/* Carries every waiting message of `from` into `log` (the transport), acking each. */
typedef struct {
    uint8_t *data[256];
    size_t len[256];
    careledger_message_kind kind[256];
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
            log->kind[log->count] = careledger_outgoing_kind(message);
            CHECK(log->kind[log->count] != CARELEDGER_MESSAGE_UNKNOWN);
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
    CHECK(strcmp(careledger_status_str(8), "unknown status code") == 0);
    CHECK(CARELEDGER_STALE_HANDLE == 7);
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
    /* Opening before creating: refused, and no file is left behind. */
    EXPECT_STATUS(careledger_node_open(path, KEY_A, 32, &node), CARELEDGER_NO_IDENTITY);
    CHECK(node == NULL);
    CHECK(!store_files_exist(path));
    CHECK_PLAIN_LAST_ERROR();
    /* A failed create leaves nothing either: bad key length, invalid names. */
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 31, "misuse.example", &node), CARELEDGER_INVALID_ARGUMENT);
    CHECK(!store_files_exist(path));
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "has a space", &node), CARELEDGER_INVALID_NAME);
    CHECK(!store_files_exist(path));
    EXPECT_STATUS(careledger_node_create(path, KEY_A, 32, "", &node), CARELEDGER_INVALID_NAME);
    CHECK(!store_files_exist(path));
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
    /* Valid JSON, invalid FHIR R4: named by file, line and element, never by value. */
    {
        const char *not_r4[] = {
            "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"birthDate\":\"Jane Doe\"}",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"banana\"}",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"deceasedBoolean\":true,\"deceasedDateTime\":\"2020\"}",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":{\"family\":\"Doe\"}}",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"nickname\":\"Jo\"}",
        };
        const char *element[] = {"Patient.birthDate", "Patient.gender", "Patient.deceasedDateTime", "Patient.name",
                                 "Patient.nickname"};
        const char *value[] = {"Jane", "banana", "2020", "Doe", "Jo\""};
        size_t k;
        for (k = 0; k < sizeof not_r4 / sizeof not_r4[0]; k++) {
            char detail[1024] = "";
            size_t len = 0;
            char source[64];
            snprintf(source, sizeof source, "upload-%u.ndjson", (unsigned)k);
            EXPECT_STATUS(careledger_import_fhir(node, net, source, (const uint8_t *)not_r4[k], strlen(not_r4[k]), NULL),
                          CARELEDGER_INVALID_FHIR);
            EXPECT_OK(careledger_last_error(detail, sizeof detail, &len));
            CHECK(strstr(detail, source) && strstr(detail, "line 1") && strstr(detail, element[k]));
            CHECK(!strstr(detail, value[k]));
        }
    }
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
    transport log = {{0}, {0}, {0}, 0}, entries = {{0}, {0}, {0}, 0};
    careledger_bytes *joined_again = NULL, *probe = NULL;
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
    CHECK_PLAIN_LAST_ERROR();
    /* The message kinds say which message is the Welcome: exactly one, after the Commit. */
    {
        /* (announce re-queues the pending Commit, so it may travel twice) */
        size_t welcomes = 0, commits = 0, welcome_at = 0, first_commit_at = 0;
        for (i = 0; i < log.count; i++) {
            if (log.kind[i] == CARELEDGER_MESSAGE_WELCOME) welcomes++, welcome_at = i;
            if (log.kind[i] == CARELEDGER_MESSAGE_COMMIT && commits++ == 0) first_commit_at = i;
        }
        CHECK(welcomes == 1 && commits >= 1 && first_commit_at < welcome_at);
        for (i = 0; i < log.count; i++) {
            if (log.kind[i] == CARELEDGER_MESSAGE_WELCOME) continue;
            EXPECT_STATUS(careledger_network_join(b, log.data[i], log.len[i], "care", &probe), CARELEDGER_INVALID_WELCOME);
            CHECK_PLAIN_LAST_ERROR();
        }
        CHECK(probe == NULL);
        EXPECT_OK(careledger_network_join(b, log.data[welcome_at], log.len[welcome_at], "care", &joined));
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
            CHECK_PLAIN_LAST_ERROR();
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
        CHECK_PLAIN_LAST_ERROR();
        /* Garbage, truncated and damaged key packages and Welcomes: sentences, not decoder values. */
        EXPECT_STATUS(careledger_network_invite(a, net, noise, sizeof noise), CARELEDGER_INVALID_KEY_PACKAGE);
        CHECK_PLAIN_LAST_ERROR();
        EXPECT_STATUS(careledger_network_invite(a, net, careledger_bytes_data(key_package), careledger_bytes_len(key_package) / 2),
                      CARELEDGER_INVALID_KEY_PACKAGE);
        CHECK_PLAIN_LAST_ERROR();
        EXPECT_STATUS(careledger_network_join(b, noise, 7, "x", &joined_again), CARELEDGER_INVALID_WELCOME);
        CHECK_PLAIN_LAST_ERROR();
        EXPECT_STATUS(careledger_network_join(b, careledger_bytes_data(key_package), careledger_bytes_len(key_package), "x",
                                              &joined_again),
                      CARELEDGER_INVALID_WELCOME);
        CHECK_PLAIN_LAST_ERROR();
        CHECK(joined_again == NULL);
    }
    /* A message from A's outbox cannot be acknowledged on B. */
    EXPECT_OK(careledger_network_announce(a, net));
    EXPECT_OK(careledger_node_poll_outgoing(a, &foreign));
    CHECK(foreign != NULL);
    CHECK(foreign && strcmp(careledger_outgoing_network_id(foreign), net) == 0);
    EXPECT_STATUS(careledger_node_ack_outgoing(b, foreign), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_OK(careledger_node_ack_outgoing(a, foreign));
    EXPECT_OK(careledger_node_ack_outgoing(a, foreign)); /* twice is harmless */
    CHECK(careledger_outgoing_kind(foreign) == CARELEDGER_MESSAGE_HEADS);
    CHECK(careledger_outgoing_kind(NULL) == CARELEDGER_MESSAGE_UNKNOWN);

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
    careledger_bytes_free(joined_again);
    careledger_bytes_free(key_package);
    careledger_bytes_free(network);
    careledger_node_free(a);
    careledger_node_free(b);
}

/* A node that joins after records were written is fed the network's log from
 * its first message (the delivery rules at careledger_outgoing) and reads the
 * whole history, including what came before its Welcome. */
static void test_joiner_reads_history(void) {
    careledger_node *a = create_node("history-a.sqlite", KEY_A, "hospital-a.example");
    careledger_node *c = create_node("history-c.sqlite", KEY_B, "clinic-c.example");
    careledger_bytes *network = NULL, *key_package = NULL, *joined = NULL, *chart_a = NULL, *chart_c = NULL;
    careledger_string_list *patients = NULL;
    careledger_receive_report report;
    careledger_import_report imported;
    transport log = {{0}, {0}, {0}, 0};
    const char *net = "";
    size_t i, welcome_at = 0, welcomes = 0, before_welcome_entries = 0;

    EXPECT_OK(careledger_network_create(a, "care", &network));
    if (network) net = careledger_bytes_str(network);
    EXPECT_OK(careledger_import_fhir(a, net, "Patient.ndjson", patients_data, patients_len, &imported));
    drain(a, &log);
    for (i = 0; i < log.count; i++) before_welcome_entries += log.kind[i] == CARELEDGER_MESSAGE_ENTRY;
    CHECK(before_welcome_entries == imported.entries);

    EXPECT_OK(careledger_node_key_package(c, &key_package));
    EXPECT_OK(careledger_network_invite(a, net, careledger_bytes_data(key_package), careledger_bytes_len(key_package)));
    EXPECT_OK(careledger_network_announce(a, net));
    drain(a, &log);
    EXPECT_OK(deliver(a, net, &log, &report));
    drain(a, &log);
    for (i = 0; i < log.count; i++)
        if (log.kind[i] == CARELEDGER_MESSAGE_WELCOME) welcomes++, welcome_at = i;
    CHECK(welcomes == 1 && welcome_at > before_welcome_entries);
    if (welcomes == 1) EXPECT_OK(careledger_network_join(c, log.data[welcome_at], log.len[welcome_at], "care", &joined));
    CHECK(joined && strcmp(careledger_bytes_str(joined), net) == 0);

    /* The whole log, from its first message. */
    EXPECT_OK(deliver(c, net, &log, &report));
    CHECK(report.rejected == 0 && report.accepted >= imported.entries);
    EXPECT_OK(careledger_patients(c, net, &patients));
    CHECK(careledger_string_list_count(patients) == imported.patients);
    if (careledger_string_list_count(patients) > 0) {
        EXPECT_OK(careledger_export_patient(a, net, careledger_string_list_get(patients, 0), &chart_a));
        EXPECT_OK(careledger_export_patient(c, net, careledger_string_list_get(patients, 0), &chart_c));
        CHECK(chart_a && chart_c && careledger_bytes_len(chart_a) == careledger_bytes_len(chart_c) &&
              memcmp(careledger_bytes_data(chart_a), careledger_bytes_data(chart_c), careledger_bytes_len(chart_a)) == 0);
    }
    EXPECT_OK(careledger_ledger_verify(c, net, NULL));

    transport_free(&log);
    careledger_string_list_free(patients);
    careledger_bytes_free(chart_a);
    careledger_bytes_free(chart_c);
    careledger_bytes_free(joined);
    careledger_bytes_free(key_package);
    careledger_bytes_free(network);
    careledger_node_free(a);
    careledger_node_free(c);
}

/* Every freeable type: freeing twice is a no-op, and a freed handle's
 * accessors answer NULL, 0 or CARELEDGER_MESSAGE_UNKNOWN. */
static void test_double_free_every_type(void) {
    careledger_node *node = create_node("free.sqlite", KEY_A, "free.example");
    careledger_bytes *network = NULL;
    careledger_string_list *list = NULL;
    careledger_member_list *members = NULL;
    careledger_outgoing *message = NULL;
    const char *net = "";

    EXPECT_OK(careledger_network_create(node, "care", &network));
    if (network) net = careledger_bytes_str(network);
    EXPECT_OK(careledger_node_networks(node, &list));
    EXPECT_OK(careledger_network_members(node, net, &members));
    EXPECT_OK(careledger_network_announce(node, net));
    EXPECT_OK(careledger_node_poll_outgoing(node, &message));
    CHECK(list && members && message);

    careledger_string_list_free(list);
    careledger_string_list_free(list);
    CHECK(careledger_string_list_count(list) == 0 && careledger_string_list_get(list, 0) == NULL);

    CHECK(careledger_member_list_count(members) == 1);
    careledger_member_list_free(members);
    careledger_member_list_free(members);
    CHECK(careledger_member_list_count(members) == 0 && careledger_member_list_author_id(members, 0) == NULL);

    CHECK(careledger_outgoing_kind(message) == CARELEDGER_MESSAGE_HEADS);
    careledger_outgoing_free(message);
    careledger_outgoing_free(message);
    CHECK(careledger_outgoing_kind(message) == CARELEDGER_MESSAGE_UNKNOWN);
    CHECK(careledger_outgoing_data(message) == NULL && careledger_outgoing_len(message) == 0);
    CHECK(careledger_outgoing_network_id(message) == NULL);
    EXPECT_STATUS(careledger_node_ack_outgoing(node, message), CARELEDGER_STALE_HANDLE);

    /* One type freed through another type's free: nothing happens. */
    EXPECT_OK(careledger_node_networks(node, &list));
    careledger_member_list_free((careledger_member_list *)list);
    careledger_outgoing_free((careledger_outgoing *)list);
    CHECK(careledger_string_list_count(list) == 1);
    careledger_string_list_free(list);

    careledger_bytes_free(network);
    careledger_bytes_free(network);
    CHECK(careledger_bytes_len(network) == 0);
    careledger_node_free(node);
    careledger_node_free(node);
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

/* ---- Consent and verifiable AI ------------------------------------------ */

static const char *SPEC_JSON =
    "{\"version\":1,"
    "\"features\":[{\"kind\":\"latest_observation\",\"system\":\"http://loinc.org\",\"code\":\"4548-4\"}],"
    "\"label\":{\"kind\":\"has_condition\",\"system\":\"http://snomed.info/sct\",\"codes\":[\"44054006\"]},"
    "\"missing\":\"drop_row\"}";
static const char *LOGISTIC_JSON =
    "{\"logistic_regression\":{\"alpha\":1.0,\"max_iterations\":100,\"gradient_tolerance\":0.0001}}";
static const char *UNKNOWN_NET = "00112233445566778899aabbccddeeff";
static const char *UNKNOWN_ENTRY = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/* How often `needle` occurs in `text`. */
static size_t count_of(const char *text, const char *needle) {
    size_t count = 0;
    const char *at = text;
    if (!text) return 0;
    while ((at = strstr(at, needle)) != NULL) {
        count++;
        at += strlen(needle);
    }
    return count;
}

/* The unsigned number right after the first `prefix` in `json` (compact JSON
 * as careledger writes it, e.g. prefix "\"patients\":"), or -1. */
static long long json_number(const char *json, const char *prefix) {
    const char *at = json ? strstr(json, prefix) : NULL;
    if (!at) return -1;
    at += strlen(prefix);
    if (*at < '0' || *at > '9') return -1;
    return strtoll(at, NULL, 10);
}

/* Copies the string value right after the first `prefix` (ending in the
 * opening quote, e.g. "\"model_hash\":\"") into `buf`; 0 if absent. */
static int json_string(const char *json, const char *prefix, char *buf, size_t cap) {
    const char *at = json ? strstr(json, prefix) : NULL;
    const char *end;
    if (!at) return 0;
    at += strlen(prefix);
    end = strchr(at, '"');
    if (!end || (size_t)(end - at) >= cap) return 0;
    memcpy(buf, at, (size_t)(end - at));
    buf[end - at] = '\0';
    return 1;
}

/* NULL for every pointer argument of every consent and analytics function. */
static void test_consent_ai_null_arguments(careledger_node *node, const char *net) {
    careledger_bytes *out = NULL, *out2 = NULL;
    bool flag = false;
    const uint8_t one = 1;
    const double feature = 1.0;

    EXPECT_STATUS(careledger_consent_grant(NULL, net, "c", "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, NULL, "c", "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, NULL, "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", NULL, "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", NULL, net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", NULL, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, NULL, "", 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, "HRESCH", NULL, 0, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, "HRESCH", "", 0, 0, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_revoke(NULL, net, "p", "c", 0), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_revoke(node, NULL, "p", "c", 0), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_revoke(node, net, NULL, "c", 0), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consent_revoke(node, net, "p", NULL, 0), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consents(NULL, net, "p", &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consents(node, NULL, "p", &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consents(node, net, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_consents(node, net, "p", NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patient_link_node(NULL, net, "p", UNKNOWN_ENTRY, 0, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patient_link_node(node, NULL, "p", UNKNOWN_ENTRY, 0, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patient_link_node(node, net, NULL, UNKNOWN_ENTRY, 0, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_patient_link_node(node, net, "p", NULL, 0, &flag), CARELEDGER_NULL_PARAMETER);
    /* out_added is optional: with it NULL the call goes on (and finds no patient). */
    EXPECT_STATUS(careledger_patient_link_node(node, net, "p", UNKNOWN_ENTRY, 0, NULL), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_network_share(NULL, net, UNKNOWN_NET, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share(node, NULL, UNKNOWN_NET, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share(node, net, NULL, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share(node, net, UNKNOWN_NET, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share(node, net, UNKNOWN_NET, "HRESCH", 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(NULL, net, "p", net, NULL, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(node, NULL, "p", net, NULL, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, NULL, net, NULL, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, "p", NULL, NULL, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, "p", net, NULL, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, "p", net, NULL, "HRESCH", 0, NULL), CARELEDGER_NULL_PARAMETER);

    EXPECT_STATUS(careledger_model_train(NULL, net, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, NULL, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, net, NULL, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, NULL, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, NULL, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, NULL, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_predict(NULL, net, UNKNOWN_ENTRY, "p", NULL, 0, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_predict(node, NULL, UNKNOWN_ENTRY, "p", NULL, 0, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_predict(node, net, NULL, "p", NULL, 0, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    /* patient_id NULL selects the feature vector, which then must be there. */
    EXPECT_STATUS(careledger_model_predict(node, net, UNKNOWN_ENTRY, NULL, NULL, 1, "HRESCH", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_predict(node, net, UNKNOWN_ENTRY, NULL, &feature, 1, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_predict(node, net, UNKNOWN_ENTRY, NULL, &feature, 1, "HRESCH", 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_verify(NULL, net, UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_verify(node, NULL, UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_verify(node, net, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_verify(node, net, UNKNOWN_ENTRY, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_audit(NULL, net, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_audit(node, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_audit(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(NULL, net, UNKNOWN_ENTRY, "p", &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, NULL, UNKNOWN_ENTRY, "p", &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, net, NULL, "p", &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, net, UNKNOWN_ENTRY, NULL, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, net, UNKNOWN_ENTRY, "p", NULL, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, net, UNKNOWN_ENTRY, "p", &out, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_verify_membership(NULL, 1, "p", &one, 1, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_verify_membership(&one, 1, NULL, &one, 1, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_verify_membership(&one, 1, "p", NULL, 1, &flag), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_dataset_verify_membership(&one, 1, "p", &one, 1, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(NULL, net, UNKNOWN_NET, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, NULL, UNKNOWN_NET, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, NULL, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, NULL, SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, "r", NULL, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, "r", SPEC_JSON, NULL, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, NULL, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, NULL, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_update_publish(node, net, UNKNOWN_NET, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_federate(NULL, net, "r", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_federate(node, NULL, "r", 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_federate(node, net, NULL, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_federate(node, net, "r", 0, NULL, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_model_federate(node, net, "r", 0, &out, NULL), CARELEDGER_NULL_PARAMETER);
    CHECK(out == NULL && out2 == NULL && flag == false);
    CHECK(last_error_len() > 0);
}

/* Bad hex, JSON, UTF-8 and codes; unknown patients, cards and rounds. */
static void test_consent_ai_bad_arguments(careledger_node *node, const char *net) {
    careledger_bytes *out = NULL, *out2 = NULL;
    char detail[512];
    size_t len = 0;
    bool flag = false;
    const double two[2] = {1.0, 2.0};
    const uint8_t garbage[41] = {1, 2, 3};

    /* Grants. */
    EXPECT_STATUS(careledger_consent_grant(node, "not hex", "c", "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "group", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", "zz", "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "node", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, "", "", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, "HRESCH", "Observation,,Condition", 0, 0, 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "bad id!", "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_CONSENT);
    CHECK(careledger_last_error(detail, sizeof detail, &len) == CARELEDGER_OK && strstr(detail, "bad id!") == NULL);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p", "network", net, "HRESCH", "Observation", 2000, 1000, 0, &out), CARELEDGER_INVALID_CONSENT);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "p\xff", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_consent_grant(node, net, "c", "nobody", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_consent_grant(node, UNKNOWN_NET, "c", "p", "network", net, "HRESCH", "", 0, 0, 0, &out), CARELEDGER_UNKNOWN_NETWORK);
    EXPECT_STATUS(careledger_consent_revoke(node, net, "nobody", "c", 0), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_consents(node, net, "nobody", &out), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_patient_link_node(node, net, "p", "abc", 0, &flag), CARELEDGER_INVALID_ARGUMENT);
    /* Sharing and exporting. */
    EXPECT_STATUS(careledger_network_share(node, net, net, "HRESCH", 0, &out), CARELEDGER_SAME_NETWORK);
    EXPECT_STATUS(careledger_network_share(node, net, UNKNOWN_NET, "HRESCH", 0, &out), CARELEDGER_UNKNOWN_NETWORK);
    EXPECT_STATUS(careledger_network_share(node, net, "xyz", "HRESCH", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_share(node, net, UNKNOWN_NET, "two words", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, "nobody", net, NULL, "TREAT", 0, &out), CARELEDGER_UNKNOWN_PATIENT);
    EXPECT_STATUS(careledger_export_for_grantee(node, net, "nobody", NULL, "abc", "TREAT", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    /* Training: spec, kind, hold-out, purpose; an empty network. */
    EXPECT_STATUS(careledger_model_train(node, net, "{", LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_SPEC);
    EXPECT_STATUS(careledger_model_train(node, net, "{\"version\":1,\"features\":[],\"missing\":\"drop_row\"}", LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2),
                  CARELEDGER_INVALID_SPEC);
    EXPECT_STATUS(careledger_model_train(node, net, "{\"version\":1,\"features\":[{\"kind\":\"sex\"}],\"missing\":\"drop_row\",\"extra\":1}", LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2),
                  CARELEDGER_INVALID_SPEC);
    EXPECT_STATUS(careledger_model_train(node, net, "{\"version\":1\xff}", LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, "{\"perceptron\":{}}", 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_MODEL_KIND);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, "not json", 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_MODEL_KIND);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, 1.0, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, -0.5, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, NAN, "HRESCH", 0, &out, &out2), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_model_train(node, net, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_EMPTY_DATASET);
    EXPECT_STATUS(careledger_model_train(node, UNKNOWN_NET, SPEC_JSON, LOGISTIC_JSON, 1, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_UNKNOWN_NETWORK);
    /* Cards that are not there, ids that are not ids. */
    EXPECT_STATUS(careledger_model_predict(node, net, "abc", NULL, two, 1, "HRESCH", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_model_predict(node, net, UNKNOWN_ENTRY, NULL, two, 2, "HRESCH", 0, &out), CARELEDGER_UNKNOWN_MODEL_CARD);
    EXPECT_STATUS(careledger_model_verify(node, net, UNKNOWN_ENTRY, &out), CARELEDGER_UNKNOWN_MODEL_CARD);
    EXPECT_STATUS(careledger_model_verify(node, net, "", &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_dataset_prove_membership(node, net, UNKNOWN_ENTRY, "p", &out, &out2), CARELEDGER_UNKNOWN_MODEL_CARD);
    EXPECT_STATUS(careledger_audit(node, "not hex", &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_model_federate(node, net, "no-such-round", 0, &out, &out2), CARELEDGER_NO_UPDATES);
    EXPECT_STATUS(careledger_model_update_publish(node, net, net, "r", SPEC_JSON, LOGISTIC_JSON, 1, 0.0, "HRESCH", 0, &out, &out2), CARELEDGER_EMPTY_DATASET);
    /* Proof bytes that are not proofs. */
    EXPECT_STATUS(careledger_dataset_verify_membership(garbage, sizeof garbage, "p", garbage, sizeof garbage, &flag), CARELEDGER_INVALID_PROOF);
    EXPECT_STATUS(careledger_dataset_verify_membership(garbage, 0, "p", garbage, sizeof garbage, &flag), CARELEDGER_INVALID_PROOF);
    CHECK(out == NULL && out2 == NULL && flag == false);

    /* An empty network audits to nothing. */
    EXPECT_OK(careledger_audit(node, net, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"decisions\":") == 0);
    CHECK(out && strstr(careledger_bytes_str(out), "\"entries\":[]") != NULL);
    careledger_bytes_free(out);
}

#define STUDY_PATIENTS 60

/* NDJSON for patients p00..p59: a Patient, an HbA1c Observation (LOINC
 * 4548-4) and a Condition: diabetes (SNOMED 44054006) for the upper values,
 * hypertension (38341003) for the lower, with a few exceptions each way so
 * the classes overlap. The caller frees the text. */
static char *study_patients(size_t *len) {
    size_t cap = STUDY_PATIENTS * 1024, used = 0;
    char *text = malloc(cap);
    int i;
    if (!text) return NULL;
    for (i = 0; i < STUDY_PATIENTS; i++) {
        double value = 5.0 + 4.0 * i / STUDY_PATIENTS;
        int diabetic = (i >= STUDY_PATIENTS / 2) != (i == 27 || i == 33 || i == 40);
        used += (size_t)snprintf(
            text + used, cap - used,
            "{\"resourceType\":\"Patient\",\"id\":\"p%02d\",\"gender\":\"%s\",\"birthDate\":\"19%02d-0%d-15\"}\n"
            "{\"resourceType\":\"Observation\",\"id\":\"a1c-p%02d\",\"status\":\"final\","
            "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"4548-4\"}]},"
            "\"subject\":{\"reference\":\"Patient/p%02d\"},\"effectiveDateTime\":\"2025-03-01\","
            "\"valueQuantity\":{\"value\":%.2f,\"unit\":\"%%\"}}\n"
            "{\"resourceType\":\"Condition\",\"id\":\"dx-p%02d\","
            "\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"%s\"}]},"
            "\"subject\":{\"reference\":\"Patient/p%02d\"}}\n",
            i, i % 2 ? "male" : "female", 40 + i % 50, 1 + i % 9, i, i, value, i,
            diabetic ? "44054006" : "38341003", i);
    }
    *len = used;
    return text;
}

/* Syncs both nodes with the relay: `first`, then `second`. */
static void sync_pair(careledger_node *first, careledger_node *second, const char *net, const char *relay) {
    careledger_sync_report report;
    EXPECT_OK(careledger_network_sync(first, net, relay, &report));
    CHECK(report.received.rejected == 0);
    EXPECT_OK(careledger_network_sync(second, net, relay, &report));
    CHECK(report.received.rejected == 0);
}

/* Trains the study model on `node`; copies the card entry id and model hash. */
static void train_study_model(careledger_node *node, const char *study, char entry[65], char model_hash[65],
                              long long expected_rows, long long expected_excluded) {
    careledger_bytes *entry_id = NULL, *card = NULL;
    const char *text;
    entry[0] = model_hash[0] = '\0';
    EXPECT_OK(careledger_model_train(node, study, SPEC_JSON, LOGISTIC_JSON, 42, 0.2, "HRESCH", 0, &entry_id, &card));
    if (!entry_id || !card) return;
    text = careledger_bytes_str(card);
    CHECK(careledger_bytes_len(entry_id) == 64);
    snprintf(entry, 65, "%s", careledger_bytes_str(entry_id));
    CHECK(json_string(text, "\"model_hash\":\"", model_hash, 65));
    CHECK(strstr(text, "\"format\":\"careledger.model_card\"") != NULL);
    CHECK(json_number(text, "\"dataset\":{\"size\":") == expected_rows);
    CHECK(json_number(text, "\"excluded_by_consent\":") == expected_excluded);
    CHECK(json_number(text, "\"training_rows\":") + json_number(text, "\"test_rows\":") == expected_rows);
    CHECK(json_number(text, "\"test_rows\":") > 0);
    /* One consent relied on per record in the dataset. */
    CHECK((long long)count_of(text, "\"c-p") == expected_rows);
    careledger_bytes_free(entry_id);
    careledger_bytes_free(card);
}

/* Proves and checks whether `record` is in the dataset of `card`: 1 included,
 * 0 not included, -1 the calls failed. */
static int membership(careledger_node *node, const char *study, const char *card, const char *record) {
    careledger_bytes *commitment = NULL, *proof = NULL;
    bool included = false;
    int answer = -1;
    EXPECT_OK(careledger_dataset_prove_membership(node, study, card, record, &commitment, &proof));
    if (commitment && proof) {
        careledger_status status = careledger_dataset_verify_membership(
            careledger_bytes_data(commitment), careledger_bytes_len(commitment), record,
            careledger_bytes_data(proof), careledger_bytes_len(proof), &included);
        CHECK(status == CARELEDGER_OK);
        if (status == CARELEDGER_OK) answer = included ? 1 : 0;
    }
    careledger_bytes_free(commitment);
    careledger_bytes_free(proof);
    return answer;
}

/* A hospital shares consented charts into a study network; a researcher
 * trains, predicts and is audited; the hospital re-verifies; patients check
 * whether their record was used; a revocation takes a patient out. */
static void test_study(void) {
    careledger_node *hospital = create_node("study-hospital.sqlite", KEY_A, "hospital.example");
    careledger_node *lab = create_node("study-lab.sqlite", KEY_B, "lab.example");
    careledger_bytes *care_id = NULL, *study_id = NULL, *key_package = NULL, *out = NULL, *out2 = NULL;
    careledger_bytes *commitment = NULL, *proof = NULL;
    careledger_string_list *patients = NULL;
    careledger_import_report imported;
    char relay[4096], hospital_author[CARELEDGER_AUTHOR_ID_LEN + 1], lab_author[CARELEDGER_AUTHOR_ID_LEN + 1];
    char card1[65], hash1[65], card2[65], hash2[65], decided_hash[65], round_card[65] = "";
    const char *care = "", *study = "", *text;
    char *ndjson;
    size_t ndjson_len = 0, len = 0;
    bool flag = false;
    int i;
    const double high[1] = {8.9}, two[2] = {8.9, 1.0};

    path_in_workdir(relay, sizeof relay, "study-relay.sqlite");
    EXPECT_OK(careledger_node_author_id(hospital, hospital_author, sizeof hospital_author, &len));
    EXPECT_OK(careledger_node_author_id(lab, lab_author, sizeof lab_author, &len));

    /* The hospital's care network, and a study network with the lab in it. */
    EXPECT_OK(careledger_network_create(hospital, "care", &care_id));
    EXPECT_OK(careledger_network_create(hospital, "diabetes-study", &study_id));
    if (!care_id || !study_id) goto done;
    care = careledger_bytes_str(care_id);
    study = careledger_bytes_str(study_id);
    EXPECT_OK(careledger_node_key_package(lab, &key_package));
    EXPECT_OK(careledger_network_invite(hospital, study, careledger_bytes_data(key_package), careledger_bytes_len(key_package)));
    EXPECT_OK(careledger_network_sync(hospital, study, relay, NULL));
    EXPECT_OK(careledger_network_join_from_relay(lab, relay, study, "diabetes-study"));

    /* 60 patients; 57 grant research to the study (recorded on their behalf
     * by the hospital), p57 and p58 grant nothing, p59 only claims use. */
    ndjson = study_patients(&ndjson_len);
    CHECK(ndjson != NULL);
    if (!ndjson) goto done;
    EXPECT_OK(careledger_import_fhir(hospital, care, "study.ndjson", (const uint8_t *)ndjson, ndjson_len, &imported));
    free(ndjson);
    CHECK(imported.patients == STUDY_PATIENTS && imported.resources == 3 * STUDY_PATIENTS);
    for (i = 0; i < 57; i++) {
        char consent_id[16], patient[8];
        snprintf(consent_id, sizeof consent_id, "c-p%02d", i);
        snprintf(patient, sizeof patient, "p%02d", i);
        EXPECT_OK(careledger_consent_grant(hospital, care, consent_id, patient, "network", study, "HRESCH", "", 0, 0, 0, &out));
        CHECK(out && strstr(careledger_bytes_str(out), hospital_author) != NULL); /* the on-behalf mark */
        careledger_bytes_free(out);
        out = NULL;
    }
    EXPECT_OK(careledger_consent_grant(hospital, care, "c-p59", "p59", "node", lab_author, "CLMATTCH", "Condition",
                                       1767225600000ull, 1798761599999ull, 0, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"end\":\"2026-12-31\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_consents(hospital, care, "p05", &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(count_of(text, "\"id\":\"c-p05\"") == 2); /* the summary and the resource */
    CHECK(strstr(text, "\"source\":\"on_behalf\"") && strstr(text, "\"mark_matches\":true") && strstr(text, hospital_author));
    CHECK(strstr(text, "\"unreadable\":[]") != NULL);
    careledger_bytes_free(out);
    out = NULL;

    /* p59's phone is, for this test, the hospital's own node: what it signs now
     * is the patient's, and the earlier on-behalf mark no longer matches. */
    EXPECT_OK(careledger_patient_link_node(hospital, care, "p59", hospital_author, 0, &flag));
    CHECK(flag == true);
    EXPECT_OK(careledger_patient_link_node(hospital, care, "p59", hospital_author, 0, &flag));
    CHECK(flag == false);
    EXPECT_OK(careledger_consent_grant(hospital, care, "c-p59-phone", "p59", "node", lab_author, "CLMATTCH", "", 0, 0, 0, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "recorded-on-behalf-by") == NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_consents(hospital, care, "p59", &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(count_of(text, "\"source\":\"patient\"") == 2);
    CHECK(count_of(text, "\"mark_matches\":false") == 1 && count_of(text, "\"mark_matches\":true") == 1);
    careledger_bytes_free(out);
    out = NULL;

    /* What a grantee may see, before sharing. */
    EXPECT_OK(careledger_export_for_grantee(hospital, care, "p10", study, NULL, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"included\":") == 3 && json_number(text, "\"withheld\":") == 0);
    CHECK(strstr(text, "\"consent_ids\":[\"c-p10\"]") && strstr(text, "\"resourceType\":\"Bundle\""));
    careledger_bytes_free(out);
    out = NULL;
    /* Within c-p59's period (mid-2026) the insurer gets the whole chart;
     * after it (2027) the expired grant denies what it covered. */
    EXPECT_OK(careledger_export_for_grantee(hospital, care, "p59", NULL, lab_author, "CLMATTCH", 1782864000000ull, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"included\":") == 3 && json_number(text, "\"withheld\":") == 0);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_export_for_grantee(hospital, care, "p59", NULL, lab_author, "CLMATTCH", 1799971200000ull, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"included\":") == 2 && json_number(text, "\"withheld\":") == 1);
    CHECK(strstr(text, "\"resourceType\":\"Condition\"") == NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_export_for_grantee(hospital, care, "p58", study, lab_author, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"included\":") == 0 && json_number(text, "\"withheld\":") == 3);
    careledger_bytes_free(out);
    out = NULL;

    /* Share into the study: 57 charts go, 3 stay; again, nothing is written. */
    EXPECT_OK(careledger_network_share(hospital, care, study, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"patients\":") == STUDY_PATIENTS);
    CHECK(json_number(text, "\"patients_shared\":") == 57);
    CHECK(json_number(text, "\"resources_permitted\":") == 57 * 3);
    CHECK(json_number(text, "\"resources_withheld\":") == 3 * 3);
    CHECK(json_number(text, "\"records_cut_off\":") == 0 && json_number(text, "\"unreadable_charts\":") == 0);
    CHECK(json_number(text, "\"entries\":") > 0);
    CHECK(count_of(text, "\"c-p") == 57);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_network_share(hospital, care, study, "HRESCH", 0, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"entries\":") == 0);
    careledger_bytes_free(out);
    out = NULL;
    sync_pair(hospital, lab, study, relay);
    EXPECT_OK(careledger_patients(lab, study, &patients));
    CHECK(careledger_string_list_count(patients) == 57);
    careledger_string_list_free(patients);
    patients = NULL;
    /* The lab is not in the care network. */
    EXPECT_STATUS(careledger_model_train(lab, care, SPEC_JSON, LOGISTIC_JSON, 42, 0.2, "HRESCH", 0, &out, &out2), CARELEDGER_UNKNOWN_NETWORK);

    /* The lab trains, predicts twice (and fails twice, writing nothing). */
    train_study_model(lab, study, card1, hash1, 57, 0);
    EXPECT_OK(careledger_model_predict(lab, study, card1, "p10", NULL, 0, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_string(text, "\"model_hash\":\"", decided_hash, sizeof decided_hash) && strcmp(decided_hash, hash1) == 0);
    CHECK(strstr(text, "\"subject\":\"p10\"") && strstr(text, "\"consent_ids\":[\"c-p10\"]"));
    CHECK(strstr(text, "\"resourceType\":\"Provenance\"") && strstr(text, "urn:careledger:consent:c-p10"));
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_model_predict(lab, study, card1, NULL, high, 1, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(strstr(text, "\"class\":{\"class\":1,") != NULL && strstr(text, "\"subject\":null") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_STATUS(careledger_model_predict(lab, study, card1, NULL, two, 2, "HRESCH", 0, &out), CARELEDGER_INVALID_FEATURES);
    EXPECT_STATUS(careledger_model_predict(lab, study, card1, "p58", NULL, 0, "HRESCH", 0, &out), CARELEDGER_UNKNOWN_PATIENT);
    CHECK(out == NULL);
    EXPECT_OK(careledger_audit(lab, study, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"model_cards\":") == 1 && json_number(text, "\"decisions\":") == 2);
    CHECK(count_of(text, "\"entry_kind\":\"decision\"") == 2 && count_of(text, "\"resourceType\":\"Provenance\"") == 2);
    CHECK(json_number(text, "\"key_withheld\":") == 0);
    careledger_bytes_free(out);
    out = NULL;

    /* The hospital has not seen the card yet; after syncing it re-verifies it. */
    EXPECT_STATUS(careledger_model_verify(hospital, study, card1, &out), CARELEDGER_UNKNOWN_MODEL_CARD);
    sync_pair(lab, hospital, study, relay);
    EXPECT_OK(careledger_model_verify(hospital, study, card1, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(strstr(text, "\"outcome\":\"confirmed\"") != NULL);
    CHECK(count_of(text, "\"passed\":[\"model_bytes\",\"feature_spec\",\"checkpoint\",\"dataset\",\"consent\",\"model\",\"metrics\"]") == 1);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_audit(hospital, study, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"decisions\":") == 2);
    careledger_bytes_free(out);
    out = NULL;

    /* Patients ask whether their record was used. */
    CHECK(membership(lab, study, card1, "p10") == 1);
    CHECK(membership(hospital, study, card1, "p10") == 1);
    CHECK(membership(lab, study, card1, "p58") == 0);
    CHECK(membership(lab, study, card1, "zz-made-up") == 0);
    EXPECT_OK(careledger_dataset_prove_membership(lab, study, card1, "p10", &commitment, &proof));
    if (commitment && proof) {
        /* A proof for p10 says nothing about p11. */
        EXPECT_STATUS(careledger_dataset_verify_membership(careledger_bytes_data(commitment), careledger_bytes_len(commitment), "p11",
                                                           careledger_bytes_data(proof), careledger_bytes_len(proof), &flag),
                      CARELEDGER_PROOF_REJECTED);
        EXPECT_STATUS(careledger_dataset_verify_membership(careledger_bytes_data(commitment), careledger_bytes_len(commitment), "p10",
                                                           careledger_bytes_data(proof), careledger_bytes_len(proof) - 1, &flag),
                      CARELEDGER_INVALID_PROOF);
    }

    /* p10 revokes; the next share cuts the chart off in the study. */
    EXPECT_STATUS(careledger_consent_revoke(hospital, care, "p10", "c-p99", 0), CARELEDGER_UNKNOWN_CONSENT);
    EXPECT_OK(careledger_consent_revoke(hospital, care, "p10", "c-p10", 0));
    EXPECT_OK(careledger_consents(hospital, care, "p10", &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"status\":\"inactive\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_export_for_grantee(hospital, care, "p10", study, NULL, "HRESCH", 0, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"included\":") == 0);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_network_share(hospital, care, study, "HRESCH", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"patients_shared\":") == 56 && json_number(text, "\"records_cut_off\":") == 1);
    CHECK(count_of(text, "\"c-p") == 56);
    careledger_bytes_free(out);
    out = NULL;
    sync_pair(hospital, lab, study, relay);

    /* Retraining leaves p10 out (its chart is still in the study, with the
     * revocation: excluded by consent); the first card still says what it used. */
    train_study_model(lab, study, card2, hash2, 56, 1);
    CHECK(strcmp(card1, card2) != 0);
    CHECK(membership(lab, study, card2, "p10") == 0);
    CHECK(membership(lab, study, card2, "p11") == 1);
    CHECK(membership(lab, study, card1, "p10") == 1);
    EXPECT_STATUS(careledger_model_predict(lab, study, card2, "p10", NULL, 0, "HRESCH", 0, &out), CARELEDGER_CONSENT_DENIED);
    CHECK(out == NULL);
    EXPECT_OK(careledger_audit(lab, study, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"model_cards\":") == 2 && json_number(text, "\"decisions\":") == 2);
    CHECK(json_number(text, "\"key_withheld\":") == 1 && strstr(text, "\"reason\":\"consent revoked\",\"consent\":\"c-p10\""));
    careledger_bytes_free(out);
    out = NULL;
    sync_pair(lab, hospital, study, relay);
    EXPECT_OK(careledger_model_verify(hospital, study, card2, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"outcome\":\"confirmed\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    /* Re-verifying the first card after the revocation still reproduces it. */
    EXPECT_OK(careledger_model_verify(lab, study, card1, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"outcome\":\"confirmed\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;

    /* A federated round: the hospital trains at home, the lab averages. */
    EXPECT_OK(careledger_model_update_publish(hospital, care, study, "round-1", SPEC_JSON, LOGISTIC_JSON, 7, 0.0, "HRESCH", 0, &out, &out2));
    CHECK(out2 && json_number(careledger_bytes_str(out2), "\"samples\":") == 56);
    CHECK(out2 && strstr(careledger_bytes_str(out2), "\"site\":\"hospital.example\"") != NULL);
    careledger_bytes_free(out);
    careledger_bytes_free(out2);
    out = out2 = NULL;
    EXPECT_STATUS(careledger_model_federate(lab, study, "round-1", 0, &out, &out2), CARELEDGER_NO_UPDATES);
    sync_pair(hospital, lab, study, relay);
    EXPECT_OK(careledger_model_federate(lab, study, "round-1", 0, &out, &out2));
    if (out) snprintf(round_card, sizeof round_card, "%s", careledger_bytes_str(out));
    CHECK(out2 && strstr(careledger_bytes_str(out2), "\"federated\":{\"round\":\"round-1\"") != NULL);
    careledger_bytes_free(out);
    careledger_bytes_free(out2);
    out = out2 = NULL;
    EXPECT_STATUS(careledger_dataset_prove_membership(lab, study, round_card, "p11", &out, &out2), CARELEDGER_ANALYTICS_ENTRY_INVALID);
    sync_pair(lab, hospital, study, relay);
    EXPECT_OK(careledger_model_verify(hospital, study, round_card, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"outcome\":\"confirmed\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_audit(hospital, study, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"model_cards\":") == 3 && json_number(text, "\"model_updates\":") == 1);
    CHECK(json_number(text, "\"decisions\":") == 2 && json_number(text, "\"key_withheld\":") == 1);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_ledger_verify(lab, study, NULL));

done:
    careledger_bytes_free(out);
    careledger_bytes_free(out2);
    careledger_bytes_free(commitment);
    careledger_bytes_free(proof);
    careledger_bytes_free(key_package);
    careledger_bytes_free(care_id);
    careledger_bytes_free(study_id);
    careledger_node_free(lab);
    careledger_node_free(hospital);
}

/* ---- Rules that act by themselves --------------------------------------- */

/* A rule set in which `executor` runs one rule on every Claim: pend above
 * 500, otherwise approve 80% of the total; `when` replaces the clause. */
static char *claims_rule_set(const char *executor, const char *when, size_t *len) {
    static const char *format =
        "{\"format\":\"careledger.rule_set\",\"format_version\":1,\"name\":\"c-claims\",\"version\":1,"
        "\"currency\":\"USD\",\"executors\":[\"%s\"],\"rules\":[{\"id\":\"pay\","
        "\"trigger\":{\"resource_type\":\"Claim\"},\"inputs\":[\"Patient\"],"
        "\"clauses\":[{\"when\":\"%s\",\"outcome\":\"pend\",\"reason\":\"above the limit\"}],"
        "\"otherwise\":{\"outcome\":\"approve\",\"amount\":\"(resource.total.value * decimal('0.8')).round(2)\","
        "\"reason\":\"covered at 80%%\"}}]}";
    size_t cap = strlen(format) + strlen(executor) + strlen(when) + 1;
    char *text = malloc(cap);
    if (!text) return NULL;
    snprintf(text, cap, format, executor, when);
    *len = strlen(text);
    return text;
}

/* NDJSON for patients r1..r3, each with a Patient and two Claims: one of
 * 269.68 (approved at 80%: 215.74) and one of 1200.00 (pended). */
static char *claims_ndjson(size_t *len) {
    static const char *claim =
        "{\"resourceType\":\"Claim\",\"id\":\"%s-%s\",\"status\":\"active\","
        "\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/claim-type\",\"code\":\"institutional\"}]},"
        "\"use\":\"claim\",\"patient\":{\"reference\":\"Patient/%s\"},\"created\":\"2025-03-01\","
        "\"provider\":{\"display\":\"Hospital\"},\"priority\":{\"coding\":[{\"code\":\"normal\"}]},"
        "\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"Acme Health\"}}],"
        "\"total\":{\"value\":%s,\"currency\":\"USD\"}}\n";
    size_t cap = 16384, used = 0;
    char *out = malloc(cap);
    int i;
    if (!out) return NULL;
    out[0] = '\0';
    for (i = 1; i <= 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i);
        used += (size_t)snprintf(out + used, cap - used,
                                 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"gender\":\"female\",\"birthDate\":\"1970-01-01\"}\n", id);
        used += (size_t)snprintf(out + used, cap - used, claim, id, "small", id, "269.68");
        used += (size_t)snprintf(out + used, cap - used, claim, id, "large", id, "1200.00");
    }
    *len = used;
    return out;
}

/* NULL, bad UTF-8, malformed ids, unknown ids and hostile rule sets for
 * every rules function; nothing is written and no output is touched. */
static void test_rules_misuse(careledger_node *node, const char *net) {
    careledger_bytes *out = NULL, *out2 = NULL;
    char author[CARELEDGER_AUTHOR_ID_LEN + 1];
    size_t len = 0, doc_len = 0;
    char *doc;
    const uint8_t not_utf8[3] = {'{', 0xff, '}'};

    EXPECT_STATUS(careledger_rules_policy_set(NULL, net, 1, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_policy_set(node, NULL, 1, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_policy_set(node, net, 1, NULL, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_set_add(NULL, net, not_utf8, 3, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_set_add(node, NULL, not_utf8, 3, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_set_add(node, net, NULL, 3, 0, &out, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_set_add(node, net, not_utf8, 3, 0, NULL, &out2), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_set_add(node, net, not_utf8, 3, 0, &out, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(NULL, net, "rule_set", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(node, NULL, "rule_set", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(node, net, NULL, UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", NULL, "endorse", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", UNKNOWN_ENTRY, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", UNKNOWN_ENTRY, "endorse", 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_activation(NULL, net, "rule_set", UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_activation(node, net, NULL, UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_activation(node, net, "rule_set", UNKNOWN_ENTRY, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_sets(NULL, net, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_sets(node, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_sets(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_run(NULL, net, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_run(node, NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rules_run(node, net, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes(NULL, net, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes(node, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcome_verify(NULL, net, UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, NULL, UNKNOWN_ENTRY, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, net, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, net, UNKNOWN_ENTRY, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes_verify(NULL, net, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes_verify(node, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_rule_outcomes_verify(node, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(NULL, net, UNKNOWN_NET, "CLMATTCH", "Claim", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(node, NULL, UNKNOWN_NET, "CLMATTCH", "Claim", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(node, net, NULL, "CLMATTCH", "Claim", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, NULL, "Claim", 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, "CLMATTCH", NULL, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, "CLMATTCH", "Claim", 0, NULL), CARELEDGER_NULL_PARAMETER);

    /* Bad UTF-8 in every kind of string argument. */
    EXPECT_STATUS(careledger_rules_policy_set(node, "\xff", 1, NULL, 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_rules_policy_set(node, net, 1, "\xfe\xff", 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule\xff", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", "\xff", "endorse", 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", UNKNOWN_ENTRY, "\xc3", 0, &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, net, "\xff", &out), CARELEDGER_INVALID_UTF8);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, "CLMATTCH", "Claim\xff", 0, &out), CARELEDGER_INVALID_UTF8);

    /* Malformed arguments. */
    EXPECT_STATUS(careledger_rules_policy_set(node, net, 1, "not hex", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    CHECK_PLAIN_LAST_ERROR();
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", "abc", "endorse", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", UNKNOWN_ENTRY, "approve", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, net, "xyz", &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_rule_outcomes(node, "zz", &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, "CLMATTCH", "", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_share_types(node, net, UNKNOWN_NET, "CLMATTCH", "Claim,,Coverage", 0, &out), CARELEDGER_INVALID_ARGUMENT);
    EXPECT_STATUS(careledger_network_share_types(node, net, net, "CLMATTCH", "Claim", 0, &out), CARELEDGER_SAME_NETWORK);

    /* Unknown ids and networks. */
    EXPECT_STATUS(careledger_rules_endorse(node, net, "rule_set", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_UNKNOWN_RULE_SET);
    CHECK_PLAIN_LAST_ERROR();
    EXPECT_STATUS(careledger_rules_endorse(node, net, "policy", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_UNKNOWN_POLICY);
    EXPECT_STATUS(careledger_rules_endorse(node, net, "model_card", UNKNOWN_ENTRY, "endorse", 0, &out), CARELEDGER_UNKNOWN_MODEL_CARD);
    EXPECT_STATUS(careledger_rule_outcome_verify(node, net, UNKNOWN_ENTRY, &out), CARELEDGER_UNKNOWN_OUTCOME);
    CHECK_PLAIN_LAST_ERROR();
    EXPECT_STATUS(careledger_rule_outcomes(node, UNKNOWN_NET, &out), CARELEDGER_UNKNOWN_NETWORK);
    EXPECT_STATUS(careledger_rules_run(node, UNKNOWN_NET, 0, &out), CARELEDGER_UNKNOWN_NETWORK);
    EXPECT_STATUS(careledger_rules_policy_set(node, net, 0, NULL, 0, &out), CARELEDGER_INVALID_POLICY);
    EXPECT_STATUS(careledger_rules_policy_set(node, net, 2, NULL, 0, &out), CARELEDGER_INVALID_POLICY);
    CHECK_PLAIN_LAST_ERROR();

    /* Hostile and malformed rule sets are refused with a typed status. */
    EXPECT_OK(careledger_node_author_id(node, author, sizeof author, &len));
    doc = claims_rule_set(author, "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))", &doc_len);
    CHECK(doc != NULL);
    if (doc) {
        EXPECT_STATUS(careledger_rule_set_add(node, net, (const uint8_t *)doc, doc_len, 0, &out, &out2), CARELEDGER_INVALID_RULE_SET);
        CHECK_PLAIN_LAST_ERROR();
        free(doc);
    }
    /* Rules have no clock: an unknown variable is refused before anything runs. */
    doc = claims_rule_set(author, "clock.now > trigger.time_ms", &doc_len);
    if (doc) {
        EXPECT_STATUS(careledger_rule_set_add(node, net, (const uint8_t *)doc, doc_len, 0, &out, &out2), CARELEDGER_INVALID_RULE_SET);
        free(doc);
    }
    {
        /* 200 nested parentheses: deeper than the parser accepts. */
        char when[512];
        int i;
        for (i = 0; i < 200; i++) when[i] = '(';
        when[200] = '1';
        for (i = 0; i < 200; i++) when[201 + i] = ')';
        memcpy(when + 401, " > 0", 5);
        doc = claims_rule_set(author, when, &doc_len);
        if (doc) {
            EXPECT_STATUS(careledger_rule_set_add(node, net, (const uint8_t *)doc, doc_len, 0, &out, &out2), CARELEDGER_INVALID_RULE_SET);
            free(doc);
        }
    }
    EXPECT_STATUS(careledger_rule_set_add(node, net, not_utf8, sizeof not_utf8, 0, &out, &out2), CARELEDGER_INVALID_RULE_SET);
    EXPECT_STATUS(careledger_rule_set_add(node, net, NULL, 0, 0, &out, &out2), CARELEDGER_INVALID_RULE_SET);
    CHECK(out == NULL && out2 == NULL);
    /* Nothing of them was stored. */
    EXPECT_OK(careledger_rule_sets(node, net, &out));
    CHECK(out && strcmp(careledger_bytes_str(out), "[]") == 0);
    careledger_bytes_free(out);
    careledger_bytes_free(out); /* a double free is a no-op */
    CHECK(careledger_bytes_len(out) == 0 && careledger_bytes_str(out) == NULL);
}

/* A hospital shares consented claims into a claims network with an insurer;
 * under a 2-of-2 policy the insurer's rule set becomes active once the
 * hospital endorses it too, and from the next sync on the insurer writes one
 * outcome per claim by itself; the hospital re-checks every one. */
static void test_rules(void) {
    careledger_node *hospital = create_node("rules-hospital.sqlite", KEY_A, "hospital.example");
    careledger_node *insurer = create_node("rules-insurer.sqlite", KEY_B, "insurer.example");
    careledger_bytes *care_id = NULL, *claims_id = NULL, *key_package = NULL, *out = NULL, *out2 = NULL;
    careledger_bytes *outcomes = NULL;
    careledger_import_report imported;
    char relay[4096], insurer_author[CARELEDGER_AUTHOR_ID_LEN + 1], hash[65] = "", entry[65] = "";
    const char *care = "", *claims = "", *text;
    char *ndjson = NULL, *doc = NULL;
    size_t len = 0, doc_len = 0;
    int i;

    path_in_workdir(relay, sizeof relay, "rules-relay.sqlite");
    EXPECT_OK(careledger_node_author_id(insurer, insurer_author, sizeof insurer_author, &len));
    EXPECT_OK(careledger_network_create(hospital, "care", &care_id));
    EXPECT_OK(careledger_network_create(hospital, "claims", &claims_id));
    if (!care_id || !claims_id) goto done;
    care = careledger_bytes_str(care_id);
    claims = careledger_bytes_str(claims_id);
    EXPECT_OK(careledger_node_key_package(insurer, &key_package));
    if (!key_package) goto done;
    EXPECT_OK(careledger_network_invite(hospital, claims, careledger_bytes_data(key_package), careledger_bytes_len(key_package)));
    EXPECT_OK(careledger_network_sync(hospital, claims, relay, NULL));
    EXPECT_OK(careledger_network_join_from_relay(insurer, relay, claims, "claims"));

    /* Three patients with two claims each; r1 and r2 consent to claims use
     * of their claims, r3 does not. */
    ndjson = claims_ndjson(&len);
    if (!ndjson) goto done;
    EXPECT_OK(careledger_import_fhir(hospital, care, "claims.ndjson", (const uint8_t *)ndjson, len, &imported));
    CHECK(imported.patients == 3 && imported.resources == 9);
    for (i = 1; i <= 2; i++) {
        char consent_id[16], patient[8];
        snprintf(consent_id, sizeof consent_id, "claims-r%d", i);
        snprintf(patient, sizeof patient, "r%d", i);
        EXPECT_OK(careledger_consent_grant(hospital, care, consent_id, patient, "network", claims, "CLMATTCH", "Claim,Patient", 0, 0, 0, &out));
        careledger_bytes_free(out);
        out = NULL;
    }
    EXPECT_OK(careledger_network_share_types(hospital, care, claims, "CLMATTCH", "Claim,Patient", 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"patients\":") == 3 && json_number(text, "\"patients_shared\":") == 2);
    CHECK(json_number(text, "\"resources_permitted\":") == 6);
    careledger_bytes_free(out);
    out = NULL;
    sync_pair(hospital, insurer, claims, relay);

    /* Governance: 2 of the 2 members. */
    EXPECT_STATUS(careledger_rules_policy_set(insurer, claims, 3, NULL, 0, &out), CARELEDGER_INVALID_POLICY);
    EXPECT_OK(careledger_rules_policy_set(insurer, claims, 2, NULL, 0, &out));
    CHECK(out && careledger_bytes_len(out) == 64);
    careledger_bytes_free(out);
    out = NULL;
    doc = claims_rule_set(insurer_author, "resource.total.value > decimal('500')", &doc_len);
    if (!doc) goto done;
    EXPECT_OK(careledger_rule_set_add(insurer, claims, (const uint8_t *)doc, doc_len, 0, &out, &out2));
    if (!out || !out2) goto done;
    CHECK(careledger_bytes_len(out) == 64 && careledger_bytes_len(out2) == 64);
    snprintf(hash, sizeof hash, "%s", careledger_bytes_str(out2));
    careledger_bytes_free(out);
    careledger_bytes_free(out2);
    out = out2 = NULL;
    EXPECT_OK(careledger_rules_endorse(insurer, claims, "rule_set", hash, "endorse", 0, &out));
    careledger_bytes_free(out);
    out = NULL;
    /* One endorsement of a 2-of-2 policy activates nothing. */
    EXPECT_OK(careledger_rules_activation(insurer, claims, "rule_set", hash, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(strstr(text, "\"active\":false") && json_number(text, "\"quorum\":") == 2);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_rule_outcomes(insurer, claims, &out));
    CHECK(out && strcmp(careledger_bytes_str(out), "[]") == 0);
    careledger_bytes_free(out);
    out = NULL;

    /* The hospital endorses; the insurer adjudicates on its next sync, by itself. */
    sync_pair(insurer, hospital, claims, relay);
    EXPECT_OK(careledger_rules_endorse(hospital, claims, "rule_set", hash, "endorse", 0, &out));
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_rule_outcomes(hospital, claims, &out));
    CHECK(out && strcmp(careledger_bytes_str(out), "[]") == 0); /* the hospital executes nothing */
    careledger_bytes_free(out);
    out = NULL;
    sync_pair(hospital, insurer, claims, relay);
    EXPECT_OK(careledger_rule_outcomes(insurer, claims, &outcomes));
    text = outcomes ? careledger_bytes_str(outcomes) : "";
    CHECK(count_of(text, "\"resourceType\":\"ClaimResponse\"") == 4); /* r3's claims: no consent */
    CHECK(count_of(text, "\"outcome\":\"approve\"") == 2 && count_of(text, "\"outcome\":\"pend\"") == 2);
    CHECK(count_of(text, "\"amount\":\"215.74\"") == 2);
    CHECK(count_of(text, "\"request\":{\"reference\":\"Claim/r1-small\"}") == 1);
    CHECK(count_of(text, "\"duplicates\":[]") == 4 && count_of(text, "\"consent_ids\":[\"claims-r") == 4);
    CHECK(strstr(text, "\"r3") == NULL);
    careledger_bytes_free(outcomes);
    outcomes = NULL;
    EXPECT_OK(careledger_rules_run(insurer, claims, 0, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"outcomes_written\":") == 0);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_rule_sets(insurer, claims, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(strstr(text, "\"active\":true") && strstr(text, "\"in_force\":true") && strstr(text, hash));
    careledger_bytes_free(out);
    out = NULL;

    /* The hospital receives the outcomes, re-checks each on its replica. */
    sync_pair(insurer, hospital, claims, relay);
    EXPECT_OK(careledger_rule_outcomes(hospital, claims, &outcomes));
    text = outcomes ? careledger_bytes_str(outcomes) : "";
    CHECK(count_of(text, "\"resourceType\":\"ClaimResponse\"") == 4);
    CHECK(json_string(text, "\"entry\":\"", entry, sizeof entry));
    careledger_bytes_free(outcomes);
    outcomes = NULL;
    EXPECT_OK(careledger_rule_outcome_verify(hospital, claims, entry, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"result\":\"confirmed\"") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_rule_outcomes_verify(hospital, claims, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"checked\":") == 4 && json_number(text, "\"confirmed\":") == 4);
    CHECK(json_number(text, "\"mismatches\":") == 0 && json_number(text, "\"waiting\":") == 0);
    careledger_bytes_free(out);
    careledger_bytes_free(out); /* a double free is a no-op */
    out = NULL;
    EXPECT_OK(careledger_ledger_verify(hospital, claims, NULL));
    /* A rule set id is not an outcome id. */
    EXPECT_STATUS(careledger_rule_outcome_verify(hospital, claims, hash, &out), CARELEDGER_UNKNOWN_OUTCOME);

    /* The insurer withdraws: below quorum, the rule set is inactive. */
    EXPECT_OK(careledger_rules_endorse(insurer, claims, "rule_set", hash, "withdraw", 0, &out));
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_rules_activation(insurer, claims, "rule_set", hash, &out));
    CHECK(out && strstr(careledger_bytes_str(out), "\"active\":false") != NULL);
    careledger_bytes_free(out);
    out = NULL;

done:
    free(ndjson);
    free(doc);
    careledger_bytes_free(out);
    careledger_bytes_free(out2);
    careledger_bytes_free(outcomes);
    careledger_bytes_free(key_package);
    careledger_bytes_free(care_id);
    careledger_bytes_free(claims_id);
    careledger_node_free(insurer);
    careledger_node_free(hospital);
}

/* The patient's rights: erasure by crypto-shredding, the clock-driven
 * tick, and the store audit. */
static void test_patient_rights(void) {
    careledger_node *hospital = create_node("rights-hospital.sqlite", KEY_A, "hospital.example");
    careledger_node *clinic = create_node("rights-clinic.sqlite", KEY_B, "clinic.example");
    careledger_bytes *net_id = NULL, *key_package = NULL, *out = NULL, *bundle = NULL;
    careledger_string_list *patients = NULL;
    char relay[4096], first[128] = "", second[128] = "", resources[512];
    const char *net = "", *text;
    const char *bad_lists[] = {"[]", "{}", "not json", "[{\"id\":\"x\"}]"};
    size_t i;

    path_in_workdir(relay, sizeof relay, "rights-relay.sqlite");
    EXPECT_OK(careledger_network_create(hospital, "care", &net_id));
    if (!net_id) goto done;
    net = careledger_bytes_str(net_id);
    EXPECT_OK(careledger_node_key_package(clinic, &key_package));
    EXPECT_OK(careledger_network_invite(hospital, net, careledger_bytes_data(key_package), careledger_bytes_len(key_package)));
    EXPECT_OK(careledger_network_sync(hospital, net, relay, NULL));
    EXPECT_OK(careledger_network_join_from_relay(clinic, relay, net, "care"));
    EXPECT_OK(careledger_import_fhir(hospital, net, "Patient.ndjson", patients_data, patients_len, NULL));
    EXPECT_OK(careledger_network_sync(hospital, net, relay, NULL));
    EXPECT_OK(careledger_network_sync(clinic, net, relay, NULL));
    EXPECT_OK(careledger_patients(clinic, net, &patients));
    CHECK(careledger_string_list_count(patients) == 13);
    if (careledger_string_list_count(patients) < 2) goto done;
    snprintf(first, sizeof first, "%s", careledger_string_list_get(patients, 0));
    snprintf(second, sizeof second, "%s", careledger_string_list_get(patients, 1));

    /* Argument checks: nothing is erased by a refused call. */
    EXPECT_STATUS(careledger_erase(NULL, net, first, NULL, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_erase(hospital, NULL, first, NULL, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_erase(hospital, net, NULL, NULL, 0, 0, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_erase(hospital, net, first, NULL, 0, 0, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_erase(hospital, net, "no-such-patient", NULL, 0, 0, &out), CARELEDGER_UNKNOWN_PATIENT);
    for (i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        EXPECT_STATUS(careledger_erase(hospital, net, first, (const uint8_t *)bad_lists[i], strlen(bad_lists[i]), 0, &out),
                      CARELEDGER_INVALID_ARGUMENT);
    }
    snprintf(resources, sizeof resources, "[{\"resourceType\":\"Observation\",\"id\":\"none\"}]");
    EXPECT_STATUS(careledger_erase(hospital, net, first, (const uint8_t *)resources, strlen(resources), 0, &out),
                  CARELEDGER_UNKNOWN_RESOURCE);
    CHECK(out == NULL);
    EXPECT_OK(careledger_export_patient(hospital, net, first, &bundle));
    careledger_bytes_free(bundle);
    bundle = NULL;

    /* The whole chart of the first patient. */
    EXPECT_OK(careledger_erase(hospital, net, first, NULL, 0, 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"keys_shredded\":") >= 1 && strstr(text, "\"by_patient\":false") != NULL);
    CHECK(strstr(text, net) != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_STATUS(careledger_export_patient(hospital, net, first, &bundle), CARELEDGER_CHART_ERASED);
    CHECK(bundle == NULL);
    EXPECT_STATUS(careledger_erase(hospital, net, first, NULL, 0, 0, &out), CARELEDGER_CHART_ERASED);
    /* One resource of the second: its Patient resource. */
    snprintf(resources, sizeof resources, "[{\"resourceType\":\"Patient\",\"id\":\"%s\"}]", second);
    EXPECT_OK(careledger_erase(hospital, net, second, (const uint8_t *)resources, strlen(resources), 1767225600000ull, &out));
    CHECK(out && json_number(careledger_bytes_str(out), "\"resources_kept\":") == 0);
    careledger_bytes_free(out);
    out = NULL;

    /* The clinic applies both when it syncs; the ledgers still verify. */
    EXPECT_OK(careledger_network_sync(hospital, net, relay, NULL));
    EXPECT_OK(careledger_network_sync(clinic, net, relay, NULL));
    EXPECT_STATUS(careledger_export_patient(clinic, net, first, &bundle), CARELEDGER_CHART_ERASED);
    EXPECT_OK(careledger_erased_charts(clinic, net, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(count_of(text, "\"patient\":") == 2 && strstr(text, first) && strstr(text, second));
    CHECK(count_of(text, "\"whole_chart\":true") == 1 && count_of(text, "\"whole_chart\":false") == 1);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_STATUS(careledger_erased_charts(clinic, NULL, &out), CARELEDGER_NULL_PARAMETER);
    EXPECT_STATUS(careledger_erased_charts(clinic, net, NULL), CARELEDGER_NULL_PARAMETER);
    EXPECT_OK(careledger_ledger_verify(hospital, net, NULL));
    EXPECT_OK(careledger_ledger_verify(clinic, net, NULL));

    /* The tick: nothing shared, nothing due. */
    EXPECT_OK(careledger_node_tick(hospital, 0, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(json_number(text, "\"charts_decided\":") == 0 && strstr(text, "\"next_due_ms\":null") != NULL);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_node_tick(hospital, 1767225600000ull, NULL));
    EXPECT_STATUS(careledger_node_tick(NULL, 0, &out), CARELEDGER_NULL_PARAMETER);

    /* The store audit reads everything and finds it intact. */
    EXPECT_OK(careledger_store_verify(clinic, &out));
    text = out ? careledger_bytes_str(out) : "";
    CHECK(strstr(text, "\"clean\":true") && json_number(text, "\"rows\":") > 13);
    careledger_bytes_free(out);
    out = NULL;
    EXPECT_OK(careledger_store_verify(clinic, NULL));
    EXPECT_STATUS(careledger_store_verify(NULL, &out), CARELEDGER_NULL_PARAMETER);
    CHECK(strcmp(careledger_status_str(CARELEDGER_CHART_ERASED), "unknown status code") != 0);
    CHECK(strcmp(careledger_status_str(CARELEDGER_BEHIND_OWN_CHAIN), "unknown status code") != 0);
    CHECK(CARELEDGER_CHART_ERASED == 900 && CARELEDGER_CONSENT_DECISION_FAILED == 903);

done:
    careledger_bytes_free(out);
    careledger_bytes_free(bundle);
    careledger_bytes_free(key_package);
    careledger_bytes_free(net_id);
    careledger_string_list_free(patients);
    careledger_node_free(clinic);
    careledger_node_free(hospital);
}

/* Freed, never-issued and wrong-type handles are detected: calls answer
 * CARELEDGER_STALE_HANDLE, accessors NULL or 0, frees do nothing. */
static void test_stale_handles(void) {
    careledger_node *node = create_node("stale.sqlite", KEY_A, "stale.example");
    careledger_bytes *kp = NULL, *again = NULL;
    careledger_string_list *list = NULL;
    careledger_node *bogus = (careledger_node *)(uintptr_t)0x7fff0000u;
    char buf[128];
    size_t len = 0;

    EXPECT_OK(careledger_node_key_package(node, &kp));
    CHECK(careledger_bytes_len(kp) > 0);
    EXPECT_OK(careledger_node_networks(node, &list));
    careledger_bytes_free(kp);
    CHECK(careledger_bytes_data(kp) == NULL && careledger_bytes_len(kp) == 0);
    CHECK(careledger_bytes_str(kp) == NULL);
    careledger_bytes_free(kp); /* a double free is a no-op */
    careledger_string_list_free(list);
    CHECK(careledger_string_list_count(list) == 0 && careledger_string_list_get(list, 0) == NULL);

    /* A buffer handle passed as a node is refused, and freeing it as a node frees nothing. */
    EXPECT_OK(careledger_node_key_package(node, &kp));
    EXPECT_STATUS(careledger_node_key_package((careledger_node *)kp, &again), CARELEDGER_STALE_HANDLE);
    careledger_node_free((careledger_node *)kp);
    CHECK(careledger_bytes_len(kp) > 0);
    careledger_bytes_free(kp);

    EXPECT_STATUS(careledger_node_author_id(bogus, buf, sizeof buf, &len), CARELEDGER_STALE_HANDLE);
    CHECK(last_error_len() > 0);
    careledger_node_free(bogus);

    careledger_node_free(node);
    EXPECT_STATUS(careledger_node_author_id(node, buf, sizeof buf, &len), CARELEDGER_STALE_HANDLE);
    EXPECT_STATUS(careledger_node_key_package(node, &again), CARELEDGER_STALE_HANDLE);
    CHECK(again == NULL);
    careledger_node_free(node); /* a double free is a no-op */
    CHECK(strcmp(careledger_status_str(CARELEDGER_STALE_HANDLE), "unknown status code") != 0);
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
    test_consent_ai_null_arguments(node, net);
    test_consent_ai_bad_arguments(node, net);
    test_buffers(node);
    test_stale_handles();
    test_store_misuse();
    test_invalid_fhir_and_reopen();
    test_sans_io();
    test_joiner_reads_history();
    test_double_free_every_type();
    test_threads();
    test_study();
    test_patient_rights();
    test_rules_misuse(node, net);
    test_rules();

    careledger_bytes_free(network);
    careledger_node_free(node);
    free(patients_data);
    printf("c_api_test: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
