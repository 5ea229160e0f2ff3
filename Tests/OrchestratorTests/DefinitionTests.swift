import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// A bundle directory copied from the seeds, edited by `edit` (file name → JSON text, nil = removed).
func bundleCopy(_ edit: (inout [String: String?]) throws -> Void) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("bundles"))
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let seeds = repoRoot.appendingPathComponent("seeds/bundles")
    var files: [String: String?] = [:]
    for url in try BundleLibrary.jsonFiles(in: seeds) { files[url.lastPathComponent] = try String(contentsOf: url, encoding: .utf8) }
    try edit(&files)
    for (name, text) in files { if let text { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) } }
    return dir
}

/// enterprise-opening.v1.json with its `seals` and `tax-registration` step objects swapped:
/// still valid, still version 1.
func swappedSteps(_ text: String) throws -> String {
    guard case .object(var o) = try JSONValue.parse(Data(text.utf8)), case .array(var steps) = o["steps"] else { throw SetupError("bundle") }
    let a = steps.firstIndex { $0["id"] == "seals" }!, b = steps.firstIndex { $0["id"] == "tax-registration" }!
    steps.swapAt(a, b)
    o["steps"] = .array(steps)
    return JSONValue.object(o).text()
}

func library(_ dir: URL) throws -> BundleLibrary {
    try BundleLibrary.load(bundles: dir, catalogues: repoRoot.appendingPathComponent("adapters"),
                           calendars: repoRoot.appendingPathComponent("seeds/calendar"))
}

@Suite struct DefinitionFingerprintTests {
    @Test func fingerprintIgnoresLayoutButNotContent() throws {
        let seeds = try library(repoRoot.appendingPathComponent("seeds/bundles"))
        let original = try #require(seeds.bundle("enterprise-opening", version: 1))
        // Re-serialised (other whitespace and key order): same fingerprint.
        let same = try library(try bundleCopy { files in
            let text = files["enterprise-opening.v1.json"]!!
            files["enterprise-opening.v1.json"] = try JSONValue.parse(Data(text.utf8)).text(pretty: true)
        }).bundle("enterprise-opening", version: 1)
        #expect(same?.fingerprint == original.fingerprint)
        let swapped = try library(try bundleCopy { files in
            files["enterprise-opening.v1.json"] = try swappedSteps(files["enterprise-opening.v1.json"]!!)
        })
        #expect(swapped.problems.isEmpty, "\(swapped.problems)")
        #expect(swapped.bundle("enterprise-opening", version: 1)?.fingerprint != original.fingerprint)
        #expect(original.fingerprint.count == 64 && original.file?.hasSuffix("enterprise-opening.v1.json") == true)
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func editedOrRemovedVersionsAreNamedWithTheirRunningSagas() throws {
        let seeds = try library(repoRoot.appendingPathComponent("seeds/bundles"))
        let bundle = try #require(seeds.bundle("enterprise-opening", version: 1))
        var states = (1...3).map { i in
            var s = SagaState(sagaId: "APP-\(i)", bundle: bundle)
            s.status = .running
            return s
        }
        states[2].status = .completed  // finished: needs no definition
        var old = SagaState(sagaId: "APP-OLD", bundle: bundle)
        old.status = .running
        old.definitionFingerprint = nil  // written before fingerprints: not checkable
        #expect(DefinitionCheck.problems(states + [old], library: seeds, directory: "seeds/bundles").isEmpty)

        let edited = try bundleCopy { $0["enterprise-opening.v1.json"] = try swappedSteps($0["enterprise-opening.v1.json"]!!) }
        let changed = DefinitionCheck.problems(states + [old], library: try library(edited), directory: edited.path)
        #expect(changed.count == 1 && changed.first?.sagas == 2 && changed.first?.version == 1, "\(changed)")
        let text = changed.first?.description ?? ""
        #expect(text.contains("enterprise-opening v1") && text.contains(edited.appendingPathComponent("enterprise-opening.v1.json").path)
                && text.contains("2 running saga(s)") && text.contains("version 2"), "\(text)")

        let removed = try bundleCopy { $0["enterprise-opening.v1.json"] = .some(nil) }
        let missing = DefinitionCheck.problems(states + [old], library: try library(removed), directory: removed.path)
        #expect(missing.map(\.sagas) == [3] && missing.first?.kind == .missing, "\(missing)")
        #expect(missing.first?.description.contains("enterprise-opening v1 is needed by 3 running saga(s)") == true)
        #expect(missing.first?.description.contains(removed.path) == true)

        // Many states of a version that is fine, then one of the same version started on another
        // definition, then fine ones again: the one is still found (a restore's check skips repeats).
        var tampered = states[0]
        tampered.sagaId = "APP-TAMPERED"
        tampered.definitionFingerprint = String(repeating: "0", count: 64)
        let many = Array(repeating: states[0], count: 50) + [old, tampered] + Array(repeating: states[1], count: 50)
        let found = DefinitionCheck.problems(many, library: seeds, directory: "seeds/bundles")
        #expect(found.count == 1 && found.first?.sagas == 1 && found.first?.examples == ["APP-TAMPERED"], "\(found)")
    }
}

@Suite("Definitions that change under running sagas", .serialized)
struct DefinitionChangeTests {
    @Test("a version edited in place or removed while its sagas run: the orchestrator refuses to start, naming file, version and sagas",
          .timeLimit(.minutes(3)))
    func refusesToStart() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let forms = try TestHub.validApplications(limit: 40).filter { $0["bundle"] == "enterprise-opening" }.prefix(3)
        // No responders: every saga waits at its first step.
        let first = try BackgroundOrchestrator(hub.config(instance: "o1"))
        try hub.submit(Array(forms), producer: KafkaProducer(config: hub.kafka()))
        try await eventually(every: .milliseconds(200), timeout: .seconds(60), "the sagas are owned") { first.service.stats.ownedSagas == forms.count }
        first.stop()
        // The version the sagas run: the newest at submission (enterprise-opening v2 since the housing fund).
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let v = try #require(library.newest("enterprise-opening")).version
        let file = "enterprise-opening.v\(v).json"

        // Edited in place: its first step (of the file: v2 is written over v1 with `extends`) gets another timeout.
        let edited = try bundleCopy { files in
            guard case .object(var o) = try JSONValue.parse(Data(files[file]!!.utf8)), case .array(var steps) = o["steps"],
                  case .object(var step) = steps[0] else { throw SetupError("bundle \(file)") }
            step["timeout"] = "5h"
            steps[0] = .object(step)
            o["steps"] = .array(steps)
            files[file] = JSONValue.object(o).text()
        }
        let removed = try bundleCopy { $0[file] = .some(nil) }
        for (dir, expected) in [(edited, "enterprise-opening v\(v) in \(edited.path)/\(file) is not the definition \(forms.count) running saga(s)"),
                                (removed, "enterprise-opening v\(v) is needed by \(forms.count) running saga(s)")] {
            var config = hub.config(instance: "o1")
            config.bundlesDirectory = dir
            let second = try BackgroundOrchestrator(config)
            defer { second.stop() }
            try await eventually(every: .milliseconds(200), timeout: .seconds(60), "the orchestrator stops with a reason") { second.failure != nil }
            #expect(second.failure?.contains(expected) == true, "\(second.failure ?? "")")
            #expect(second.service.stats.restoredSagas == 0 && second.service.stats.transactions == 0)
        }
        // The command exits 1 (fatal error, as `--help` says), with the same message on stderr.
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BUNDLES"] = removed.path
        let exited = try YishiCommand(repoRoot: repoRoot, environment: env).run(
            ["orchestrator", "run", "--bootstrap", hub.bootstrap, "--prefix", hub.prefix, "--partitions", String(hub.partitions),
             "--instance", "o1", "--session-timeout-ms", "6000"])
        #expect(exited.status == 1, "\(exited)")
        #expect(exited.err.contains("yishi: refusing saga-state partitions") && exited.err.contains("enterprise-opening v\(v) is needed by"), "\(exited)")

        // With the definitions as they were, the same sagas restore.
        let third = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { third.stop() }
        try await eventually(every: .milliseconds(200), timeout: .seconds(60), "restored") { third.service.stats.restoredSagas == forms.count }
        #expect(third.failure == nil)
    }
}
