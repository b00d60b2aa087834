// A patient's phone and a hospital, through careledger's Swift bindings: the
// same scenario as bindings/tests/python/test_scenario.py and
// bindings/tests/kotlin/Scenario.kt. Not run in CI (no Swift toolchain on
// Linux CI); on a Mac:
//
//   cargo build -p careledger-uniffi --features panic-probe
//   cd bindings/swift && swift test
//
// Failure messages never contain patient data: values are compared, never printed.

import CareLedger
import Foundation
import XCTest

private let panicProbeSource = "careledger-panic-probe" // bindings/src/probe.rs

private let dataURL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent() // CareLedgerTests
    .deletingLastPathComponent() // Tests
    .deletingLastPathComponent() // swift
    .deletingLastPathComponent() // bindings
    .appendingPathComponent("tests/data/patient.ndjson")

private func randomKey() -> Data {
    Data((0..<32).map { _ in UInt8.random(in: 0...255) })
}

private func sourceResources() throws -> [[String: Any]] {
    let text = try String(contentsOf: dataURL, encoding: .utf8)
    return try text.split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

private func sourcePatient() throws -> [String: Any] {
    try sourceResources().first { $0["resourceType"] as? String == "Patient" }!
}

private func bundlePatient(_ bundle: String) throws -> [String: Any]? {
    let object = try JSONSerialization.jsonObject(with: Data(bundle.utf8)) as! [String: Any]
    let entries = object["entry"] as? [[String: Any]] ?? []
    return entries.compactMap { $0["resource"] as? [String: Any] }
        .first { $0["resourceType"] as? String == "Patient" }
}

/// The app's own transport, in memory: one ordered log per network.
private final class Transport {
    var logs: [String: [Data]] = [:]
    var kinds: [String: [MessageKind]] = [:]

    /// Carry everything the node has queued, routed by network; returns the Welcomes.
    @discardableResult
    func publishOutbox(_ node: Node) throws -> [Data] {
        var welcomes: [Data] = []
        while true {
            let batch = try node.outgoing(limit: 100)
            if batch.isEmpty { return welcomes }
            for message in batch {
                logs[message.networkId, default: []].append(message.bytes)
                kinds[message.networkId, default: []].append(message.kind)
                if message.kind == .welcome { welcomes.append(message.bytes) }
                try node.ackOutgoing(id: message.id)
            }
        }
    }

    func deliver(_ network: Network) throws {
        let log = logs[network.id(), default: []]
        let cursor = try Int(network.relayCursor())
        if cursor < log.count {
            _ = try network.receive(messages: Array(log[cursor...]), relaySeq: UInt64(log.count))
        }
    }
}

final class ScenarioTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("careledger-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    func testPhoneJoinsSyncsAndReadsItsChart() throws {
        let data = try Data(contentsOf: dataURL)
        let source = try sourcePatient()
        let patientId = source["id"] as! String
        let relay = path("relay.sqlite")
        let hospital = try Node.create(path: path("hospital.sqlite"), storageKey: randomKey(), name: "hospital.example")
        let phone = try Node.create(path: path("phone.sqlite"), storageKey: randomKey(), name: "phone.example")

        let care = try hospital.createNetwork(label: "care")
        try care.invite(keyPackage: try phone.keyPackage())
        _ = try care.syncLocalRelay(relayPath: relay)
        XCTAssertFalse(try care.info().commitPending)
        let phoneCare = try phone.joinFromLocalRelay(relayPath: relay, networkId: care.id(), label: "my chart")
        XCTAssertEqual(try phoneCare.members().count, 2)

        let report = try care.importFhir(sourceName: "patient.ndjson", bytes: data)
        let resourceCount = try sourceResources().count
        XCTAssertEqual(report.resources, UInt64(resourceCount))
        _ = try care.syncLocalRelay(relayPath: relay)
        let sync = try phoneCare.syncLocalRelay(relayPath: relay)
        XCTAssertGreaterThan(sync.received.accepted, 0)
        XCTAssertTrue(sync.rejected.isEmpty)
        XCTAssertTrue(try phoneCare.patients() == [patientId], "the phone lists exactly the patient")
        let patient = try bundlePatient(try phoneCare.exportPatient(patientId: patientId))
        XCTAssertTrue(
            patient?["birthDate"] as? String == source["birthDate"] as? String,
            "the phone's birthDate differs from the source data's"
        )
        let ledger = try phoneCare.verifyLedger()
        XCTAssertTrue(ledger.clean)
        XCTAssertEqual(ledger.signaturesOk, ledger.entries)
    }

    func testSansIOPathAndATamperedMessage() throws {
        let data = try Data(contentsOf: dataURL)
        let patientId = try sourcePatient()["id"] as! String
        let hospital = try Node.create(path: path("hospital.sqlite"), storageKey: randomKey(), name: "hospital.example")
        let phone = try Node.create(path: path("phone.sqlite"), storageKey: randomKey(), name: "phone.example")
        let transport = Transport()

        let own = try hospital.createNetwork(label: "own transport")
        try own.invite(keyPackage: try phone.keyPackage())
        try transport.publishOutbox(hospital)
        try transport.deliver(own) // the Commit wins; the Welcome is queued
        let welcomes = try transport.publishOutbox(hospital)
        XCTAssertEqual(welcomes.count, 1)
        let phoneOwn = try phone.joinNetwork(welcome: welcomes[0], label: "own transport")
        try transport.deliver(phoneOwn)

        _ = try own.importFhir(sourceName: "patient.ndjson", bytes: data)
        let start = transport.logs[own.id(), default: []].count
        try transport.publishOutbox(hospital)
        let fresh = Array(transport.logs[own.id()]![start...])
        let entry = Array(transport.kinds[own.id()]![start...]).firstIndex(of: .entry)!
        var tampered = fresh[entry]
        let middle = tampered.startIndex + tampered.count / 2
        tampered[middle] ^= 0x01
        let before = try phoneOwn.verifyLedger().entries
        XCTAssertThrowsError(try phoneOwn.receive(messages: [tampered], relaySeq: nil)) { error in
            guard case ApiError.MessageRejected(let count, _) = error else {
                return XCTFail("expected ApiError.MessageRejected")
            }
            XCTAssertEqual(count, 1)
        }
        XCTAssertEqual(try phoneOwn.verifyLedger().entries, before)
        try transport.deliver(phoneOwn)
        XCTAssertTrue(try phoneOwn.patients() == [patientId], "the genuine messages were applied")
    }

    func testWrongStorageKeyAndInvalidFhirAreTypedErrors() throws {
        let key = randomKey()
        let phonePath = path("phone.sqlite")
        let phone = try Node.create(path: phonePath, storageKey: key, name: "phone.example")
        let wrong = Data(key.map { $0 ^ 0xFF })
        XCTAssertThrowsError(try Node.open(path: phonePath, storageKey: wrong)) { error in
            guard case ApiError.WrongStorageKey = error else {
                return XCTFail("expected ApiError.WrongStorageKey")
            }
        }
        let network = try phone.createNetwork(label: "mine")
        let invalid = Data("{\"resourceType\":\"Patient\",\"id\":\"x1\",\"birthDate\":17}\nnot json\n".utf8)
        XCTAssertThrowsError(try network.importFhir(sourceName: "broken.ndjson", bytes: invalid)) { error in
            guard case ApiError.InvalidFhir(_, let problems) = error else {
                return XCTFail("expected ApiError.InvalidFhir")
            }
            XCTAssertFalse(problems.isEmpty)
        }
        XCTAssertTrue(try network.patients().isEmpty, "nothing was stored")
    }

    /// Needs the library built with `--features panic-probe`.
    func testPanicInsideRustIsAnErrorNotACrash() throws {
        let node = try Node.create(path: path("probe.sqlite"), storageKey: randomKey(), name: "probe.example")
        let network = try node.createNetwork(label: "probe")
        XCTAssertThrowsError(try network.importFhir(sourceName: panicProbeSource, bytes: Data("{}".utf8))) { error in
            XCTAssertFalse(error is ApiError, "expected uniffi's internal (panic) error")
            XCTAssertTrue(String(describing: error).contains("panic probe"))
        }
        XCTAssertThrowsError(try node.networks()) { error in
            guard case ApiError.NodeUnusable = error else {
                return XCTFail("expected ApiError.NodeUnusable")
            }
        }
    }
}
