import Foundation
import SagaEngine
import Testing
import YishiTestSupport

/// `yishi bundles validate`: every shipped bundle (wait steps and triggers included) passes; a
/// bad wait duration and a trigger field its event schema lacks are named with file and path.
@Suite struct BundleValidateCommandTests {
    @Test func shippedBundlesPassAndBadWaitAndTriggerAreNamedWithTheirPaths() throws {
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        let ok = try yishi.run(["bundles", "validate", "--at", "2026-03-02T09:00:00+08:00"])
        #expect(ok.status == 0 && ok.out.isEmpty, "\(ok)")
        let shipped = try BundleLibrary.jsonFiles(in: repoRoot.appendingPathComponent("seeds/bundles")).count
        #expect(shipped >= 9 && ok.err.contains("\(shipped) file(s): \(shipped) valid"), "\(ok)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-validate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var simple = try String(contentsOf: repoRoot.appendingPathComponent("seeds/bundles/enterprise-deregistration-simple.v1.json"), encoding: .utf8)
        simple = simple.replacingOccurrences(of: "\"days\": 20", with: "\"days\": -20")
        let badWait = dir.appendingPathComponent("bad-wait.v1.json")
        try simple.write(to: badWait, atomically: true, encoding: .utf8)
        var subsidy = try String(contentsOf: repoRoot.appendingPathComponent("seeds/bundles/startup-subsidy.v1.json"), encoding: .utf8)
        subsidy = subsidy.replacingOccurrences(of: "\"step\": \"registration\"", with: "\"stepId\": \"registration\"")
        let badTrigger = dir.appendingPathComponent("bad-trigger.v1.json")
        try subsidy.write(to: badTrigger, atomically: true, encoding: .utf8)

        let bad = try yishi.run(["bundles", "validate", "--at", "2026-03-02T09:00:00+08:00", badWait.path, badTrigger.path])
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.out.contains("\(badWait.path): $.steps[0].wait.days: bad wait duration -20"), "\(bad)")
        #expect(bad.out.contains("\(badTrigger.path): $.trigger.when.stepId: event type 'cn.gov.yishi.licence.issued' has no field 'stepId'"), "\(bad)")
        #expect(bad.out.split(separator: "\n").count == 2, "\(bad)")
    }
}
