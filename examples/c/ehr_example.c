/*
 * An EHR integration in plain C11: two hospitals share a patient's chart.
 *
 *   ehr_example BUNDLE.json [WORKDIR]
 *
 * Hospital A and hospital B each keep a careledger store (one SQLite file,
 * sealed under a 32-byte storage key from the host's key store). A creates a
 * care network and invites B; B joins. A imports a FHIR Bundle from its EHR;
 * both sync through a relay file; B exports the patient's chart and checks it
 * matches A's. Every call's status is checked; failures print the status
 * text and the detail from careledger_last_error(). Exit status 0 means every
 * check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "careledger.h"

/* Prints a failed call's status and detail, the way an EHR would log it. */
static void report_failure(const char *what, careledger_status status) {
    char detail[1024];
    size_t len = 0;
    if (careledger_last_error(detail, sizeof detail, &len) != CARELEDGER_OK) {
        /* Longer than our buffer: the status text alone still says what failed. */
        detail[0] = '\0';
    }
    fprintf(stderr, "%s failed: %s (%u)%s%s\n", what, careledger_status_str(status),
            (unsigned)status, len ? ": " : "", detail);
}

#define CHECK(call)                                                            \
    do {                                                                       \
        careledger_status status_ = (call);                                    \
        if (status_ != CARELEDGER_OK) {                                        \
            report_failure(#call, status_);                                    \
            goto done;                                                         \
        }                                                                      \
    } while (0)

#define EXPECT(condition)                                                      \
    do {                                                                       \
        if (!(condition)) {                                                    \
            fprintf(stderr, "check failed: %s\n", #condition);                 \
            goto done;                                                         \
        }                                                                      \
    } while (0)

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    uint8_t *data = NULL;
    long size;
    if (!file) return NULL;
    if (fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0 &&
        fseek(file, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) != NULL) {
        *len = fread(data, 1, (size_t)size, file);
        if (*len != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    fclose(file);
    return data;
}

/* A storage key. A real EHR takes it from its key store or HSM. */
static int storage_key(uint8_t key[CARELEDGER_STORAGE_KEY_LEN]) {
    FILE *random = fopen("/dev/urandom", "rb");
    size_t got = random ? fread(key, 1, CARELEDGER_STORAGE_KEY_LEN, random) : 0;
    if (random) fclose(random);
    return got == CARELEDGER_STORAGE_KEY_LEN;
}

int main(int argc, char **argv) {
    int ok = 0;
    char dir_template[] = "/tmp/careledger-ehr-XXXXXX";
    const char *dir;
    char path_a[4096], path_b[4096], relay[4096];
    uint8_t key_a[CARELEDGER_STORAGE_KEY_LEN], key_b[CARELEDGER_STORAGE_KEY_LEN];
    uint8_t *bundle = NULL;
    size_t bundle_len = 0;
    careledger_node *a = NULL, *b = NULL, *wrong = NULL;
    careledger_bytes *network = NULL, *key_package = NULL;
    careledger_bytes *chart_a = NULL, *chart_b = NULL;
    careledger_string_list *patients_a = NULL, *patients_b = NULL;
    careledger_member_list *members = NULL;
    careledger_import_report imported;
    careledger_sync_report synced;
    careledger_ledger_report ledger;
    careledger_status status;
    const char *net;
    char fingerprint[CARELEDGER_FINGERPRINT_LEN + 1];
    size_t fingerprint_len;
    size_t i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BUNDLE.json [WORKDIR]\n", argv[0]);
        return 2;
    }
    /* The header this was compiled with must belong to the library loaded. */
    if (strcmp(careledger_version(), CARELEDGER_VERSION) != 0) {
        fprintf(stderr, "careledger.h is %s but the loaded library is %s\n", CARELEDGER_VERSION,
                careledger_version());
        return 1;
    }
    printf("careledger %s\n", careledger_version());
    dir = argc > 2 ? argv[2] : mkdtemp(dir_template);
    if (!dir || !storage_key(key_a) || !storage_key(key_b)) {
        fprintf(stderr, "cannot prepare a work directory and keys\n");
        return 1;
    }
    snprintf(path_a, sizeof path_a, "%s/hospital-a.sqlite", dir);
    snprintf(path_b, sizeof path_b, "%s/hospital-b.sqlite", dir);
    snprintf(relay, sizeof relay, "%s/relay.sqlite", dir);
    bundle = read_file(argv[1], &bundle_len);
    EXPECT(bundle != NULL);
    printf("careledger %s, work directory %s\n", careledger_version(), dir);

    /* Each hospital opens its store; the first run creates the identity. */
    CHECK(careledger_node_create(path_a, key_a, sizeof key_a, "hospital-a.example", &a));
    CHECK(careledger_node_create(path_b, key_b, sizeof key_b, "hospital-b.example", &b));

    /* A creates the care network and invites B, after comparing B's
     * fingerprint out of band (here: printed). */
    CHECK(careledger_network_create(a, "care", &network));
    net = careledger_bytes_str(network);
    CHECK(careledger_node_fingerprint(b, fingerprint, sizeof fingerprint, &fingerprint_len));
    printf("inviting hospital-b.example, fingerprint %s\n", fingerprint);
    CHECK(careledger_node_key_package(b, &key_package));
    CHECK(careledger_network_invite(a, net, careledger_bytes_data(key_package),
                                    careledger_bytes_len(key_package)));
    /* The invitation takes effect in relay order; the Welcome goes out. */
    CHECK(careledger_network_sync(a, net, relay, &synced));
    CHECK(careledger_network_join_from_relay(b, relay, net, "care"));
    CHECK(careledger_network_members(b, net, &members));
    EXPECT(careledger_member_list_count(members) == 2);
    for (i = 0; i < careledger_member_list_count(members); i++) {
        printf("member %s  %s\n", careledger_member_list_name(members, i),
               careledger_member_list_fingerprint(members, i));
    }

    /* A imports the Bundle its EHR produced and syncs; B syncs. */
    CHECK(careledger_import_fhir(a, net, argv[1], bundle, bundle_len, &imported));
    printf("A imported %llu resources for %llu patient(s) in %llu ledger entries\n",
           (unsigned long long)imported.resources, (unsigned long long)imported.patients,
           (unsigned long long)imported.entries);
    CHECK(careledger_network_sync(a, net, relay, &synced));
    CHECK(careledger_network_sync(b, net, relay, &synced));
    printf("B fetched %llu messages, accepted %llu entries, rejected %llu\n",
           (unsigned long long)synced.fetched, (unsigned long long)synced.received.accepted,
           (unsigned long long)synced.received.rejected);
    EXPECT(synced.received.rejected == 0);

    /* B reads the chart: the same patients, and the same canonical Bundle. */
    CHECK(careledger_patients(a, net, &patients_a));
    CHECK(careledger_patients(b, net, &patients_b));
    EXPECT(careledger_string_list_count(patients_b) == imported.patients);
    EXPECT(careledger_string_list_count(patients_b) == careledger_string_list_count(patients_a));
    for (i = 0; i < careledger_string_list_count(patients_b); i++) {
        const char *patient = careledger_string_list_get(patients_b, i);
        EXPECT(strcmp(patient, careledger_string_list_get(patients_a, i)) == 0);
        CHECK(careledger_export_patient(a, net, patient, &chart_a));
        CHECK(careledger_export_patient(b, net, patient, &chart_b));
        EXPECT(careledger_bytes_len(chart_b) == careledger_bytes_len(chart_a));
        EXPECT(memcmp(careledger_bytes_data(chart_b), careledger_bytes_data(chart_a),
                      careledger_bytes_len(chart_a)) == 0);
        EXPECT(strstr(careledger_bytes_str(chart_b), "\"resourceType\":\"Bundle\"") != NULL);
        EXPECT(strstr(careledger_bytes_str(chart_b), patient) != NULL);
        printf("B exported patient %s: %zu bytes, identical to A's\n", patient,
               careledger_bytes_len(chart_b));
        careledger_bytes_free(chart_a);
        careledger_bytes_free(chart_b);
        chart_a = chart_b = NULL;
    }

    /* Both ledgers verify. */
    CHECK(careledger_ledger_verify(a, net, &ledger));
    CHECK(careledger_ledger_verify(b, net, &ledger));
    printf("B's ledger: %llu entries by %llu authors, all signatures and seals check\n",
           (unsigned long long)ledger.entries, (unsigned long long)ledger.authors);

    /* Handling an expected error: A's store under B's key is refused with a
     * status, and nothing in the file is touched. */
    status = careledger_node_open(path_a, key_b, sizeof key_b, &wrong);
    EXPECT(status == CARELEDGER_WRONG_STORAGE_KEY && wrong == NULL);
    printf("opening A's store with B's key: %s\n", careledger_status_str(status));

    ok = 1;
    printf("ok\n");
done:
    careledger_bytes_free(chart_a);
    careledger_bytes_free(chart_b);
    careledger_string_list_free(patients_a);
    careledger_string_list_free(patients_b);
    careledger_member_list_free(members);
    careledger_bytes_free(key_package);
    careledger_bytes_free(network);
    careledger_node_free(wrong);
    careledger_node_free(b);
    careledger_node_free(a);
    free(bundle);
    return ok ? 0 : 1;
}
