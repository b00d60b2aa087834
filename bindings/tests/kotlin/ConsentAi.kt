// Consent and verifiable AI through careledger's Kotlin bindings: the story of
// bindings/tests/python/test_consent_ai.py. A hospital, a patient's phone and
// a researcher; the care network (hospital + phone) and the study network
// (hospital + researcher), synced through the local relay file. The phone
// grants patient X's research consent, later revokes it, and checks with the
// researcher's proofs alone that X is in the first model's dataset and not in
// the second. Compiled with Scenario.kt, whose main() runs it.
//
// Failure messages never contain patient data: values are compared, never printed.

import java.io.File
import java.util.Locale
import java.util.Random
import uniffi.careledger.ApiException
import uniffi.careledger.AuditRecord
import uniffi.careledger.ConsentSource
import uniffi.careledger.ConsentStatus
import uniffi.careledger.ExportFormat
import uniffi.careledger.Grantee
import uniffi.careledger.ModelKind
import uniffi.careledger.ModelMetrics
import uniffi.careledger.Network
import uniffi.careledger.Node
import uniffi.careledger.PredictInput
import uniffi.careledger.Prediction
import uniffi.careledger.Purpose
import uniffi.careledger.VerifyStep
import uniffi.careledger.modelCardDatasetCommitment
import uniffi.careledger.verifyMembership

private const val LOINC = "http://loinc.org"
private const val SNOMED = "http://snomed.info/sct"
private const val DIABETES = "44054006"
private const val PATIENTS = 60
private const val PATIENT_X = "pt-05"
private const val X_CONSENT = "consent-pt-05-study"
private val OBSERVATIONS = listOf("4548-4" to "%", "2339-0" to "mg/dL", "39156-5" to "kg/m2")

private val SPEC = """
    {"version": 1,
     "features": [
       {"kind": "latest_observation", "system": "$LOINC", "code": "4548-4"},
       {"kind": "latest_observation", "system": "$LOINC", "code": "2339-0"},
       {"kind": "latest_observation", "system": "$LOINC", "code": "39156-5"},
       {"kind": "age_at", "date": "2026-01-01"},
       {"kind": "sex"}],
     "label": {"kind": "has_condition", "system": "$SNOMED", "codes": ["$DIABETES"]},
     "missing": "drop_row"}
""".trimIndent()

/** Every sixth patient has no consent from the hospital (X among them). */
private fun hasOnBehalfConsent(index: Int) = index % 6 != 5

private fun patientId(index: Int) = String.format(Locale.ROOT, "pt-%02d", index)

/** Deterministic synthetic charts: patient id to FHIR resources (JSON text). */
private fun syntheticCharts(): Map<String, List<String>> {
    val rng = Random(2026)
    return (0 until PATIENTS).associate { i ->
        val id = patientId(i)
        val hba1c = 6.3 + rng.nextGaussian()
        val glucose = 95 + (hba1c - 5.5) * 28 + rng.nextGaussian() * 12
        val bmi = 28 + rng.nextGaussian() * 4
        val diabetic = hba1c + 0.03 * (bmi - 28) + rng.nextGaussian() * 0.35 > 6.5
        val subject = """{"reference":"Patient/$id"}"""
        val gender = if (i % 2 == 1) "female" else "male"
        val birth = String.format(Locale.ROOT, "%04d-%02d-15", 1940 + rng.nextInt(50), 1 + i % 12)
        val resources = mutableListOf(
            """{"resourceType":"Patient","id":"$id","gender":"$gender","birthDate":"$birth"}""",
        )
        for ((index, observation) in OBSERVATIONS.withIndex()) {
            val (code, unit) = observation
            val value = String.format(Locale.ROOT, "%.2f", listOf(hba1c, glucose, bmi)[index])
            resources += """{"resourceType":"Observation","id":"$id-$code","status":"final",""" +
                """"code":{"coding":[{"system":"$LOINC","code":"$code"}]},"subject":$subject,""" +
                """"effectiveDateTime":"2025-06-01","valueQuantity":{"value":$value,"unit":"$unit"}}"""
        }
        if (diabetic) {
            resources += """{"resourceType":"Condition","id":"$id-dm",""" +
                """"code":{"coding":[{"system":"$SNOMED","code":"$DIABETES"}]},"subject":$subject}"""
        }
        id to resources
    }
}

private fun audited(network: Network) = network.audit().map { it.record }

internal fun consentAndAiScenario(dir: File) {
    dir.mkdirs()
    val relay = File(dir, "relay.sqlite").path
    fun node(name: String) = Node.create(File(dir, "$name.sqlite").path, randomKey(), name)
    val hospital = node("hospital.example")
    val phone = node("phone.example")
    val researcher = node("researcher.example")
    val opened = mutableListOf<AutoCloseable>(hospital, phone, researcher)
    val charts = syntheticCharts()
    lateinit var care: Network
    lateinit var study: Network
    lateinit var phoneCare: Network
    lateinit var researcherStudy: Network
    lateinit var studyGrantee: Grantee

    check("consent: the care and study networks form through the relay") {
        care = hospital.createNetwork("care")
        care.invite(phone.keyPackage())
        study = hospital.createNetwork("study")
        study.invite(researcher.keyPackage())
        care.syncLocalRelay(relay)
        study.syncLocalRelay(relay)
        phoneCare = phone.joinFromLocalRelay(relay, care.id(), "my chart")
        researcherStudy = researcher.joinFromLocalRelay(relay, study.id(), "study")
        opened += listOf(care, study, phoneCare, researcherStudy)
        studyGrantee = Grantee.Network(study.id())
        expect(researcherStudy.members().size == 2, "the study has two members")
    }

    check("consent: the hospital imports 60 charts and records consents on behalf") {
        val ndjson = charts.values.flatten().joinToString("") { it + "\n" }
        val report = care.importFhir("synthetic.ndjson", ndjson.toByteArray())
        expect(report.patients == PATIENTS.toULong(), "every patient imported")
        val stored = charts.keys.filterIndexed { i, _ -> hasOnBehalfConsent(i) }.map { id ->
            care.grantConsent("consent-$id-study", id, studyGrantee, listOf(Purpose.Research))
        }
        expect(stored.size == 50, "50 consents on behalf")
        expect(stored.all { it.recordedOnBehalfBy == hospital.authorId() }, "marked as on behalf")
        expect(stored.all { it.status == ConsentStatus.ACTIVE }, "active")
        expect(stored[0].grantees == listOf(studyGrantee), "granted to the study")
        val seen = care.consents("pt-00").consents.single()
        expect(seen.source == ConsentSource.OnBehalf(hospital.authorId()), "source: the hospital")
        expect(seen.markMatches, "the mark matches")
        expect(care.linkPatientNode(PATIENT_X, phone.authorId()), "the phone is linked as X's node")
        care.syncLocalRelay(relay)
    }

    check("consent: the phone signs X's consent and the hospital sees it as X's") {
        phoneCare.syncLocalRelay(relay)
        val granted = phoneCare.grantConsent(X_CONSENT, PATIENT_X, studyGrantee, listOf(Purpose.Research))
        expect(granted.id == X_CONSENT && granted.patientId == PATIENT_X, "id and patient")
        expect(granted.status == ConsentStatus.ACTIVE, "active")
        expect(granted.grantees == listOf(studyGrantee), "granted to the study")
        expect(granted.purposes == listOf(Purpose.Research), "for research")
        expect(granted.classes.isEmpty() && granted.exceptions == 0u, "every resource type, no exceptions")
        expect(granted.startMs == null && granted.endMs == null, "no period")
        expect(granted.recordedOnBehalfBy == null, "not marked as on behalf")
        // The grantee is a Reference object naming the study network.
        val actor = "\"reference\":{\"identifier\":{\"system\":\"urn:careledger:network\",\"value\":\"${study.id()}\"}}"
        expect(granted.fhirJson.contains(actor), "the actor's reference is an identifier of the study")
        val atPhone = phoneCare.consents(PATIENT_X).consents.single()
        phoneCare.syncLocalRelay(relay)
        care.syncLocalRelay(relay)
        val seen = care.consents(PATIENT_X).consents.single()
        for (copy in listOf(atPhone, seen)) {
            expect(copy.consent == granted, "the care network stores the consent as granted")
            expect(copy.source == ConsentSource.PatientNode(phone.authorId()), "source: the phone")
            expect(copy.markMatches, "the mark matches")
        }
        val export = care.exportForGrantee(PATIENT_X, listOf(studyGrantee), Purpose.Research, ExportFormat.NDJSON)
        expect(export.included == charts.getValue(PATIENT_X).size.toULong(), "the whole chart for the study")
        expect(export.consentIds == listOf(X_CONSENT), "relies on X's consent")
    }

    check("consent: only the consent's grantee and purpose match") {
        val chart = charts.getValue(PATIENT_X).size.toULong()
        val researcherNode = Grantee.Node(researcher.authorId())
        val refused = listOf(
            "the care network" to (listOf(Grantee.Network(care.id())) to Purpose.Research),
            "the researcher's node alone" to (listOf(researcherNode) to Purpose.Research),
            "the study, for claims" to (listOf(studyGrantee) to Purpose.Claims),
        )
        for ((name, request) in refused) {
            val export = care.exportForGrantee(PATIENT_X, request.first, request.second, ExportFormat.NDJSON)
            expect(export.included == 0uL && export.withheld == chart, "nothing for $name")
            expect(export.consentIds.isEmpty() && export.text.isBlank(), "no consent relied on for $name")
        }
        val both = care.exportForGrantee(
            PATIENT_X, listOf(researcherNode, studyGrantee), Purpose.Research, ExportFormat.NDJSON,
        )
        expect(both.included == chart && both.consentIds == listOf(X_CONSENT), "the researcher in the study")
    }

    lateinit var firstCardId: String
    lateinit var firstCardJson: String
    lateinit var firstProof: uniffi.careledger.MembershipProofBytes
    check("ai: the hospital shares, the researcher trains, the phone is included") {
        val share = care.shareToNetwork(study, Purpose.Research)
        expect(share.patients == PATIENTS.toULong() && share.patientsShared == 51uL, "51 charts shared")
        expect(share.recordsCutOff == 0uL, "nothing cut off")
        study.syncLocalRelay(relay)
        researcherStudy.syncLocalRelay(relay)
        expect(researcherStudy.patients().size == 51, "the researcher holds 51 charts")
        val card = researcherStudy.train(SPEC, ModelKind.LogisticRegression(), 7uL, 0.25)
        expect(card.datasetSize == 51uL && card.excludedByConsent == 0uL, "51 records in the dataset")
        expect(card.trainingRows + card.testRows == 51uL, "every row trains or tests")
        expect(X_CONSENT in card.consentIds, "the card relies on X's consent")
        val metrics = card.metrics
        expect(metrics is ModelMetrics.Classification && metrics.accuracy >= 0.6 && metrics.auc != null, "metrics")
        expect(card.cardJson.contains("\"grantee_network\":\"${study.id()}\""), "the card names the study")
        firstCardId = card.entryId
        firstCardJson = card.cardJson
        firstProof = researcherStudy.proveMembership(card.entryId, PATIENT_X)
        // The phone checks against the card's own commitment.
        expect(firstProof.commitment.contentEquals(modelCardDatasetCommitment(card.cardJson)), "same commitment")
        expect(verifyMembership(firstProof.commitment, PATIENT_X, firstProof.proof), "X is in the dataset")
    }

    check("ai: predictions are recorded with provenance") {
        val decision = researcherStudy.predict(firstCardId, PredictInput.Record("pt-00"), Purpose.Research)
        expect(decision.patientId == "pt-00" && decision.modelCardId == firstCardId, "subject and card")
        expect(decision.consentIds == listOf("consent-pt-00-study"), "relies on pt-00's consent")
        val output = decision.output
        expect(output is Prediction.Classification && output.positiveProbability in 0.0..1.0, "a class")
        expect(decision.provenanceJson.contains("\"resourceType\":\"Provenance\""), "a Provenance")
        expect(decision.provenanceJson.contains("urn:careledger:consent:consent-pt-00-study"), "policy")
        val byFeatures = researcherStudy.predict(
            firstCardId, PredictInput.Features(listOf(7.4, 150.0, 31.0, 60.0, 1.0)), Purpose.Research,
        )
        expect(byFeatures.patientId == null && byFeatures.consentIds.isEmpty(), "no subject")
        expectThrows<ApiException.ConsentDenied>("claims use of pt-00") {
            researcherStudy.predict(firstCardId, PredictInput.Record("pt-00"), Purpose.Claims)
        }
        expectThrows<ApiException.UnknownModelCard>("unknown card") {
            researcherStudy.predict("00".repeat(32), PredictInput.Features(listOf(1.0)), Purpose.Research)
        }
    }

    check("consent: the phone revokes, the hospital cuts the study off") {
        val revoked = phoneCare.revokeConsent(PATIENT_X, X_CONSENT)
        expect(revoked.status == ConsentStatus.INACTIVE, "inactive")
        phoneCare.syncLocalRelay(relay)
        care.syncLocalRelay(relay)
        val share = care.shareToNetwork(study, Purpose.Research)
        expect(share.recordsCutOff == 1uL && share.patientsShared == 50uL, "X cut off")
        expect(X_CONSENT !in share.consentIds, "X's consent no longer relied on")
        expect(care.shareToNetwork(study, Purpose.Research).entries == 0uL, "sharing again writes nothing")
        study.syncLocalRelay(relay)
        researcherStudy.syncLocalRelay(relay)
    }

    check("ai: the second card leaves X out, and the phone sees it") {
        val card = researcherStudy.train(SPEC, ModelKind.LogisticRegression(), 7uL, 0.25)
        expect(card.datasetSize == 50uL && card.excludedByConsent == 1uL, "X excluded by consent")
        val proof = researcherStudy.proveMembership(card.entryId, PATIENT_X)
        expect(proof.commitment.contentEquals(modelCardDatasetCommitment(card.cardJson)), "same commitment")
        expect(!verifyMembership(proof.commitment, PATIENT_X, proof.proof), "X is not in the dataset")
        expectThrows<ApiException.InvalidProof>("the first proof against the second card") {
            verifyMembership(proof.commitment, PATIENT_X, firstProof.proof)
        }
        expectThrows<ApiException.ConsentDenied>("predicting for X after the revocation") {
            researcherStudy.predict(card.entryId, PredictInput.Record(PATIENT_X), Purpose.Research)
        }
        researcherStudy.syncLocalRelay(relay)
        study.syncLocalRelay(relay)
    }

    check("ai: the hospital confirms the researcher's first card; audit counts") {
        val verification = study.verifyModel(firstCardId)
        expect(verification.confirmed && verification.exact, "confirmed (${verification.mismatchStep})")
        expect(verification.mismatchStep == null && verification.detail == null, "no mismatch")
        expect(verification.passed.last() == VerifyStep.METRICS, "every step passed")
        expect(firstCardJson == (audited(study).first { it is AuditRecord.ModelCard } as AuditRecord.ModelCard).cardJson,
            "the hospital holds the same card")
        for (network in listOf(researcherStudy, study)) {
            val records = audited(network)
            expect(records.count { it is AuditRecord.ModelCard } == 2, "two model cards")
            expect(records.count { it is AuditRecord.DecisionMade } == 2, "two decisions")
            val cut = records.filterIsInstance<AuditRecord.KeyWithheld>().single()
            expect(cut.recordId == PATIENT_X, "X's record was cut off")
            expect(cut.reason == "consent revoked" && cut.consentId == X_CONSENT, "because X revoked")
        }
    }

    check("ai: training errors are typed") {
        expectThrows<ApiException.InvalidSpec>("empty spec") {
            researcherStudy.train("{\"version\": 1, \"features\": []}", ModelKind.DecisionTree())
        }
        expectThrows<ApiException.TrainingFailed>("depth 0") {
            researcherStudy.train(SPEC, ModelKind.DecisionTree(maxDepth = 0u))
        }
        // The consents grant the study, not the care network; pt-02's grant
        // to the care network is for claims, not research.
        val careGrantee = Grantee.Network(care.id())
        care.grantConsent("consent-pt-02-claims", "pt-02", careGrantee, listOf(Purpose.Claims))
        val claims = care.exportForGrantee("pt-02", listOf(careGrantee), Purpose.Claims, ExportFormat.NDJSON)
        expect(claims.included == charts.getValue("pt-02").size.toULong(), "pt-02's chart for claims")
        expect(claims.consentIds == listOf("consent-pt-02-claims"), "relies on the claims consent")
        val empty = expectThrows<ApiException.EmptyAfterConsent>("the care network has no research grant") {
            care.train(SPEC, ModelKind.LogisticRegression())
        }
        expect(empty.excluded == PATIENTS.toULong(), "every chart excluded")
        expectThrows<ApiException.InvalidConsent>("bad consent id") {
            care.grantConsent("not a valid id!", "pt-00", studyGrantee, listOf(Purpose.Research))
        }
        expectThrows<ApiException.UnknownConsent>("unknown consent") { care.revokeConsent("pt-00", "nope") }
    }

    opened.asReversed().forEach { it.close() }
}
