import Foundation

/// 公安 seal management (印章治安管理信息系统): engraving and record-keeping of seals, and
/// cancellation (the compensation). Native vocabulary: upper-case English field names.
public struct SealEngraving: DepartmentModel {
    /// CANCEL finds the unit by saga and step when the hub sends no USCC.
    public static let undoTargets: [String: UndoTarget] = [
        Cancel.action: UndoTarget(field: "USCC", effect: "seal-engraved", dataField: "USCC"),
    ]

    public static let agency = Agency.sealEngraving
    public static let successCode = "0000"
    public static let formatErrorCode = "1001"
    public static let unknownActionCode = "1002"
    public static let transientCodes = ["9001", "9002"]
    public static let conflictCode = "9101"
    public static let manualReviewCode = "2101"
    public static let typicalLatency: [String: LatencyDistribution] = [
        Engrave.action: LatencyDistribution(min: 20, mode: 40, max: 90),
        Cancel.action: LatencyDistribution(min: 2, mode: 5, max: 20),
    ]

    /// Seal type codes: 01 公章 (法定名称章), 02 财务专用章, 03 发票专用章, 04 合同专用章, 05 法定代表人名章.
    public static let sealTypes: [String: String] = [
        "01": "公章", "02": "财务专用章", "03": "发票专用章", "04": "合同专用章", "05": "法定代表人名章",
    ]
    /// Application-form seal names → seal type codes.
    public static let formSealTypes: [String: String] = [
        "company": "01", "finance": "02", "invoice": "03", "contract": "04", "legal-representative": "05",
    ]

    public init() {}

    public struct RequestEnvelope: NativeRequestEnvelope {
        /// request serial number
        public var REQ_SN: String
        /// ENGRAVE | CANCEL
        public var BIZ_CODE: String
        /// case reference (saga id)
        public var CASE_REF: String
        /// case step (step id)
        public var CASE_STEP: String

        public init(meta: RequestMeta) {
            REQ_SN = meta.requestId; BIZ_CODE = meta.action; CASE_REF = meta.sagaId; CASE_STEP = meta.step
        }
        public var meta: RequestMeta { RequestMeta(requestId: REQ_SN, sagaId: CASE_REF, step: CASE_STEP, action: BIZ_CODE) }
    }

    public struct ReplyEnvelope: NativeReplyEnvelope {
        public var REQ_SN: String
        public var BIZ_CODE: String
        public var CASE_REF: String
        public var CASE_STEP: String
        /// 0000 ok; 1xxx format; 2xxx business; 9xxx system (retryable)
        public var RET_CODE: String
        public var RET_MSG: String
        public var ERR_FIELD: String?

        public init(meta: RequestMeta, code: String, message: String, field: String?) {
            REQ_SN = meta.requestId; BIZ_CODE = meta.action; CASE_REF = meta.sagaId; CASE_STEP = meta.step
            RET_CODE = code; RET_MSG = message; ERR_FIELD = field
        }
    }

    /// ENGRAVE: engrave seals for a registered unit and put them on record.
    public struct Engrave: NativeRequestBody, Equatable {
        public static let action = "ENGRAVE"
        public var USCC: String
        public var UNIT_NAME: String
        public var REGION_CODE: String
        /// required when seal type 05 is requested
        public var LEGAL_REP_NAME: String?
        /// seal type codes
        public var SEALS: [String]

        public init(USCC: String, UNIT_NAME: String, REGION_CODE: String, LEGAL_REP_NAME: String?, SEALS: [String]) {
            self.USCC = USCC; self.UNIT_NAME = UNIT_NAME; self.REGION_CODE = REGION_CODE
            self.LEGAL_REP_NAME = LEGAL_REP_NAME; self.SEALS = SEALS
        }
    }

    public struct SealRecord: Codable, Sendable, Equatable {
        public var SEAL_TYPE: String
        /// text on the seal
        public var SEAL_TEXT: String
        /// 备案号: region code (6) + year (2) + sequence (8)
        public var RECORD_NO: String
    }

    public struct EngraveResult: Codable, Sendable, Equatable {
        public var SEAL_LIST: [SealRecord]
        /// yyyyMMdd
        public var RECORD_DATE: String
    }

    /// CANCEL: cancel the unit's seals on record (compensation of ENGRAVE). Cancelling seals
    /// that are not on record, or already cancelled, succeeds with nothing cancelled.
    public struct Cancel: NativeRequestBody, Equatable {
        public static let action = "CANCEL"
        public var USCC: String
        /// seal type codes to cancel; empty = every seal on record
        public var SEALS: [String]
        public var REASON: String

        public init(USCC: String, SEALS: [String] = [], REASON: String) {
            self.USCC = USCC; self.SEALS = SEALS; self.REASON = REASON
        }
    }

    public struct CancelResult: Codable, Sendable, Equatable {
        /// record numbers cancelled by this request
        public var CANCELLED: [String]
        public var CANCEL_DATE: String
    }

    public struct Seal: Codable, Sendable, Equatable {
        public var record: SealRecord
        public var uscc: String
        public var cancelled: Bool
    }

    public struct Books: Codable, Sendable, Equatable {
        /// record number → seal
        public var seals: [String: Seal] = [:]
        public var sequence: [String: Int] = [:]
    }

    public static var emptyBooks: Books { Books() }

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case Engrave.action: with(Engrave.self, request, meta) { engrave($0, meta, &books, now) }
        case Cancel.action: with(Cancel.self, request, meta) { cancel($0, meta, &books, now) }
        default: unknownAction(meta)
        }
    }

    func engrave(_ r: Engrave, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(r.USCC) } catch { return reject(meta, "2001", "USCC invalid: \(error)", field: "USCC") }
        guard !r.UNIT_NAME.isEmpty else { return reject(meta, "2006", "unit name is empty", field: "UNIT_NAME") }
        guard AdministrativeDivision.isPlausible(r.REGION_CODE) else {
            return reject(meta, "2007", "bad region code \(r.REGION_CODE)", field: "REGION_CODE")
        }
        guard !r.SEALS.isEmpty else { return reject(meta, "2005", "no seal requested", field: "SEALS") }
        let active = Set(books.seals.values.filter { $0.uscc == r.USCC && !$0.cancelled }.map(\.record.SEAL_TYPE))
        for (i, type) in r.SEALS.enumerated() {
            guard Self.sealTypes[type] != nil else { return reject(meta, "2002", "unknown seal type \(type)", field: "SEALS[\(i)]") }
            guard !active.contains(type), !r.SEALS[..<i].contains(type) else {
                return reject(meta, "2003", "a \(Self.sealTypes[type]!) is already on record for \(r.USCC)", field: "SEALS[\(i)]")
            }
        }
        if r.SEALS.contains("05"), (r.LEGAL_REP_NAME ?? "").isEmpty {
            return reject(meta, "2004", "legal representative name required for seal type 05", field: "LEGAL_REP_NAME")
        }
        var records: [SealRecord] = []
        for type in r.SEALS {
            let seq = books.sequence[r.REGION_CODE, default: 0] + 1
            books.sequence[r.REGION_CODE] = seq
            let number = r.REGION_CODE + String(format: "%02d%08d", CST.year(now) % 100, seq)
            let text = switch type {
            case "01": r.UNIT_NAME
            case "05": r.LEGAL_REP_NAME!
            default: "\(r.UNIT_NAME) \(Self.sealTypes[type]!)"
            }
            let record = SealRecord(SEAL_TYPE: type, SEAL_TEXT: text, RECORD_NO: number)
            books.seals[number] = Seal(record: record, uscc: r.USCC, cancelled: false)
            records.append(record)
        }
        return complete(meta, EngraveResult(SEAL_LIST: records, RECORD_DATE: CST.day(now, separator: "")),
                        effects: records.map { EffectDraft(kind: "seal-engraved", key: $0.RECORD_NO, data: ["USCC": r.USCC, "SEAL_TYPE": $0.SEAL_TYPE]) }
                            .noting(usccCheck: usccCheck))
    }

    func cancel(_ r: Cancel, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(r.USCC) } catch { return reject(meta, "2001", "USCC invalid: \(error)", field: "USCC") }
        for (i, type) in r.SEALS.enumerated() where Self.sealTypes[type] == nil {
            return reject(meta, "2002", "unknown seal type \(type)", field: "SEALS[\(i)]")
        }
        let targets = books.seals.values
            .filter { $0.uscc == r.USCC && !$0.cancelled && (r.SEALS.isEmpty || r.SEALS.contains($0.record.SEAL_TYPE)) }
            .map(\.record.RECORD_NO).sorted()
        for number in targets { books.seals[number]?.cancelled = true }
        return complete(meta, CancelResult(CANCELLED: targets, CANCEL_DATE: CST.day(now, separator: "")),
                        effects: targets.map { EffectDraft(kind: "seal-cancelled", key: $0, data: ["USCC": r.USCC, "REASON": r.REASON]) }
                            .noting(usccCheck: usccCheck))
    }
}
