"""Rules that act by themselves through careledger's Python bindings.

A hospital, an insurer and an auditor form a claims network (through the
local relay file). The hospital imports three patients' claims into its own
care network; two patients consent to claims use of their claims, which the
hospital shares into the claims network (only `Claim` and `Patient`). Under a
2-of-3 policy the insurer's rule set (pend above 500 USD, else approve 80 %)
becomes active once the auditor endorses it too; the insurer then writes one
outcome per shared claim by itself while it syncs, and the hospital and the
auditor re-check every outcome. A hostile rule set is refused; withdrawing
below quorum deactivates the set.

Run by `bash bindings/tests/run.sh`. Failure messages print counts and
steps, never patient data.
"""

import gc
import json
import os
import shutil
import tempfile
import unittest

from careledger import ApiError, EndorsementTarget, Grantee, Node, Purpose, RuleDecision

CLAIM_TYPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}
    ]
}


def claim(patient, suffix, total):
    return {
        "resourceType": "Claim",
        "id": "%s-%s" % (patient, suffix),
        "status": "active",
        "type": CLAIM_TYPE,
        "use": "claim",
        "patient": {"reference": "Patient/%s" % patient},
        "created": "2025-03-01",
        "provider": {"display": "Hospital"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Acme Health"}}],
        "total": {"value": total, "currency": "USD"},
    }


def claims_ndjson():
    resources = []
    for patient in ("q1", "q2", "q3"):
        resources.append(
            {"resourceType": "Patient", "id": patient, "gender": "male", "birthDate": "1960-05-01"}
        )
        resources.append(claim(patient, "small", 269.68))
        resources.append(claim(patient, "large", 1200.00))
    return "".join(json.dumps(r) + "\n" for r in resources).encode()


def rule_set(executor, when="resource.total.value > decimal('500')"):
    return json.dumps(
        {
            "format": "careledger.rule_set",
            "format_version": 1,
            "name": "py-claims",
            "version": 1,
            "currency": "USD",
            "executors": [executor],
            "rules": [
                {
                    "id": "pay",
                    "trigger": {"resource_type": "Claim"},
                    "inputs": ["Patient"],
                    "clauses": [{"when": when, "outcome": "pend", "reason": "above the limit"}],
                    "otherwise": {
                        "outcome": "approve",
                        "amount": "(resource.total.value * decimal('0.8')).round(2)",
                        "reason": "covered at 80%",
                    },
                }
            ],
        }
    ).encode()


class Rules(unittest.TestCase):
    """The story runs once; each test checks one part of it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="careledger-py-rules-")
        cls.relay = os.path.join(cls.dir, "relay.sqlite")

        def node(name):
            return Node.create(os.path.join(cls.dir, name + ".sqlite"), os.urandom(32), name)

        cls.hospital = node("hospital.example")
        cls.insurer = node("insurer.example")
        cls.auditor = node("auditor.example")
        cls.care = cls.hospital.create_network("care")
        cls.claims = {"hospital": cls.hospital.create_network("claims")}
        for name, member in (("insurer", cls.insurer), ("auditor", cls.auditor)):
            cls.claims["hospital"].invite(member.key_package())
            cls.claims["hospital"].sync_local_relay(cls.relay)
            cls.claims[name] = member.join_from_local_relay(
                cls.relay, cls.claims["hospital"].id(), "claims"
            )
        cls.sync_all()

        cls.care.import_fhir("claims.ndjson", claims_ndjson())
        grantee = Grantee.NETWORK(network_id=cls.claims["hospital"].id())
        for patient in ("q1", "q2"):
            cls.care.grant_consent(
                "claims-" + patient, patient, grantee, [Purpose.CLAIMS()], ["Claim", "Patient"]
            )
        cls.share = cls.care.share_types_to_network(
            cls.claims["hospital"], Purpose.CLAIMS(), ["Claim", "Patient"]
        )
        cls.sync_all()

        insurer = cls.claims["insurer"]
        cls.policy = insurer.set_rules_policy(2)
        cls.added = insurer.add_rule_set(rule_set(cls.insurer.author_id()))
        cls.target = EndorsementTarget.RULE_SET(hash=cls.added.hash)
        insurer.endorse(cls.target)
        cls.before_quorum = insurer.rule_outcomes()
        cls.sync_all()
        cls.claims["auditor"].endorse(cls.target)
        # Round 1 carries the endorsement out, round 2 brings it to the
        # insurer (which adjudicates during that sync) and the outcomes to
        # the auditor, round 3 brings them to the hospital.
        cls.reports = cls.sync_all(rounds=3)

    @classmethod
    def sync_all(cls, rounds=2):
        reports = []
        for _ in range(rounds):
            for name in ("hospital", "insurer", "auditor"):
                reports.append((name, cls.claims[name].sync_local_relay(cls.relay)))
        return reports

    @classmethod
    def tearDownClass(cls):
        del cls.claims, cls.care, cls.hospital, cls.insurer, cls.auditor
        gc.collect()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_only_consented_claims_were_shared(self):
        self.assertEqual(self.share.patients_shared, 2)
        self.assertEqual(sorted(self.claims["insurer"].patients()), ["q1", "q2"])

    def test_the_insurer_adjudicated_by_itself_once_the_quorum_endorsed(self):
        self.assertEqual(self.before_quorum, [])
        written = sum(r.received.rule_outcomes_written for n, r in self.reports if n == "insurer")
        self.assertEqual(written, 4)
        outcomes = self.claims["insurer"].rule_outcomes()
        self.assertEqual(len(outcomes), 4)
        by_claim = {o.resource_id: o for o in outcomes}
        self.assertEqual(sorted(by_claim), ["q1-large", "q1-small", "q2-large", "q2-small"])
        small = by_claim["q1-small"]
        self.assertEqual(small.decision, RuleDecision.APPROVE)
        self.assertEqual(small.amount, "215.74")
        self.assertEqual(small.reason, "covered at 80%")
        self.assertEqual(small.executor_id, self.insurer.author_id())
        self.assertEqual(small.rule_set_hash, self.added.hash)
        self.assertEqual(len(small.endorsement_ids), 2)
        self.assertEqual(small.duplicate_ids, [])
        large = by_claim["q2-large"]
        self.assertEqual(large.decision, RuleDecision.PEND)
        self.assertIsNone(large.amount)
        self.assertEqual(large.clause, 0)
        response = json.loads(small.claim_response_json)
        self.assertEqual(response["resourceType"], "ClaimResponse")
        self.assertEqual(response["request"]["reference"], "Claim/q1-small")
        self.assertEqual(response["outcome"], "complete")
        self.assertEqual(json.loads(small.outcome_json)["consent_ids"], ["claims-q1"])
        # Running again writes nothing.
        self.assertEqual(self.claims["insurer"].run_rules().outcomes_written, 0)

    def test_every_other_member_confirms_every_outcome(self):
        confirmed = sum(
            r.received.rule_outcomes_confirmed for n, r in self.reports if n != "insurer"
        )
        self.assertEqual(confirmed, 8)
        for name in ("hospital", "auditor"):
            network = self.claims[name]
            checks = network.verify_outcomes()
            self.assertEqual(len(checks), 4)
            for check in checks:
                self.assertTrue(check.confirmed, (name, check.mismatch_step))
            one = network.verify_outcome(checks[0].entry_id)
            self.assertTrue(one.confirmed)
            self.assertFalse(one.waiting)
            self.assertTrue(network.verify_ledger().clean)

    def test_rule_sets_and_activation(self):
        sets = self.claims["hospital"].rule_sets()
        self.assertEqual(len(sets), 1)
        info = sets[0]
        self.assertEqual((info.name, info.version, info.rule_ids), ("py-claims", 1, ["pay"]))
        self.assertEqual(info.executors, [self.insurer.author_id()])
        self.assertTrue(info.in_force)
        self.assertTrue(info.activation.active)
        self.assertEqual(info.activation.quorum, 2)
        self.assertEqual(info.activation.policy_id, self.policy)

    def test_typed_errors_and_nothing_stored(self):
        insurer = self.claims["insurer"]
        author = self.insurer.author_id()
        hostile = "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))"
        with self.assertRaises(ApiError.InvalidRuleSet) as refused:
            insurer.add_rule_set(rule_set(author, hostile))
        self.assertIn("comprehensions nested", str(refused.exception))
        with self.assertRaises(ApiError.InvalidRuleSet):
            insurer.add_rule_set(rule_set(author, "clock.now > trigger.time_ms"))
        with self.assertRaises(ApiError.InvalidRuleSet):
            insurer.add_rule_set(b"\xff not json")
        self.assertEqual(len(insurer.rule_sets()), 1)
        with self.assertRaises(ApiError.InvalidPolicy):
            insurer.set_rules_policy(4)
        with self.assertRaises(ApiError.UnknownRuleSet):
            insurer.endorse(EndorsementTarget.RULE_SET(hash="ab" * 32))
        with self.assertRaises(ApiError.UnknownPolicy):
            insurer.endorse(EndorsementTarget.POLICY(policy_id="ab" * 32))
        with self.assertRaises(ApiError.UnknownModelCard):
            insurer.endorse(EndorsementTarget.MODEL_CARD(card_id="ab" * 32))
        with self.assertRaises(ApiError.UnknownOutcome):
            insurer.verify_outcome("ab" * 32)
        with self.assertRaises(ApiError.InvalidArgument):
            insurer.verify_outcome("not hex")
        with self.assertRaises(ApiError.InvalidArgument):
            self.care.share_types_to_network(self.claims["hospital"], Purpose.CLAIMS(), [])

    def test_withdrawal_below_quorum_deactivates(self):
        # Last by name: the other tests read the active state first.
        auditor = self.claims["auditor"]
        auditor.withdraw_endorsement(self.target)
        self.assertFalse(auditor.activation(self.target).active)
        self.assertEqual(len(auditor.activation(self.target).endorsement_ids), 1)


if __name__ == "__main__":
    unittest.main()
