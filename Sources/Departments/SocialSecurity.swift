import Foundation

/// 人社 social insurance agency: employer registration (单位参保登记) and its compensation
/// (单位参保登记注销). Native vocabulary:
/// camelCase envelope, body fields in the style of the 金保工程 data dictionary (`aab…` = employer).
public struct SocialSecurity: DepartmentModel {
    /// DWZX finds the employer by saga and step when the hub sends no 单位编号.
    public static let undoTargets: [String: UndoTarget] = [
        EmployerDeregistration.action: UndoTarget(field: "aab001", effect: "employer-registered"),
    ]

    public static let agency = Agency.socialSecurity
    public static let successCode = "0"
    public static let formatErrorCode = "4001"
    public static let unknownActionCode = "4002"
    public static let transientCodes = ["5001", "5003"]
    public static let conflictCode = "4090"
    public static let manualReviewCode = "4301"
    public static let typicalLatency: [String: LatencyDistribution] = [
        EmployerRegistration.action: LatencyDistribution(min: 5, mode: 15, max: 45),
        EmployerDeregistration.action: LatencyDistribution(min: 5, mode: 10, max: 30),
        SubsidyMatch.action: LatencyDistribution(min: 2, mode: 10, max: 30),
        SubsidyPayment.action: LatencyDistribution(min: 10, mode: 30, max: 90),
        SubsidyNotice.action: LatencyDistribution(min: 1, mode: 5, max: 15),
    ]

    /// 一次性创业补贴 (元) a newly insured enterprise gets (免申即享).
    public static let startupSubsidyYuan = 5_000

    /// 险种类型 (aae140): 110 企业职工基本养老保险, 210 失业保险, 310 职工基本医疗保险, 410 工伤保险, 510 生育保险.
    public static let insuranceTypes: [String: String] = [
        "110": "企业职工基本养老保险", "210": "失业保险", "310": "职工基本医疗保险", "410": "工伤保险", "510": "生育保险",
    ]

    public let reference: ReferenceData

    public init(reference: ReferenceData) { self.reference = reference }

    public struct RequestEnvelope: NativeRequestEnvelope {
        public var serialNo: String
        /// DWCBDJ 单位参保登记, DWZX 单位参保登记注销
        public var bizType: String
        /// saga id
        public var refCase: String
        /// step id
        public var refStep: String

        public init(meta: RequestMeta) {
            serialNo = meta.requestId; bizType = meta.action; refCase = meta.sagaId; refStep = meta.step
        }
        public var meta: RequestMeta { RequestMeta(requestId: serialNo, sagaId: refCase, step: refStep, action: bizType) }
    }

    public struct ReplyEnvelope: NativeReplyEnvelope {
        public var serialNo: String
        public var bizType: String
        public var refCase: String
        public var refStep: String
        /// "0" success; 4xxx business; 5xxx system (retryable)
        public var errcode: String
        public var errmsg: String
        public var errfield: String?

        public init(meta: RequestMeta, code: String, message: String, field: String?) {
            serialNo = meta.requestId; bizType = meta.action; refCase = meta.sagaId; refStep = meta.step
            errcode = code; errmsg = message; errfield = field
        }
    }

    /// DWCBDJ: register the employer for social insurance.
    public struct EmployerRegistration: NativeRequestBody, Equatable {
        public static let action = "DWCBDJ"
        /// 统一社会信用代码
        public var aab998: String
        /// 单位名称
        public var aab004: String
        /// 行政区划代码
        public var aab301: String
        /// 法定代表人姓名
        public var aab013: String
        /// 单位地址
        public var aae006: String
        /// 险种类型
        public var aae140: [String]
        /// 预计参保人数
        public var yjcbrs: Int

        public init(aab998: String, aab004: String, aab301: String, aab013: String, aae006: String, aae140: [String], yjcbrs: Int) {
            self.aab998 = aab998; self.aab004 = aab004; self.aab301 = aab301; self.aab013 = aab013
            self.aae006 = aae006; self.aae140 = aae140; self.yjcbrs = yjcbrs
        }
    }

    public struct EmployerRegistrationResult: Codable, Sendable, Equatable {
        /// 单位编号 (12 digits: region code + sequence)
        public var aab001: String
        /// 参保开始日期 (yyyyMMdd)
        public var aae030: String
        public var aae140: [String]
        /// 经办机构
        public var jbjg: String
    }

    /// DWZX 单位参保登记注销: end the employer's registration (compensation of DWCBDJ).
    public struct EmployerDeregistration: NativeRequestBody, Equatable {
        public static let action = "DWZX"
        /// 单位编号
        public var aab001: String
        /// 注销原因
        public var zxyy: String

        public init(aab001: String, zxyy: String) { self.aab001 = aab001; self.zxyy = zxyy }
    }

    public struct EmployerDeregistrationResult: Codable, Sendable, Equatable {
        public var aab001: String
        /// 终止日期 (yyyyMMdd, like aae030)
        public var aae031: String
    }

    /// CYBTBD 一次性创业补贴资格比对 (免申即享): an enterprise that has registered as an employer
    /// (参保) and has not had the subsidy is eligible; otherwise 4201 (未参保) or 4202 (已享受).
    public struct SubsidyMatch: NativeRequestBody, Equatable {
        public static let action = "CYBTBD"
        /// 统一社会信用代码
        public var aab998: String
        public init(aab998: String) { self.aab998 = aab998 }
    }

    public struct SubsidyMatchResult: Codable, Sendable, Equatable {
        /// 资格编号
        public var zgbh: String
        /// 补贴金额 (元)
        public var btje: Int
    }

    /// CYBTFF 一次性创业补贴发放: pays a matched subsidy once (4203: no such eligibility; 4202: paid).
    public struct SubsidyPayment: NativeRequestBody, Equatable {
        public static let action = "CYBTFF"
        public var aab998: String
        public var zgbh: String
        public var btje: Int
        public init(aab998: String, zgbh: String, btje: Int) { self.aab998 = aab998; self.zgbh = zgbh; self.btje = btje }
    }

    public struct SubsidyPaymentResult: Codable, Sendable, Equatable {
        /// 发放编号
        public var ffbh: String
        /// 发放日期 (yyyyMMdd)
        public var ffrq: String
    }

    /// ZCGZ 政策兑现结果告知: tells the enterprise the subsidy was paid (4204: not paid).
    public struct SubsidyNotice: NativeRequestBody, Equatable {
        public static let action = "ZCGZ"
        public var aab998: String
        public var zgbh: String
        public var ffbh: String
        public init(aab998: String, zgbh: String, ffbh: String) { self.aab998 = aab998; self.zgbh = zgbh; self.ffbh = ffbh }
    }

    public struct SubsidyNoticeResult: Codable, Sendable, Equatable {
        /// 告知书编号
        public var gzsbh: String
    }

    public struct Subsidy: Codable, Sendable, Equatable {
        public var zgbh: String
        public var btje: Int
        public var ffbh: String?
    }

    public struct Books: Codable, Sendable, Equatable {
        /// USCC → 一次性创业补贴 (optional, so books written before it existed still decode)
        public var subsidies: [String: Subsidy]? = nil
        /// USCC → 单位编号 of the employer's current registration
        public var employers: [String: String] = [:]
        /// 单位编号 → USCC, ended registrations included
        public var holders: [String: String] = [:]
        /// 单位编号 → 终止日期 of ended registrations
        public var ended: [String: String] = [:]
        public var sequence: [String: Int] = [:]
    }

    public static var emptyBooks: Books { Books() }

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case EmployerRegistration.action: with(EmployerRegistration.self, request, meta) { register($0, meta, &books, now) }
        case EmployerDeregistration.action: with(EmployerDeregistration.self, request, meta) { deregister($0, meta, &books, now) }
        case SubsidyMatch.action: with(SubsidyMatch.self, request, meta) { match($0, meta, &books, now) }
        case SubsidyPayment.action: with(SubsidyPayment.self, request, meta) { pay($0, meta, &books, now) }
        case SubsidyNotice.action: with(SubsidyNotice.self, request, meta) { notify($0, meta, &books, now) }
        default: unknownAction(meta)
        }
    }

    func register(_ r: EmployerRegistration, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(r.aab998) } catch { return reject(meta, "4101", "统一社会信用代码无效: \(error)", field: "aab998") }
        if let existing = books.employers[r.aab998] {
            return reject(meta, "4102", "单位已参保登记，单位编号 \(existing)", field: "aab998")
        }
        guard !r.aab004.isEmpty else { return reject(meta, "4103", "单位名称为空", field: "aab004") }
        guard let region = reference.regions[r.aab301] else { return reject(meta, "4104", "行政区划代码无效", field: "aab301") }
        guard !r.aab013.isEmpty else { return reject(meta, "4105", "法定代表人姓名为空", field: "aab013") }
        guard !r.aae140.isEmpty else { return reject(meta, "4106", "未选择险种", field: "aae140") }
        for (i, t) in r.aae140.enumerated() where Self.insuranceTypes[t] == nil {
            return reject(meta, "4106", "险种类型 \(t) 无效", field: "aae140[\(i)]")
        }
        guard r.yjcbrs >= 0 else { return reject(meta, "4107", "预计参保人数不能为负", field: "yjcbrs") }
        let seq = books.sequence[r.aab301, default: 0] + 1
        books.sequence[r.aab301] = seq
        let number = r.aab301 + String(format: "%06d", seq)
        books.employers[r.aab998] = number
        books.holders[number] = r.aab998
        let result = EmployerRegistrationResult(aab001: number, aae030: CST.day(now, separator: ""), aae140: r.aae140,
                                                jbjg: "\(region.locality)社会保险事业管理中心")
        return complete(meta, result, effects: [EffectDraft(kind: "employer-registered", key: number, data: ["aab998": r.aab998])].noting(usccCheck: usccCheck))
    }

    /// Unknown or already ended → success, no effect (with the first 终止日期 when there was one).
    /// Once ended, the employer may register again and gets a new 单位编号.
    func deregister(_ r: EmployerDeregistration, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let uscc = books.holders[r.aab001], books.ended[r.aab001] == nil else {
            let day = books.ended[r.aab001] ?? CST.day(now, separator: "")
            return complete(meta, EmployerDeregistrationResult(aab001: r.aab001, aae031: day), effects: [])
        }
        let day = CST.day(now, separator: "")
        books.ended[r.aab001] = day
        books.employers[uscc] = nil
        return complete(meta, EmployerDeregistrationResult(aab001: r.aab001, aae031: day),
                        effects: [EffectDraft(kind: "employer-deregistered", key: r.aab001, data: ["aab998": uscc, "zxyy": r.zxyy])])
    }

    func match(_ r: SubsidyMatch, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard books.employers[r.aab998] != nil else { return reject(meta, "4201", "单位未参保登记，不符合一次性创业补贴条件", field: "aab998") }
        if let had = books.subsidies?[r.aab998] {
            guard had.ffbh == nil else { return reject(meta, "4202", "已享受一次性创业补贴（发放编号 \(had.ffbh!)）", field: "aab998") }
            return complete(meta, SubsidyMatchResult(zgbh: had.zgbh, btje: had.btje), effects: [])
        }
        let zgbh = "CYBT" + String(format: "%08d", (books.subsidies?.count ?? 0) + 1)
        books.subsidies = (books.subsidies ?? [:]).merging([r.aab998: Subsidy(zgbh: zgbh, btje: Self.startupSubsidyYuan, ffbh: nil)]) { _, b in b }
        return complete(meta, SubsidyMatchResult(zgbh: zgbh, btje: Self.startupSubsidyYuan),
                        effects: [EffectDraft(kind: "subsidy-matched", key: zgbh, data: ["aab998": r.aab998])])
    }

    func pay(_ r: SubsidyPayment, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let s = books.subsidies?[r.aab998], s.zgbh == r.zgbh else { return reject(meta, "4203", "资格编号不存在", field: "zgbh") }
        guard s.ffbh == nil else { return reject(meta, "4202", "补贴已发放（发放编号 \(s.ffbh!)）", field: "zgbh") }
        guard r.btje == s.btje else { return reject(meta, "4205", "发放金额与核定金额不符", field: "btje") }
        let ffbh = "FF" + s.zgbh.dropFirst(4)
        books.subsidies?[r.aab998]?.ffbh = ffbh
        return complete(meta, SubsidyPaymentResult(ffbh: ffbh, ffrq: CST.day(now, separator: "")),
                        effects: [EffectDraft(kind: "subsidy-paid", key: ffbh, data: ["aab998": r.aab998, "btje": String(s.btje)])])
    }

    func notify(_ r: SubsidyNotice, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let s = books.subsidies?[r.aab998], s.zgbh == r.zgbh, s.ffbh == r.ffbh else {
            return reject(meta, "4204", "补贴未发放，不能告知", field: "ffbh")
        }
        return complete(meta, SubsidyNoticeResult(gzsbh: "GZ" + r.ffbh.dropFirst(2)),
                        effects: [EffectDraft(kind: "benefit-notified", key: r.ffbh, data: ["aab998": r.aab998])])
    }
}
