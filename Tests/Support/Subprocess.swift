import Dispatch
import Foundation

/// A program run to its end with its output captured: the tools the tests call (the `yishi`
/// binary, promtool, chromium, openssl, python3 scripts).
public enum Subprocess {
    public struct Result: Sendable, CustomStringConvertible {
        public var status: Int32
        public var out: String
        public var err: String
        public var description: String { "exit \(status)\nstdout:\n\(out)\nstderr:\n\(err)" }
    }

    /// Runs `executable` with `arguments` in `directory` and returns its exit status, stdout and
    /// stderr. Both pipes are read to their end before waiting, so a large output cannot block the
    /// child. `input` is written to its stdin (then closed); `environment` nil inherits ours; after
    /// `timeout` seconds the process is terminated.
    public static func run(_ executable: URL, _ arguments: [String], directory: URL, environment: [String: String]? = nil,
                           input: Data? = nil, timeout: Double? = nil) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        let errData = Recorder<Data>()
        let reader = Thread { errData.append(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer) }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return Result(status: process.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                      err: String(decoding: errData.all.first ?? Data(), as: UTF8.self))
    }

    /// The path a `scripts/setup-*.sh` prints once it has provided its tool (installing it on first use).
    public static func setUp(_ script: String, repoRoot: URL) throws -> String {
        let result = try run(repoRoot.appendingPathComponent("scripts").appendingPathComponent(script), [], directory: repoRoot)
        let path = result.out.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, !path.isEmpty else { throw SetupError("scripts/\(script) could not provide its tool: \(result.err)") }
        return path
    }

    /// `promtool check metrics` on `page` (Debian's prometheus package, provided by
    /// scripts/setup-promtool.sh): its exit status and what it said.
    public static func promtoolCheckMetrics(_ page: String, repoRoot: URL) throws -> (Int32, String) {
        let result = try run(URL(fileURLWithPath: try setUp("setup-promtool.sh", repoRoot: repoRoot)), ["check", "metrics"],
                             directory: repoRoot, input: Data(page.utf8))
        return (result.status, result.out + result.err)
    }
}
