import Foundation
import Testing
@testable import Departments

/// The subset of JSON Schema the native schemas use: type, properties, required,
/// additionalProperties: false, items, enum, const, pattern, minItems, minimum, boolean.
func schemaErrors(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
    var errors: [String] = []
    switch schema["type"] as? String {
    case "object":
        guard let object = value as? [String: Any] else { return ["\(path): not an object"] }
        let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
        for key in schema["required"] as? [String] ?? [] where object[key] == nil { errors.append("\(path).\(key): missing") }
        for (key, v) in object {
            if let p = properties[key] { errors += schemaErrors(v, p, at: "\(path).\(key)") }
            else if schema["additionalProperties"] as? Bool == false { errors.append("\(path).\(key): not in the schema") }
        }
    case "array":
        guard let array = value as? [Any] else { return ["\(path): not an array"] }
        if let min = schema["minItems"] as? Int, array.count < min { errors.append("\(path): fewer than \(min) items") }
        for (i, item) in array.enumerated() { errors += schemaErrors(item, schema["items"] as? [String: Any] ?? [:], at: "\(path)[\(i)]") }
    case "integer":
        guard let n = value as? Int, !(value is Bool) else { return ["\(path): not an integer"] }
        if let min = schema["minimum"] as? Int, n < min { errors.append("\(path): below \(min)") }
    case "boolean":
        guard value is Bool else { return ["\(path): not a boolean"] }
    case "string":
        guard let s = value as? String else { return ["\(path): not a string"] }
        if let options = schema["enum"] as? [String], !options.contains(s) { errors.append("\(path): \(s) not in \(options)") }
        if let c = schema["const"] as? String, c != s { errors.append("\(path): \(s) is not \(c)") }
        if let p = schema["pattern"] as? String, s.range(of: p, options: .regularExpression) == nil { errors.append("\(path): \(s) does not match \(p)") }
    default:
        errors.append("\(path): schema without a known type")
    }
    return errors
}

func nativeSchema(_ agency: Agency, _ action: String, _ kind: String) throws -> [String: Any] {
    let url = repoRoot.appendingPathComponent("adapters/\(agency.rawValue)/native/\(action).\(kind).schema.json")
    return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

@Suite struct NativeSchemaTests {
    /// Every request and reply exchanged for the sample form (successes, compensations and
    /// rejections) conforms to the schema of its action in adapters/<agency>/native/.
    @Test func messagesConformToTheirSchemas() throws {
        var hub = Hub()
        var exchanged: [(Agency, Data, Handling)] = []
        func send<M>(_ dept: inout RunningDepartment<M>, _ request: Data, at: Date = monday) -> Handling {
            let h = dept.receive(request, at: at)
            exchanged.append((M.agency, request, h))
            return h
        }
        let f = sampleForm
        var bad = f
        bad.applicationId = "APP-BAD"
        bad.legalRepresentative.idNumber = "110105194912310021"

        let name = send(&hub.registration, nameReservation(f))
        _ = send(&hub.registration, nameReservation(bad)) // duplicate name: rejection
        let mcblh = string(name.reply, "mcblh")!
        let reg = send(&hub.registration, establishment(f, reservation: mcblh, clqd: materialList(f)))
        _ = send(&hub.registration, establishment(bad, reservation: "none"))
        let uscc = string(reg.reply, "tyshxydm")!
        var permits: [String] = []
        for xklx in ["SPJY", "YBBA", "GGWS"] {
            let materials = materialList(f) + [.init(cllx: "premises-layout", sftj: true)]
            permits.append(string(send(&hub.registration, permitApplication(f, uscc: uscc, xklx: xklx, clqd: materials)).reply, "xkzbh")!)
        }
        _ = send(&hub.registration, permitApplication(f, uscc: uscc, xklx: "SPJY", attempt: 2)) // already held
        _ = send(&hub.registration, permitApplication(f, uscc: uscc, xklx: "GGWS", clqd: materialList(f), attempt: 3)) // premises-layout missing
        _ = send(&hub.registration, undo(BusinessRegistration.self, BusinessRegistration.PermitRevocation(xkzbh: permits[0], cxyy: "compensation"), id: "x"))
        _ = send(&hub.registration, undo(BusinessRegistration.self, BusinessRegistration.NameRelease(mcblh: mcblh, cxyy: "compensation"), id: "m1")) // used
        _ = send(&hub.registration, undo(BusinessRegistration.self, BusinessRegistration.Deregistration(tyshxydm: uscc, zxyy: "compensation"), id: "z"))
        _ = send(&hub.registration, undo(BusinessRegistration.self, BusinessRegistration.NameRelease(mcblh: mcblh, cxyy: "compensation"), id: "m2"))
        _ = send(&hub.seals, engraving(f, uscc: uscc))
        _ = send(&hub.seals, engraving(f, uscc: uscc, attempt: 2)) // already on record
        _ = send(&hub.seals, SealEngraving.request(SealEngraving.Cancel(USCC: uscc, REASON: "compensation"), requestId: "c", sagaId: "s", step: "undo"))
        let tax = send(&hub.tax, taxRegistration(f, uscc: uscc))
        let djxh = string(tax.reply, "djxh")!
        _ = send(&hub.tax, invoiceQuota(f, uscc: uscc, djxh: djxh))
        _ = send(&hub.tax, invoiceQuota(f, uscc: uscc, djxh: djxh, limit: 10_000_000, attempt: 2))
        let key = send(&hub.tax, ukey(f, uscc: uscc, djxh: djxh))
        _ = send(&hub.tax, undo(Tax.self, Tax.UKeyRevocation(sbbh: string(key.reply, "sbbh")!, zxyy: "compensation"), id: "k"))
        _ = send(&hub.tax, undo(Tax.self, Tax.Deregistration(nsrsbh: uscc, zxyy: "compensation"), id: "t"))
        let social = send(&hub.social, employerRegistration(f, uscc: uscc))
        _ = send(&hub.social, undo(SocialSecurity.self, SocialSecurity.EmployerDeregistration(aab001: string(social.reply, "aab001")!, zxyy: "compensation"), id: "e"))
        let bank = send(&hub.bank, accountOpening(f, uscc: uscc))
        _ = send(&hub.bank, accountOpening(bad, uscc: uscc))
        let account = (json(bank.reply)["Acct"] as? [String: Any])?["Id"] as? String ?? ""
        _ = send(&hub.bank, Bank.request(Bank.AccountClosing(Acct: .init(Id: account), USCC: uscc), requestId: "b", sagaId: "s", step: "undo"))
        _ = send(&hub.bank, Bank.request(Bank.AccountClosing(Acct: .init(Id: account)), requestId: "b2", sagaId: "s", step: "undo"))

        var rejections = 0
        for (agency, request, handling) in exchanged {
            let action = try #require(handling.meta?.action)
            let requestErrors = schemaErrors(try JSONSerialization.jsonObject(with: request), try nativeSchema(agency, action, "request"))
            #expect(requestErrors.isEmpty, "\(agency) \(action) request: \(requestErrors)")
            let replyErrors = schemaErrors(try JSONSerialization.jsonObject(with: handling.reply!), try nativeSchema(agency, action, "reply"))
            #expect(replyErrors.isEmpty, "\(agency) \(action) reply: \(replyErrors)")
            if case .rejected = handling.outcome { rejections += 1 }
        }
        #expect(rejections == 8)
        #expect(Set(exchanged.map { "\($0.0)/\($0.2.meta!.action)" }).count == 17) // every action
    }

    @Test func schemaCheckerCatchesDeviations() throws {
        let schema = try nativeSchema(.tax, "SWDJ", "request")
        var message = try #require(JSONSerialization.jsonObject(with: taxRegistration(sampleForm, uscc: "x")) as? [String: Any])
        #expect(schemaErrors(message, schema).isEmpty)
        message["extra"] = 1
        message["zzsnsrlx"] = "3"
        message.removeValue(forKey: "nsrmc")
        #expect(schemaErrors(message, schema).count == 3)
        let sldj = try nativeSchema(.businessRegistration, "SLDJ", "request")
        var registration = try #require(JSONSerialization.jsonObject(with: establishment(sampleForm, reservation: "x", clqd: materialList(sampleForm))) as? [String: Any])
        #expect(schemaErrors(registration, sldj).isEmpty)
        registration["clqd"] = [["cllx": "lease-contract", "sftj": "yes"]]
        #expect(schemaErrors(registration, sldj) == ["$.clqd[0].sftj: not a boolean"])
    }

    @Test func everyActionHasBothSchemas() throws {
        let actions: [Agency: [String]] = [
            .businessRegistration: ["MCSB", "SLDJ", "MCCX", "ZXDJ", "XKSQ", "XKCX"], .sealEngraving: ["ENGRAVE", "CANCEL"],
            .tax: ["SWDJ", "PZHD", "UKFF", "ZXSW", "ZFUK"], .socialSecurity: ["DWCBDJ", "DWZX", "CYBTBD", "CYBTFF", "ZCGZ"], .bank: ["acmt.007", "acmt.019", "mrch.001", "mrch.002"],
        ]
        for (agency, list) in actions {
            // and every action the simulator offers has them (nothing added without its schemas)
            let offered: [String] = switch agency {
            case .businessRegistration: Array(BusinessRegistration.typicalLatency.keys)
            case .sealEngraving: Array(SealEngraving.typicalLatency.keys)
            case .tax: Array(Tax.typicalLatency.keys)
            case .socialSecurity: Array(SocialSecurity.typicalLatency.keys)
            case .bank: Array(Bank.typicalLatency.keys)
            default: []
            }
            #expect(Set(offered) == Set(list), "\(agency)")
            for action in list {
                for kind in ["request", "reply"] {
                    #expect(try nativeSchema(agency, action, kind)["title"] != nil)
                }
            }
        }
    }
}
