import Adapters
import Foundation
import Messaging
import Operations
import YishiKafka

/// `yishi department check`: the conformance kit for a department system (DepartmentCheck).
struct DepartmentCheckCommand: Command {
    static let name = "check"
    static let summary = "play sample native requests of every action against a department and check its replies"
    static let help = """
        Usage: yishi department check --agency AGENCY --bootstrap HOST:PORT [--prefix P] [options]

        Plays the agency's adapter against a department system listening on the test prefix P:
        for every action of adapters/<agency>/mapping.json it sends the native requests the
        adapter would send (same key, partitioner, CloudEvents headers, traceparent and
        yishi-adapter-context) on <P>dept.<agency>.requests and checks each reply on
        <P>dept.<agency>.replies: the CloudEvents headers (ce_source /dept/<agency>, ce_type
        cn.gov.yishi.dept.<agency>.<NATIVE>.reply), the native reply schema, the echoed request id,
        yishi-adapter-context echoed byte for byte, traceparent echoed, key = saga id on the
        partition murmur2_random gives it, the mapping back to a valid hub event, and idempotency:
        the first request sent again (same request id) must get the same answer.
        Sample inputs come from adapters/<agency>/check-samples.json when it exists, else from the
        request templates and the native request schemas. Saga ids are CHECK-<run>-<n>.
        Guide: docs/integrating-a-department.md.

        Options:
          --agency A             an agency with adapters/<A>/catalogue.json and mapping.json
          --prefix P             topic prefix the department under test uses (default yishi-check.;
                                 never the live hub's: the check's requests would reach a real department)
          --timeout SECONDS      how long to wait for each reply, wall time (default 30)
          --repository DIR       where adapters/ and schemas/ are (default: the working directory)
          --json                 the report as JSON
          --bootstrap HOST:PORT  Kafka bootstrap servers (env YISHI_BOOTSTRAP; required)
          --partitions N         partitions of the two topics if the check creates them (default 6)
        \(SecurityOptions.help)
        \(ClockOptions.help)

        Exit codes: 0 every action passes, 1 some action fails (the report says which and why),
        2 usage or configuration error (unknown agency, unreadable mapping or samples), 3 broker unreachable.
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        guard let agency = try args.option("--agency"), !agency.isEmpty else { throw UsageError("--agency is required") }
        let prefix = try args.option("--prefix") ?? "yishi-check."
        let json = args.flag("--json")
        let timeoutText = try args.option("--timeout") ?? "30"
        guard let seconds = Double(timeoutText), seconds > 0 else { throw UsageError("--timeout must be a positive number of seconds, not '\(timeoutText)'") }
        let repository = URL(fileURLWithPath: try args.option("--repository") ?? FileManager.default.currentDirectoryPath)
        var kafka = try KafkaOptions.read(&args)
        kafka.prefix = prefix
        let clock = try ClockOptions.read(&args, env)
        _ = try args.positionals()
        let check: DepartmentCheck
        do { check = try DepartmentCheck(agency: agency, repository: repository, connection: kafka.connection(clock: clock)) } catch let e as DepartmentCheck.SetupError {
            printError("yishi: department check: \(e.description)")
            return Exit.usage
        }
        do { try kafka.connection(clock: clock).checkAccess(clientId: "yishi-department-check", timeout: .seconds(10)) } catch {
            if let e = error as? KafkaError, e.kind == .authentication { throw e }
            throw OperationsError.unreachable("the broker at \(kafka.bootstrap) did not answer a metadata request within 10 s")
        }
        let report = try check.run(timeout: .milliseconds(Int64(seconds * 1000)), log: json ? { _ in } : { printError($0) })
        if json { try printJSON(report) } else { print(DepartmentCheck.render(report)) }
        return report.passed ? Exit.ok : Exit.problems
    }
}
