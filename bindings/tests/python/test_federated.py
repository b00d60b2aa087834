"""Federated tasks under secure aggregation through careledger's Python bindings.

Three hospitals, each with its own care network of synthetic patients
(consented to the study), and a researcher who coordinates. Every exchange
goes through the local relay file. The hospitals run the site side
(`fl_site_step`); the researcher plans a feature-statistics task, then a
FedAvg task scaled by its result; every member re-verifies the round cards;
the audit shows the budget; a plan beyond the budget policy is refused.

Run by `bash bindings/tests/run.sh`. Failure messages print counts and
steps, never patient data.
"""

import gc
import json
import os
import random
import shutil
import tempfile
import unittest

from careledger import ApiError, AuditRecord, Grantee, Node, Purpose

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
HBA1C, BMI = "4548-4", "39156-5"
DIABETES = "44054006"

SPEC = {
    "version": 1,
    "features": [
        {"kind": "latest_observation", "system": LOINC, "code": HBA1C},
        {"kind": "latest_observation", "system": LOINC, "code": BMI},
    ],
    "label": {"kind": "has_condition", "system": SNOMED, "codes": [DIABETES]},
    "missing": "drop_row",
}


def charts(site, count=16):
    """Deterministic charts; each site's HbA1c is shifted (non-IID)."""
    rng = random.Random(100 + site)
    out = {}
    for i in range(count):
        pid = "s%d-pt-%02d" % (site, i)
        hba1c = rng.gauss(5.6 + 0.6 * site, 0.9)
        bmi = rng.gauss(28, 4)
        subject = {"reference": "Patient/%s" % pid}
        resources = [{"resourceType": "Patient", "id": pid, "gender": "female"}]
        for code, value in ((HBA1C, hba1c), (BMI, bmi)):
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": "%s-%s" % (pid, code),
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "subject": subject,
                    "valueQuantity": {"value": round(value, 2)},
                }
            )
        if hba1c + rng.gauss(0, 0.3) > 6.5 or i == 0:
            resources.append(
                {
                    "resourceType": "Condition",
                    "id": "%s-dm" % pid,
                    "code": {"coding": [{"system": SNOMED, "code": DIABETES}]},
                    "subject": subject,
                }
            )
        out[pid] = resources
    return out


class FederatedTasks(unittest.TestCase):
    """The story runs once; each test checks one part of it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="careledger-py-fl-")
        relay = os.path.join(cls.dir, "relay.sqlite")
        cls.relay = relay

        def node(name):
            return Node.create(os.path.join(cls.dir, name + ".sqlite"), os.urandom(32), name)

        cls.researcher = node("research.example")
        cls.hospitals = [node("hospital-%s.example" % c) for c in "abc"]
        cls.study = cls.researcher.create_network("study")
        for h in cls.hospitals:
            cls.study.invite(h.key_package())
            cls.study.sync_local_relay(relay)
        cls.site_studies = [
            h.join_from_local_relay(relay, cls.study.id(), "study") for h in cls.hospitals
        ]
        grantee = Grantee.NETWORK(network_id=cls.study.id())
        cls.cares = []
        for s, h in enumerate(cls.hospitals):
            care = h.create_network("care")
            data = charts(s)
            ndjson = "".join(json.dumps(r) + "\n" for rs in data.values() for r in rs)
            care.import_fhir("synthetic.ndjson", ndjson.encode())
            for pid in data:
                care.grant_consent("c-%s" % pid, pid, grantee, [Purpose.RESEARCH()])
            cls.cares.append(care)
        cls.sync_all()
        cls.site_ids = [h.author_id() for h in cls.hospitals]

        cls.policy_entry = cls.site_studies[0].fl_set_policy(6.0, 1e-5, True)
        cls.sync_all()

        cls.moments_plan = json.loads(
            cls.study.fl_plan(
                json.dumps(
                    {"objective": "moments", "sites": cls.site_ids, "rounds": 1, "spec": SPEC}
                )
            )
        )
        cls.moments_steps = cls.run_task()
        moments_task = [t for t in cls.study.fl_tasks() if t.task_id == cls.moments_plan["task"]][0]
        cls.moments_card = moments_task.last_card_id

        cls.fedavg_plan = json.loads(
            cls.study.fl_plan(
                json.dumps(
                    {
                        "objective": {
                            "logistic_regression": {
                                "rule": {"fed_avg": {"local_steps": 5, "learning_rate": 0.5}},
                                "l2": 0.001,
                            }
                        },
                        "sites": cls.site_ids,
                        "rounds": 3,
                        "spec": SPEC,
                        "scaling_from": cls.moments_card,
                    }
                )
            )
        )
        cls.fedavg_steps = cls.run_task()
        cls.tasks = cls.site_studies[1].fl_tasks()
        cls.cards = [
            e.record
            for e in cls.site_studies[1].audit()
            if isinstance(e.record, AuditRecord.FL_ROUND)
        ]
        cls.card_ids = [
            e.entry_id
            for e in cls.site_studies[1].audit()
            if isinstance(e.record, AuditRecord.FL_ROUND)
        ]

    @classmethod
    def sync_all(cls):
        for _ in range(2):
            cls.study.sync_local_relay(cls.relay)
            for s in cls.site_studies:
                s.sync_local_relay(cls.relay)

    @classmethod
    def run_task(cls):
        steps = []
        for _ in range(60):
            for study, care in zip(cls.site_studies, cls.cares):
                steps.extend(study.fl_site_step(care.id()))
            coordinator = cls.study.fl_coordinator_step()
            steps.extend(coordinator)
            cls.sync_all()
            if any(s.action == "card" for s in coordinator) and all(
                t.finished for t in cls.study.fl_tasks()
            ):
                return steps
        raise AssertionError("the task did not finish in 60 passes")

    @classmethod
    def tearDownClass(cls):
        del cls.site_studies, cls.cares, cls.study, cls.hospitals, cls.researcher
        gc.collect()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_sites_ran_the_protocol(self):
        actions = [s.action for s in self.fedavg_steps]
        self.assertEqual(actions.count("keys"), 3)
        self.assertEqual(actions.count("shares"), 3)
        self.assertEqual(actions.count("masked"), 9)
        self.assertEqual(actions.count("unmask"), 9)
        self.assertEqual(actions.count("survivors"), 3)
        self.assertEqual(actions.count("card"), 4)

    def test_tasks_completed_and_cards_verify_everywhere(self):
        self.assertEqual(len(self.tasks), 2)
        for task in self.tasks:
            self.assertTrue(task.finished)
            self.assertTrue(task.completed)
            self.assertEqual(len(task.participants), 3)
        self.assertEqual(len(self.card_ids), 2 + 4)
        for network in [self.study] + self.site_studies:
            for card in self.card_ids:
                verification = network.fl_verify_round(card)
                self.assertTrue(verification.confirmed, verification.mismatch_step)

    def test_the_audit_and_the_budget_show_what_was_spent(self):
        last = json.loads(self.cards[-1].card_json)
        self.assertTrue(last["last"])
        self.assertEqual(last["samples"], 48)
        self.assertEqual(len(last["budget"]), 3)
        budgets = self.study.fl_budget()
        self.assertEqual(sorted(b.non_private_rounds for b in budgets), [4, 4, 4])
        self.assertTrue(all(b.epsilon == 0.0 and b.dp_rounds == 0 for b in budgets))
        policy = self.study.fl_policy()
        self.assertEqual(policy.max_epsilon, 6.0)

    def test_a_plan_beyond_the_budget_is_refused(self):
        request = {
            "objective": {
                "logistic_regression": {
                    "rule": {
                        "dp_sgd": {
                            "learning_rate": 1.0,
                            "dp": {"clip_norm": 1.0, "noise_multiplier": 0.6, "sampling_rate": 1.0},
                        }
                    },
                    "l2": 0.0,
                }
            },
            "sites": self.site_ids,
            "rounds": 50,
            "spec": SPEC,
            "scaling_from": self.moments_card,
        }
        with self.assertRaises(ApiError.BudgetExceeded):
            self.study.fl_plan(json.dumps(request))
        with self.assertRaises(ApiError.UnknownTask):
            self.study.fl_verify_round("ab" * 32)


if __name__ == "__main__":
    unittest.main()
