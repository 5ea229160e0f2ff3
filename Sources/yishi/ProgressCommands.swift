import Foundation
import Messaging
import Operations
import Orchestrator
import SagaEngine

var progressGroup: CommandGroup { CommandGroup(
    name: "progress", summary: "进度查询: an application's progress in plain Chinese, for the applicant (needs the 受理回执's query code).",
    commands: [ProgressQuery.self], defaultCommand: ProgressQuery.self) }

/// `yishi progress APP-ID --code CODE [--json]`.
enum ProgressQuery: Command {
    static let name = "query"
    static let summary = "what is done, what is under way at which department, the 容缺 materials still to hand in, the expected finish"
    static let help = """
        Usage: yishi progress APP-ID --code CODE [--json] [options]

        The applicant's view of one application (进度查询), in plain Chinese: the steps done, the
        steps in progress and at which department, the materials still to hand in (容缺), the SLA
        deadline and the expected finish (the longest chain of remaining steps, each at its
        department's typical handling time, at most its timeout, in working time on the bundle's
        calendar). No ID numbers, no names, no phone
        numbers: only department names, step titles and material names.

        CODE is the query code printed on the application's 受理回执 (XXXX-XXXX; case and the dash
        do not matter). It is checked against HMAC-SHA256 of the application id under the hub's
        query secret, read from the file named by YISHI_QUERY_SECRET_FILE (or YISHI_QUERY_SECRET).
        A wrong code, an unknown application id and a malformed id (spaces, newlines, other
        characters) all get the same refusal and exit 1: nothing about the application is revealed.

          --code CODE    the query code from the 受理回执
          --json         the same report as JSON

        \(OperatorOptions.help)
        """

    /// The one refusal for a wrong code, an unknown id or a malformed id.
    static let refusal = "yishi progress: 申请编号或查询码不正确，无法查询。请核对受理回执上的申请编号和查询码。"

    /// Application ids as the hub issues them: 1 to 128 of `A-Z a-z 0-9 . _ -`.
    static func wellFormed(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95
        }
    }

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let code = try args.option("--code")
        let options = try OperatorOptions.read(&args)
        let rest = try args.positionals()
        guard rest.count == 1 else { throw UsageError("expected exactly one APP-ID") }
        guard let code else { throw UsageError("--code is required: the query code on the application's 受理回执") }
        guard !options.revealPII else { throw UsageError("progress never shows personal data: --reveal-pii does not apply (use yishi sagas show)") }
        let secret: Data
        do {
            guard let s = try QueryCode.secret(environment: ProcessInfo.processInfo.environment) else {
                throw UsageError("no query secret: set YISHI_QUERY_SECRET_FILE to the file holding the hub's query secret")
            }
            secret = s
        } catch let e as QueryCode.SecretError { throw UsageError(e.description) }
        let id = rest[0]
        guard wellFormed(id), QueryCode.matches(code, applicationId: id, secret: secret) else { return refuse() }
        let saga: LoadedSaga
        do { saga = try LoadedSaga.load(id, options, env) } catch let e as OperationsError {
            if case .notFound = e { return refuse() }
            throw e
        }
        let library = try env.library()
        let report = ProgressReport.make(saga.state, bundle: saga.bundle, calendar: saga.calendar, catalogues: library.catalogues, now: options.now)
        try options.emit(report) { report.render() }
        return Exit.ok
    }

    static func refuse() -> Int32 {
        printError(refusal)
        return Exit.problems
    }
}

/// `yishi sagas results APP-ID [--json]`: the result package (统一出件) as the pickup window prints it.
enum SagaResults: Command {
    static let name = "results"
    static let summary = "统一出件: every number and licence a completed saga issued, as the pickup window prints it"
    static let help = """
        Usage: yishi sagas results APP-ID [--json] [options]

        The result package of a completed saga: by step, every number and licence issued (统一社会信用代码,
        电子营业执照编号, seal record numbers, 纳税人识别号, UKey, the basic account (masked), social
        security and medical insurance unit numbers, permits and filings), the same package the
        orchestrator wrote to the progress topic (cn.gov.yishi.progress.result-package) when the saga
        completed. Exit 1 when the saga has not completed (its status is named).

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let (options, saga) = try LoadedSaga.load(&args, env)
        let completedAt = saga.audit.last { $0.kind == .sagaFinished }?.at
        guard let package = ResultPackage.make(saga.state, bundle: saga.bundle, completedAt: completedAt) else {
            printError("yishi: saga \(saga.state.sagaId) is \(saga.state.status.rawValue), not completed: no result package yet")
            return Exit.problems
        }
        if saga.state.issued == nil {
            // Completed before issued numbers were kept in the saga's state: its steps' outputs are in
            // the audit trail's step answers and, for licences, on the licences topic.
            printError("note: saga \(saga.state.sagaId) holds no issued numbers (it completed before they were recorded, or its steps issue none); see yishi sagas show \(saga.state.sagaId)")
        }
        try options.emit(package) { package.render() }
        return Exit.ok
    }
}
