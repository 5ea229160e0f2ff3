import Foundation
import Orchestrator
import SagaEngine
import Testing

/// Loading new bundle versions into a running orchestrator (SIGHUP): what is taken and what is refused.
@Suite struct BundleReloadTests {
    let seeds: BundleLibrary
    let running: [SagaState]

    init() throws {
        seeds = try library(repoRoot.appendingPathComponent("seeds/bundles"))
        let v1 = try #require(seeds.bundle("restaurant-opening", version: 1))
        var saga = SagaState(sagaId: "APP-R1", bundle: v1)
        saga.status = .running
        running = [saga]
    }

    func reload(_ dir: URL) -> Result<BundleReload.Reloaded, BundleReload.Refusal> {
        BundleReload.reload(current: seeds, running: running, directory: dir.path) { try library(dir) }
    }

    @Test("a new version is added; new applications get it, the running saga's version stays loaded")
    func newVersionIsTaken() throws {
        let dir = try bundleCopy { files in
            files["restaurant-opening.v2.json"] = #"{"id":"restaurant-opening","version":2,"extends":{"bundle":"restaurant-opening","version":1},"sla":{"workingDays":2}}"#
        }
        let reloaded = try reload(dir).get()
        #expect(reloaded.added == ["restaurant-opening v2"] && reloaded.removed.isEmpty)
        #expect(reloaded.library.newest("restaurant-opening")?.version == 2)
        #expect(reloaded.library.bundle("restaurant-opening", version: 1)?.fingerprint == seeds.bundle("restaurant-opening", version: 1)?.fingerprint)
    }

    @Test("refused: an invalid file, a version running sagas need edited in place (also through its base) or removed")
    func refusals() throws {
        let invalid = try bundleCopy { $0["broken.v1.json"] = #"{"id":"broken""# }
        guard case .failure(.invalid(let problems)) = reload(invalid) else { Issue.record("invalid directory was taken"); return }
        #expect(problems.first?.description.contains("broken.v1.json: $: not valid JSON") == true, "\(problems)")

        // Editing the base in place changes every bundle composed over it.
        let editedBase = try bundleCopy { $0["enterprise-opening.v1.json"] = try swappedSteps($0["enterprise-opening.v1.json"]!!) }
        guard case .failure(let changed) = reload(editedBase) else { Issue.record("edited base was taken"); return }
        #expect(changed.description.contains("bundle restaurant-opening v1") && changed.description.contains("edited in place"), "\(changed)")

        let removed = try bundleCopy { $0["restaurant-opening.v1.json"] = .some(nil) }
        guard case .failure(.definitionsChanged(let missing)) = reload(removed) else { Issue.record("removal was taken"); return }
        #expect(missing.map(\.bundleId) == ["restaurant-opening"] && missing.first?.kind == .missing)
    }
}
