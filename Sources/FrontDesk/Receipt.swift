import Foundation
import Messaging
import SagaEngine

/// The 受理回执 the window hands the applicant at submission: the application id, when it was
/// accepted, and the query code (`QueryCode`) with which the applicant reads the progress
/// (`yishi progress APP-ID --code CODE`, or a portal that holds the hub's query secret).
public struct Receipt: Equatable, Sendable {
    public var applicationId: String
    public var acceptedAt: Instant
    /// `XXXX-XXXX`, derived from the application id under the hub's query secret.
    public var queryCode: String

    public init(applicationId: String, acceptedAt: Instant, secret: Data) {
        self.applicationId = applicationId
        self.acceptedAt = acceptedAt
        queryCode = QueryCode.code(applicationId: applicationId, secret: secret)
    }

    /// One line, as the front desk prints it: no personal data (the code is for the applicant only).
    public var line: String {
        "受理回执  申请编号 \(applicationId)  受理时间 \(acceptedAt.description)  查询码 \(queryCode)（凭申请编号和查询码查询办理进度）"
    }
}
