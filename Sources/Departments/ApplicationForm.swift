import Foundation

/// The canonical application form (docs/application-form.md), as the front desk receives it.
public struct ApplicationForm: Codable, Sendable, Equatable {
    public struct Company: Codable, Sendable, Equatable {
        public var proposedName: String
        public var tradeName: String
        public var industryWord: String
        public var organizationForm: String
        public var industryCode: String
        public var entityType: String
        public var registeredCapital: Int
        public var address: String
        public var businessScope: String
        /// The USCC of an enterprise that already exists (免证办), typed by the applicant.
        public var uscc: String?
    }
    public struct Person: Codable, Sendable, Equatable {
        public var name: String
        public var idNumber: String
        public var phone: String
    }
    public struct Shareholder: Codable, Sendable, Equatable {
        public var name: String
        public var idNumber: String
        public var contribution: Int
    }
    public struct Employees: Codable, Sendable, Equatable { public var expectedCount: Int }
    public struct TaxInfo: Codable, Sendable, Equatable {
        public var taxpayerType: String
        public var invoiceTypes: [String]
    }
    public struct BankInfo: Codable, Sendable, Equatable {
        public var bankCode: String
        public var branchName: String
    }
    public struct Material: Codable, Sendable, Equatable {
        public var type: String
        public var provided: Bool
    }
    public struct Contact: Codable, Sendable, Equatable {
        public var name: String
        public var phone: String
    }

    public var applicationId: String
    public var bundle: String
    public var submittedAt: String
    public var region: String
    public var company: Company
    public var legalRepresentative: Person
    public var shareholders: [Shareholder]
    public var employees: Employees
    public var seals: [String]
    public var tax: TaxInfo
    public var bank: BankInfo
    public var permits: [String]
    public var materials: [Material]
    public var contact: Contact

    public var enterpriseName: EnterpriseName {
        EnterpriseName(fullName: company.proposedName, tradeName: company.tradeName,
                       industryWord: company.industryWord, organizationForm: company.organizationForm)
    }
}

/// One problem a front desk (一窗受理) finds in a form before any department sees it.
public struct FormFinding: Sendable, Equatable, CustomStringConvertible {
    /// Stable codes: `id-check-digit`, `id-number`, `phone`, `uscc`, `forbidden-word`, `name-rule`,
    /// `entity-type`, `capital`, `seal`, `invoice-type`, `bank`.
    public var code: String
    /// JSON path of the field at fault (`$.legalRepresentative.idNumber`).
    public var field: String
    public var message: String

    public var description: String { "\(code) at \(field): \(message)" }
}

/// The checks a front desk can make on one form alone. Uniqueness of the name needs the
/// registration authority's records and is decided by `BusinessRegistration` (E2005).
public struct FrontDeskCheck: Sendable {
    public let rules: NameRules

    public init(reference: ReferenceData) { rules = NameRules(reference: reference) }

    /// Every finding on `form`, checked as of `now` (the hub clock's instant of the check: an ID
    /// number's birth date must not be after it).
    public func findings(_ form: ApplicationForm, asOf now: Date) -> [FormFinding] {
        var out: [FormFinding] = []
        func checkID(_ id: String, _ field: String) {
            do { try ResidentID.validate(id, asOf: now) } catch {
                let code = if case .badCheckDigit = error { "id-check-digit" } else { "id-number" }
                out.append(FormFinding(code: code, field: field, message: error.description))
            }
        }
        func checkPhone(_ phone: String, _ field: String) {
            do { try MobilePhone.validate(phone) } catch { out.append(FormFinding(code: "phone", field: field, message: error.description)) }
        }
        checkID(form.legalRepresentative.idNumber, "$.legalRepresentative.idNumber")
        checkPhone(form.legalRepresentative.phone, "$.legalRepresentative.phone")
        checkPhone(form.contact.phone, "$.contact.phone")
        // Typed by the applicant: checked strictly (GB 32100 check characters included). Codes the
        // registration authority issued reach the other departments through the hub and are
        // checked there with `USCC.validateIssued`.
        if let uscc = form.company.uscc {
            do { try USCC.validate(uscc) } catch { out.append(FormFinding(code: "uscc", field: "$.company.uscc", message: error.description)) }
        }
        for (i, s) in form.shareholders.enumerated() where s.idNumber != form.legalRepresentative.idNumber {
            checkID(s.idNumber, "$.shareholders[\(i)].idNumber")
        }
        if let type = EntityType(rawValue: form.company.entityType) {
            for v in rules.violations(of: form.enterpriseName, region: form.region, entityType: type) {
                let field = switch v.part {
                case .region: "$.region"
                case .fullName: "$.company.proposedName"
                case .tradeName: "$.company.tradeName"
                case .industryWord: "$.company.industryWord"
                case .organizationForm: "$.company.organizationForm"
                }
                out.append(FormFinding(code: v.rule == .forbiddenWord ? "forbidden-word" : "name-rule", field: field, message: v.message))
            }
        } else {
            out.append(FormFinding(code: "entity-type", field: "$.company.entityType", message: "unknown entity type \(form.company.entityType)"))
        }
        if form.company.registeredCapital <= 0
            || CheckedArithmetic.sum(form.shareholders.map(\.contribution)) != form.company.registeredCapital {
            out.append(FormFinding(code: "capital", field: "$.company.registeredCapital",
                                   message: "registered capital must be positive and equal the shareholders' contributions"))
        }
        for (i, seal) in form.seals.enumerated() where SealEngraving.formSealTypes[seal] == nil {
            out.append(FormFinding(code: "seal", field: "$.seals[\(i)]", message: "unknown seal \(seal)"))
        }
        for (i, t) in form.tax.invoiceTypes.enumerated() where Tax.formInvoiceTypes[t] == nil {
            out.append(FormFinding(code: "invoice-type", field: "$.tax.invoiceTypes[\(i)]", message: "unknown invoice type \(t)"))
        }
        if !Bank.institutions.values.contains(where: { $0.shortCode == form.bank.bankCode }) {
            out.append(FormFinding(code: "bank", field: "$.bank.bankCode", message: "unknown bank \(form.bank.bankCode)"))
        }
        return out
    }

    /// Materials marked `provided: false` (容缺: the bundle decides whether to accept them for later supplement).
    public func missingMaterials(_ form: ApplicationForm) -> [String] {
        form.materials.filter { !$0.provided }.map(\.type)
    }
}
