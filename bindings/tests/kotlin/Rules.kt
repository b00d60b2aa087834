// Rules that act by themselves through careledger's Kotlin bindings: the story
// of bindings/tests/python/test_rules.py. A hospital and an insurer form a
// claims network through the local relay file; the hospital shares two
// consenting patients' claims (a third patient's stay home); under a 2-of-2
// policy the insurer's rule set becomes active once the hospital endorses it
// too, the insurer writes one outcome per claim by itself on its next sync,
// and the hospital re-checks every one. Compiled with Scenario.kt, whose
// main() runs it.
//
// Failure messages never contain patient data: values are compared, never printed.

import java.io.File
import uniffi.careledger.ApiException
import uniffi.careledger.EndorsementTarget
import uniffi.careledger.Grantee
import uniffi.careledger.Node
import uniffi.careledger.Purpose
import uniffi.careledger.RuleDecision

private fun claimJson(patient: String, suffix: String, total: String) =
    """{"resourceType":"Claim","id":"$patient-$suffix","status":"active",""" +
        """"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"institutional"}]},""" +
        """"use":"claim","patient":{"reference":"Patient/$patient"},"created":"2025-03-01",""" +
        """"provider":{"display":"Hospital"},"priority":{"coding":[{"code":"normal"}]},""" +
        """"insurance":[{"sequence":1,"focal":true,"coverage":{"display":"Acme Health"}}],""" +
        """"total":{"value":$total,"currency":"USD"}}"""

private fun ruleSetJson(executor: String, whenExpression: String) = """
    {"format": "careledger.rule_set", "format_version": 1, "name": "kt-claims", "version": 1,
     "currency": "USD", "executors": ["$executor"],
     "rules": [{"id": "pay", "trigger": {"resource_type": "Claim"}, "inputs": ["Patient"],
       "clauses": [{"when": "$whenExpression", "outcome": "pend", "reason": "above the limit"}],
       "otherwise": {"outcome": "approve",
                     "amount": "(resource.total.value * decimal('0.8')).round(2)",
                     "reason": "covered at 80%"}}]}
""".trimIndent()

internal fun rulesScenario(dir: File) {
    dir.mkdirs()
    val relay = File(dir, "relay.sqlite").path
    val hospital = Node.create(File(dir, "hospital.sqlite").path, randomKey(), "hospital.example")
    val insurer = Node.create(File(dir, "insurer.sqlite").path, randomKey(), "insurer.example")
    val care = hospital.createNetwork("care")
    val claims = hospital.createNetwork("claims")
    claims.invite(insurer.keyPackage())
    claims.syncLocalRelay(relay)
    val insurerClaims = insurer.joinFromLocalRelay(relay, claims.id(), "claims")
    fun syncBoth(): ULong {
        var written = 0UL
        repeat(2) {
            claims.syncLocalRelay(relay)
            written += insurerClaims.syncLocalRelay(relay).received.ruleOutcomesWritten
        }
        return written
    }
    syncBoth()

    val ndjson = listOf("k1", "k2", "k3").flatMap { p ->
        listOf(
            """{"resourceType":"Patient","id":"$p","gender":"female","birthDate":"1975-02-01"}""",
            claimJson(p, "small", "269.68"),
            claimJson(p, "large", "1200.00"),
        )
    }.joinToString("\n", postfix = "\n")
    care.importFhir("claims.ndjson", ndjson.toByteArray())
    val grantee = Grantee.Network(claims.id())
    for (patient in listOf("k1", "k2")) {
        care.grantConsent("claims-$patient", patient, grantee, listOf(Purpose.Claims), listOf("Claim", "Patient"), null, null)
    }

    check("the hospital shares only consented claims, only the types named") {
        val report = care.shareTypesToNetwork(claims, Purpose.Claims, listOf("Claim", "Patient"))
        expect(report.patientsShared == 2UL, "two patients shared")
        syncBoth()
        expect(insurerClaims.patients().sorted() == listOf("k1", "k2"), "the insurer sees two charts")
    }

    var written = 0UL
    var hash = ""
    check("the insurer adjudicates by itself once the quorum endorsed") {
        insurerClaims.setRulesPolicy(2u, null)
        val added = insurerClaims.addRuleSet(
            ruleSetJson(insurer.authorId(), "resource.total.value > decimal('500')").toByteArray(),
        )
        hash = added.hash
        insurerClaims.endorse(EndorsementTarget.RuleSet(hash))
        expect(insurerClaims.ruleOutcomes().isEmpty(), "one of two endorsements activates nothing")
        syncBoth()
        claims.endorse(EndorsementTarget.RuleSet(hash))
        written = syncBoth()
        expect(written == 4UL, "one outcome per shared claim, written during sync")
        val outcomes = insurerClaims.ruleOutcomes().associateBy { it.resourceId }
        expect(outcomes.keys.sorted() == listOf("k1-large", "k1-small", "k2-large", "k2-small"), "the shared claims")
        val small = outcomes.getValue("k1-small")
        expect(small.decision == RuleDecision.APPROVE && small.amount == "215.74", "80 % to the cent")
        expect(outcomes.getValue("k2-large").decision == RuleDecision.PEND, "above the limit pends")
        expect(small.claimResponseJson.contains("\"resourceType\":\"ClaimResponse\""), "a ClaimResponse")
        expect(insurerClaims.runRules().outcomesWritten == 0UL, "running again writes nothing")
    }

    check("the hospital re-checks every outcome: confirmed") {
        val checks = claims.verifyOutcomes()
        expect(checks.size == 4, "four outcomes re-checked")
        expect(checks.all { it.confirmed }, "every one confirmed")
        expect(claims.verifyOutcome(checks.first().entryId).confirmed, "one by id")
        expect(claims.verifyLedger().clean, "the ledger is clean")
        val set = claims.ruleSets().single()
        expect(set.inForce && set.activation.quorum == 2u && set.ruleIds == listOf("pay"), "in force, 2 of 2")
    }

    check("hostile rule sets and unknown ids are typed errors") {
        expectThrows<ApiException.InvalidRuleSet>("nested comprehensions") {
            insurerClaims.addRuleSet(
                ruleSetJson(insurer.authorId(), "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))").toByteArray(),
            )
        }
        expectThrows<ApiException.InvalidRuleSet>("not JSON") { insurerClaims.addRuleSet("{".toByteArray()) }
        expect(insurerClaims.ruleSets().size == 1, "nothing stored")
        expectThrows<ApiException.InvalidPolicy>("quorum above the members") { insurerClaims.setRulesPolicy(3u, null) }
        expectThrows<ApiException.UnknownRuleSet>("unknown rule set") {
            insurerClaims.endorse(EndorsementTarget.RuleSet("ab".repeat(32)))
        }
        expectThrows<ApiException.UnknownOutcome>("unknown outcome") { insurerClaims.verifyOutcome("ab".repeat(32)) }
    }

    check("a withdrawal below quorum deactivates the rule set") {
        insurerClaims.withdrawEndorsement(EndorsementTarget.RuleSet(hash))
        expect(!insurerClaims.activation(EndorsementTarget.RuleSet(hash)).active, "inactive")
    }

    listOf(insurerClaims, claims, care).forEach { it.close() }
    insurer.close()
    hospital.close()
}
