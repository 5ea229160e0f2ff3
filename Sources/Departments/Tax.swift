import Foundation

/// 税务 (electronic tax bureau): taxpayer registration (新办纳税人信息确认), invoice type
/// approval (票种核定), tax UKey issuance (税务UKey发放) and their compensations (注销税务登记,
/// 发票缴销及UKey注销). Native vocabulary: pinyin abbreviations as in 金税 systems.
public struct Tax: DepartmentModel {
    /// ZXSW and ZFUK find what to undo by saga and step when the hub sends no key.
    public static let undoTargets: [String: UndoTarget] = [
        Deregistration.action: UndoTarget(field: "nsrsbh", effect: "taxpayer-registered"),
        UKeyRevocation.action: UndoTarget(field: "sbbh", effect: "tax-ukey-issued"),
    ]

    public static let agency = Agency.tax
    public static let successCode = "0000"
    public static let formatErrorCode = "1001"
    public static let unknownActionCode = "1002"
    public static let transientCodes = ["9001", "9002"]
    public static let conflictCode = "9101"
    public static let manualReviewCode = "2101"
    public static let typicalLatency: [String: LatencyDistribution] = [
        Registration.action: LatencyDistribution(min: 5, mode: 15, max: 60),
        InvoiceQuota.action: LatencyDistribution(min: 5, mode: 20, max: 60),
        UKeyIssuance.action: LatencyDistribution(min: 10, mode: 30, max: 90),
        Deregistration.action: LatencyDistribution(min: 5, mode: 15, max: 60),
        UKeyRevocation.action: LatencyDistribution(min: 5, mode: 10, max: 30),
    ]

    /// 发票种类代码 → name.
    public static let invoiceTypes: [String: String] = [
        "004": "增值税专用发票", "007": "增值税普通发票", "026": "增值税电子普通发票", "028": "增值税电子专用发票",
        "81": "电子发票（增值税专用发票）", "82": "电子发票（普通发票）",
    ]
    /// Application-form invoice types → 发票种类代码.
    public static let formInvoiceTypes: [String: String] = [
        "vat-special-paper": "004", "vat-general-paper": "007", "vat-general-electronic": "026",
        "vat-special-electronic": "028", "digital-special": "81", "digital-general": "82",
    ]
    /// Highest single-invoice limit a new taxpayer gets without on-site review (元).
    public static let newTaxpayerLimit = 100_000

    public let reference: ReferenceData

    public init(reference: ReferenceData) { self.reference = reference }

    public struct RequestEnvelope: NativeRequestEnvelope {
        /// 交易流水号
        public var jylsh: String
        /// 交易类型: SWDJ, PZHD, UKFF, ZXSW, ZFUK
        public var jylx: String
        /// 关联业务编号 (saga id)
        public var glywbh: String
        /// 关联环节编号 (step id)
        public var glhjbh: String

        public init(meta: RequestMeta) {
            jylsh = meta.requestId; jylx = meta.action; glywbh = meta.sagaId; glhjbh = meta.step
        }
        public var meta: RequestMeta { RequestMeta(requestId: jylsh, sagaId: glywbh, step: glhjbh, action: jylx) }
    }

    public struct ReplyEnvelope: NativeReplyEnvelope {
        public var jylsh: String
        public var jylx: String
        public var glywbh: String
        public var glhjbh: String
        /// 返回代码: 0000 成功; 1xxx 报文; 2xxx 业务; 9xxx 系统 (可重试)
        public var fhdm: String
        /// 返回信息
        public var fhxx: String
        /// 错误字段
        public var cwzd: String?

        public init(meta: RequestMeta, code: String, message: String, field: String?) {
            jylsh = meta.requestId; jylx = meta.action; glywbh = meta.sagaId; glhjbh = meta.step
            fhdm = code; fhxx = message; cwzd = field
        }
    }

    /// SWDJ: register a new taxpayer by USCC.
    public struct Registration: NativeRequestBody, Equatable {
        public static let action = "SWDJ"
        /// 纳税人识别号 (= USCC)
        public var nsrsbh: String
        /// 纳税人名称
        public var nsrmc: String
        public var xzqhdm: String
        /// 行业代码
        public var hydm: String
        /// 登记注册类型: 173 私营有限责任公司, 174 私营股份有限公司, 171 私营独资企业, 172 私营合伙企业, 410 个体工商户
        public var djzclx: String
        /// 增值税纳税人类型: 1 一般纳税人, 2 小规模纳税人
        public var zzsnsrlx: String
        /// 法定代表人姓名
        public var fddbrxm: String
        /// 法定代表人身份证件号码
        public var fddbrsfzjhm: String
        /// 生产经营地址
        public var scjydz: String

        public init(nsrsbh: String, nsrmc: String, xzqhdm: String, hydm: String, djzclx: String, zzsnsrlx: String,
                    fddbrxm: String, fddbrsfzjhm: String, scjydz: String) {
            self.nsrsbh = nsrsbh; self.nsrmc = nsrmc; self.xzqhdm = xzqhdm; self.hydm = hydm; self.djzclx = djzclx
            self.zzsnsrlx = zzsnsrlx; self.fddbrxm = fddbrxm; self.fddbrsfzjhm = fddbrsfzjhm; self.scjydz = scjydz
        }
    }

    public static let registrationTypes = ["171", "172", "173", "174", "410"]

    public struct RegistrationResult: Codable, Sendable, Equatable {
        public var nsrsbh: String
        /// 登记序号 (20 digits)
        public var djxh: String
        /// 主管税务机关代码 (11 digits)
        public var zgswjgdm: String
        /// 主管税务机关名称
        public var zgswjgmc: String
        /// 登记日期 (yyyy-MM-dd)
        public var djrq: String
    }

    public struct InvoiceItem: Codable, Sendable, Equatable {
        /// 发票种类代码
        public var fpzldm: String
        /// 单张最高开票限额 (元)
        public var dzkpxe: Int

        public init(fpzldm: String, dzkpxe: Int) { self.fpzldm = fpzldm; self.dzkpxe = dzkpxe }
    }

    /// PZHD 票种核定: approve the invoice types a taxpayer may issue.
    public struct InvoiceQuota: NativeRequestBody, Equatable {
        public static let action = "PZHD"
        public var nsrsbh: String
        public var djxh: String
        /// 票种信息
        public var pzxx: [InvoiceItem]

        public init(nsrsbh: String, djxh: String, pzxx: [InvoiceItem]) {
            self.nsrsbh = nsrsbh; self.djxh = djxh; self.pzxx = pzxx
        }
    }

    public struct ApprovedInvoice: Codable, Sendable, Equatable {
        public var fpzldm: String
        /// 发票种类名称
        public var fpzlmc: String
        public var dzkpxe: Int
    }

    public struct InvoiceQuotaResult: Codable, Sendable, Equatable {
        /// 核定结果
        public var hdjg: [ApprovedInvoice]
        /// 核定日期
        public var hdrq: String
    }

    /// UKFF 税务UKey发放: issue the tax UKey (after 票种核定).
    public struct UKeyIssuance: NativeRequestBody, Equatable {
        public static let action = "UKFF"
        public var nsrsbh: String
        public var djxh: String

        public init(nsrsbh: String, djxh: String) { self.nsrsbh = nsrsbh; self.djxh = djxh }
    }

    public struct UKeyResult: Codable, Sendable, Equatable {
        /// 设备编号 (12 digits)
        public var sbbh: String
        /// 发放日期
        public var ffrq: String
    }

    /// ZXSW 注销税务登记信息: deregister a taxpayer (compensation of SWDJ).
    public struct Deregistration: NativeRequestBody, Equatable {
        public static let action = "ZXSW"
        public var nsrsbh: String
        /// 注销原因
        public var zxyy: String
        /// 缴款凭证号: the receipt of the payment that settled the taxpayer's arrears (清税); needed
        /// only when there are arrears.
        public var jkpzh: String?

        public init(nsrsbh: String, zxyy: String, jkpzh: String? = nil) { self.nsrsbh = nsrsbh; self.zxyy = zxyy; self.jkpzh = jkpzh }
    }

    /// 清税 refused: the taxpayer owes tax and no payment receipt came with the request. The
    /// adapter turns it into 容缺 (`tax-payment-receipt`): the applicant pays and hands in the receipt.
    public static let arrearsCode = "2201"

    public struct DeregistrationResult: Codable, Sendable, Equatable {
        public var nsrsbh: String
        /// 注销日期 (yyyy-MM-dd)
        public var zxrq: String
    }

    /// ZFUK 发票缴销及UKey注销: cancel the approved invoice types and revoke the UKey
    /// (compensation of PZHD + UKFF).
    public struct UKeyRevocation: NativeRequestBody, Equatable {
        public static let action = "ZFUK"
        /// 设备编号
        public var sbbh: String
        /// 注销原因
        public var zxyy: String

        public init(sbbh: String, zxyy: String) { self.sbbh = sbbh; self.zxyy = zxyy }
    }

    public struct UKeyRevocationResult: Codable, Sendable, Equatable {
        public var sbbh: String
        /// 注销日期 (yyyy-MM-dd)
        public var zxrq: String
    }

    public struct Taxpayer: Codable, Sendable, Equatable {
        public var nsrsbh: String
        public var djxh: String
        public var invoices: [ApprovedInvoice]
        /// The UKey in use (nil before UKFF and after ZFUK).
        public var ukey: String?
        public var deregisteredOn: String?
        /// Unpaid tax in yuan (欠税); nil = none. A taxpayer with arrears is not cleared (清税)
        /// until a payment receipt (`jkpzh`) comes with the request.
        public var arrears: Int? = nil
    }

    public struct UKey: Codable, Sendable, Equatable {
        public var sbbh: String
        public var nsrsbh: String
        public var revokedOn: String?
    }

    public struct Books: Codable, Sendable, Equatable {
        /// nsrsbh → taxpayer
        public var taxpayers: [String: Taxpayer] = [:]
        /// 设备编号 → UKey, revoked ones included
        public var ukeys: [String: UKey] = [:]
        public var registrationSequence = 0
        public var ukeySequence = 0
    }

    public static var emptyBooks: Books { Books() }

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case Registration.action: with(Registration.self, request, meta) { register($0, meta, &books, now) }
        case InvoiceQuota.action: with(InvoiceQuota.self, request, meta) { approveInvoices($0, meta, &books, now) }
        case UKeyIssuance.action: with(UKeyIssuance.self, request, meta) { issueUKey($0, meta, &books, now) }
        case Deregistration.action: with(Deregistration.self, request, meta) { deregister($0, meta, &books, now) }
        case UKeyRevocation.action: with(UKeyRevocation.self, request, meta) { revokeUKey($0, meta, &books, now) }
        default: unknownAction(meta)
        }
    }

    func register(_ r: Registration, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(r.nsrsbh) } catch { return reject(meta, "2001", "纳税人识别号无效: \(error)", field: "nsrsbh") }
        guard books.taxpayers[r.nsrsbh] == nil else { return reject(meta, "2002", "纳税人已办理登记", field: "nsrsbh") }
        guard !r.nsrmc.isEmpty else { return reject(meta, "2010", "纳税人名称为空", field: "nsrmc") }
        guard let region = reference.regions[r.xzqhdm] else { return reject(meta, "2011", "行政区划代码无效", field: "xzqhdm") }
        guard Self.registrationTypes.contains(r.djzclx) else { return reject(meta, "2012", "登记注册类型无效", field: "djzclx") }
        guard ["1", "2"].contains(r.zzsnsrlx) else { return reject(meta, "2013", "增值税纳税人类型无效", field: "zzsnsrlx") }
        do { try ResidentID.validate(r.fddbrsfzjhm, asOf: now) } catch {
            return reject(meta, "2009", "法定代表人身份证件号码无效: \(error)", field: "fddbrsfzjhm")
        }
        books.registrationSequence += 1
        let djxh = "101" + r.xzqhdm + String(format: "%011d", books.registrationSequence)
        books.taxpayers[r.nsrsbh] = Taxpayer(nsrsbh: r.nsrsbh, djxh: djxh, invoices: [], ukey: nil, deregisteredOn: nil)
        let result = RegistrationResult(nsrsbh: r.nsrsbh, djxh: djxh, zgswjgdm: "1\(r.xzqhdm)0000",
                                        zgswjgmc: "国家税务总局\(region.locality)税务局", djrq: CST.day(now))
        return complete(meta, result, effects: [EffectDraft(kind: "taxpayer-registered", key: r.nsrsbh, data: ["djxh": djxh])].noting(usccCheck: usccCheck))
    }

    /// Runs `run` on the registered taxpayer whose 登记序号 is `djxh`, or rejects.
    func withTaxpayer(_ found: Taxpayer?, djxh: String, _ meta: RequestMeta, _ run: (Taxpayer) -> Decision) -> Decision {
        guard let t = found, t.deregisteredOn == nil else { return reject(meta, "2003", "纳税人未办理登记或已注销", field: "nsrsbh") }
        guard t.djxh == djxh else { return reject(meta, "2004", "登记序号与纳税人不符", field: "djxh") }
        return run(t)
    }

    func approveInvoices(_ r: InvoiceQuota, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        withTaxpayer(books.taxpayers[r.nsrsbh], djxh: r.djxh, meta) { t in
            guard !r.pzxx.isEmpty else { return reject(meta, "2005", "未申请票种", field: "pzxx") }
            var approved: [ApprovedInvoice] = []
            for (i, item) in r.pzxx.enumerated() {
                guard let name = Self.invoiceTypes[item.fpzldm] else {
                    return reject(meta, "2005", "发票种类代码 \(item.fpzldm) 无效", field: "pzxx[\(i)].fpzldm")
                }
                guard (1...Self.newTaxpayerLimit).contains(item.dzkpxe) else {
                    return reject(meta, "2006", "新办纳税人单张最高开票限额不得超过 \(Self.newTaxpayerLimit) 元", field: "pzxx[\(i)].dzkpxe")
                }
                approved.append(ApprovedInvoice(fpzldm: item.fpzldm, fpzlmc: name, dzkpxe: item.dzkpxe))
            }
            books.taxpayers[t.nsrsbh]?.invoices = approved
            return complete(meta, InvoiceQuotaResult(hdjg: approved, hdrq: CST.day(now)),
                            effects: [EffectDraft(kind: "invoice-types-approved", key: t.nsrsbh,
                                                  data: ["fpzldm": approved.map(\.fpzldm).joined(separator: ",")])])
        }
    }

    func issueUKey(_ r: UKeyIssuance, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        withTaxpayer(books.taxpayers[r.nsrsbh], djxh: r.djxh, meta) { t in
            guard !t.invoices.isEmpty else { return reject(meta, "2007", "未完成票种核定，不能发放税务UKey", field: "nsrsbh") }
            guard t.ukey == nil else { return reject(meta, "2008", "税务UKey已发放", field: "nsrsbh") }
            books.ukeySequence += 1
            let device = "6612" + String(format: "%08d", books.ukeySequence)
            books.taxpayers[t.nsrsbh]?.ukey = device
            books.ukeys[device] = UKey(sbbh: device, nsrsbh: t.nsrsbh, revokedOn: nil)
            return complete(meta, UKeyResult(sbbh: device, ffrq: CST.day(now)),
                            effects: [EffectDraft(kind: "tax-ukey-issued", key: device, data: ["nsrsbh": t.nsrsbh])])
        }
    }

    // Compensations never fail on what is already undone: unknown or already undone → success,
    // no effect, with the first date when there was one.

    func deregister(_ r: Deregistration, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let t = books.taxpayers[r.nsrsbh], t.deregisteredOn == nil else {
            let day = books.taxpayers[r.nsrsbh]?.deregisteredOn ?? CST.day(now)
            return complete(meta, DeregistrationResult(nsrsbh: r.nsrsbh, zxrq: day), effects: [])
        }
        var effects: [EffectDraft] = []
        if let owed = t.arrears, owed > 0 {
            guard let receipt = r.jkpzh, !receipt.isEmpty else {
                return reject(meta, Self.arrearsCode, "纳税人存在欠税 \(owed) 元，缴清后凭缴款凭证办理清税", field: "nsrsbh")
            }
            books.taxpayers[r.nsrsbh]?.arrears = 0
            effects.append(EffectDraft(kind: "arrears-paid", key: r.nsrsbh, data: ["jkpzh": receipt, "yuan": String(owed)]))
        }
        let day = CST.day(now)
        books.taxpayers[r.nsrsbh]?.deregisteredOn = day
        return complete(meta, DeregistrationResult(nsrsbh: r.nsrsbh, zxrq: day),
                        effects: effects + [EffectDraft(kind: "taxpayer-deregistered", key: r.nsrsbh, data: ["djxh": t.djxh, "zxyy": r.zxyy])])
    }

    /// Revoking the UKey also cancels the approved invoice types (发票缴销), so the taxpayer
    /// goes back to before 票种核定: PZHD then UKFF issue a new key.
    func revokeUKey(_ r: UKeyRevocation, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let key = books.ukeys[r.sbbh], key.revokedOn == nil else {
            let day = books.ukeys[r.sbbh]?.revokedOn ?? CST.day(now)
            return complete(meta, UKeyRevocationResult(sbbh: r.sbbh, zxrq: day), effects: [])
        }
        let day = CST.day(now)
        let cancelled = books.taxpayers[key.nsrsbh]?.invoices.map(\.fpzldm) ?? []
        books.ukeys[r.sbbh]?.revokedOn = day
        books.taxpayers[key.nsrsbh]?.ukey = nil
        books.taxpayers[key.nsrsbh]?.invoices = []
        return complete(meta, UKeyRevocationResult(sbbh: r.sbbh, zxrq: day),
                        effects: [EffectDraft(kind: "tax-ukey-revoked", key: r.sbbh,
                                              data: ["nsrsbh": key.nsrsbh, "fpzldm": cancelled.joined(separator: ","), "zxyy": r.zxyy])])
    }
}
