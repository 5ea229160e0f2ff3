import Foundation

/// The built `yishi` binary run as an operator or a service would run it, output captured.
public struct YishiCommand: Sendable {
    public typealias Result = Subprocess.Result

    public let binary: URL
    public let directory: URL
    public var environment: [String: String]

    /// `repoRoot`: the package directory (the binary is its `.build/debug/yishi`).
    public init(repoRoot: URL, environment: [String: String]) throws {
        binary = repoRoot.appendingPathComponent(".build/debug/yishi")
        directory = repoRoot
        self.environment = environment
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw SetupError("\(binary.path) is missing: build with `make test` (swift build --build-tests)")
        }
    }

    public func run(_ arguments: [String]) throws -> Result {
        try Subprocess.run(binary, arguments, directory: directory, environment: environment)
    }
}

extension Subprocess.Result {
    /// Before a command has run: no output, status -1.
    public static let none = Subprocess.Result(status: -1, out: "", err: "")
}

/// One `yishi` service (orchestrator, adapter, department) as its own OS process, its output
/// appended to `<logDirectory>/<name>.log`; it can be SIGKILLed and started again as it was.
public final class YishiProcess {
    public let name: String
    public let log: URL
    private let command: YishiCommand
    private let arguments: [String]
    public private(set) var process = Process()
    public private(set) var starts = 0

    /// Starts it. `command` gives the binary and the environment.
    public init(_ name: String, _ arguments: [String], command: YishiCommand, logDirectory: URL) throws {
        self.name = name
        self.arguments = arguments
        self.command = command
        log = logDirectory.appendingPathComponent(name + ".log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        try start()
    }

    /// Starts it again with the same arguments (after `kill`).
    public func start() throws {
        process = Process()
        process.executableURL = command.binary
        process.currentDirectoryURL = command.directory
        process.arguments = arguments
        process.environment = command.environment
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        starts += 1
    }

    /// SIGKILL: no shutdown hook runs, as in a crash.
    public func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM and wait: the service's clean shutdown.
    public func terminate() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Everything it logged so far.
    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
}
