// Consent and verifiable AI through careledger's Swift bindings: the story of
// bindings/tests/python/test_consent_ai.py and bindings/tests/kotlin/ConsentAi.kt.
// A hospital, a patient's phone and a researcher; the care network (hospital +
// phone) and the study network (hospital + researcher), synced through the
// local relay file. The phone grants patient X's research consent, later
// revokes it, and checks with the researcher's proofs alone that X is in the
// first model's dataset and not in the second. Not run in CI (see
// ScenarioTests.swift for how to run it on a Mac).
//
// Failure messages never contain patient data: values are compared, never printed.

import CareLedger
import Foundation
import XCTest

private let loinc = "http://loinc.org"
private let snomed = "http://snomed.info/sct"
private let diabetes = "44054006"
private let patientCount = 60
private let patientX = "pt-05"
private let xConsent = "consent-pt-05-study"
private let observations = [("4548-4", "%"), ("2339-0", "mg/dL"), ("39156-5", "kg/m2")]

private let spec = """
    {"version": 1,
     "features": [
       {"kind": "latest_observation", "system": "\(loinc)", "code": "4548-4"},
       {"kind": "latest_observation", "system": "\(loinc)", "code": "2339-0"},
       {"kind": "latest_observation", "system": "\(loinc)", "code": "39156-5"},
       {"kind": "age_at", "date": "2026-01-01"},
       {"kind": "sex"}],
     "label": {"kind": "has_condition", "system": "\(snomed)", "codes": ["\(diabetes)"]},
     "missing": "drop_row"}
    """

/// java.util.Random's generator, so the synthetic charts are those of ConsentAi.kt.
private struct JavaRandom {
    private var seed: UInt64
    private var nextNextGaussian: Double?

    init(seed: UInt64) {
        self.seed = (seed ^ 0x5_DEEC_E66D) & ((1 << 48) - 1)
    }

    private mutating func next(_ bits: Int) -> Int32 {
        seed = (seed &* 0x5_DEEC_E66D &+ 0xB) & ((1 << 48) - 1)
        return Int32(truncatingIfNeeded: seed >> UInt64(48 - bits))
    }

    private mutating func nextDouble() -> Double {
        Double((Int64(next(26)) << 27) + Int64(next(27))) * 0x1.0p-53
    }

    /// `bound` is not a power of two here (50).
    mutating func nextInt(_ bound: Int32) -> Int32 {
        var bits = next(31)
        var value = bits % bound
        while bits &- value &+ (bound - 1) < 0 {
            bits = next(31)
            value = bits % bound
        }
        return value
    }

    mutating func nextGaussian() -> Double {
        if let cached = nextNextGaussian {
            nextNextGaussian = nil
            return cached
        }
        var v1 = 0.0, v2 = 0.0, s = 0.0
        repeat {
            v1 = 2 * nextDouble() - 1
            v2 = 2 * nextDouble() - 1
            s = v1 * v1 + v2 * v2
        } while s >= 1 || s == 0
        let multiplier = (-2 * log(s) / s).squareRoot()
        nextNextGaussian = v2 * multiplier
        return v1 * multiplier
    }
}

/// Every sixth patient has no consent from the hospital (X among them).
private func hasOnBehalfConsent(_ index: Int) -> Bool { index % 6 != 5 }

/// Deterministic synthetic charts, in patient order: (patient id, FHIR resources as JSON text).
private func syntheticCharts() -> [(id: String, resources: [String])] {
    var rng = JavaRandom(seed: 2026)
    return (0..<patientCount).map { i in
        let id = String(format: "pt-%02ld", i)
        let hba1c = 6.3 + rng.nextGaussian()
        let glucose = 95 + (hba1c - 5.5) * 28 + rng.nextGaussian() * 12
        let bmi = 28 + rng.nextGaussian() * 4
        let diabetic = hba1c + 0.03 * (bmi - 28) + rng.nextGaussian() * 0.35 > 6.5
        let subject = "{\"reference\":\"Patient/\(id)\"}"
        let gender = i % 2 == 1 ? "female" : "male"
        let birth = String(format: "%04ld-%02ld-15", 1940 + Int(rng.nextInt(50)), 1 + i % 12)
        var resources = ["{\"resourceType\":\"Patient\",\"id\":\"\(id)\",\"gender\":\"\(gender)\",\"birthDate\":\"\(birth)\"}"]
        for (index, (code, unit)) in observations.enumerated() {
            let value = String(format: "%.2f", [hba1c, glucose, bmi][index])
            resources.append(
                "{\"resourceType\":\"Observation\",\"id\":\"\(id)-\(code)\",\"status\":\"final\","
                    + "\"code\":{\"coding\":[{\"system\":\"\(loinc)\",\"code\":\"\(code)\"}]},\"subject\":\(subject),"
                    + "\"effectiveDateTime\":\"2025-06-01\",\"valueQuantity\":{\"value\":\(value),\"unit\":\"\(unit)\"}}"
            )
        }
        if diabetic {
            resources.append(
                "{\"resourceType\":\"Condition\",\"id\":\"\(id)-dm\","
                    + "\"code\":{\"coding\":[{\"system\":\"\(snomed)\",\"code\":\"\(diabetes)\"}]},\"subject\":\(subject)}"
            )
        }
        return (id, resources)
    }
}

private func randomKey() -> Data {
    Data((0..<32).map { _ in UInt8.random(in: 0...255) })
}

private func records(_ network: Network) throws -> [AuditRecord] {
    try network.audit().map(\.record)
}

private func isModelCard(_ record: AuditRecord) -> Bool {
    if case .modelCard = record { return true }
    return false
}

private func isDecision(_ record: AuditRecord) -> Bool {
    if case .decisionMade = record { return true }
    return false
}

final class ConsentAiTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("careledger-swift-ai-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    func testConsentAndVerifiableAi() throws {
        let relay = path("relay.sqlite")
        func node(_ name: String) throws -> Node {
            try Node.create(path: path("\(name).sqlite"), storageKey: randomKey(), name: name)
        }
        let hospital = try node("hospital.example")
        let phone = try node("phone.example")
        let researcher = try node("researcher.example")
        let charts = syntheticCharts()
        let xChart = charts.first(where: { $0.id == patientX })!.resources
        let pt02Chart = charts.first(where: { $0.id == "pt-02" })!.resources

        // The care and study networks form through the relay.
        let care = try hospital.createNetwork(label: "care")
        try care.invite(keyPackage: try phone.keyPackage())
        let study = try hospital.createNetwork(label: "study")
        try study.invite(keyPackage: try researcher.keyPackage())
        _ = try care.syncLocalRelay(relayPath: relay)
        _ = try study.syncLocalRelay(relayPath: relay)
        let phoneCare = try phone.joinFromLocalRelay(relayPath: relay, networkId: care.id(), label: "my chart")
        let researcherStudy = try researcher.joinFromLocalRelay(relayPath: relay, networkId: study.id(), label: "study")
        let studyGrantee = Grantee.network(networkId: study.id())
        XCTAssertEqual(try researcherStudy.members().count, 2)

        // The hospital imports 60 charts and records consents on behalf.
        let ndjson = charts.flatMap { $0.resources }.map { $0 + "\n" }.joined()
        let report = try care.importFhir(sourceName: "synthetic.ndjson", bytes: Data(ndjson.utf8))
        XCTAssertEqual(report.patients, UInt64(patientCount))
        let onBehalf = try charts.enumerated().filter { hasOnBehalfConsent($0.offset) }.map {
            try care.grantConsent(
                consentId: "consent-\($0.element.id)-study", patientId: $0.element.id,
                grantee: studyGrantee, purposes: [.research]
            )
        }
        XCTAssertEqual(onBehalf.count, 50)
        XCTAssertTrue(onBehalf.allSatisfy { $0.recordedOnBehalfBy == hospital.authorId() }, "marked as on behalf")
        XCTAssertTrue(onBehalf.allSatisfy { $0.status == .active }, "active")
        XCTAssertTrue(onBehalf[0].grantees == [studyGrantee], "granted to the study")
        let pt00 = try care.consents(patientId: "pt-00").consents
        XCTAssertEqual(pt00.count, 1)
        XCTAssertTrue(pt00.first?.source == .onBehalf(recorderAuthorId: hospital.authorId()), "source: the hospital")
        XCTAssertTrue(pt00.first?.markMatches == true, "the mark matches")
        XCTAssertTrue(try care.linkPatientNode(patientId: patientX, authorId: phone.authorId()))
        _ = try care.syncLocalRelay(relayPath: relay)

        // The phone signs X's consent; the care network stores it as X's.
        _ = try phoneCare.syncLocalRelay(relayPath: relay)
        let granted = try phoneCare.grantConsent(
            consentId: xConsent, patientId: patientX, grantee: studyGrantee, purposes: [.research]
        )
        XCTAssertTrue(granted.id == xConsent && granted.patientId == patientX, "id and patient")
        XCTAssertEqual(granted.status, .active)
        XCTAssertTrue(granted.grantees == [studyGrantee], "granted to the study")
        XCTAssertEqual(granted.purposes, [.research])
        XCTAssertTrue(granted.classes.isEmpty && granted.exceptions == 0, "every resource type, no exceptions")
        XCTAssertTrue(granted.startMs == nil && granted.endMs == nil, "no period")
        XCTAssertNil(granted.recordedOnBehalfBy)
        let fhir = try JSONSerialization.jsonObject(with: Data(granted.fhirJson.utf8)) as? [String: Any]
        let provision = fhir?["provision"] as? [String: Any]
        let actors = provision?["actor"] as? [[String: Any]] ?? []
        XCTAssertEqual(actors.count, 1)
        let identifier = (actors.first?["reference"] as? [String: Any])?["identifier"] as? [String: String]
        XCTAssertTrue(
            identifier == ["system": "urn:careledger:network", "value": study.id()],
            "the actor's reference is an identifier of the study"
        )
        let atPhone = try phoneCare.consents(patientId: patientX).consents
        _ = try phoneCare.syncLocalRelay(relayPath: relay)
        _ = try care.syncLocalRelay(relayPath: relay)
        let atHospital = try care.consents(patientId: patientX).consents
        for copies in [atPhone, atHospital] {
            XCTAssertEqual(copies.count, 1)
            XCTAssertTrue(copies.first?.consent == granted, "the care network stores the consent as granted")
            XCTAssertTrue(copies.first?.source == .patientNode(authorId: phone.authorId()), "source: the phone")
            XCTAssertTrue(copies.first?.markMatches == true, "the mark matches")
        }
        let export = try care.exportForGrantee(
            patientId: patientX, grantees: [studyGrantee], purpose: .research, format: .ndjson
        )
        XCTAssertEqual(export.included, UInt64(xChart.count))
        XCTAssertEqual(export.consentIds, [xConsent])

        // Only the consent's grantee and purpose match.
        let researcherNode = Grantee.node(authorId: researcher.authorId())
        let refused: [(String, [Grantee], Purpose)] = [
            ("the care network", [.network(networkId: care.id())], .research),
            ("the researcher's node alone", [researcherNode], .research),
            ("the study, for claims", [studyGrantee], .claims),
        ]
        for (name, grantees, purpose) in refused {
            let export = try care.exportForGrantee(
                patientId: patientX, grantees: grantees, purpose: purpose, format: .ndjson
            )
            XCTAssertTrue(export.included == 0 && export.withheld == UInt64(xChart.count), "nothing for \(name)")
            XCTAssertTrue(export.consentIds.isEmpty, "no consent relied on for \(name)")
        }
        let both = try care.exportForGrantee(
            patientId: patientX, grantees: [researcherNode, studyGrantee], purpose: .research, format: .ndjson
        )
        XCTAssertTrue(both.included == UInt64(xChart.count) && both.consentIds == [xConsent], "the researcher in the study")

        // The hospital shares, the researcher trains, the phone is included.
        let share1 = try care.shareToNetwork(target: study, purpose: .research)
        XCTAssertEqual(share1.patients, UInt64(patientCount))
        XCTAssertEqual(share1.patientsShared, 51)
        XCTAssertEqual(share1.recordsCutOff, 0)
        _ = try study.syncLocalRelay(relayPath: relay)
        _ = try researcherStudy.syncLocalRelay(relayPath: relay)
        XCTAssertEqual(try researcherStudy.patients().count, 51)
        let card1 = try researcherStudy.train(specJson: spec, kind: .logisticRegression(), seed: 7, holdoutFraction: 0.25)
        XCTAssertEqual(card1.datasetSize, 51)
        XCTAssertEqual(card1.excludedByConsent, 0)
        XCTAssertEqual(card1.trainingRows + card1.testRows, 51)
        XCTAssertTrue(card1.consentIds.contains(xConsent), "the card relies on X's consent")
        guard case .classification(_, let accuracy, let auc)? = card1.metrics else {
            return XCTFail("expected classification metrics")
        }
        XCTAssertGreaterThanOrEqual(accuracy, 0.6)
        XCTAssertNotNil(auc)
        let proof1 = try researcherStudy.proveMembership(cardId: card1.entryId, recordId: patientX)
        // The phone checks against the card's own commitment.
        XCTAssertEqual(proof1.commitment, try modelCardDatasetCommitment(cardJson: card1.cardJson))
        XCTAssertTrue(try verifyMembership(commitment: proof1.commitment, recordId: patientX, proof: proof1.proof))

        // Predictions are recorded with provenance.
        let decision = try researcherStudy.predict(cardId: card1.entryId, input: .record(patientId: "pt-00"), purpose: .research)
        XCTAssertTrue(decision.patientId == "pt-00" && decision.modelCardId == card1.entryId, "subject and card")
        XCTAssertEqual(decision.consentIds, ["consent-pt-00-study"])
        guard case .classification(_, let probability) = decision.output else {
            return XCTFail("expected a class")
        }
        XCTAssertTrue((0.0...1.0).contains(probability), "a probability")
        XCTAssertTrue(decision.provenanceJson.contains("urn:careledger:consent:consent-pt-00-study"), "policy")
        let byFeatures = try researcherStudy.predict(
            cardId: card1.entryId, input: .features(values: [7.4, 150.0, 31.0, 60.0, 1.0]), purpose: .research
        )
        XCTAssertTrue(byFeatures.patientId == nil && byFeatures.consentIds.isEmpty, "no subject")
        XCTAssertThrowsError(
            try researcherStudy.predict(cardId: card1.entryId, input: .record(patientId: "pt-00"), purpose: .claims)
        ) { error in
            guard case ApiError.ConsentDenied = error else { return XCTFail("expected ApiError.ConsentDenied") }
        }

        // The phone revokes; the hospital cuts the study off.
        let revoked = try phoneCare.revokeConsent(patientId: patientX, consentId: xConsent)
        XCTAssertEqual(revoked.status, .inactive)
        _ = try phoneCare.syncLocalRelay(relayPath: relay)
        _ = try care.syncLocalRelay(relayPath: relay)
        let share2 = try care.shareToNetwork(target: study, purpose: .research)
        XCTAssertTrue(share2.recordsCutOff == 1 && share2.patientsShared == 50, "X cut off")
        XCTAssertFalse(share2.consentIds.contains(xConsent), "X's consent no longer relied on")
        XCTAssertEqual(try care.shareToNetwork(target: study, purpose: .research).entries, 0)
        _ = try study.syncLocalRelay(relayPath: relay)
        _ = try researcherStudy.syncLocalRelay(relayPath: relay)

        // The second card leaves X out, and the phone sees it.
        let card2 = try researcherStudy.train(specJson: spec, kind: .logisticRegression(), seed: 7, holdoutFraction: 0.25)
        XCTAssertTrue(card2.datasetSize == 50 && card2.excludedByConsent == 1, "X excluded by consent")
        let proof2 = try researcherStudy.proveMembership(cardId: card2.entryId, recordId: patientX)
        XCTAssertEqual(proof2.commitment, try modelCardDatasetCommitment(cardJson: card2.cardJson))
        XCTAssertFalse(try verifyMembership(commitment: proof2.commitment, recordId: patientX, proof: proof2.proof))
        XCTAssertThrowsError(
            try verifyMembership(commitment: proof2.commitment, recordId: patientX, proof: proof1.proof)
        ) { error in
            guard case ApiError.InvalidProof = error else { return XCTFail("expected ApiError.InvalidProof") }
        }
        XCTAssertThrowsError(
            try researcherStudy.predict(cardId: card2.entryId, input: .record(patientId: patientX), purpose: .research)
        ) { error in
            guard case ApiError.ConsentDenied = error else { return XCTFail("expected ApiError.ConsentDenied") }
        }
        _ = try researcherStudy.syncLocalRelay(relayPath: relay)
        _ = try study.syncLocalRelay(relayPath: relay)

        // The hospital confirms the researcher's first card; audit counts.
        let verification = try study.verifyModel(cardId: card1.entryId)
        XCTAssertTrue(verification.confirmed && verification.exact, "confirmed")
        XCTAssertTrue(verification.mismatchStep == nil && verification.detail == nil, "no mismatch")
        XCTAssertEqual(verification.passed.last, .metrics)
        for network in [researcherStudy, study] {
            let audited = try records(network)
            XCTAssertEqual(audited.filter(isModelCard).count, 2)
            XCTAssertEqual(audited.filter(isDecision).count, 2)
            let cuts = audited.compactMap { record -> (String, String, String?)? in
                guard case let .keyWithheld(recordId, reason, consentId) = record else { return nil }
                return (recordId, reason, consentId)
            }
            XCTAssertEqual(cuts.count, 1)
            XCTAssertTrue(cuts.first?.0 == patientX, "X's record was cut off")
            XCTAssertTrue(cuts.first?.1 == "consent revoked" && cuts.first?.2 == xConsent, "because X revoked")
        }

        // Training errors are typed.
        XCTAssertThrowsError(
            try researcherStudy.train(specJson: "{\"version\": 1, \"features\": []}", kind: .decisionTree())
        ) { error in
            guard case ApiError.InvalidSpec = error else { return XCTFail("expected ApiError.InvalidSpec") }
        }
        XCTAssertThrowsError(try researcherStudy.train(specJson: spec, kind: .decisionTree(maxDepth: 0))) { error in
            guard case ApiError.TrainingFailed = error else { return XCTFail("expected ApiError.TrainingFailed") }
        }
        // The consents grant the study, not the care network; pt-02's grant
        // to the care network is for claims, not research.
        let careGrantee = Grantee.network(networkId: care.id())
        _ = try care.grantConsent(consentId: "consent-pt-02-claims", patientId: "pt-02", grantee: careGrantee, purposes: [.claims])
        let claims = try care.exportForGrantee(patientId: "pt-02", grantees: [careGrantee], purpose: .claims, format: .ndjson)
        XCTAssertEqual(claims.included, UInt64(pt02Chart.count))
        XCTAssertEqual(claims.consentIds, ["consent-pt-02-claims"])
        XCTAssertThrowsError(try care.train(specJson: spec, kind: .logisticRegression())) { error in
            guard case ApiError.EmptyAfterConsent(_, let excluded) = error else {
                return XCTFail("expected ApiError.EmptyAfterConsent")
            }
            XCTAssertEqual(excluded, UInt64(patientCount))
        }
        XCTAssertThrowsError(
            try care.grantConsent(consentId: "not a valid id!", patientId: "pt-00", grantee: studyGrantee, purposes: [.research])
        ) { error in
            guard case ApiError.InvalidConsent = error else { return XCTFail("expected ApiError.InvalidConsent") }
        }
        XCTAssertThrowsError(try care.revokeConsent(patientId: "pt-00", consentId: "nope")) { error in
            guard case ApiError.UnknownConsent = error else { return XCTFail("expected ApiError.UnknownConsent") }
        }
    }
}
