import Foundation
import Testing
@testable import Departments

/// The subset of JSON Schema the native schemas use: type, properties, required,
/// additionalProperties: false, items, enum, const, pattern, minItems, minimum.
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
        let reg = send(&hub.registration, establishment(f, reservation: string(name.reply, "mcblh")!))
        _ = send(&hub.registration, establishment(bad, reservation: "none"))
        let uscc = string(reg.reply, "tyshxydm")!
        _ = send(&hub.seals, engraving(f, uscc: uscc))
        _ = send(&hub.seals, engraving(f, uscc: uscc, attempt: 2)) // already on record
        _ = send(&hub.seals, SealEngraving.request(SealEngraving.Cancel(USCC: uscc, REASON: "compensation"), requestId: "c", sagaId: "s", step: "undo"))
        let tax = send(&hub.tax, taxRegistration(f, uscc: uscc))
        let djxh = string(tax.reply, "djxh")!
        _ = send(&hub.tax, invoiceQuota(f, uscc: uscc, djxh: djxh))
        _ = send(&hub.tax, invoiceQuota(f, uscc: uscc, djxh: djxh, limit: 10_000_000, attempt: 2))
        _ = send(&hub.tax, ukey(f, uscc: uscc, djxh: djxh))
        _ = send(&hub.social, employerRegistration(f, uscc: uscc))
        let bank = send(&hub.bank, accountOpening(f, uscc: uscc))
        _ = send(&hub.bank, accountOpening(bad, uscc: uscc))
        let account = (json(bank.reply)["Acct"] as? [String: Any])?["Id"] as? String ?? ""
        _ = send(&hub.bank, Bank.request(Bank.AccountClosing(Acct: .init(Id: account), USCC: uscc), requestId: "b", sagaId: "s", step: "undo"))

        var rejections = 0
        for (agency, request, handling) in exchanged {
            let action = try #require(handling.meta?.action)
            let requestErrors = schemaErrors(try JSONSerialization.jsonObject(with: request), try nativeSchema(agency, action, "request"))
            #expect(requestErrors.isEmpty, "\(agency) \(action) request: \(requestErrors)")
            let replyErrors = schemaErrors(try JSONSerialization.jsonObject(with: handling.reply!), try nativeSchema(agency, action, "reply"))
            #expect(replyErrors.isEmpty, "\(agency) \(action) reply: \(replyErrors)")
            if case .rejected = handling.outcome { rejections += 1 }
        }
        #expect(rejections == 5)
        #expect(Set(exchanged.map { "\($0.0)/\($0.2.meta!.action)" }).count == 10) // every action
    }

    @Test func schemaCheckerCatchesDeviations() throws {
        let schema = try nativeSchema(.tax, "SWDJ", "request")
        var message = try #require(JSONSerialization.jsonObject(with: taxRegistration(sampleForm, uscc: "x")) as? [String: Any])
        #expect(schemaErrors(message, schema).isEmpty)
        message["extra"] = 1
        message["zzsnsrlx"] = "3"
        message.removeValue(forKey: "nsrmc")
        #expect(schemaErrors(message, schema).count == 3)
    }

    @Test func everyActionHasBothSchemas() throws {
        let actions: [Agency: [String]] = [
            .businessRegistration: ["MCSB", "SLDJ"], .sealEngraving: ["ENGRAVE", "CANCEL"],
            .tax: ["SWDJ", "PZHD", "UKFF"], .socialSecurity: ["DWCBDJ"], .bank: ["acmt.007", "acmt.019"],
        ]
        for (agency, list) in actions {
            for action in list {
                for kind in ["request", "reply"] {
                    #expect(try nativeSchema(agency, action, kind)["title"] != nil)
                }
            }
        }
    }
}
