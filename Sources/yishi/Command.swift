import Foundation
import SagaEngine

/// Exit codes shared by every command.
enum Exit {
    static let ok: Int32 = 0
    /// The command ran and found problems (invalid bundle, unknown id, …).
    static let problems: Int32 = 1
    static let usage: Int32 = 2
    /// Broker or orchestrator unreachable, or no answer in time (operator commands).
    static let unreachable: Int32 = 3
}

/// Settings every command can read: global options and their environment fallbacks.
struct Environment {
    var bundlesDir: URL
    var cataloguesDir: URL
    var calendarsDir: URL
    var schemasDir: URL

    /// `--bundles DIR` (env `YISHI_BUNDLES`, default `seeds/bundles`), `--catalogues DIR`
    /// (env `YISHI_CATALOGUES`, default `adapters`), `--calendars DIR` (env `YISHI_CALENDARS`,
    /// default `seeds/calendar`). Relative paths are resolved from the working directory.
    static func read(_ args: inout Arguments) throws -> Environment {
        let env = ProcessInfo.processInfo.environment
        func dir(_ option: String, _ variable: String, _ fallback: String) throws -> URL {
            URL(fileURLWithPath: try args.option(option) ?? env[variable] ?? fallback)
        }
        return Environment(
            bundlesDir: try dir("--bundles", "YISHI_BUNDLES", "seeds/bundles"),
            cataloguesDir: try dir("--catalogues", "YISHI_CATALOGUES", "adapters"),
            calendarsDir: try dir("--calendars", "YISHI_CALENDARS", "seeds/calendar"),
            schemasDir: try dir("--schemas", "YISHI_SCHEMAS", "schemas"))
    }

    func library() throws -> BundleLibrary {
        try BundleLibrary.load(bundles: bundlesDir, catalogues: cataloguesDir, calendars: calendarsDir, schemas: schemasDir)
    }

    static let globalOptionsHelp = """
        Global options:
          --bundles DIR      bundle definitions (env YISHI_BUNDLES, default seeds/bundles)
          --catalogues DIR   agency catalogues, DIR/<agency>/catalogue.json (env YISHI_CATALOGUES, default adapters)
          --calendars DIR    business calendars (env YISHI_CALENDARS, default seeds/calendar)
          --schemas DIR      message schemas, incl. the application form's (env YISHI_SCHEMAS, default schemas)
          -h, --help         show help for any command or subcommand
        """
}

/// A leaf command such as `bundles validate`.
protocol Command {
    static var name: String { get }
    static var summary: String { get }
    /// Full help text, starting with the usage line.
    static var help: String { get }
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32
}

/// A named set of subcommands (`bundles`, later `sagas`, `cases`, `dlq`, `lag`, …).
struct CommandGroup {
    var name: String
    var summary: String
    var commands: [any Command.Type]
    /// Run when the group is given without a command (`yishi lag`, `yishi cases`).
    var defaultCommand: (any Command.Type)? = nil

    var help: String {
        let width = commands.map { $0.name.count }.max() ?? 0
        let lines = commands.map { "  " + $0.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.summary }
        return "Usage: yishi \(name) <command> [options]\n\n\(summary)\n\nCommands:\n" + lines.joined(separator: "\n")
            + "\n\nRun 'yishi \(name) <command> --help' for details.\n\n" + Environment.globalOptionsHelp
    }
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try e.encode(value), as: UTF8.self))
}
