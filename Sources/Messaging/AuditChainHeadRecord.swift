import Foundation

/// The value of an `audit-heads` record (`cn.gov.yishi.audit.chain-head`): a saga's audit-chain
/// head after one orchestrator transaction, written in that same transaction as the chained
/// `saga-events` records. `yishi audit verify` checks each against the recomputed chain, so a
/// removed tail of `saga-events` shows even when the saga's state was rewritten too.
public struct AuditChainHeadRecord: Codable, Equatable, Sendable {
    public var sagaId: String
    /// The bundle version the saga runs (the chain's genesis value derives from it).
    public var bundleVersion: Int
    /// `sm3` or `sha-256`.
    public var algorithm: String
    /// Records chained so far.
    public var length: UInt32
    /// The link of the last chained record, 64 lowercase hex digits.
    public var link: String
    /// When the orchestrator wrote it (hub time, RFC 3339).
    public var at: String

    public init(sagaId: String, bundleVersion: Int, algorithm: String, length: UInt32, link: String, at: String) {
        self.sagaId = sagaId; self.bundleVersion = bundleVersion; self.algorithm = algorithm
        self.length = length; self.link = link; self.at = at
    }
}
