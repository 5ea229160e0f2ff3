import Foundation
import Testing
@testable import Departments

struct Expectation: Decodable {
    var expected: String
    var reason: String?
    var field: String?
    var code: String?
    var word: String?
    var material: String?
    var duplicateOf: String?
}

struct Manifest: Decodable {
    var seed: Int
    var counts: [String: Int]
    var applications: [String: Expectation]
}

let seedDirectory = repoRoot.appendingPathComponent("seeds/applications")
let seedForms: [ApplicationForm] = {
    let text = try! String(contentsOf: seedDirectory.appendingPathComponent("applications.jsonl"), encoding: .utf8)
    return text.split(separator: "\n").map { try! JSONDecoder().decode(ApplicationForm.self, from: Data($0.utf8)) }
}()
let manifest = try! JSONDecoder().decode(Manifest.self, from: Data(contentsOf: seedDirectory.appendingPathComponent("manifest.json")))

@Suite struct SeedTests {
    @Test func manifestCoversEveryApplicationOnce() {
        #expect(seedForms.count >= 200)
        let ids = seedForms.map(\.applicationId)
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids) == Set(manifest.applications.keys))
        var counts: [String: Int] = [:]
        for e in manifest.applications.values { counts[e.reason ?? e.expected, default: 0] += 1 }
        #expect(counts == manifest.counts)
        for reason in ["id-check-digit", "forbidden-word", "duplicate-name", "material-missing"] {
            #expect(counts[reason, default: 0] >= 3, "\(reason)")
        }
    }

    @Test func bundlesAndPermitsAreConsistent() {
        let permits = ["enterprise-opening": [String](), "restaurant-opening": ["food-business"],
                       "convenience-store-opening": ["food-business"], "barbershop-opening": ["public-place-hygiene"]]
        for f in seedForms {
            #expect(permits[f.bundle] == f.permits, "\(f.applicationId)")
        }
        let bundles = Dictionary(grouping: seedForms, by: \.bundle).mapValues(\.count)
        #expect(bundles["enterprise-opening", default: 0] > seedForms.count / 2)
        #expect(bundles.count == 4)
        #expect(seedForms.allSatisfy { reference.regions[$0.region] != nil })
        #expect(seedForms.allSatisfy { $0.submittedAt.hasSuffix("+08:00") })
    }

    /// The front desk's checks find exactly the labelled defect, and nothing in valid forms.
    @Test func frontDeskFindsExactlyTheLabelledDefects() {
        let desk = FrontDeskCheck(reference: reference)
        for f in seedForms {
            let e = manifest.applications[f.applicationId]!
            let findings = desk.findings(f, asOf: checkDay)
            switch e.reason {
            case "id-check-digit", "forbidden-word":
                #expect(findings.map(\.code) == [e.reason!], "\(f.applicationId): \(findings)")
                #expect(findings.first?.field == e.field, "\(f.applicationId)")
                if let word = e.word { #expect(findings.first?.message.contains(word) == true) }
            default:
                #expect(findings.isEmpty, "\(f.applicationId): \(findings)")
            }
            #expect(desk.missingMaterials(f) == (e.reason == "material-missing" ? [e.material!] : []), "\(f.applicationId)")
        }
    }

    /// Every seed application through all five simulators, in file order: the labelled ones
    /// are rejected by the labelled department with the labelled code; every other one gets
    /// a USCC, seals, tax registration, invoices, UKey, social security and a bank account,
    /// and the permit bundles their permit (after a supplement when a material is missing).
    @Test func simulatorsDecideEveryApplicationAsLabelled() throws {
        var hub = Hub()
        var completed = 0, permitted = 0, supplemented = 0
        var ownerOfName: [String: String] = [:]
        for (i, f) in seedForms.enumerated() {
            let e = manifest.applications[f.applicationId]!
            let now = minutes(Double(i) * 10)
            let name = hub.registration.receive(nameReservation(f), at: now)
            switch e.reason {
            case "duplicate-name":
                #expect(name.outcome == .rejected(code: "E2005", field: "qymc"), "\(f.applicationId)")
                #expect(ownerOfName[f.enterpriseName.uniquenessKey(region: f.region)] == e.duplicateOf)
                continue
            case "forbidden-word":
                #expect(name.outcome == .rejected(code: "E2001", field: "zh"), "\(f.applicationId)")
                #expect(string(name.reply, "jgms")?.contains(e.word!) == true)
                continue
            default:
                try #require(name.outcome == .completed, "\(f.applicationId): \(String(decoding: name.reply!, as: UTF8.self))")
                ownerOfName[f.enterpriseName.uniquenessKey(region: f.region)] = f.applicationId
            }
            let reg = hub.registration.receive(establishment(f, reservation: string(name.reply, "mcblh")!), at: now)
            if e.reason == "id-check-digit" {
                #expect(reg.outcome == .rejected(code: "E3004", field: "fddbr.zjhm"), "\(f.applicationId)")
                continue
            }
            try #require(reg.outcome == .completed, "\(f.applicationId): \(String(decoding: reg.reply!, as: UTF8.self))")
            let uscc = string(reg.reply, "tyshxydm")!
            #expect(USCC.isValid(uscc))
            let tax = hub.tax.receive(taxRegistration(f, uscc: uscc), at: now)
            let djxh = string(tax.reply, "djxh") ?? ""
            let outcomes = [
                hub.seals.receive(engraving(f, uscc: uscc), at: now).outcome, tax.outcome,
                hub.tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh), at: now).outcome,
                hub.tax.receive(ukey(f, uscc: uscc, djxh: djxh), at: now).outcome,
                hub.social.receive(employerRegistration(f, uscc: uscc), at: now).outcome,
                hub.bank.receive(accountOpening(f, uscc: uscc), at: now).outcome,
            ]
            #expect(outcomes.allSatisfy { $0 == .completed }, "\(f.applicationId): \(outcomes)")
            completed += 1
            guard let xklx = bundlePermits[f.bundle] else { continue }
            var permit = hub.registration.receive(permitApplication(f, uscc: uscc, xklx: xklx, clqd: materialList(f)), at: now)
            if let missing = f.materials.firstIndex(where: { !$0.provided }) {
                // 容缺: the permit waits for the material; the supplemented application is granted.
                #expect(permit.outcome == .rejected(code: "E3101", field: "clqd[\(missing)].sftj"), "\(f.applicationId)")
                let supplied = materialList(f).map { BusinessRegistration.Material(cllx: $0.cllx, sftj: true) }
                permit = hub.registration.receive(permitApplication(f, uscc: uscc, xklx: xklx, clqd: supplied, attempt: 2), at: now)
                supplemented += 1
            }
            #expect(permit.outcome == .completed, "\(f.applicationId): \(String(decoding: permit.reply!, as: UTF8.self))")
            permitted += 1
        }
        #expect(completed == manifest.applications.values.filter { $0.expected != "rejected" }.count)
        let issued = hub.ledger.filter { $0.kind == "permit-issued" }
        #expect(issued.count == permitted)
        #expect(Set(issued.compactMap { $0.data["xklx"] }) == ["SPJY", "YBBA", "GGWS"])
        #expect(supplemented > 0)
        // Audit: no effect twice, every USCC distinct, one account per enterprise.
        let effects = hub.ledger.map { "\($0.agency.rawValue)|\($0.kind)|\($0.key)" }
        #expect(Set(effects).count == effects.count)
        #expect(hub.ledger.filter { $0.kind == "account-opened" }.count == completed)
    }
}
