"""Consent and verifiable AI through careledger's Python bindings.

A hospital, a patient's phone and a researcher. The care network holds the
hospital and the phone, the study network the hospital and the researcher;
every exchange goes through the local relay file. The hospital imports 60
synthetic patients (generated here: three LOINC observations and a diabetes
diagnosis as the label) and records research consents to the study on behalf
of most of them; patient X's own phone grants X's consent, and later revokes
it. The researcher trains twice, and the phone checks, with nothing but the
proofs, that X is in the first model's dataset and not in the second.

Run by `bash bindings/tests/run.sh` (see test_scenario.py). Failure messages
never contain patient data: values are compared, never printed.
"""

import gc
import json
import os
import random
import shutil
import tempfile
import unittest

from careledger import (
    ApiError,
    AuditRecord,
    ConsentSource,
    ConsentStatus,
    ExportFormat,
    Grantee,
    ModelKind,
    ModelMetrics,
    Node,
    PredictInput,
    Prediction,
    Purpose,
    VerifyStep,
    model_card_dataset_commitment,
    verify_membership,
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
HBA1C, GLUCOSE, BMI = "4548-4", "2339-0", "39156-5"
DIABETES = "44054006"
PATIENTS = 60
PATIENT_X = "pt-05"
X_CONSENT = "consent-pt-05-study"


def has_on_behalf_consent(index):
    """Every sixth patient has no consent from the hospital (X among them)."""
    return index % 6 != 5


def synthetic_charts():
    """Deterministic charts: {patient id: [FHIR resources]}."""
    rng = random.Random(2026)
    charts = {}
    for i in range(PATIENTS):
        pid = "pt-%02d" % i
        hba1c = rng.gauss(6.3, 1.0)
        glucose = 95 + (hba1c - 5.5) * 28 + rng.gauss(0, 12)
        bmi = rng.gauss(28, 4)
        diabetic = hba1c + 0.03 * (bmi - 28) + rng.gauss(0, 0.35) > 6.5
        subject = {"reference": "Patient/%s" % pid}
        resources = [
            {
                "resourceType": "Patient",
                "id": pid,
                "gender": "female" if i % 2 else "male",
                "birthDate": "%04d-%02d-15" % (1940 + rng.randrange(50), 1 + i % 12),
            }
        ]
        for code, value, unit in ((HBA1C, hba1c, "%"), (GLUCOSE, glucose, "mg/dL"), (BMI, bmi, "kg/m2")):
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": "%s-%s" % (pid, code),
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "subject": subject,
                    "effectiveDateTime": "2025-06-01",
                    "valueQuantity": {"value": round(value, 2), "unit": unit},
                }
            )
        if diabetic:
            resources.append(
                {
                    "resourceType": "Condition",
                    "id": "%s-dm" % pid,
                    "code": {"coding": [{"system": SNOMED, "code": DIABETES}]},
                    "subject": subject,
                }
            )
        charts[pid] = resources
    return charts


SPEC = json.dumps(
    {
        "version": 1,
        "features": [
            {"kind": "latest_observation", "system": LOINC, "code": HBA1C},
            {"kind": "latest_observation", "system": LOINC, "code": GLUCOSE},
            {"kind": "latest_observation", "system": LOINC, "code": BMI},
            {"kind": "age_at", "date": "2026-01-01"},
            {"kind": "sex"},
        ],
        "label": {"kind": "has_condition", "system": SNOMED, "codes": [DIABETES]},
        "missing": "drop_row",
    }
)


def count_audit(entries, variant):
    return sum(1 for e in entries if isinstance(e.record, variant))


class ConsentAndVerifiableAi(unittest.TestCase):
    """The whole story runs once; each test checks one part of it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="careledger-py-ai-")
        relay = os.path.join(cls.dir, "relay.sqlite")
        cls.relay = relay

        def node(name):
            return Node.create(os.path.join(cls.dir, name + ".sqlite"), os.urandom(32), name)

        cls.hospital = node("hospital.example")
        cls.phone = node("phone.example")
        cls.researcher = node("researcher.example")

        # Care network: hospital + phone. Study network: hospital + researcher.
        cls.care = cls.hospital.create_network("care")
        cls.care.invite(cls.phone.key_package())
        cls.study = cls.hospital.create_network("study")
        cls.study.invite(cls.researcher.key_package())
        cls.care.sync_local_relay(relay)
        cls.study.sync_local_relay(relay)
        cls.phone_care = cls.phone.join_from_local_relay(relay, cls.care.id(), "my chart")
        cls.researcher_study = cls.researcher.join_from_local_relay(relay, cls.study.id(), "study")
        study_grantee = Grantee.NETWORK(network_id=cls.study.id())

        # The hospital imports the charts and records consents on behalf.
        cls.charts = synthetic_charts()
        ndjson = "".join(json.dumps(r) + "\n" for rs in cls.charts.values() for r in rs)
        cls.import_report = cls.care.import_fhir("synthetic.ndjson", ndjson.encode())
        cls.on_behalf = [
            cls.care.grant_consent("consent-%s-study" % pid, pid, study_grantee, [Purpose.RESEARCH()])
            for i, pid in enumerate(cls.charts)
            if has_on_behalf_consent(i)
        ]
        cls.linked = cls.care.link_patient_node(PATIENT_X, cls.phone.author_id())
        cls.care.sync_local_relay(relay)

        # The phone, as X's own node, grants X's research consent to the study.
        cls.phone_care.sync_local_relay(relay)
        cls.x_grant = cls.phone_care.grant_consent(
            X_CONSENT, PATIENT_X, study_grantee, [Purpose.RESEARCH()]
        )
        cls.x_consents_at_phone = cls.phone_care.consents(PATIENT_X)
        cls.phone_care.sync_local_relay(relay)
        cls.care.sync_local_relay(relay)
        cls.x_consents_at_hospital = cls.care.consents(PATIENT_X)
        cls.x_export_granted = cls.care.export_for_grantee(
            PATIENT_X, [study_grantee], Purpose.RESEARCH(), ExportFormat.NDJSON
        )
        # The consent's actor decides who matches: the study network, not the
        # care network or the researcher's node on its own; and only research.
        researcher_node = Grantee.NODE(author_id=cls.researcher.author_id())
        cls.x_exports_by_grantee = {
            name: cls.care.export_for_grantee(PATIENT_X, grantees, purpose, ExportFormat.NDJSON)
            for name, grantees, purpose in (
                ("care network", [Grantee.NETWORK(network_id=cls.care.id())], Purpose.RESEARCH()),
                ("researcher node", [researcher_node], Purpose.RESEARCH()),
                ("study, for claims", [study_grantee], Purpose.CLAIMS()),
                ("researcher in the study", [researcher_node, study_grantee], Purpose.RESEARCH()),
            )
        }

        # The hospital shares into the study; the researcher trains.
        cls.share1 = cls.care.share_to_network(cls.study, Purpose.RESEARCH())
        cls.study.sync_local_relay(relay)
        cls.researcher_study.sync_local_relay(relay)
        cls.study_patients1 = cls.researcher_study.patients()
        cls.card1 = cls.researcher_study.train(SPEC, ModelKind.LOGISTIC_REGRESSION(), 7, 0.25)
        cls.proof1 = cls.researcher_study.prove_membership(cls.card1.entry_id, PATIENT_X)
        cls.decision_record = cls.researcher_study.predict(
            cls.card1.entry_id, PredictInput.RECORD(patient_id="pt-00"), Purpose.RESEARCH()
        )
        cls.decision_features = cls.researcher_study.predict(
            cls.card1.entry_id,
            PredictInput.FEATURES(values=[7.4, 150.0, 31.0, 60.0, 1.0]),
            Purpose.RESEARCH(),
        )

        # The phone revokes; the hospital shares again and cuts the study off.
        cls.x_revoked = cls.phone_care.revoke_consent(PATIENT_X, X_CONSENT)
        cls.phone_care.sync_local_relay(relay)
        cls.care.sync_local_relay(relay)
        cls.x_export_revoked = cls.care.export_for_grantee(
            PATIENT_X, [study_grantee], Purpose.RESEARCH(), ExportFormat.BUNDLE
        )
        cls.share2 = cls.care.share_to_network(cls.study, Purpose.RESEARCH())
        cls.share3 = cls.care.share_to_network(cls.study, Purpose.RESEARCH())
        cls.study.sync_local_relay(relay)
        cls.researcher_study.sync_local_relay(relay)
        cls.card2 = cls.researcher_study.train(SPEC, ModelKind.LOGISTIC_REGRESSION(), 7, 0.25)
        cls.proof2 = cls.researcher_study.prove_membership(cls.card2.entry_id, PATIENT_X)
        cls.researcher_study.sync_local_relay(relay)
        cls.study.sync_local_relay(relay)

    @classmethod
    def tearDownClass(cls):
        del cls.researcher_study, cls.phone_care, cls.study, cls.care
        del cls.researcher, cls.phone, cls.hospital
        gc.collect()
        shutil.rmtree(cls.dir, ignore_errors=True)

    # -- consent ---------------------------------------------------------

    def test_the_hospital_records_consents_on_behalf(self):
        self.assertEqual(self.import_report.patients, PATIENTS)
        self.assertEqual(len(self.on_behalf), 50)
        stored = self.on_behalf[0]
        self.assertEqual(stored.status, ConsentStatus.ACTIVE)
        self.assertEqual(stored.recorded_on_behalf_by, self.hospital.author_id())
        self.assertEqual(stored.grantees, [Grantee.NETWORK(network_id=self.study.id())])
        self.assertEqual(stored.purposes, [Purpose.RESEARCH()])
        self.assertEqual(stored.classes, [])
        self.assertIsNone(stored.start_ms)
        self.assertEqual(json.loads(stored.fhir_json)["resourceType"], "Consent")
        chart = self.care.consents("pt-00")
        self.assertEqual(len(chart.consents), 1)
        self.assertEqual(chart.unreadable_ids, [])
        self.assertEqual(
            chart.consents[0].source,
            ConsentSource.ON_BEHALF(recorder_author_id=self.hospital.author_id()),
        )
        self.assertTrue(chart.consents[0].mark_matches)

    def test_the_phone_signs_its_own_consent(self):
        self.assertTrue(self.linked)
        self.assertFalse(self.care.link_patient_node(PATIENT_X, self.phone.author_id()))
        grant = self.x_grant
        self.assertEqual(grant.id, X_CONSENT)
        self.assertEqual(grant.patient_id, PATIENT_X)
        self.assertEqual(grant.status, ConsentStatus.ACTIVE)
        self.assertEqual(grant.grantees, [Grantee.NETWORK(network_id=self.study.id())])
        self.assertEqual(grant.purposes, [Purpose.RESEARCH()])
        self.assertEqual(grant.classes, [])
        self.assertIsNone(grant.start_ms)
        self.assertIsNone(grant.end_ms)
        self.assertEqual(grant.exceptions, 0)
        self.assertIsNone(grant.recorded_on_behalf_by)
        # The grantee is a Reference object naming the study network: the
        # shape the importer must accept for the grant to be stored at all.
        fhir = json.loads(grant.fhir_json)
        self.assertEqual(fhir["patient"], {"reference": "Patient/%s" % PATIENT_X})
        (actor,) = fhir["provision"]["actor"]
        self.assertEqual(
            actor["reference"],
            {"identifier": {"system": "urn:careledger:network", "value": self.study.id()}},
        )
        # Both replicas of the care network read back the same consent, as X's own.
        for chart in (self.x_consents_at_phone, self.x_consents_at_hospital):
            self.assertEqual(chart.unreadable_ids, [])
            (seen,) = chart.consents
            self.assertEqual(seen.consent, grant)
            self.assertEqual(seen.source, ConsentSource.PATIENT_NODE(author_id=self.phone.author_id()))
            self.assertTrue(seen.mark_matches)

    def test_only_the_consents_grantee_and_purpose_match(self):
        x_resources = len(self.charts[PATIENT_X])
        exports = self.x_exports_by_grantee
        for name in ("care network", "researcher node", "study, for claims"):
            self.assertEqual(exports[name].included, 0, name)
            self.assertEqual(exports[name].withheld, x_resources, name)
            self.assertEqual(exports[name].consent_ids, [], name)
            self.assertTrue(exports[name].text.strip() == "", name)
        both = exports["researcher in the study"]
        self.assertEqual(both.included, x_resources)
        self.assertEqual(both.consent_ids, [X_CONSENT])

    def test_export_for_the_study_follows_the_phones_consent(self):
        x_resources = len(self.charts[PATIENT_X])
        self.assertEqual(self.x_export_granted.included, x_resources)
        self.assertEqual(self.x_export_granted.withheld, 0)
        self.assertEqual(self.x_export_granted.consent_ids, [X_CONSENT])
        lines = self.x_export_granted.text.strip().splitlines()
        self.assertEqual(len(lines), x_resources)
        self.assertNotIn("Consent", {json.loads(line)["resourceType"] for line in lines})
        self.assertEqual(self.x_export_revoked.included, 0)
        self.assertEqual(self.x_export_revoked.withheld, x_resources)
        self.assertEqual(json.loads(self.x_export_revoked.text).get("entry", []), [])

    def test_sharing_copies_only_consented_charts(self):
        unconsented = [
            pid for i, pid in enumerate(self.charts) if not has_on_behalf_consent(i) and pid != PATIENT_X
        ]
        self.assertEqual(self.share1.patients, PATIENTS)
        self.assertEqual(self.share1.patients_shared, 51)
        self.assertEqual(
            self.share1.resources_withheld, sum(len(self.charts[pid]) for pid in unconsented)
        )
        self.assertEqual(self.share1.records_cut_off, 0)
        self.assertEqual(self.share1.unreadable_charts, 0)
        self.assertIn(X_CONSENT, self.share1.consent_ids)
        self.assertEqual(len(self.share1.consent_ids), 51)
        self.assertEqual(len(self.study_patients1), 51)
        self.assertNotIn(unconsented[0], self.study_patients1)
        self.assertIn(PATIENT_X, self.study_patients1)

    def test_revocation_cuts_the_study_off(self):
        self.assertEqual(self.x_revoked.status, ConsentStatus.INACTIVE)
        self.assertIsNone(self.x_revoked.recorded_on_behalf_by)
        (seen,) = self.care.consents(PATIENT_X).consents
        self.assertEqual(seen.consent.status, ConsentStatus.INACTIVE)
        self.assertEqual(self.share2.records_cut_off, 1)
        self.assertEqual(self.share2.patients_shared, 50)
        self.assertNotIn(X_CONSENT, self.share2.consent_ids)
        self.assertGreaterEqual(self.share2.entries, 1)
        # Nothing changed since: sharing again writes nothing.
        self.assertEqual(self.share3.entries, 0)
        self.assertEqual(self.share3.records_cut_off, 0)
        # The revocation itself reached the study before the cut-off.
        (in_study,) = self.researcher_study.consents(PATIENT_X).consents
        self.assertEqual(in_study.consent.status, ConsentStatus.INACTIVE)

    def test_consent_errors_are_typed(self):
        grantee = Grantee.NETWORK(network_id=self.study.id())
        with self.assertRaises(ApiError.InvalidConsent):
            self.care.grant_consent("not a valid id!", "pt-00", grantee, [Purpose.RESEARCH()])
        with self.assertRaises(ApiError.InvalidConsent):
            self.care.grant_consent("c-period", "pt-00", grantee, [], [], 2_000_000_000_000, 1_000_000_000_000)
        with self.assertRaises(ApiError.InvalidArgument):
            self.care.grant_consent("c-x", "pt-00", Grantee.NODE(author_id="beef"), [])
        with self.assertRaises(ApiError.UnknownPatient):
            self.care.grant_consent("c-x", "no-such-patient", grantee, [])
        with self.assertRaises(ApiError.UnknownConsent):
            self.care.revoke_consent("pt-00", "no-such-consent")
        with self.assertRaises(ApiError.InvalidArgument):
            self.care.share_to_network(self.care, Purpose.RESEARCH())
        with self.assertRaises(ApiError.InvalidArgument):
            self.care.share_to_network(self.researcher_study, Purpose.RESEARCH())

    def test_a_half_open_consent_period(self):
        grantee = Grantee.NODE(author_id=self.researcher.author_id())
        stored = self.care.grant_consent(
            "consent-pt-01-node", "pt-01", grantee, [Purpose.OTHER(code="HOPERAT")], ["Observation"],
            start_ms=1_767_225_600_000,
        )
        self.assertEqual(stored.start_ms, 1_767_225_600_000)
        self.assertIsNone(stored.end_ms)
        self.assertEqual(stored.classes, ["Observation"])
        self.assertEqual(stored.purposes, [Purpose.OTHER(code="HOPERAT")])
        self.assertEqual(stored.grantees, [grantee])
        self.assertEqual(stored.recorded_on_behalf_by, self.hospital.author_id())
        # From 2026-01-01 on, the researcher's node may use pt-01's
        # observations for HOPERAT, and nothing else; the study may not.
        observations = [r for r in self.charts["pt-01"] if r["resourceType"] == "Observation"]
        export = self.care.export_for_grantee("pt-01", [grantee], Purpose.OTHER(code="HOPERAT"), ExportFormat.NDJSON)
        self.assertEqual(export.included, len(observations))
        self.assertEqual(export.withheld, len(self.charts["pt-01"]) - len(observations))
        self.assertEqual(export.consent_ids, ["consent-pt-01-node"])
        exported = [json.loads(line) for line in export.text.strip().splitlines()]
        self.assertEqual(sorted(r["id"] for r in exported), sorted(r["id"] for r in observations))
        study = Grantee.NETWORK(network_id=self.study.id())
        export = self.care.export_for_grantee("pt-01", [study], Purpose.OTHER(code="HOPERAT"), ExportFormat.NDJSON)
        self.assertEqual(export.included, 0)

    # -- verifiable AI ---------------------------------------------------

    def test_training_writes_a_model_card(self):
        card = json.loads(self.card1.card_json)
        self.assertEqual(card["format"], "careledger.model_card")
        self.assertEqual(card["grantee_network"], self.study.id())
        self.assertEqual(card["seed"], 7)
        self.assertEqual(self.card1.dataset_size, 51)
        self.assertEqual(self.card1.excluded_by_consent, 0)
        self.assertEqual(self.card1.training_rows + self.card1.test_rows, 51)
        self.assertGreater(self.card1.test_rows, 0)
        self.assertIn(X_CONSENT, self.card1.consent_ids)
        metrics = self.card1.metrics
        self.assertIsInstance(metrics, ModelMetrics.CLASSIFICATION)
        self.assertEqual(metrics.rows, self.card1.test_rows)
        self.assertGreaterEqual(metrics.accuracy, 0.6)
        self.assertIsNotNone(metrics.auc)
        self.assertEqual(len(self.card1.model_hash), 64)

    def test_the_phone_sees_it_was_in_the_first_dataset(self):
        # The phone checks against the card's own commitment, not the prover's word.
        self.assertEqual(self.proof1.commitment, model_card_dataset_commitment(self.card1.card_json))
        self.assertTrue(verify_membership(self.proof1.commitment, PATIENT_X, self.proof1.proof))

    def test_the_phone_sees_it_is_not_in_the_second_dataset(self):
        self.assertEqual(self.card2.dataset_size, 50)
        self.assertEqual(self.card2.excluded_by_consent, 1)
        self.assertNotIn(X_CONSENT, self.card2.consent_ids)
        self.assertEqual(self.proof2.commitment, model_card_dataset_commitment(self.card2.card_json))
        self.assertFalse(verify_membership(self.proof2.commitment, PATIENT_X, self.proof2.proof))

    def test_a_forged_membership_answer_is_refused(self):
        tampered = bytearray(self.proof1.proof)
        tampered[-1] ^= 0x01
        with self.assertRaises(ApiError.InvalidProof):
            verify_membership(self.proof1.commitment, PATIENT_X, bytes(tampered))
        # The first card's inclusion proof says nothing about another record.
        with self.assertRaises(ApiError.InvalidProof):
            verify_membership(self.proof1.commitment, "pt-00", self.proof1.proof)
        # Nor does it hold against the second card's commitment.
        with self.assertRaises(ApiError.InvalidProof):
            verify_membership(self.proof2.commitment, PATIENT_X, self.proof1.proof)
        with self.assertRaises(ApiError.InvalidProof):
            verify_membership(b"\x01", PATIENT_X, self.proof1.proof)

    def test_the_hospital_confirms_the_researchers_card(self):
        verification = self.study.verify_model(self.card1.entry_id)
        self.assertTrue(verification.confirmed, "mismatch at %s" % verification.mismatch_step)
        self.assertTrue(verification.exact)
        self.assertIsNone(verification.mismatch_step)
        self.assertIsNone(verification.detail)
        self.assertEqual(
            verification.passed,
            [
                VerifyStep.MODEL_BYTES,
                VerifyStep.FEATURE_SPEC,
                VerifyStep.CHECKPOINT,
                VerifyStep.DATASET,
                VerifyStep.CONSENT,
                VerifyStep.MODEL,
                VerifyStep.METRICS,
            ],
        )
        self.assertTrue(self.study.verify_model(self.card2.entry_id).confirmed)

    def test_predictions_are_recorded_with_provenance(self):
        decision = self.decision_record
        self.assertEqual(decision.model_card_id, self.card1.entry_id)
        self.assertEqual(decision.patient_id, "pt-00")
        self.assertEqual(decision.purpose, Purpose.RESEARCH())
        self.assertEqual(decision.consent_ids, ["consent-pt-00-study"])
        self.assertIsInstance(decision.output, Prediction.CLASSIFICATION)
        self.assertIn(decision.output.predicted_class, (0, 1))
        self.assertTrue(0.0 <= decision.output.positive_probability <= 1.0)
        provenance = json.loads(decision.provenance_json)
        self.assertEqual(provenance["resourceType"], "Provenance")
        self.assertEqual(provenance["id"], decision.entry_id)
        self.assertEqual(provenance["target"], [{"reference": "Patient/pt-00"}])
        self.assertEqual(provenance["policy"], ["urn:careledger:consent:consent-pt-00-study"])
        agent = provenance["agent"][0]["who"]["identifier"]["value"]
        self.assertEqual(agent, self.researcher.author_id())
        features = self.decision_features
        self.assertIsNone(features.patient_id)
        self.assertEqual(features.consent_ids, [])
        self.assertNotEqual(features.input_commitment, decision.input_commitment)

    def test_audit_counts_cards_decisions_and_cut_offs(self):
        for network in (self.researcher_study, self.study):
            entries = network.audit()
            self.assertEqual(count_audit(entries, AuditRecord.MODEL_CARD), 2)
            self.assertEqual(count_audit(entries, AuditRecord.DECISION_MADE), 2)
            self.assertEqual(count_audit(entries, AuditRecord.MODEL_UPDATE), 0)
            (cut,) = [e for e in entries if isinstance(e.record, AuditRecord.KEY_WITHHELD)]
            self.assertEqual(cut.record.record_id, PATIENT_X)
            self.assertEqual(cut.record.reason, "consent revoked")
            self.assertEqual(cut.record.consent_id, X_CONSENT)
            self.assertEqual(cut.author_name, "hospital.example")
            cards = [e for e in entries if isinstance(e.record, AuditRecord.MODEL_CARD)]
            self.assertEqual([c.entry_id for c in cards], [self.card1.entry_id, self.card2.entry_id])
            self.assertTrue(all(c.author_id == self.researcher.author_id() for c in cards))
            decisions = [e.record.decision for e in entries if isinstance(e.record, AuditRecord.DECISION_MADE)]
            self.assertEqual(
                sorted(d.entry_id for d in decisions),
                sorted([self.decision_record.entry_id, self.decision_features.entry_id]),
            )

    def test_refused_predictions_write_nothing(self):
        before = len(self.researcher_study.audit())
        with self.assertRaises(ApiError.ConsentDenied):
            self.researcher_study.predict(
                self.card2.entry_id, PredictInput.RECORD(patient_id=PATIENT_X), Purpose.RESEARCH()
            )
        with self.assertRaises(ApiError.ConsentDenied):
            self.researcher_study.predict(
                self.card2.entry_id, PredictInput.RECORD(patient_id="pt-00"), Purpose.CLAIMS()
            )
        with self.assertRaises(ApiError.UnknownModelCard):
            self.researcher_study.predict("00" * 32, PredictInput.FEATURES(values=[1.0]), Purpose.RESEARCH())
        with self.assertRaises(ApiError.InvalidArgument):
            self.researcher_study.predict(
                self.card2.entry_id, PredictInput.FEATURES(values=[1.0]), Purpose.RESEARCH()
            )
        with self.assertRaises(ApiError.InvalidArgument):
            self.researcher_study.verify_model("not hex")
        self.assertEqual(len(self.researcher_study.audit()), before)

    def test_training_errors_are_typed(self):
        with self.assertRaises(ApiError.InvalidSpec):
            self.researcher_study.train('{"version": 1, "features": []}', ModelKind.DECISION_TREE())
        with self.assertRaises(ApiError.InvalidSpec):
            self.researcher_study.train("not json", ModelKind.DECISION_TREE())
        with self.assertRaises(ApiError.InvalidArgument):
            self.researcher_study.train(SPEC, ModelKind.DECISION_TREE(), 1, 1.5)
        with self.assertRaises(ApiError.TrainingFailed):
            self.researcher_study.train(SPEC, ModelKind.DECISION_TREE(max_depth=0))
        # The care network's consents grant the study, not the care network;
        # pt-02's grant to the care network is for claims, not research.
        care = Grantee.NETWORK(network_id=self.care.id())
        self.care.grant_consent("consent-pt-02-claims", "pt-02", care, [Purpose.CLAIMS()])
        claims = self.care.export_for_grantee("pt-02", [care], Purpose.CLAIMS(), ExportFormat.NDJSON)
        self.assertEqual(claims.included, len(self.charts["pt-02"]))
        self.assertEqual(claims.consent_ids, ["consent-pt-02-claims"])
        with self.assertRaises(ApiError.EmptyAfterConsent) as caught:
            self.care.train(SPEC, ModelKind.LOGISTIC_REGRESSION())
        self.assertEqual(caught.exception.excluded, PATIENTS)
        with self.assertRaises(ApiError.UnknownModelCard):
            self.researcher_study.prove_membership("00" * 32, PATIENT_X)
        with self.assertRaises(ApiError.InvalidLedgerEntry):
            model_card_dataset_commitment("{}")


if __name__ == "__main__":
    unittest.main()
