"""A patient's phone and a hospital, through careledger's Python bindings.

Run by `bash bindings/tests/run.sh`, which puts the generated `careledger.py`
beside the freshly built `libcareledger_uniffi` (with the `panic-probe`
feature) on PYTHONPATH. Standard library only (unittest).

Failure messages never contain patient data: values are compared, never
printed.
"""

import gc
import json
import os
import pathlib
import shutil
import tempfile
import unittest

import careledger
from careledger import ApiError, MessageKind, Node

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "patient.ndjson"
PANIC_PROBE_SOURCE = "careledger-panic-probe"  # bindings/src/probe.rs


def source_resources():
    lines = DATA.read_bytes().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def source_patient():
    return next(r for r in source_resources() if r["resourceType"] == "Patient")


def bundle_resources(bundle_json):
    bundle = json.loads(bundle_json)
    return [entry["resource"] for entry in bundle.get("entry", [])]


class Transport:
    """The app's own transport, in memory: one totally ordered log per network."""

    def __init__(self):
        self.logs = {}
        self.kinds = {}

    def log(self, network):
        return self.logs.setdefault(network.id(), [])

    def publish_outbox(self, node):
        """Carry everything the node has queued, routed by network; return
        the Welcomes seen."""
        welcomes = []
        while True:
            batch = node.outgoing(100)
            if not batch:
                return welcomes
            for message in batch:
                self.logs.setdefault(message.network_id, []).append(message.bytes)
                self.kinds.setdefault(message.network_id, []).append(message.kind)
                if message.kind == MessageKind.WELCOME:
                    welcomes.append(message.bytes)
                node.ack_outgoing(message.id)

    def deliver(self, network):
        """Feed the network everything after its cursor, in log order."""
        log = self.log(network)
        cursor = network.relay_cursor()
        if cursor >= len(log):
            return None
        return network.receive(log[cursor:], len(log))


class PhoneAndHospital(unittest.TestCase):
    """The hospital creates networks, the phone joins, both exchange the chart."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="careledger-py-")
        cls.relay = os.path.join(cls.dir, "relay.sqlite")
        cls.hospital_key = os.urandom(32)
        cls.phone_key = os.urandom(32)
        cls.hospital = Node.create(
            os.path.join(cls.dir, "hospital.sqlite"), cls.hospital_key, "hospital.example"
        )
        # The phone makes its own identity, in its own store, under its own key.
        cls.phone_path = os.path.join(cls.dir, "phone.sqlite")
        cls.phone = Node.create(cls.phone_path, cls.phone_key, "phone.example")

        # Through the local relay file.
        cls.care = cls.hospital.create_network("care")
        cls.care.invite(cls.phone.key_package())
        cls.care.sync_local_relay(cls.relay)  # the Commit wins; the Welcome goes out
        cls.phone_care = cls.phone.join_from_local_relay(cls.relay, cls.care.id(), "my chart")
        cls.import_report = cls.care.import_fhir("patient.ndjson", DATA.read_bytes())
        cls.care.sync_local_relay(cls.relay)
        cls.phone_sync = cls.phone_care.sync_local_relay(cls.relay)

    @classmethod
    def tearDownClass(cls):
        del cls.phone_care, cls.care, cls.phone, cls.hospital
        gc.collect()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_phone_joined_the_hospitals_network(self):
        members = self.phone_care.members()
        self.assertEqual(len(members), 2)
        names = sorted(m.name for m in members)
        self.assertEqual(names, ["hospital.example", "phone.example"])
        me = [m for m in members if m.this_node]
        self.assertEqual(len(me), 1)
        self.assertEqual(me[0].fingerprint, self.phone.fingerprint())
        self.assertEqual(me[0].author_id, self.phone.author_id())
        info = self.phone_care.info()
        self.assertTrue(info.active)
        self.assertEqual(info.label, "my chart")
        self.assertEqual(info.id, self.care.id())
        self.assertEqual(self.care.info().epoch, info.epoch)

    def test_phone_reads_its_chart_after_syncing(self):
        source = source_patient()
        self.assertEqual(self.import_report.resources, len(source_resources()))
        self.assertEqual(self.import_report.patients, 1)
        self.assertGreater(self.phone_sync.received.accepted, 0)
        self.assertEqual(self.phone_sync.rejected, [])
        self.assertTrue(self.phone_care.patients() == [source["id"]], "the phone lists exactly the patient")
        resources = bundle_resources(self.phone_care.export_patient(source["id"]))
        self.assertEqual(len(resources), len(source_resources()))
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        self.assertTrue(
            patient.get("birthDate") == source["birthDate"],
            "the phone's birthDate differs from the source data's",
        )
        self.assertTrue(
            patient.get("name") == source["name"],
            "the phone's patient name differs from the source data's",
        )
        ndjson = self.phone_care.export_patient_ndjson(source["id"])
        self.assertEqual(len(ndjson.strip().splitlines()), len(source_resources()))

    def test_both_ledgers_verify_clean(self):
        for network in (self.care, self.phone_care):
            report = network.verify_ledger()
            self.assertTrue(report.clean, "ledger problems: %d" % len(report.problems))
            self.assertEqual(report.problems, [])
            self.assertGreater(report.entries, 0)
            self.assertEqual(report.signatures_ok, report.entries)
            self.assertEqual(report.authors, 1)

    def test_networks_are_listed_and_found_by_id(self):
        ids = [n.id for n in self.phone.networks()]
        self.assertIn(self.care.id(), ids)
        self.assertEqual(self.phone.network(self.care.id()).id(), self.care.id())
        with self.assertRaises(ApiError.UnknownNetwork):
            self.phone.network("00" * 16)
        with self.assertRaises(ApiError.InvalidArgument):
            self.phone.network("not hex")

    def test_sans_io_path_carries_welcome_and_chart(self):
        transport = Transport()
        clinic = self.hospital.create_network("own transport")
        clinic.invite(self.phone.key_package())
        self.assertTrue(clinic.info().commit_pending)
        transport.publish_outbox(self.hospital)
        # The Commit comes back first for its epoch: it takes effect and the
        # Welcome for the phone is queued.
        transport.deliver(clinic)
        self.assertFalse(clinic.info().commit_pending)
        welcomes = transport.publish_outbox(self.hospital)
        self.assertEqual(len(welcomes), 1)
        phone_clinic = self.phone.join_network(welcomes[0], "clinic")
        self.assertEqual(phone_clinic.id(), clinic.id())
        clinic.import_fhir("patient.ndjson", DATA.read_bytes())
        transport.publish_outbox(self.hospital)
        report = transport.deliver(phone_clinic)
        self.assertGreater(report.accepted, 0)
        self.assertEqual(report.held, 0)
        self.assertEqual(phone_clinic.relay_cursor(), len(transport.log(clinic)))
        self.assertIn(MessageKind.COMMIT, transport.kinds[clinic.id()])
        self.assertIn(MessageKind.ENTRY, transport.kinds[clinic.id()])
        patient_id = source_patient()["id"]
        self.assertTrue(phone_clinic.patients() == [patient_id], "the phone lists exactly the patient")
        exported = bundle_resources(phone_clinic.export_patient(patient_id))
        patient = next(r for r in exported if r["resourceType"] == "Patient")
        self.assertTrue(
            patient.get("birthDate") == source_patient()["birthDate"],
            "the phone's birthDate differs from the source data's",
        )
        self.assertTrue(phone_clinic.verify_ledger().clean)

    def test_tampered_message_raises_and_the_rest_of_the_batch_applies(self):
        transport = Transport()
        lab = self.hospital.create_network("tamper")
        lab.invite(self.phone.key_package())
        transport.publish_outbox(self.hospital)
        transport.deliver(lab)
        (welcome,) = transport.publish_outbox(self.hospital)
        phone_lab = self.phone.join_network(welcome, "tamper")
        transport.deliver(phone_lab)
        lab.import_fhir("patient.ndjson", DATA.read_bytes())
        start = len(transport.log(lab))
        transport.publish_outbox(self.hospital)
        fresh = transport.log(lab)[start:]
        kinds = transport.kinds[lab.id()][start:]
        entry_index = kinds.index(MessageKind.ENTRY)
        tampered = bytearray(fresh[entry_index])
        tampered[len(tampered) // 2] ^= 0x01
        entries_before = phone_lab.verify_ledger().entries
        # A tampered message alone: refused, nothing stored.
        with self.assertRaises(ApiError.MessageRejected) as caught:
            phone_lab.receive([bytes(tampered)], None)
        self.assertEqual(caught.exception.count, 1)
        self.assertEqual(phone_lab.verify_ledger().entries, entries_before)
        self.assertEqual(len(phone_lab.patients()), 0)
        # In a batch: raised again, yet the genuine messages were applied.
        with self.assertRaises(ApiError.MessageRejected) as caught:
            phone_lab.receive([bytes(tampered)] + fresh, start + len(fresh))
        self.assertEqual(caught.exception.count, 1)
        self.assertEqual(phone_lab.relay_cursor(), start + len(fresh))
        self.assertTrue(
            phone_lab.patients() == [source_patient()["id"]], "the genuine messages were applied"
        )
        report = phone_lab.verify_ledger()
        self.assertTrue(report.clean)
        self.assertGreater(report.entries, entries_before)

    def test_invalid_fhir_raises_and_stores_nothing(self):
        entries_before = self.care.verify_ledger().entries
        patients_before = self.care.patients()
        invalid = b'{"resourceType":"Patient","id":"x1","birthDate":17}\nnot json at all\n'
        with self.assertRaises(ApiError.InvalidFhir) as caught:
            self.care.import_fhir("broken.ndjson", invalid)
        self.assertGreaterEqual(len(caught.exception.problems), 1)
        self.assertTrue(all("broken.ndjson" in p for p in caught.exception.problems))
        self.assertEqual(self.care.verify_ledger().entries, entries_before)
        self.assertTrue(self.care.patients() == patients_before, "the patient list changed")

    def test_unknown_patient_is_a_typed_error(self):
        with self.assertRaises(ApiError.UnknownPatient):
            self.phone_care.export_patient("no-such-patient")

    def test_wrong_storage_key_is_a_typed_error(self):
        wrong = bytes(b ^ 0xFF for b in self.phone_key)
        with self.assertRaises(ApiError.WrongStorageKey):
            Node.open(self.phone_path, wrong)
        with self.assertRaises(ApiError.InvalidArgument):
            Node.open(self.phone_path, self.phone_key[:31])
        # The right key still opens it (a second handle on the same file).
        again = Node.open(self.phone_path, self.phone_key)
        self.assertEqual(again.fingerprint(), self.phone.fingerprint())
        with self.assertRaises(ApiError.Identity):
            Node.create(self.phone_path, self.phone_key, "phone.example")

    def test_open_without_a_store_file_creates_nothing(self):
        missing = os.path.join(self.dir, "missing.sqlite")
        with self.assertRaises(ApiError.Identity):
            Node.open(missing, self.phone_key)
        self.assertFalse(os.path.exists(missing))

    def test_invalid_key_package_and_welcome_are_typed_errors(self):
        with self.assertRaises(ApiError.InvalidKeyPackage):
            self.care.invite(b"not a key package")
        with self.assertRaises(ApiError.InvalidWelcome):
            self.phone.join_network(b"not a welcome", "x")
        info = self.phone.inspect_key_package(self.hospital.key_package())
        self.assertEqual(info.name, "hospital.example")
        self.assertEqual(info.fingerprint, self.hospital.fingerprint())


class PatientRights(unittest.TestCase):
    """The phone erases its chart; grants end by themselves; the store audits clean."""

    def test_erasure_tick_and_store_audit(self):
        directory = tempfile.mkdtemp(prefix="careledger-py-rights-")
        try:
            relay = os.path.join(directory, "relay.sqlite")
            hospital = Node.create(os.path.join(directory, "h.sqlite"), os.urandom(32), "hospital.example")
            phone = Node.create(os.path.join(directory, "p.sqlite"), os.urandom(32), "phone.example")
            care = hospital.create_network("care")
            care.invite(phone.key_package())
            care.sync_local_relay(relay)
            phone_care = phone.join_from_local_relay(relay, care.id(), "my chart")
            care.import_fhir("patient.ndjson", DATA.read_bytes())
            care.sync_local_relay(relay)
            phone_care.sync_local_relay(relay)
            patient = source_patient()["id"]

            with self.assertRaises(ApiError.UnknownResource):
                phone_care.erase_resources(patient, [careledger.ResourceRef(resource_type="Observation", id="none")])
            with self.assertRaises(ApiError.UnknownPatient):
                phone_care.erase_chart("no-such-patient")
            report = phone_care.erase_chart(patient)
            self.assertGreaterEqual(report.keys_shredded, 1)
            self.assertEqual(report.network_ids, [care.id()])
            self.assertFalse(report.by_patient, "not linked as the patient's node: on behalf")
            with self.assertRaises(ApiError.ChartErased):
                phone_care.export_patient(patient)
            with self.assertRaises(ApiError.ChartErased):
                phone_care.erase_chart(patient)

            # The hospital applies it when it syncs; its ledger still verifies.
            phone_care.sync_local_relay(relay)
            care.sync_local_relay(relay)
            with self.assertRaises(ApiError.ChartErased):
                care.export_patient(patient)
            self.assertEqual(care.patients(), [])
            erased = care.erased_charts()
            self.assertEqual(len(erased), 1)
            self.assertTrue(erased[0].patient_id == patient and erased[0].whole_chart)
            self.assertEqual(erased[0].author_id, phone.author_id())
            ledger = care.verify_ledger()
            self.assertTrue(ledger.clean)
            self.assertGreater(ledger.record_keys_missing, 0, "the ciphertext stays, unreadable")

            tick = hospital.tick(None)
            self.assertEqual((tick.charts_decided, tick.records_cut_off, tick.next_due_ms), (0, 0, None))
            audit = hospital.verify_store()
            self.assertTrue(audit.clean)
            self.assertEqual(audit.problems, [])
            self.assertGreater(audit.rows, 0)
            del phone_care, care, phone, hospital
            gc.collect()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# `bindings/tests/run.sh` runs these tests against a library built with the
# test-only `panic-probe` feature; `tests/packages/python.sh` runs them against
# the installed wheel, an app build, and says so with
# CARELEDGER_PANIC_PROBE=absent.
APP_BUILD = os.environ.get("CARELEDGER_PANIC_PROBE") == "absent"


class PanicInsideRust(unittest.TestCase):
    """A panic inside Rust arrives as an exception, and the node says so after."""

    @unittest.skipUnless(APP_BUILD, "the library under test has the panic probe")
    def test_an_app_build_has_no_panic_probe(self):
        # In an app build the probe's source name is an ordinary import label.
        directory = tempfile.mkdtemp(prefix="careledger-py-app-build-")
        try:
            node = Node.create(os.path.join(directory, "app.sqlite"), os.urandom(32), "app.example")
            network = node.create_network("app")
            patient = b'{"resourceType":"Patient","id":"probe-label"}'
            report = network.import_fhir(PANIC_PROBE_SOURCE, patient)
            self.assertEqual(report.resources, 1)
            self.assertEqual(network.patients(), ["probe-label"])
            del network, node
            gc.collect()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    @unittest.skipIf(APP_BUILD, "an app build has no panic probe (bindings/tests/run.sh runs this test)")
    def test_panic_is_an_exception_not_a_crash(self):
        directory = tempfile.mkdtemp(prefix="careledger-py-panic-")
        try:
            path = os.path.join(directory, "probe.sqlite")
            key = os.urandom(32)
            node = Node.create(path, key, "probe.example")
            network = node.create_network("probe")
            try:
                network.import_fhir(PANIC_PROBE_SOURCE, b"{}")
            except careledger.InternalError as error:
                self.assertIn("panic probe", str(error))
            except ApiError as error:
                self.fail(
                    "import_fhir returned %s instead of panicking: was the library "
                    "built with --features panic-probe (bindings/tests/run.sh)?"
                    % type(error).__name__
                )
            else:
                self.fail("the panic probe did not raise")
            # The panic happened with the node locked: it now refuses work
            # with a typed error instead of using possibly torn state.
            with self.assertRaises(ApiError.NodeUnusable):
                node.networks()
            with self.assertRaises(ApiError.NodeUnusable):
                network.patients()
            del network, node
            gc.collect()
            reopened = Node.open(path, key)
            self.assertEqual([n.label for n in reopened.networks()], ["probe"])
            del reopened
            gc.collect()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
