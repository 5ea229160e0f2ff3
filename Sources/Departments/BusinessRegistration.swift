import Foundation

/// 市场监管 (market regulation): name self-declaration, establishment registration, permits
/// (食品经营许可, 食品备案, 公共场所卫生许可) and their compensations. Native vocabulary: pinyin
/// abbreviations as in provincial 企业登记 systems.
public struct BusinessRegistration: DepartmentModel {
    /// MCCX, ZXDJ and XKCX find what to undo by saga and step when the hub sends no key.
    public static let undoTargets: [String: UndoTarget] = [
        NameRelease.action: UndoTarget(field: "mcblh", effect: "name-reserved"),
        Deregistration.action: UndoTarget(field: "tyshxydm", effect: "enterprise-registered"),
        PermitRevocation.action: UndoTarget(field: "xkzbh", effect: "permit-issued"),
    ]

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
        NameRelease.action: LatencyDistribution(min: 1, mode: 2, max: 10),
        Deregistration.action: LatencyDistribution(min: 5, mode: 15, max: 60),
        PermitApplication.action: LatencyDistribution(min: 10, mode: 40, max: 120),
        PermitRevocation.action: LatencyDistribution(min: 2, mode: 5, max: 20),
    ]

    /// Materials (材料类型) an establishment registration needs when the request lists them.
    public static let establishmentMaterials = ["articles-of-association", "lease-contract", "id-copy-legal-representative"]

    /// A permit or filing this authority issues (许可类型 `xklx`).
    public struct PermitKind: Sendable, Equatable {
        public var title: String
        /// Years of validity; nil for a filing (备案), which does not expire.
        public var validityYears: Int?
        /// Materials the application needs when it lists them.
        public var materials: [String]
    }

    public static let permitKinds: [String: PermitKind] = [
        "SPJY": PermitKind(title: "食品经营许可证", validityYears: 5, materials: ["lease-contract", "premises-layout"]),
        "YBBA": PermitKind(title: "仅销售预包装食品备案", validityYears: nil, materials: ["lease-contract"]),
        "GGWS": PermitKind(title: "公共场所卫生许可证", validityYears: 4, materials: ["lease-contract", "premises-layout"]),
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
        /// 业务类型: MCSB 名称自主申报, SLDJ 设立登记, MCCX 名称保留撤销, ZXDJ 注销登记, XKSQ 许可申请, XKCX 许可注销
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
        /// 结果代码: 00 成功, E1xxx 报文, E2xxx 名称, E3xxx 设立, E4xxx 人工核查, E5xxx 许可, E9xxx 系统
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

    /// One entry of 材料清单 (`clqd`).
    public struct Material: Codable, Sendable, Equatable {
        /// 材料类型 (`lease-contract`, `premises-layout`, …)
        public var cllx: String
        /// 是否提交
        public var sftj: Bool

        public init(cllx: String, sftj: Bool) { self.cllx = cllx; self.sftj = sftj }
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
        /// 材料清单; when absent the materials are not checked.
        public var clqd: [Material]?

        public init(mcblh: String, qymc: String, xzqhdm: String, qylx: String, hydm: String, zczb: Int,
                    zs: String, jyfw: String, fddbr: Person, gdxx: [Shareholder], clqd: [Material]? = nil) {
            self.mcblh = mcblh; self.qymc = qymc; self.xzqhdm = xzqhdm; self.qylx = qylx; self.hydm = hydm
            self.zczb = zczb; self.zs = zs; self.jyfw = jyfw; self.fddbr = fddbr; self.gdxx = gdxx; self.clqd = clqd
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

    /// MCCX 名称保留撤销: release a reserved name (compensation of MCSB).
    public struct NameRelease: NativeRequestBody, Equatable {
        public static let action = "MCCX"
        public var mcblh: String
        /// 撤销原因
        public var cxyy: String

        public init(mcblh: String, cxyy: String) { self.mcblh = mcblh; self.cxyy = cxyy }
    }

    public struct NameReleaseResult: Codable, Sendable, Equatable {
        public var mcblh: String
        /// 撤销日期 (yyyy-MM-dd)
        public var cxrq: String
    }

    /// ZXDJ 注销登记: deregister an enterprise (compensation of SLDJ).
    public struct Deregistration: NativeRequestBody, Equatable {
        public static let action = "ZXDJ"
        public var tyshxydm: String
        /// 注销原因
        public var zxyy: String

        public init(tyshxydm: String, zxyy: String) { self.tyshxydm = tyshxydm; self.zxyy = zxyy }
    }

    public struct DeregistrationResult: Codable, Sendable, Equatable {
        public var tyshxydm: String
        /// 注销日期 (yyyy-MM-dd)
        public var zxrq: String
    }

    /// XKSQ 许可/备案申请: a permit or filing for an enterprise this authority registered.
    public struct PermitApplication: NativeRequestBody, Equatable {
        public static let action = "XKSQ"
        /// 许可类型: SPJY 食品经营许可证, YBBA 仅销售预包装食品备案, GGWS 公共场所卫生许可证
        public var xklx: String
        public var tyshxydm: String
        /// 企业名称, as registered
        public var qymc: String
        /// 经营场所
        public var jycs: String
        /// 法定代表人姓名
        public var fddbrxm: String
        /// 经营项目
        public var jyxm: String?
        /// 材料清单; when absent the materials are not checked.
        public var clqd: [Material]?

        public init(xklx: String, tyshxydm: String, qymc: String, jycs: String, fddbrxm: String,
                    jyxm: String? = nil, clqd: [Material]? = nil) {
            self.xklx = xklx; self.tyshxydm = tyshxydm; self.qymc = qymc; self.jycs = jycs
            self.fddbrxm = fddbrxm; self.jyxm = jyxm; self.clqd = clqd
        }
    }

    public struct PermitResult: Codable, Sendable, Equatable {
        /// 许可证编号 (备案编号 for YBBA)
        public var xkzbh: String
        public var xklx: String
        /// 发证日期 (yyyy-MM-dd)
        public var fzrq: String
        /// 有效期至 (yyyy-MM-dd); absent for a filing
        public var yxqz: String?
    }

    /// XKCX 许可注销: revoke a permit or filing (compensation of XKSQ).
    public struct PermitRevocation: NativeRequestBody, Equatable {
        public static let action = "XKCX"
        public var xkzbh: String
        /// 撤销原因
        public var cxyy: String

        public init(xkzbh: String, cxyy: String) { self.xkzbh = xkzbh; self.cxyy = cxyy }
    }

    public struct PermitRevocationResult: Codable, Sendable, Equatable {
        public var xkzbh: String
        /// 撤销日期 (yyyy-MM-dd)
        public var cxrq: String
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
        /// Day the reservation was released (MCCX, or ZXDJ of the enterprise that used it).
        public var releasedOn: String?
    }

    public struct Enterprise: Codable, Sendable, Equatable {
        public var uscc: String
        public var name: String
        public var region: String
        public var licenceNumber: String
        public var established: String
        /// 名称保留号 the enterprise was registered under.
        public var reservation: String
        public var deregisteredOn: String?
    }

    public struct Permit: Codable, Sendable, Equatable {
        public var number: String
        public var kind: String
        public var uscc: String
        public var issued: String
        public var revokedOn: String?
    }

    public struct Books: Codable, Sendable, Equatable {
        public var names = NameRegistry()
        public var reservations: [String: Reservation] = [:]
        public var enterprises: [String: Enterprise] = [:]
        /// 许可证编号 → permit
        public var permits: [String: Permit] = [:]
        /// `USCC|xklx` → the active (not revoked) permit of that type.
        public var activePermits: [String: String] = [:]
        /// Per region: reservations issued, enterprises registered; per `xklx|region`: permits issued.
        public var reservationSequence: [String: Int] = [:]
        public var registrationSequence: [String: Int] = [:]
        public var permitSequence: [String: Int] = [:]
    }

    public static var emptyBooks: Books { Books() }

    // MARK: logic

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case NameReservation.action: with(NameReservation.self, request, meta) { reserve($0, meta, &books, now) }
        case Establishment.action: with(Establishment.self, request, meta) { establish($0, meta, &books, now) }
        case NameRelease.action: with(NameRelease.self, request, meta) { release($0, meta, &books, now) }
        case Deregistration.action: with(Deregistration.self, request, meta) { deregister($0, meta, &books, now) }
        case PermitApplication.action: with(PermitApplication.self, request, meta) { issuePermit($0, meta, &books, now) }
        case PermitRevocation.action: with(PermitRevocation.self, request, meta) { revokePermit($0, meta, &books, now) }
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
        guard reservation.releasedOn == nil else {
            return reject(meta, "E3001", "名称保留号 \(r.mcblh) 已撤销", field: "mcblh")
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
            do { try ResidentID.validate(person.zjhm, asOf: now) } catch {
                return reject(meta, "E3004", "证件号码无效: \(error)", field: "\(field).zjhm")
            }
        }
        if let phone = r.fddbr.yddh, !MobilePhone.isValid(phone) {
            return reject(meta, "E3008", "移动电话无效", field: "fddbr.yddh")
        }
        // Amounts come from the request: summed with overflow checks, never trapping.
        if let i = CheckedArithmetic.overflowIndex(r.gdxx.map(\.rjcze)) {
            return reject(meta, "E3005", "注册资本 \(r.zczb) 须等于股东认缴出资额之和; 加上股东 \(i + 1) 的出资额 \(r.gdxx[i].rjcze) 后出资额之和超出可表示范围",
                          field: "gdxx[\(i)].rjcze")
        }
        guard r.zczb > 0, !r.gdxx.isEmpty, CheckedArithmetic.sum(r.gdxx.map(\.rjcze)) == r.zczb else {
            return reject(meta, "E3005", "注册资本须为正且等于股东认缴出资额之和", field: "zczb")
        }
        guard let region = reference.regions[r.xzqhdm] else {
            return reject(meta, "E2006", "unknown division \(r.xzqhdm)", field: "xzqhdm")
        }
        // Last: E3101 means everything else is in order once the materials are supplemented.
        if let missing = missingMaterials(r.clqd, required: Self.establishmentMaterials, meta) { return missing }
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
        books.enterprises[uscc] = Enterprise(uscc: uscc, name: r.qymc, region: r.xzqhdm, licenceNumber: licenceNumber,
                                             established: day, reservation: r.mcblh)
        let result = EstablishmentResult(tyshxydm: uscc, qymc: r.qymc, clrq: day, djjg: "\(region.locality)市场监督管理局", dzyyzz: licence)
        return complete(meta, result, effects: [
            EffectDraft(kind: "enterprise-registered", key: uscc, data: ["qymc": r.qymc, "mcblh": r.mcblh]),
            EffectDraft(kind: "e-licence-issued", key: licenceNumber, data: ["tyshxydm": uscc]),
        ])
    }

    /// The E3101 rejection when `clqd` lists a required material as not submitted or leaves it
    /// out; nil when complete or when `clqd` is absent (no material check).
    func missingMaterials(_ clqd: [Material]?, required: [String], _ meta: RequestMeta) -> Decision? {
        guard let clqd else { return nil }
        let missing = required.filter { type in !clqd.contains { $0.cllx == type && $0.sftj } }
        guard !missing.isEmpty else { return nil }
        let field = clqd.firstIndex { missing.contains($0.cllx) && !$0.sftj }.map { "clqd[\($0)].sftj" } ?? "clqd"
        let envelope = ReplyEnvelope(meta: meta, code: "E3101", message: "材料容缺，待补正: \(missing.joined(separator: ", "))", field: field)
        return Decision(reply: NativeJSON.encode(NativeMessage(envelope: envelope, body: MissingMaterials(qbcl: missing))),
                        outcome: .rejected(code: "E3101", field: field))
    }

    /// The body of an E3101 reply: 缺补材料, the material types still to be handed in.
    public struct MissingMaterials: Codable, Sendable, Equatable {
        public var qbcl: [String]
    }

    /// Frees the reservation's name for others (unless the name has since passed to another
    /// reservation) and marks the reservation released.
    func releaseName(_ reservation: Reservation, _ books: inout Books, on day: String) {
        books.names.release(key: reservation.key, reservation: reservation.number)
        books.reservations[reservation.number]?.releasedOn = day
    }

    func release(_ r: NameRelease, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        // A compensation never fails on what is already undone: unknown or released → success, no effect.
        guard let reservation = books.reservations[r.mcblh], reservation.releasedOn == nil else {
            let day = books.reservations[r.mcblh]?.releasedOn ?? CST.day(now)
            return complete(meta, NameReleaseResult(mcblh: r.mcblh, cxrq: day), effects: [])
        }
        if let used = reservation.usedBy {
            return reject(meta, "E3006", "名称保留号已用于设立 \(used)，请先注销登记", field: "mcblh")
        }
        let day = CST.day(now)
        releaseName(reservation, &books, on: day)
        return complete(meta, NameReleaseResult(mcblh: r.mcblh, cxrq: day),
                        effects: [EffectDraft(kind: "name-released", key: r.mcblh, data: ["qymc": reservation.name, "cxyy": r.cxyy])])
    }

    /// Deregistration also releases the name for good (the reservation it used is spent), so
    /// a later MCCX of that reservation succeeds with no effect.
    func deregister(_ r: Deregistration, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let enterprise = books.enterprises[r.tyshxydm], enterprise.deregisteredOn == nil else {
            let day = books.enterprises[r.tyshxydm]?.deregisteredOn ?? CST.day(now)
            return complete(meta, DeregistrationResult(tyshxydm: r.tyshxydm, zxrq: day), effects: [])
        }
        let day = CST.day(now)
        books.enterprises[r.tyshxydm]?.deregisteredOn = day
        var effects = [EffectDraft(kind: "enterprise-deregistered", key: r.tyshxydm, data: ["qymc": enterprise.name, "zxyy": r.zxyy])]
        if let reservation = books.reservations[enterprise.reservation], reservation.releasedOn == nil {
            releaseName(reservation, &books, on: day)
            effects.append(EffectDraft(kind: "name-released", key: reservation.number, data: ["qymc": reservation.name, "cxyy": r.zxyy]))
        }
        return complete(meta, DeregistrationResult(tyshxydm: r.tyshxydm, zxrq: day), effects: effects)
    }

    func issuePermit(_ r: PermitApplication, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let enterprise = books.enterprises[r.tyshxydm], enterprise.deregisteredOn == nil else {
            return reject(meta, "E5001", "统一社会信用代码 \(r.tyshxydm) 未在本机关登记或已注销", field: "tyshxydm")
        }
        guard enterprise.name == r.qymc else {
            return reject(meta, "E5002", "企业名称与登记名称 \(enterprise.name) 不一致", field: "qymc")
        }
        guard let kind = Self.permitKinds[r.xklx] else {
            return reject(meta, "E5003", "unknown 许可类型 \(r.xklx)", field: "xklx")
        }
        let activeKey = "\(r.tyshxydm)|\(r.xklx)"
        if let held = books.activePermits[activeKey] {
            return reject(meta, "E5004", "已持有有效的\(kind.title) \(held)", field: "xklx")
        }
        if let missing = missingMaterials(r.clqd, required: kind.materials, meta) { return missing }
        let region = enterprise.region
        let seq = books.permitSequence["\(r.xklx)|\(region)", default: 0] + 1
        books.permitSequence["\(r.xklx)|\(region)"] = seq
        let year = CST.year(now)
        let number = switch r.xklx {
        case "SPJY": "JY2" + region + String(format: "%07d", seq) // 2: 食品销售经营者
        case "YBBA": "YB" + region + String(format: "%02d%06d", year % 100, seq)
        default: "卫公证字〔\(year)〕第" + region + String(format: "%06d", seq) + "号"
        }
        let day = CST.day(now)
        // Valid to the day before the anniversary, like 保留期至.
        let until = kind.validityYears.map { CST.day(CST.addingDays(-1, to: CST.addingYears($0, to: now))) }
        books.permits[number] = Permit(number: number, kind: r.xklx, uscc: r.tyshxydm, issued: day, revokedOn: nil)
        books.activePermits[activeKey] = number
        return complete(meta, PermitResult(xkzbh: number, xklx: r.xklx, fzrq: day, yxqz: until),
                        effects: [EffectDraft(kind: "permit-issued", key: number, data: ["xklx": r.xklx, "tyshxydm": r.tyshxydm])])
    }

    func revokePermit(_ r: PermitRevocation, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let permit = books.permits[r.xkzbh], permit.revokedOn == nil else {
            let day = books.permits[r.xkzbh]?.revokedOn ?? CST.day(now)
            return complete(meta, PermitRevocationResult(xkzbh: r.xkzbh, cxrq: day), effects: [])
        }
        let day = CST.day(now)
        books.permits[r.xkzbh]?.revokedOn = day
        books.activePermits["\(permit.uscc)|\(permit.kind)"] = nil
        return complete(meta, PermitRevocationResult(xkzbh: r.xkzbh, cxrq: day),
                        effects: [EffectDraft(kind: "permit-revoked", key: r.xkzbh,
                                              data: ["xklx": permit.kind, "tyshxydm": permit.uscc, "cxyy": r.cxyy])])
    }
}
