import Foundation

/// The built `yishi` binary run as an operator or a service would run it, output captured.
public struct YishiCommand: Sendable {
    public struct Result: Sendable, CustomStringConvertible {
        public var status: Int32
        public var out: String
        public var err: String
        public var description: String { "exit \(status)\nstdout:\n\(out)\nstderr:\n\(err)" }
        /// Before a command has run: no output, status -1.
        public static let none = Result(status: -1, out: "", err: "")
    }

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
        let process = Process()
        process.executableURL = binary
        process.currentDirectoryURL = directory
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to their end before waiting, so a large output cannot block the child.
        let errData = Recorder<Data>()
        let reader = Thread { errData.append(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return Result(status: process.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                      err: String(decoding: errData.all.first ?? Data(), as: UTF8.self))
    }
}
