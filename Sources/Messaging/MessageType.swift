/// CloudEvents `type` values of the hub (docs/message-catalogue.md) and which topic carries which.
public enum MessageType {
    public static let applicationSubmitted = "cn.gov.yishi.application.submitted"
    public static let supplementProvided = "cn.gov.yishi.supplement.provided"
    /// An application for a bundle outside the opening family (企业注销, or one the hub files
    /// itself when an event triggers a 免申即享 bundle), on `applications`.
    public static let applicationFiled = "cn.gov.yishi.application.filed"
    /// An objection to a public notice (a wait step), on `applications`, keyed by saga id.
    public static let objectionReceived = "cn.gov.yishi.notice.objection-received"
    public static let stepRequested = "cn.gov.yishi.step.requested"
    public static let compensationRequested = "cn.gov.yishi.compensation.requested"
    public static let stepSucceeded = "cn.gov.yishi.step.succeeded"
    public static let stepRejected = "cn.gov.yishi.step.rejected"
    public static let stepFailed = "cn.gov.yishi.step.failed"
    public static let supplementNeeded = "cn.gov.yishi.step.supplement-needed"
    public static let compensationSucceeded = "cn.gov.yishi.compensation.succeeded"
    public static let compensationFailed = "cn.gov.yishi.compensation.failed"
    public static let sagaState = "cn.gov.yishi.saga.state"
    public static let manualCaseOpened = "cn.gov.yishi.saga.manual-case-opened"
    public static let sagaFinished = "cn.gov.yishi.saga.finished"
    /// Audit trail: `cn.gov.yishi.saga.<AuditEvent.Kind raw value>`, e.g. `cn.gov.yishi.saga.stepDispatched`.
    public static let sagaAuditPrefix = "cn.gov.yishi.saga."
    public static let licenceIssued = "cn.gov.yishi.licence.issued"
    public static let opsRequest = "cn.gov.yishi.ops.request"
    public static let opsReply = "cn.gov.yishi.ops.reply"
    /// An operator's access to personal data (`--reveal-pii`) or DLQ replay, on `ops-audit`.
    public static let opsAudit = "cn.gov.yishi.ops.audit"
    /// The head of a saga's audit chain after a transaction, on `audit-heads` (`AuditChainHeadRecord`).
    public static let auditChainHead = "cn.gov.yishi.audit.chain-head"

    /// 进度查询 and 统一出件, on `progress` (for portals and SMS gateways; no personal data).
    public static let progressAccepted = "cn.gov.yishi.progress.accepted"
    public static let progressDepartmentDone = "cn.gov.yishi.progress.department-done"
    public static let progressMaterialsNeeded = "cn.gov.yishi.progress.materials-needed"
    public static let progressReadyForPickup = "cn.gov.yishi.progress.ready-for-pickup"
    public static let progressResultPackage = "cn.gov.yishi.progress.result-package"
    /// The answer to a re-submitted application id whose saga already finished (no second saga).
    public static let progressAlreadyFinished = "cn.gov.yishi.progress.already-finished"
    public static let progressTypes = [progressAccepted, progressDepartmentDone, progressMaterialsNeeded, progressReadyForPickup, progressResultPackage,
                                       progressAlreadyFinished]

    public static func sagaAudit(_ kind: String) -> String { sagaAuditPrefix + kind }

    /// A department's native message, e.g. `cn.gov.yishi.dept.tax.SWDJ.request`.
    public static func native(agency: String, message: String) -> String { "cn.gov.yishi.dept.\(agency).\(message)" }

    /// Whether `type` may travel on `topic` (without the prefix). Nil when the topic is not a hub topic.
    public static func allowed(_ type: String, onTopic topic: String) -> Bool? {
        let parts = topic.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, parts.count) {
        case ("applications", 1): return [applicationSubmitted, applicationFiled, supplementProvided, objectionReceived].contains(type)
        case ("commands", 2): return type == stepRequested || type == compensationRequested
        case ("events", 2):
            return [stepSucceeded, stepRejected, stepFailed, supplementNeeded, compensationSucceeded, compensationFailed].contains(type)
        case ("dept", 3) where parts[2] == "requests" || parts[2] == "replies":
            let prefix = native(agency: parts[1], message: "")
            return type.hasPrefix(prefix) && type.hasSuffix(parts[2] == "requests" ? ".request" : ".reply")
        case ("saga-state", 1): return type == sagaState
        case ("saga-events", 1): return type.hasPrefix(sagaAuditPrefix) && type != sagaState
        case ("licences", 1): return type == licenceIssued
        case ("progress", 1): return progressTypes.contains(type)
        case ("ops", 1): return type == opsRequest
        case ("ops-replies", 1): return type == opsReply
        case ("ops-audit", 1): return type == opsAudit
        case ("audit-heads", 1): return type == auditChainHead
        default: return nil
        }
    }
}
