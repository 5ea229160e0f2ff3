import Foundation

/// What `saga-state` keeps of a finished saga once it left the orchestrator's hot state
/// (after its grace period, see `docs/operations.md`, "Retention"): enough to answer a
/// re-submitted application id with "already finished" for ever, and to go on chaining the
/// saga's audit trail (`AuditChain`) when such an answer is recorded.
///
/// Record value: the bytes `FinishedSummary.magic` followed by the summary's JSON text
/// (`{"sagaId":…,"bundleId":…,"bundleVersion":…,"status":…,"finishedAt":<ms>,"auditChain":…}`),
/// about 200 bytes. `SagaStateRecord.decode` tells it apart from a `SagaStateCodec` value.
public struct FinishedSummary: Codable, Equatable, Sendable {
    public var sagaId: String
    public var bundleId: String
    public var bundleVersion: Int
    /// A final status (`completed`, `failed`, `compensated`, `cancelled`).
    public var status: SagaStatus
    /// When the saga finished (hub time). For sagas restored from a changelog record that did
    /// not say, the instant the hub first saw them finished after that restore.
    public var finishedAt: Instant
    /// The head of the saga's audit chain; advanced when a re-submission is recorded.
    public var auditChain: AuditChainHead?

    public init(sagaId: String, bundleId: String, bundleVersion: Int, status: SagaStatus, finishedAt: Instant, auditChain: AuditChainHead?) {
        self.sagaId = sagaId
        self.bundleId = bundleId
        self.bundleVersion = bundleVersion
        self.status = status
        self.finishedAt = finishedAt
        self.auditChain = auditChain
    }

    public init(_ state: SagaState, finishedAt: Instant) {
        self.init(sagaId: state.sagaId, bundleId: state.bundleId, bundleVersion: state.bundleVersion, status: state.status,
                  finishedAt: finishedAt, auditChain: state.auditChain)
    }

    /// First bytes of a summary record value (never the first bytes of a `SagaStateCodec` value).
    public static let magic = Data("yishi.finished/1\n".utf8)
    /// The `content-type` of a summary record.
    public static let mediaType = "application/vnd.yishi.finished-summary"

    public func encoded() -> Data {
        var data = Self.magic
        data.append((try? JSONEncoder().encode(self)) ?? Data())
        return data
    }
}

/// The value of one `saga-state` record: a live state, the summary of a finished saga that left
/// the hot state, or a tombstone (nil value).
public enum SagaStateRecord: Sendable {
    case state(SagaState)
    case finished(FinishedSummary)
    case tombstone

    /// Decodes any `saga-state` value the hub has written.
    /// - Throws: `SagaStateCodec.DecodeError` naming what is wrong (corrupt bytes, a status or
    ///   format this version does not know).
    public static func decode(_ value: Data?) throws -> SagaStateRecord {
        guard let value else { return .tombstone }
        if value.starts(with: FinishedSummary.magic) {
            do {
                return .finished(try JSONDecoder().decode(FinishedSummary.self, from: value.dropFirst(FinishedSummary.magic.count)))
            } catch {
                throw SagaStateCodec.DecodeError("not a finished-saga summary: \(error)")
            }
        }
        return .state(try SagaStateCodec.decode(value))
    }

    public var sagaId: String? {
        switch self {
        case .state(let s): return s.sagaId
        case .finished(let f): return f.sagaId
        case .tombstone: return nil
        }
    }
}
