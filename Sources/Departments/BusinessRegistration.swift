import Foundation

/// 市场监管 (market regulation): name self-declaration and establishment registration.
/// Native vocabulary: pinyin abbreviations as in provincial 企业登记 systems.
public struct BusinessRegistration: DepartmentModel {
    public static let agency = Agency.businessRegistration
    public static let successCode = "00"
    public static let formatErrorCode = "E1001"
    public static let unknownActionCode = "E1002"
    public static let transientCodes = ["E9001", "E9002"]
    public static let conflictCode = "E9101"
    public static let manualReviewCode = "E4001"
    public static let typicalLatency: [String: LatencyDistribution] = [
        NameReservation.action: LatencyDistribution(min: 1, mode: 3, max: 15),
        Establishment.action: LatencyDistribution(min: 10, mode: 30, max: 120),
    ]

    public let reference: ReferenceData
    public let rules: NameRules
    /// Days (of virtual time) a reserved name is held (名称保留期).
    public let reservationDays: Int

    public init(reference: ReferenceData, reservationDays: Int = 60) {
        self.reference = reference
        rules = NameRules(reference: reference)
        self.reservationDays = reservationDays
    }

    // MARK: native messages

    public struct RequestEnvelope: NativeRequestEnvelope {
        /// 请求流水号
        public var qqlsh: String
        /// 业务类型: MCSB 名称自主申报, SLDJ 设立登记
        public var ywlx: String
        /// 外部业务号 (saga id)
        public var wbywh: String
        /// 外部环节号 (step id)
        public var wbhjh: String

        public init(meta: RequestMeta) {
            qqlsh = meta.requestId; ywlx = meta.action; wbywh = meta.sagaId; wbhjh = meta.step
        }
        public var meta: RequestMeta { RequestMeta(requestId: qqlsh, sagaId: wbywh, step: wbhjh, action: ywlx) }
    }

    public struct ReplyEnvelope: NativeReplyEnvelope {
        public var qqlsh: String
        public var ywlx: String
        public var wbywh: String
        public var wbhjh: String
        /// 结果代码: 00 成功, E1xxx 报文, E2xxx 名称, E3xxx 设立, E4xxx 人工核查, E9xxx 系统
        public var jgdm: String
        /// 结果描述
        public var jgms: String
        /// 出错字段
        public var cwzd: String?

        public init(meta: RequestMeta, code: String, message: String, field: String?) {
            qqlsh = meta.requestId; ywlx = meta.action; wbywh = meta.sagaId; wbhjh = meta.step
            jgdm = code; jgms = message; cwzd = field
        }
    }

    /// MCSB 名称自主申报: reserve an enterprise name.
    public struct NameReservation: NativeRequestBody, Equatable {
        public static let action = "MCSB"
        /// 行政区划代码 of the registration authority
        public var xzqhdm: String
        /// 企业名称
        public var qymc: String
        /// 字号
        public var zh: String
        /// 行业表述
        public var hyms: String
        /// 组织形式
        public var zzxs: String
        /// 行业代码 (GB/T 4754, with section letter)
        public var hydm: String
        /// 企业类型 (1100 有限责任公司, 1200 股份有限公司, 4540 个人独资企业, 4530 合伙企业, 9600 个体工商户)
        public var qylx: String

        public init(xzqhdm: String, qymc: String, zh: String, hyms: String, zzxs: String, hydm: String, qylx: String) {
            self.xzqhdm = xzqhdm; self.qymc = qymc; self.zh = zh; self.hyms = hyms; self.zzxs = zzxs
            self.hydm = hydm; self.qylx = qylx
        }
    }

    public struct NameReservationResult: Codable, Sendable, Equatable {
        /// 名称保留号
        public var mcblh: String
        public var qymc: String
        /// 保留期至 (yyyy-MM-dd, inclusive)
        public var blqz: String
    }

    public struct Person: Codable, Sendable, Equatable {
        /// 姓名
        public var xm: String
        /// 证件类型: 10 居民身份证
        public var zjlx: String
        /// 证件号码
        public var zjhm: String
        /// 移动电话 (legal representative only)
        public var yddh: String?

        public init(xm: String, zjlx: String = "10", zjhm: String, yddh: String? = nil) {
            self.xm = xm; self.zjlx = zjlx; self.zjhm = zjhm; self.yddh = yddh
        }
    }

    public struct Shareholder: Codable, Sendable, Equatable {
        public var xm: String
        public var zjlx: String
        public var zjhm: String
        /// 认缴出资额 (元)
        public var rjcze: Int

        public init(xm: String, zjlx: String = "10", zjhm: String, rjcze: Int) {
            self.xm = xm; self.zjlx = zjlx; self.zjhm = zjhm; self.rjcze = rjcze
        }
    }

    /// SLDJ 设立登记: register the enterprise under a reserved name.
    public struct Establishment: NativeRequestBody, Equatable {
        public static let action = "SLDJ"
        /// 名称保留号
        public var mcblh: String
        public var qymc: String
        public var xzqhdm: String
        public var qylx: String
        public var hydm: String
        /// 注册资本 (元)
        public var zczb: Int
        /// 住所
        public var zs: String
        /// 经营范围
        public var jyfw: String
        /// 法定代表人
        public var fddbr: Person
        /// 股东信息
        public var gdxx: [Shareholder]

        public init(mcblh: String, qymc: String, xzqhdm: String, qylx: String, hydm: String, zczb: Int,
                    zs: String, jyfw: String, fddbr: Person, gdxx: [Shareholder]) {
            self.mcblh = mcblh; self.qymc = qymc; self.xzqhdm = xzqhdm; self.qylx = qylx; self.hydm = hydm
            self.zczb = zczb; self.zs = zs; self.jyfw = jyfw; self.fddbr = fddbr; self.gdxx = gdxx
        }
    }

    /// 电子营业执照
    public struct ELicence: Codable, Sendable, Equatable {
        /// 执照编号
        public var zzbh: String
        /// 发照日期 (yyyy-MM-dd)
        public var fzrq: String
        /// 验证码 (8 characters)
        public var yzm: String
        /// 二维码内容
        public var ewmnr: String
    }

    public struct EstablishmentResult: Codable, Sendable, Equatable {
        /// 统一社会信用代码
        public var tyshxydm: String
        public var qymc: String
        /// 成立日期 (yyyy-MM-dd)
        public var clrq: String
        /// 登记机关
        public var djjg: String
        /// 电子营业执照
        public var dzyyzz: ELicence
    }

    // MARK: books

    public struct Reservation: Codable, Sendable, Equatable {
        public var number: String
        public var region: String
        public var name: String
        public var key: String
        public var entityType: String
        public var expiresAt: Date
        public var usedBy: String?
    }

    public struct Enterprise: Codable, Sendable, Equatable {
        public var uscc: String
        public var name: String
        public var region: String
        public var licenceNumber: String
        public var established: String
    }

    public struct Books: Codable, Sendable, Equatable {
        public var names = NameRegistry()
        public var reservations: [String: Reservation] = [:]
        public var enterprises: [String: Enterprise] = [:]
        /// Per region: reservations issued, enterprises registered.
        public var reservationSequence: [String: Int] = [:]
        public var registrationSequence: [String: Int] = [:]
    }

    public static var emptyBooks: Books { Books() }

    // MARK: logic

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case NameReservation.action: with(NameReservation.self, request, meta) { reserve($0, meta, &books, now) }
        case Establishment.action: with(Establishment.self, request, meta) { establish($0, meta, &books, now) }
        default: unknownAction(meta)
        }
    }

    func reserve(_ r: NameReservation, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let type = EntityType(registrationCode: r.qylx) else {
            return reject(meta, "E2004", "unknown 企业类型 \(r.qylx)", field: "qylx")
        }
        let name = EnterpriseName(fullName: r.qymc, tradeName: r.zh, industryWord: r.hyms, organizationForm: r.zzxs)
        if let v = rules.violations(of: name, region: r.xzqhdm, entityType: type).first {
            let (code, field): (String, String) = switch v.rule {
            case .unknownRegion: ("E2006", "xzqhdm")
            case .structure: ("E2002", "qymc")
            case .tradeName: ("E2003", "zh")
            case .industryWord: ("E2002", "hyms")
            case .forbiddenWord: ("E2001", v.part == .tradeName ? "zh" : "hyms")
            case .organizationForm: ("E2004", "zzxs")
            }
            return reject(meta, code, v.message, field: field)
        }
        let key = name.uniquenessKey(region: r.xzqhdm)
        if let holder = books.names.holder(of: key, at: now) {
            return reject(meta, "E2005", "与\(holder.registered ? "已登记" : "保留期内")名称 \(holder.fullName) 字号和行业相同", field: "qymc")
        }
        let seq = books.reservationSequence[r.xzqhdm, default: 0] + 1
        books.reservationSequence[r.xzqhdm] = seq
        let number = "\(r.xzqhdm)MC\(CST.year(now))" + String(format: "%06d", seq)
        let lastDay = CST.addingDays(reservationDays, to: now)
        books.names.reserve(key: key, fullName: r.qymc, reservation: number, until: lastDay)
        books.reservations[number] = Reservation(number: number, region: r.xzqhdm, name: r.qymc, key: key,
                                                 entityType: r.qylx, expiresAt: lastDay, usedBy: nil)
        let until = CST.day(CST.addingDays(-1, to: lastDay))
        return complete(meta, NameReservationResult(mcblh: number, qymc: r.qymc, blqz: until),
                        effects: [EffectDraft(kind: "name-reserved", key: number, data: ["qymc": r.qymc, "blqz": until])])
    }

    func establish(_ r: Establishment, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let reservation = books.reservations[r.mcblh] else {
            return reject(meta, "E3001", "名称保留号 \(r.mcblh) 不存在", field: "mcblh")
        }
        if let used = reservation.usedBy {
            return reject(meta, "E3006", "名称保留号已用于设立 \(used)", field: "mcblh")
        }
        guard reservation.expiresAt > now else {
            return reject(meta, "E3002", "名称保留已于 \(CST.day(CST.addingDays(-1, to: reservation.expiresAt))) 到期", field: "mcblh")
        }
        guard reservation.name == r.qymc, reservation.region == r.xzqhdm else {
            return reject(meta, "E3003", "企业名称或登记机关与名称保留 \(reservation.name) 不一致", field: "qymc")
        }
        guard let type = EntityType(registrationCode: r.qylx), r.qylx == reservation.entityType else {
            return reject(meta, "E3007", "企业类型 \(r.qylx) 与名称保留不一致", field: "qylx")
        }
        for (field, person) in [("fddbr", r.fddbr)] + r.gdxx.enumerated().map({ ("gdxx[\($0.offset)]", Person(xm: $0.element.xm, zjlx: $0.element.zjlx, zjhm: $0.element.zjhm)) }) {
            guard person.zjlx == "10" else { return reject(meta, "E3004", "仅支持居民身份证 (证件类型 10)", field: "\(field).zjlx") }
            do { try ResidentID.validate(person.zjhm) } catch {
                return reject(meta, "E3004", "证件号码无效: \(error)", field: "\(field).zjhm")
            }
        }
        if let phone = r.fddbr.yddh, !MobilePhone.isValid(phone) {
            return reject(meta, "E3008", "移动电话无效", field: "fddbr.yddh")
        }
        guard r.zczb > 0, !r.gdxx.isEmpty, r.gdxx.map(\.rjcze).reduce(0, +) == r.zczb else {
            return reject(meta, "E3005", "注册资本须为正且等于股东认缴出资额之和", field: "zczb")
        }
        guard let region = reference.regions[r.xzqhdm] else {
            return reject(meta, "E2006", "unknown division \(r.xzqhdm)", field: "xzqhdm")
        }
        let seq = books.registrationSequence[r.xzqhdm, default: 0] + 1
        books.registrationSequence[r.xzqhdm] = seq
        // Spread the organization code over the region's sequence space, deterministically.
        let uscc = USCC.generate(region: r.xzqhdm, sequence: (seq * 7_919 + 104_729) % 887_503_681, category: type.usccCategory)
        let day = CST.day(now)
        let licenceNumber = "\(r.xzqhdm)\(CST.year(now))" + String(format: "%08d", seq)
        let codeHash = StableRandom.hash(uscc + day, seed: 0)
        let verification = String((0..<8).map { USCC.alphabet[Int((codeHash >> (UInt64($0) * 5)) % 31)] })
        let licence = ELicence(zzbh: licenceNumber, fzrq: day, yzm: verification,
                               ewmnr: "yishi://e-licence/\(uscc)?yzm=\(verification)")
        books.reservations[r.mcblh]?.usedBy = uscc
        books.names.markRegistered(key: reservation.key)
        books.enterprises[uscc] = Enterprise(uscc: uscc, name: r.qymc, region: r.xzqhdm, licenceNumber: licenceNumber, established: day)
        let result = EstablishmentResult(tyshxydm: uscc, qymc: r.qymc, clrq: day, djjg: "\(region.locality)市场监督管理局", dzyyzz: licence)
        return complete(meta, result, effects: [
            EffectDraft(kind: "enterprise-registered", key: uscc, data: ["qymc": r.qymc, "mcblh": r.mcblh]),
            EffectDraft(kind: "e-licence-issued", key: licenceNumber, data: ["tyshxydm": uscc]),
        ])
    }
}
