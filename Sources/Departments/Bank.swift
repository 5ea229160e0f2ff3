import Foundation

/// A commercial bank's corporate account service: basic deposit account (基本存款账户) opening
/// and closing (the compensation), and acquiring merchant onboarding (收单商户入网) and offboarding
/// (退出, its compensation). Native vocabulary: ISO 20022 acmt-style names and codes.
public struct Bank: DepartmentModel {
    /// acmt.019 and mrch.002 find the account or merchant by saga and step when the hub sends no id.
    public static let undoTargets: [String: UndoTarget] = [
        AccountClosing.action: UndoTarget(field: "Acct.Id", effect: "account-opened"),
        MerchantOffboarding.action: UndoTarget(field: "Mrchnt.MrchntId", effect: "merchant-onboarded"),
    ]

    public static let agency = Agency.bank
    public static let successCode = "ACPT"
    public static let formatErrorCode = "FF01"
    public static let unknownActionCode = "FF02"
    /// TECH: technical problem; TM01: received after the cut-off time. Both mean "send again later".
    public static let transientCodes = ["TECH", "TM01"]
    public static let conflictCode = "DU01"
    public static let manualReviewCode = "RR04"
    public static let typicalLatency: [String: LatencyDistribution] = [
        AccountOpening.action: LatencyDistribution(min: 30, mode: 60, max: 180),
        AccountClosing.action: LatencyDistribution(min: 5, mode: 15, max: 60),
        MerchantOnboarding.action: LatencyDistribution(min: 10, mode: 30, max: 90),
        MerchantOffboarding.action: LatencyDistribution(min: 5, mode: 10, max: 30),
    ]
    /// 商户类别码 (MCC) of the merchants this simulator onboards: grocery stores, supermarkets.
    public static let merchantCategoryCode = "5411"

    public struct Institution: Sendable, Equatable {
        public var shortCode: String
        public var name: String
        /// Leading digits of this bank's corporate account numbers.
        public var accountPrefix: String
        public var accountLength: Int
    }

    /// BIC → bank; `shortCode` is what the application form's `bank.bankCode` holds.
    public static let institutions: [String: Institution] = [
        "ICBKCNBJ": Institution(shortCode: "ICBC", name: "中国工商银行", accountPrefix: "1202", accountLength: 19),
        "ABOCCNBJ": Institution(shortCode: "ABC", name: "中国农业银行", accountPrefix: "1903", accountLength: 19),
        "BKCHCNBJ": Institution(shortCode: "BOC", name: "中国银行", accountPrefix: "3", accountLength: 12),
        "PCBCCNBJ": Institution(shortCode: "CCB", name: "中国建设银行", accountPrefix: "3305", accountLength: 20),
        "COMMCNSH": Institution(shortCode: "BOCOM", name: "交通银行", accountPrefix: "3310", accountLength: 21),
        "CMBCCNBS": Institution(shortCode: "CMB", name: "招商银行", accountPrefix: "571", accountLength: 15),
    ]

    public init() {}

    public struct RequestEnvelope: NativeRequestEnvelope {
        public var MsgId: String
        /// acmt.007 account opening, acmt.019 account closing, mrch.001 merchant onboarding, mrch.002 merchant offboarding
        public var MsgTp: String
        /// process id (saga id)
        public var PrcId: String
        /// process step (step id)
        public var PrcStp: String

        public init(meta: RequestMeta) {
            MsgId = meta.requestId; MsgTp = meta.action; PrcId = meta.sagaId; PrcStp = meta.step
        }
        public var meta: RequestMeta { RequestMeta(requestId: MsgId, sagaId: PrcId, step: PrcStp, action: MsgTp) }
    }

    public struct ReplyEnvelope: NativeReplyEnvelope {
        /// the request's MsgId
        public var OrgnlMsgId: String
        public var OrgnlMsgTp: String
        public var PrcId: String
        public var PrcStp: String
        /// ACPT accepted, RJCT rejected
        public var Sts: String
        /// reason code (rejections)
        public var RsnCd: String?
        public var AddtlInf: String
        /// field at fault
        public var ErrFld: String?

        public init(meta: RequestMeta, code: String, message: String, field: String?) {
            OrgnlMsgId = meta.requestId; OrgnlMsgTp = meta.action; PrcId = meta.sagaId; PrcStp = meta.step
            Sts = code == Bank.successCode ? "ACPT" : "RJCT"
            RsnCd = code == Bank.successCode ? nil : code
            AddtlInf = message; ErrFld = field
        }
    }

    public struct Servicer: Codable, Sendable, Equatable {
        public var BICFI: String
        /// branch name
        public var BrnchNm: String

        public init(BICFI: String, BrnchNm: String) { self.BICFI = BICFI; self.BrnchNm = BrnchNm }
    }

    public struct LegalRepresentative: Codable, Sendable, Equatable {
        public var Nm: String
        /// RIC: resident identity card
        public var IdTp: String
        public var IdNb: String
        public var MobNb: String

        public init(Nm: String, IdTp: String = "RIC", IdNb: String, MobNb: String) {
            self.Nm = Nm; self.IdTp = IdTp; self.IdNb = IdNb; self.MobNb = MobNb
        }
    }

    public struct Organisation: Codable, Sendable, Equatable {
        public var Nm: String
        public var USCC: String
        /// registered address
        public var Adr: String
        public var LglRep: LegalRepresentative

        public init(Nm: String, USCC: String, Adr: String, LglRep: LegalRepresentative) {
            self.Nm = Nm; self.USCC = USCC; self.Adr = Adr; self.LglRep = LglRep
        }
    }

    public struct AccountSpec: Codable, Sendable, Equatable {
        /// BASC basic deposit account
        public var Tp: String
        public var Ccy: String

        public init(Tp: String = "BASC", Ccy: String = "CNY") { self.Tp = Tp; self.Ccy = Ccy }
    }

    /// acmt.007: open a basic deposit account.
    public struct AccountOpening: NativeRequestBody, Equatable {
        public static let action = "acmt.007"
        public var Svcr: Servicer
        public var Acct: AccountSpec
        public var Org: Organisation

        public init(Svcr: Servicer, Acct: AccountSpec = AccountSpec(), Org: Organisation) {
            self.Svcr = Svcr; self.Acct = Acct; self.Org = Org
        }
    }

    public struct OpenedAccount: Codable, Sendable, Equatable {
        /// account number
        public var Id: String
        public var Tp: String
        public var Ccy: String
        /// opening date (yyyy-MM-dd)
        public var OpngDt: String
        /// 基本存款账户编号: J + 13 digits
        public var BscAcctNb: String
    }

    public struct AccountOpeningResult: Codable, Sendable, Equatable {
        public var Acct: OpenedAccount
        public var Svcr: Servicer
    }

    public struct AccountRef: Codable, Sendable, Equatable {
        public var Id: String

        public init(Id: String) { self.Id = Id }
    }

    /// acmt.019: close an account (compensation). Closing an account already closed succeeds
    /// again with its original closing date and records no second effect.
    public struct AccountClosing: NativeRequestBody, Equatable {
        public static let action = "acmt.019"
        public var Acct: AccountRef
        /// The holder, optional: the bank finds the account by `Acct.Id`; when given it must match.
        public var USCC: String?
        /// 余额转出账户: where the remaining balance goes (企业注销); required when the balance is not zero.
        public var XfrAcct: String?

        public init(Acct: AccountRef, USCC: String? = nil, XfrAcct: String? = nil) { self.Acct = Acct; self.USCC = USCC; self.XfrAcct = XfrAcct }
    }

    public struct ClosedAccount: Codable, Sendable, Equatable {
        public var Id: String
        /// closing date (yyyy-MM-dd)
        public var ClsgDt: String
    }

    public struct AccountClosingResult: Codable, Sendable, Equatable {
        public var Acct: ClosedAccount
    }

    public struct MerchantDetails: Codable, Sendable, Equatable {
        public var Nm: String
        public var USCC: String
        /// business address
        public var Adr: String

        public init(Nm: String, USCC: String, Adr: String) { self.Nm = Nm; self.USCC = USCC; self.Adr = Adr }
    }

    /// mrch.001: onboard an acquiring merchant (收单商户入网). The settlement account must be an
    /// open account at this bank held by the merchant; one active merchant per USCC.
    public struct MerchantOnboarding: NativeRequestBody, Equatable {
        public static let action = "mrch.001"
        public var Mrchnt: MerchantDetails
        /// settlement account (`Id`: account number)
        public var SttlmAcct: AccountRef

        public init(Mrchnt: MerchantDetails, SttlmAcct: AccountRef) { self.Mrchnt = Mrchnt; self.SttlmAcct = SttlmAcct }
    }

    public struct OnboardedMerchant: Codable, Sendable, Equatable {
        /// 商户编号: 8 + division (USCC 3–8) + MCC + 4-digit sequence, 15 characters
        public var MrchntId: String
        /// onboarding date (yyyy-MM-dd)
        public var OnbrdgDt: String
    }

    public struct MerchantOnboardingResult: Codable, Sendable, Equatable {
        public var Mrchnt: OnboardedMerchant
    }

    public struct MerchantRef: Codable, Sendable, Equatable {
        public var MrchntId: String

        public init(MrchntId: String) { self.MrchntId = MrchntId }
    }

    /// mrch.002: offboard a merchant (compensation of mrch.001). Offboarding an unknown or
    /// already offboarded merchant is accepted again with no effect.
    public struct MerchantOffboarding: NativeRequestBody, Equatable {
        public static let action = "mrch.002"
        public var Mrchnt: MerchantRef

        public init(Mrchnt: MerchantRef) { self.Mrchnt = Mrchnt }
    }

    public struct OffboardedMerchant: Codable, Sendable, Equatable {
        public var MrchntId: String
        /// offboarding date (yyyy-MM-dd)
        public var OffbrdgDt: String
    }

    public struct MerchantOffboardingResult: Codable, Sendable, Equatable {
        public var Mrchnt: OffboardedMerchant
    }

    public struct Merchant: Codable, Sendable, Equatable {
        public var id: String
        public var uscc: String
        public var settlementAccount: String
        public var offboardedOn: String?
    }

    public struct Account: Codable, Sendable, Equatable {
        public var number: String
        public var uscc: String
        public var basicAccountLicence: String
        public var closedOn: String?
        /// Balance in fen (分); nil = 0. An account with money on it is closed only with a
        /// transfer instruction (`XfrAcct`): the bank never closes an account silently over a balance.
        public var balance: Int? = nil
    }

    /// Reason code of a closing refused over a non-zero balance without a transfer instruction;
    /// the adapter turns it into 容缺 (`balance-transfer-instruction`), so the applicant acts.
    public static let balanceNotZeroCode = "BL01"

    public struct Books: Codable, Sendable, Equatable {
        /// account number → account
        public var accounts: [String: Account] = [:]
        public var sequence: [String: Int] = [:]
        /// 商户编号 → merchant
        public var merchants: [String: Merchant] = [:]
    }

    public static var emptyBooks: Books { Books() }

    public func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision {
        switch meta.action {
        case AccountOpening.action: with(AccountOpening.self, request, meta) { open($0, meta, &books, now) }
        case AccountClosing.action: with(AccountClosing.self, request, meta) { close($0, meta, &books, now) }
        case MerchantOnboarding.action: with(MerchantOnboarding.self, request, meta) { onboard($0, meta, &books, now) }
        case MerchantOffboarding.action: with(MerchantOffboarding.self, request, meta) { offboard($0, meta, &books, now) }
        default: unknownAction(meta)
        }
    }

    func open(_ r: AccountOpening, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        guard let bank = Self.institutions[r.Svcr.BICFI] else { return reject(meta, "RC01", "unknown BIC \(r.Svcr.BICFI)", field: "Svcr.BICFI") }
        guard r.Acct.Tp == "BASC" else { return reject(meta, "AG01", "only basic deposit accounts (BASC) are opened here", field: "Acct.Tp") }
        guard r.Acct.Ccy == "CNY" else { return reject(meta, "AM03", "basic deposit accounts are in CNY", field: "Acct.Ccy") }
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(r.Org.USCC) } catch { return reject(meta, "RR05", "USCC invalid: \(error)", field: "Org.USCC") }
        guard !r.Org.Nm.isEmpty else { return reject(meta, "RR03", "organisation name missing", field: "Org.Nm") }
        guard r.Org.LglRep.IdTp == "RIC" else { return reject(meta, "BE01", "legal representative ID type must be RIC", field: "Org.LglRep.IdTp") }
        do { try ResidentID.validate(r.Org.LglRep.IdNb, asOf: now) } catch {
            return reject(meta, "BE01", "legal representative ID invalid: \(error)", field: "Org.LglRep.IdNb")
        }
        guard MobilePhone.isValid(r.Org.LglRep.MobNb) else { return reject(meta, "BE01", "mobile number invalid", field: "Org.LglRep.MobNb") }
        // 人民币银行结算账户管理办法: one basic deposit account per depositor, at any bank.
        if let existing = books.accounts.values.first(where: { $0.uscc == r.Org.USCC && $0.closedOn == nil }) {
            return reject(meta, "DUPL", "depositor already holds basic deposit account \(existing.basicAccountLicence)", field: "Org.USCC")
        }
        let region = String(r.Org.USCC.dropFirst(2).prefix(6))
        let seq = books.sequence[r.Svcr.BICFI, default: 0] + 1
        books.sequence[r.Svcr.BICFI] = seq
        // bank prefix · first four digits of the division · sequence, to the bank's length
        let head = bank.accountPrefix + String(region.prefix(4))
        let number = head + String(format: "%0\(bank.accountLength - head.count)d", seq)
        let licence = "J" + String(region.prefix(4)) + String(format: "%09d", books.accounts.count + 1)
        books.accounts[number] = Account(number: number, uscc: r.Org.USCC, basicAccountLicence: licence, closedOn: nil)
        let account = OpenedAccount(Id: number, Tp: "BASC", Ccy: "CNY", OpngDt: CST.day(now), BscAcctNb: licence)
        return complete(meta, AccountOpeningResult(Acct: account, Svcr: r.Svcr),
                        effects: [EffectDraft(kind: "account-opened", key: number, data: ["USCC": r.Org.USCC, "BscAcctNb": licence])].noting(usccCheck: usccCheck))
    }

    func close(_ r: AccountClosing, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        // A compensation never fails on what never happened: no such account, nothing to close.
        guard let account = books.accounts[r.Acct.Id] else {
            return complete(meta, AccountClosingResult(Acct: ClosedAccount(Id: r.Acct.Id, ClsgDt: CST.day(now))), effects: [])
        }
        guard r.USCC == nil || account.uscc == r.USCC else {
            return reject(meta, "AC01", "account \(r.Acct.Id) is not held by \(r.USCC ?? "")", field: "Acct.Id")
        }
        if let closed = account.closedOn {
            return complete(meta, AccountClosingResult(Acct: ClosedAccount(Id: account.number, ClsgDt: closed)), effects: [])
        }
        var effects: [EffectDraft] = []
        if let balance = account.balance, balance != 0 {
            guard let to = r.XfrAcct, !to.isEmpty, to != account.number else {
                return reject(meta, Self.balanceNotZeroCode, String(format: "账户余额 %.2f 元不为零，须提供余额转出指令", Double(balance) / 100), field: "XfrAcct")
            }
            books.accounts[account.number]?.balance = 0
            effects.append(EffectDraft(kind: "balance-transferred", key: account.number, data: ["to": to, "fen": String(balance)]))
        }
        let day = CST.day(now)
        books.accounts[account.number]?.closedOn = day
        return complete(meta, AccountClosingResult(Acct: ClosedAccount(Id: account.number, ClsgDt: day)),
                        effects: effects + [EffectDraft(kind: "account-closed", key: account.number, data: ["USCC": account.uscc])])
    }

    func onboard(_ r: MerchantOnboarding, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let m = r.Mrchnt
        let usccCheck: IdentifierError?
        do { usccCheck = try USCC.validateIssued(m.USCC) } catch { return reject(meta, "RR05", "USCC invalid: \(error)", field: "Mrchnt.USCC") }
        guard !m.Nm.isEmpty else { return reject(meta, "RR03", "merchant name missing", field: "Mrchnt.Nm") }
        guard let account = books.accounts[r.SttlmAcct.Id], account.uscc == m.USCC, account.closedOn == nil else {
            return reject(meta, "AC01", "no open account \(r.SttlmAcct.Id) held by \(m.USCC)", field: "SttlmAcct.Id")
        }
        if let existing = books.merchants.values.first(where: { $0.uscc == m.USCC && $0.offboardedOn == nil }) {
            return reject(meta, "DUPL", "already an acquiring merchant: \(existing.id)", field: "Mrchnt.USCC")
        }
        // 8 · division (USCC 3–8) · MCC · sequence per division and MCC
        let head = "8" + String(m.USCC.dropFirst(2).prefix(6)) + Self.merchantCategoryCode
        let seq = books.sequence[head, default: 0] + 1
        books.sequence[head] = seq
        let id = head + String(format: "%04d", seq)
        books.merchants[id] = Merchant(id: id, uscc: m.USCC, settlementAccount: account.number, offboardedOn: nil)
        return complete(meta, MerchantOnboardingResult(Mrchnt: OnboardedMerchant(MrchntId: id, OnbrdgDt: CST.day(now))),
                        effects: [EffectDraft(kind: "merchant-onboarded", key: id, data: ["USCC": m.USCC, "SttlmAcct": account.number])].noting(usccCheck: usccCheck))
    }

    func offboard(_ r: MerchantOffboarding, _ meta: RequestMeta, _ books: inout Books, _ now: Date) -> Decision {
        let id = r.Mrchnt.MrchntId, day = CST.day(now)
        guard let merchant = books.merchants[id], merchant.offboardedOn == nil else {
            let date = books.merchants[id]?.offboardedOn ?? day
            return complete(meta, MerchantOffboardingResult(Mrchnt: OffboardedMerchant(MrchntId: id, OffbrdgDt: date)), effects: [])
        }
        books.merchants[id]?.offboardedOn = day
        return complete(meta, MerchantOffboardingResult(Mrchnt: OffboardedMerchant(MrchntId: id, OffbrdgDt: day)),
                        effects: [EffectDraft(kind: "merchant-offboarded", key: id, data: ["USCC": merchant.uscc])])
    }
}
