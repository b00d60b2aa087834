// A patient's phone and a hospital, through careledger's Kotlin bindings, on
// the JVM with JNA. Compiled and run by `bash bindings/tests/run.sh`:
//
//   kotlinc Scenario.kt ConsentAi.kt Rules.kt ../../kotlin/uniffi/careledger/careledger.kt -cp jna.jar -include-runtime -d scenario.jar
//   java -Djna.library.path=<dir of libcareledger_uniffi.so> -cp scenario.jar:jna.jar ScenarioKt <patient.ndjson> <work dir>
//
// Failure messages never contain patient data: values are compared, never printed.

import java.io.File
import java.security.SecureRandom
import kotlin.system.exitProcess
import uniffi.careledger.ApiException
import uniffi.careledger.InternalException
import uniffi.careledger.MessageKind
import uniffi.careledger.Network
import uniffi.careledger.Node
import uniffi.careledger.ResourceRef

private const val PANIC_PROBE_SOURCE = "careledger-panic-probe" // bindings/src/probe.rs

private var passed = 0
private var failed = 0

internal fun check(name: String, body: () -> Unit) {
    try {
        body()
        passed++
        println("ok   $name")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: ${e::class.simpleName}: ${e.message}")
    }
}

internal fun expect(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
}

internal inline fun <reified T : Throwable> expectThrows(what: String, body: () -> Unit): T {
    try {
        body()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("$what: expected ${T::class.simpleName}, got ${e::class.simpleName}")
    }
    throw AssertionError("$what: expected ${T::class.simpleName}, nothing was thrown")
}

internal fun randomKey(): ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) }

private fun birthDate(json: String): String? =
    Regex("\"birthDate\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1)

/** The app's own transport, in memory: one ordered log per network. */
private class Transport {
    val logs = mutableMapOf<String, MutableList<ByteArray>>()
    val kinds = mutableMapOf<String, MutableList<MessageKind>>()

    fun log(network: Network): MutableList<ByteArray> = logs.getOrPut(network.id()) { mutableListOf() }

    /** Carry everything the node has queued, routed by network; returns the Welcomes. */
    fun publishOutbox(node: Node): List<ByteArray> {
        val welcomes = mutableListOf<ByteArray>()
        while (true) {
            val batch = node.outgoing(100u)
            if (batch.isEmpty()) return welcomes
            for (message in batch) {
                logs.getOrPut(message.networkId) { mutableListOf() }.add(message.bytes)
                kinds.getOrPut(message.networkId) { mutableListOf() }.add(message.kind)
                if (message.kind == MessageKind.WELCOME) welcomes.add(message.bytes)
                node.ackOutgoing(message.id)
            }
        }
    }

    fun deliver(network: Network) {
        val log = log(network)
        val cursor = network.relayCursor().toInt()
        if (cursor < log.size) network.receive(log.subList(cursor, log.size).toList(), log.size.toULong())
    }
}

fun main(args: Array<String>) {
    require(args.size == 2) { "usage: ScenarioKt <patient.ndjson> <work dir>" }
    val data = File(args[0]).readBytes()
    val lines = String(data, Charsets.UTF_8).lines().filter { it.isNotBlank() }
    val patientLine = lines.first { it.contains("\"resourceType\":\"Patient\"") }
    val patientId = Regex("\"id\":\"([^\"]+)\"").find(patientLine)!!.groupValues[1]
    val dir = File(args[1]).apply { mkdirs() }
    val relay = File(dir, "relay.sqlite").path

    val hospital = Node.create(File(dir, "hospital.sqlite").path, randomKey(), "hospital.example")
    val phoneKey = randomKey()
    val phonePath = File(dir, "phone.sqlite").path
    val phone = Node.create(phonePath, phoneKey, "phone.example")
    lateinit var care: Network
    lateinit var phoneCare: Network

    check("the phone joins the hospital's network through the local relay") {
        care = hospital.createNetwork("care")
        care.invite(phone.keyPackage())
        care.syncLocalRelay(relay)
        expect(!care.info().commitPending, "the invite took effect")
        phoneCare = phone.joinFromLocalRelay(relay, care.id(), "my chart")
        val members = phoneCare.members()
        expect(members.size == 2, "two members")
        expect(members.single { it.thisNode }.fingerprint == phone.fingerprint(), "the phone is a member")
    }

    check("the phone syncs and exports its chart") {
        val report = care.importFhir("patient.ndjson", data)
        expect(report.resources == lines.size.toULong(), "every resource imported")
        care.syncLocalRelay(relay)
        val sync = phoneCare.syncLocalRelay(relay)
        expect(sync.received.accepted > 0u, "entries accepted")
        expect(sync.rejected.isEmpty(), "nothing refused")
        expect(phoneCare.patients() == listOf(patientId), "the phone lists the patient")
        val bundle = phoneCare.exportPatient(patientId)
        expect(birthDate(bundle) != null, "the exported chart has a birthDate")
        expect(birthDate(bundle) == birthDate(patientLine), "the birthDate equals the source data's")
        val ledger = phoneCare.verifyLedger()
        expect(ledger.clean && ledger.signaturesOk == ledger.entries, "the phone's ledger verifies")
    }

    check("the sans-IO path: outgoing bytes in, a tampered message out") {
        val transport = Transport()
        val own = hospital.createNetwork("own transport")
        own.invite(phone.keyPackage())
        transport.publishOutbox(hospital)
        transport.deliver(own) // the Commit wins; the Welcome is queued
        val welcomes = transport.publishOutbox(hospital)
        expect(welcomes.size == 1, "one Welcome")
        val phoneOwn = phone.joinNetwork(welcomes.single(), "own transport")
        transport.deliver(phoneOwn)
        own.importFhir("patient.ndjson", data)
        val start = transport.log(own).size
        transport.publishOutbox(hospital)
        val fresh = transport.log(own).subList(start, transport.log(own).size).toList()
        val entry = transport.kinds.getValue(own.id()).subList(start, transport.log(own).size)
            .indexOf(MessageKind.ENTRY)
        val tampered = fresh[entry].copyOf().also { it[it.size / 2] = (it[it.size / 2].toInt() xor 1).toByte() }
        val before = phoneOwn.verifyLedger().entries
        val rejected = expectThrows<ApiException.MessageRejected>("tampered message") {
            phoneOwn.receive(listOf(tampered), null)
        }
        expect(rejected.count == 1u, "one message refused")
        expect(phoneOwn.verifyLedger().entries == before, "nothing stored")
        transport.deliver(phoneOwn)
        expect(phoneOwn.patients() == listOf(patientId), "the genuine messages arrive")
        expect(birthDate(phoneOwn.exportPatient(patientId)) == birthDate(patientLine), "same birthDate")
    }

    check("a wrong storage key is a typed error") {
        val wrong = phoneKey.map { (it.toInt() xor 0xFF).toByte() }.toByteArray()
        expectThrows<ApiException.WrongStorageKey>("wrong key") { Node.open(phonePath, wrong) }
        expectThrows<ApiException.InvalidArgument>("short key") { Node.open(phonePath, phoneKey.copyOf(31)) }
    }

    check("invalid FHIR is a typed error and stores nothing") {
        val before = care.verifyLedger().entries
        val invalid = "{\"resourceType\":\"Patient\",\"id\":\"x1\",\"birthDate\":17}\nnot json\n".toByteArray()
        val error = expectThrows<ApiException.InvalidFhir>("invalid FHIR") { care.importFhir("broken.ndjson", invalid) }
        expect(error.problems.isNotEmpty(), "problems listed")
        expect(care.verifyLedger().entries == before, "no entry written")
        expect(care.patients() == listOf(patientId), "no patient added")
    }

    check("the phone erases its chart; the hospital shreds it too; the store audits clean") {
        expectThrows<ApiException.UnknownResource>("unknown resource") {
            phoneCare.eraseResources(patientId, listOf(ResourceRef("Observation", "none")))
        }
        val report = phoneCare.eraseChart(patientId)
        expect(report.keysShredded >= 1uL && report.networkIds == listOf(care.id()), "the chart's keys shredded")
        expectThrows<ApiException.ChartErased>("export after erasure") { phoneCare.exportPatient(patientId) }
        phoneCare.syncLocalRelay(relay)
        care.syncLocalRelay(relay)
        expectThrows<ApiException.ChartErased>("the hospital's export") { care.exportPatient(patientId) }
        val erased = care.erasedCharts()
        expect(erased.size == 1 && erased[0].patientId == patientId && erased[0].wholeChart, "listed as erased")
        expect(care.verifyLedger().clean, "the ledger still verifies")
        val tick = hospital.tick(null)
        expect(tick.chartsDecided == 0uL && tick.nextDueMs == null, "nothing due")
        val audit = hospital.verifyStore()
        expect(audit.clean && audit.problems.isEmpty() && audit.rows > 0uL, "the store audit is clean")
    }

    // bindings/tests/run.sh runs this program against a library built with the
    // test-only panic-probe feature; tests/packages/jvm.sh against the jar, an
    // app build, and says so with CARELEDGER_PANIC_PROBE=absent.
    if (System.getenv("CARELEDGER_PANIC_PROBE") == "absent") check("an app build has no panic probe") {
        Node.create(File(dir, "app.sqlite").path, randomKey(), "app.example").use { node ->
            node.createNetwork("app").use { network ->
                // The probe's source name is an ordinary import label here.
                val patient = "{\"resourceType\":\"Patient\",\"id\":\"probe-label\"}".toByteArray()
                expect(network.importFhir(PANIC_PROBE_SOURCE, patient).resources == 1UL, "imported")
                expect(network.patients() == listOf("probe-label"), "the patient is there")
            }
        }
    } else check("a panic inside Rust is an exception, not a crash") {
        val key = randomKey()
        val path = File(dir, "probe.sqlite").path
        Node.create(path, key, "probe.example").use { node ->
            node.createNetwork("probe").use { network ->
                val error = expectThrows<InternalException>("panic probe (built with --features panic-probe?)") {
                    network.importFhir(PANIC_PROBE_SOURCE, "{}".toByteArray())
                }
                expect(error.message?.contains("panic probe") == true, "the panic message arrives")
                expectThrows<ApiException.NodeUnusable>("node after the panic") { node.networks() }
            }
        }
        Node.open(path, key).use { expect(it.networks().map { n -> n.label } == listOf("probe"), "reopens") }
    }

    consentAndAiScenario(File(dir, "consent-ai"))
    rulesScenario(File(dir, "rules"))

    println("kotlin: $passed passed, $failed failed")
    exitProcess(if (failed == 0 && passed > 0) 0 else 1)
}
