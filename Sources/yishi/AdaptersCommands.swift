import Adapters
import DepartmentService
import Departments
import Foundation
import SagaEngine

var adaptersGroup: CommandGroup { CommandGroup(
    name: "adapters",
    summary: "Check the agencies' files (catalogue, mapping, native schemas, simulator config) without starting anything.",
    commands: [ValidateAdapters.self]) }

enum ValidateAdapters: Command {
    static let name = "validate"
    static let summary = "check every adapters/<agency>/: catalogue, mapping.json, native schemas, department.json"
    static let help = """
        Usage: yishi adapters validate [AGENCY...] [--json]

        Checks each agency directory under the catalogue directory (--catalogues, default adapters;
        AGENCY limits it to those) without starting an adapter or a simulator, and prints every
        problem as `file: $.json.path: message`:
          catalogue.json   decodes, names its directory, compensations exist
          mapping.json     every catalogue action mapped or unsupported, codes known, templates readable
          native/*.json    every schema compiles; every mapped native call has a request and a reply
                           schema; every field a request template writes, the envelope fields and the
                           reply fields exist in them; every $.replies.<NATIVE>.<field> an output reads
                           exists in that reply schema
          department.json  (agencies without a Swift simulator) the configurable simulator's settings,
                           rules and reply templates; its envelope and codes agree with mapping.json and
                           it answers every native call the mapping sends
        --json prints {"agencies": [...], "problems": [{agency, file, path, message}]}.

        Exit codes: 0 no problems, 1 problems found, 2 usage (unknown agency).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let json = args.flag("--json")
        let only = try args.positionals()
        let adapters = env.cataloguesDir
        let present = ((try? FileManager.default.contentsOfDirectory(atPath: adapters.path)) ?? []).sorted().filter {
            FileManager.default.fileExists(atPath: adapters.appendingPathComponent($0).appendingPathComponent("catalogue.json").path)
                || FileManager.default.fileExists(atPath: adapters.appendingPathComponent($0).appendingPathComponent("mapping.json").path)
        }
        if let unknown = only.first(where: { !present.contains($0) }) {
            throw UsageError("unknown agency '\(unknown)': no \(adapters.appendingPathComponent(unknown).path)/catalogue.json; one of \(present.joined(separator: ", "))")
        }
        let agencies = only.isEmpty ? present : only
        var problems: [AgencyFilesCheck.Problem] = []
        for agency in agencies {
            let dir = adapters.appendingPathComponent(agency)
            problems += AgencyFilesCheck.problems(agency: dir)
            problems += departmentProblems(dir)
        }
        if json {
            struct Report: Encodable { var agencies: [String]; var problems: [AgencyFilesCheck.Problem] }
            try printJSON(Report(agencies: agencies, problems: problems))
        } else {
            for p in problems { print(p.description) }
            let bad = Set(problems.map(\.agency)).count
            printError("\(agencies.count) agency(ies): \(agencies.count - bad) valid, \(bad) with problems (\(problems.count) problem(s))")
        }
        return problems.isEmpty ? Exit.ok : Exit.problems
    }

    /// The configurable simulator's file, for an agency without a Swift model, and its agreement with mapping.json.
    static func departmentProblems(_ dir: URL) -> [AgencyFilesCheck.Problem] {
        let agency = dir.lastPathComponent
        let file = dir.appendingPathComponent("department.json")
        guard !Agency(agency).isBuiltIn || FileManager.default.fileExists(atPath: file.path) else { return [] }
        guard FileManager.default.fileExists(atPath: file.path) else {
            return [.init(agency: agency, file: file.path, path: "$",
                          message: "missing: '\(agency)' has no Swift simulator, so `yishi department run` needs this file (docs/adding-an-agency.md)")]
        }
        let (config, texts) = DepartmentConfig.check(directory: dir)
        var out = texts.map { text -> AgencyFilesCheck.Problem in
            // "file: $.path: message"
            let rest = text.hasPrefix(file.path + ": ") ? String(text.dropFirst(file.path.count + 2)) : text
            let parts = rest.split(separator: ": ", maxSplits: 1).map(String.init)
            return .init(agency: agency, file: text.hasPrefix(file.path) ? file.path : "", path: parts.count == 2 ? parts[0] : "$",
                         message: parts.count == 2 ? parts[1] : rest)
        }
        guard let config, let mapping = try? JSONValue.parse(Data(contentsOf: dir.appendingPathComponent("mapping.json"))) else { return out }
        func add(_ path: String, _ message: String) { out.append(.init(agency: agency, file: file.path, path: path, message: message)) }
        let e = mapping["envelope"], r = mapping["reply"]
        for (key, mine) in [("requestId", config.envelope.requestId), ("action", config.envelope.action),
                            ("sagaRef", config.envelope.sagaRef), ("stepRef", config.envelope.stepRef)] where e?[key]?.stringValue != mine {
            add("$.envelope.\(key)", "'\(mine)' but mapping.json's $.envelope.\(key) is '\(e?[key]?.stringValue ?? "missing")'")
        }
        if r?["status"]?.stringValue != config.reply.code { add("$.reply.code", "'\(config.reply.code)' but mapping.json's $.reply.status is '\(r?["status"]?.stringValue ?? "missing")'") }
        if let success = r?["success"]?.arrayValue?.compactMap(\.stringValue), !success.contains(config.codes.success) {
            add("$.codes.success", "'\(config.codes.success)' is not one of mapping.json's $.reply.success (\(success.joined(separator: ", ")))")
        }
        for (id, action) in mapping["actions"]?.objectValue ?? [:] {
            for (i, call) in (action["calls"]?.arrayValue ?? []).enumerated() {
                if let native = call["native"]?.stringValue, config.actions[native] == nil {
                    add("$.actions", "no action '\(native)', which mapping.json sends at $.actions.\(id).calls[\(i)].native")
                }
            }
        }
        return out
    }
}
