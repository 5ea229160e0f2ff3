import Foundation
@testable import Departments

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let reference: ReferenceData = try! ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))

/// 2026-03-02 09:00 China Standard Time.
let monday = Date(timeIntervalSince1970: 1_772_413_200)

func minutes(_ m: Double, after d: Date = monday) -> Date { d.addingTimeInterval(m * 60) }
func days(_ n: Double, after d: Date = monday) -> Date { d.addingTimeInterval(n * 86_400) }

/// A native reply as a dictionary, for assertions on field names.
func json(_ data: Data?) -> [String: Any] {
    guard let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
    return object
}

func string(_ data: Data?, _ key: String) -> String? { json(data)[key] as? String }

/// The five departments with one profile, and helpers that map a seed application to each
/// department's native requests (what the adapters will do declaratively).
struct Hub {
    var registration: RunningDepartment<BusinessRegistration>
    var seals: RunningDepartment<SealEngraving>
    var tax: RunningDepartment<Tax>
    var social: RunningDepartment<SocialSecurity>
    var bank: RunningDepartment<Bank>

    init(preset: DepartmentProfile.Preset = .noFaults) {
        registration = RunningDepartment(DepartmentSimulator(model: BusinessRegistration(reference: reference), preset: preset))
        seals = RunningDepartment(DepartmentSimulator(model: SealEngraving(), preset: preset))
        tax = RunningDepartment(DepartmentSimulator(model: Tax(reference: reference), preset: preset))
        social = RunningDepartment(DepartmentSimulator(model: SocialSecurity(reference: reference), preset: preset))
        bank = RunningDepartment(DepartmentSimulator(model: Bank(), preset: preset))
    }

    var ledger: [LedgerEffect] { registration.ledger + seals.ledger + tax.ledger + social.ledger + bank.ledger }
}

func saga(_ f: ApplicationForm) -> String { "saga-\(f.applicationId)" }
func rid(_ f: ApplicationForm, _ step: String, _ attempt: Int = 1) -> String { "\(saga(f))/\(step)/\(attempt)" }

func nameReservation(_ f: ApplicationForm) -> Data {
    let c = f.company
    return BusinessRegistration.request(
        BusinessRegistration.NameReservation(xzqhdm: f.region, qymc: c.proposedName, zh: c.tradeName, hyms: c.industryWord,
                                             zzxs: c.organizationForm, hydm: c.industryCode,
                                             qylx: EntityType(rawValue: c.entityType)!.registrationCode),
        requestId: rid(f, "name-reservation"), sagaId: saga(f), step: "name-reservation")
}

func establishment(_ f: ApplicationForm, reservation: String, clqd: [BusinessRegistration.Material]? = nil, attempt: Int = 1) -> Data {
    let c = f.company, l = f.legalRepresentative
    return BusinessRegistration.request(
        BusinessRegistration.Establishment(
            mcblh: reservation, qymc: c.proposedName, xzqhdm: f.region, qylx: EntityType(rawValue: c.entityType)!.registrationCode,
            hydm: c.industryCode, zczb: c.registeredCapital, zs: c.address, jyfw: c.businessScope,
            fddbr: .init(xm: l.name, zjhm: l.idNumber, yddh: l.phone),
            gdxx: f.shareholders.map { .init(xm: $0.name, zjhm: $0.idNumber, rjcze: $0.contribution) }, clqd: clqd),
        requestId: rid(f, "registration", attempt), sagaId: saga(f), step: "registration")
}

/// The form's materials as a 材料清单.
func materialList(_ f: ApplicationForm) -> [BusinessRegistration.Material] {
    f.materials.map { .init(cllx: $0.type, sftj: $0.provided) }
}

/// The permit (许可类型) each permit bundle applies for.
let bundlePermits = ["restaurant-opening": "SPJY", "convenience-store-opening": "YBBA", "barbershop-opening": "GGWS"]

func permitApplication(_ f: ApplicationForm, uscc: String, xklx: String, clqd: [BusinessRegistration.Material]? = nil, attempt: Int = 1) -> Data {
    BusinessRegistration.request(
        BusinessRegistration.PermitApplication(xklx: xklx, tyshxydm: uscc, qymc: f.company.proposedName, jycs: f.company.address,
                                               fddbrxm: f.legalRepresentative.name, jyxm: f.company.businessScope, clqd: clqd),
        requestId: rid(f, "permit-\(xklx)", attempt), sagaId: saga(f), step: "permit")
}

/// A compensation request of any department (request id `id`, saga `s`, step `undo`).
func undo<M: DepartmentModel, Body: NativeRequestBody>(_ model: M.Type, _ body: Body, id: String) -> Data {
    M.request(body, requestId: id, sagaId: "s", step: "undo")
}

func engraving(_ f: ApplicationForm, uscc: String, attempt: Int = 1) -> Data {
    SealEngraving.request(
        SealEngraving.Engrave(USCC: uscc, UNIT_NAME: f.company.proposedName, REGION_CODE: f.region,
                              LEGAL_REP_NAME: f.legalRepresentative.name, SEALS: f.seals.map { SealEngraving.formSealTypes[$0]! }),
        requestId: rid(f, "seal-engraving", attempt), sagaId: saga(f), step: "seal-engraving")
}

func taxRegistration(_ f: ApplicationForm, uscc: String) -> Data {
    Tax.request(
        Tax.Registration(nsrsbh: uscc, nsrmc: f.company.proposedName, xzqhdm: f.region, hydm: f.company.industryCode,
                         djzclx: f.company.entityType == "joint-stock" ? "174" : "173",
                         zzsnsrlx: f.tax.taxpayerType == "general" ? "1" : "2",
                         fddbrxm: f.legalRepresentative.name, fddbrsfzjhm: f.legalRepresentative.idNumber, scjydz: f.company.address),
        requestId: rid(f, "tax-registration"), sagaId: saga(f), step: "tax-registration")
}

func invoiceQuota(_ f: ApplicationForm, uscc: String, djxh: String, limit: Int = 10_000, attempt: Int = 1) -> Data {
    Tax.request(Tax.InvoiceQuota(nsrsbh: uscc, djxh: djxh, pzxx: f.tax.invoiceTypes.map { .init(fpzldm: Tax.formInvoiceTypes[$0]!, dzkpxe: limit) }),
                requestId: rid(f, "invoices", attempt), sagaId: saga(f), step: "invoices")
}

func ukey(_ f: ApplicationForm, uscc: String, djxh: String) -> Data {
    Tax.request(Tax.UKeyIssuance(nsrsbh: uscc, djxh: djxh), requestId: rid(f, "tax-ukey"), sagaId: saga(f), step: "tax-ukey")
}

func employerRegistration(_ f: ApplicationForm, uscc: String) -> Data {
    SocialSecurity.request(
        SocialSecurity.EmployerRegistration(aab998: uscc, aab004: f.company.proposedName, aab301: f.region, aab013: f.legalRepresentative.name,
                                            aae006: f.company.address, aae140: ["110", "210", "310", "410", "510"], yjcbrs: f.employees.expectedCount),
        requestId: rid(f, "social-security"), sagaId: saga(f), step: "social-security")
}

func accountOpening(_ f: ApplicationForm, uscc: String, attempt: Int = 1) -> Data {
    let bic = Bank.institutions.first { $0.value.shortCode == f.bank.bankCode }!.key
    let l = f.legalRepresentative
    return Bank.request(
        Bank.AccountOpening(Svcr: .init(BICFI: bic, BrnchNm: f.bank.branchName),
                            Org: .init(Nm: f.company.proposedName, USCC: uscc, Adr: f.company.address,
                                       LglRep: .init(Nm: l.name, IdNb: l.idNumber, MobNb: l.phone))),
        requestId: rid(f, "bank-account", attempt), sagaId: saga(f), step: "bank-account")
}

let sampleForm: ApplicationForm = {
    let text = try! String(contentsOf: repoRoot.appendingPathComponent("docs/application-form.md"), encoding: .utf8)
    let start = text.range(of: "```json\n")!.upperBound
    let end = text.range(of: "\n```", range: start..<text.endIndex)!.lowerBound
    return try! JSONDecoder().decode(ApplicationForm.self, from: Data(text[start..<end].utf8))
}()
