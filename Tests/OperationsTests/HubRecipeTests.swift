import Foundation
import Testing
import YishiTestSupport

/// docs/operations.md's recipe for the hub as separate processes, run as written: the lines of
/// the block after `<!-- recipe: hub` with the test's broker (B) and a fresh directory (HUB),
/// `yishi` being this build. So the documented commands cannot drift from what works.
@Suite("The documented hub recipe", .serialized)
struct HubRecipeTests {
    /// The shell lines of the recipe block, without the line that sets B and HUB.
    static func recipe() throws -> [String] {
        let doc = try String(contentsOf: repoRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- recipe: hub"), "docs/operations.md has no hub recipe")
        let rest = doc[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        return rest[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("B=") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    @Test("yishi hub up, status, env, reload, lag, down as docs/operations.md shows them", .timeLimit(.minutes(2)))
    func documentedRecipe() throws {
        let lines = try Self.recipe()
        #expect(lines.contains { $0.hasPrefix("yishi hub up ") } && lines.contains { $0.hasPrefix("yishi hub down ") }, "\(lines)")
        let hub = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-hub-recipe-\(UUID().uuidString.prefix(8))")
        let bin = repoRoot.appendingPathComponent(".build/debug")
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("YISHI_") && key != "YISHI_BOOTSTRAP" { env.removeValue(forKey: key) }
        env["B"] = try Broker.bootstrap
        env["HUB"] = hub.path
        env["PATH"] = bin.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["YISHI_TOPIC_PREFIX"] = "recipe-\(UUID().uuidString.prefix(8))."
        // Each line's output marked, so the test can tell the commands apart; the first failure stops it.
        let script = "set -e\n" + lines.map { "echo '>>> \($0.replacingOccurrences(of: "'", with: ""))'\n\($0)" }.joined(separator: "\n")
        let result = try Subprocess.run(URL(fileURLWithPath: "/bin/bash"), ["-c", script], directory: repoRoot, environment: env, timeout: 100)
        // Whatever happened, nothing it started may outlive the test.
        defer { _ = try? Subprocess.run(bin.appendingPathComponent("yishi"), ["hub", "down", "--dir", hub.path, "--wait", "5"], directory: repoRoot, environment: env) }
        #expect(result.status == 0, "\(result)")
        let sections = result.out.components(separatedBy: ">>> ")
        let status = try #require(sections.first { $0.hasPrefix("yishi hub status") }, "\(result)")
        let agencies = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("adapters").path)
            .filter { FileManager.default.fileExists(atPath: repoRoot.appendingPathComponent("adapters/\($0)/catalogue.json").path) }
        #expect(status.contains("\(1 + 2 * agencies.count) of \(1 + 2 * agencies.count) process(es) running"), "\(status)")
        for agency in agencies { #expect(status.contains("department-\(agency)") && status.contains("adapter-\(agency)")) }
        let lag = try #require(sections.first { $0.hasPrefix("yishi lag") })
        #expect(lag.contains(env["YISHI_TOPIC_PREFIX"]! + "orchestrator"), "the CLI found the hub through hub env: \(lag)")
        let down = try #require(sections.first { $0.hasPrefix("yishi hub down") })
        #expect(down.components(separatedBy: "\n").filter { $0.hasSuffix(" stopped") }.count == 1 + 2 * agencies.count, "\(down)")
        // `hub reload` reached the orchestrator: it reloaded the (unchanged, valid) bundle directory.
        let reload = try #require(sections.first { $0.hasPrefix("yishi hub reload") })
        #expect(reload.contains("orchestrator (pid "), "\(reload)")
        let orchestratorLog = try String(contentsOf: hub.appendingPathComponent("logs/orchestrator.log"), encoding: .utf8)
        #expect(orchestratorLog.contains("\"msg\":\"bundles reloaded\""), "\(orchestratorLog.suffix(2000))")
        // Every PID file gone: every process ended on SIGTERM.
        #expect(try FileManager.default.contentsOfDirectory(atPath: hub.appendingPathComponent("pids").path).isEmpty)
    }
}
