import Adapters
import Departments
import Foundation
import HubTestKit
import Messaging
import SagaEngine
import Testing
import YishiTestSupport

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func translator(_ agency: String) throws -> Translator {
    let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
    let catalogue = try #require(catalogues.agencies[agency])
    let mapping = try AgencyMapping.load(repoRoot.appendingPathComponent("adapters/\(agency)/mapping.json"), catalogue: catalogue)
    return Translator(mapping: mapping, catalogue: catalogue)
}

func command(_ action: String, step: String, payload: JSONValue, kind: String = "forward", attempt: Int = 1) -> JSONValue {
    .object(["kind": .string(kind), "sagaId": "APP-1", "step": .string(step), "attempt": .number(Double(attempt)),
             "agency": "x", "action": .string(action), "requestId": .string("APP-1/\(step)/r1"), "revision": 1, "deadline": 0,
             "payload": payload])
}

@Suite("Templates: the declarative mapping language")
struct TemplateTests {
    let context: JSONValue = try! JSONValue.parse("""
        {"input": {"uscc": "91330106MA2CXYZ12A", "seals": ["company", "invoice"], "people": [{"name": "甲", "id": "1"}, {"name": "乙", "id": "2"}]},
         "replies": {"acmt.007": {"Acct": {"Id": "12020001"}}, "ENGRAVE": {"SEAL_LIST": [{"SEAL_TYPE": "01", "RECORD_NO": "A"}, {"SEAL_TYPE": "03", "RECORD_NO": "C"}]}}}
        """)

    func render(_ template: String) throws -> JSONValue? {
        try Template(try JSONValue.parse(template), at: "t").render(context)
    }

    @Test("paths, literals, maps, slices, each, filters and quoted keys")
    func rendering() throws {
        #expect(try render(#""$.input.uscc""#) == "91330106MA2CXYZ12A")
        #expect(try render(#""BASC""#) == "BASC")
        #expect(try render(#"{"$path": "$.input.uscc", "$slice": [2, 8]}"#) == "330106")
        #expect(try render(#"{"$each": "$.input.seals", "$item": {"$path": "@", "$map": {"company": "01", "invoice": "03"}}}"#) == .array(["01", "03"]))
        #expect(try render(#"{"$each": "$.input.people", "$item": {"xm": "@.name", "zjlx": "10"}}"#)
                == .array([.object(["xm": "甲", "zjlx": "10"]), .object(["xm": "乙", "zjlx": "10"])]))
        #expect(try render(#""$.replies.ENGRAVE.SEAL_LIST[?SEAL_TYPE=03].RECORD_NO""#) == "C")
        #expect(try render(#""$.replies.ENGRAVE.SEAL_LIST[*].RECORD_NO""#) == .array(["A", "C"]))
        #expect(try render(#""$.replies['acmt.007'].Acct.Id""#) == "12020001")
        // A missing path leaves the field out rather than sending null.
        #expect(try render(#"{"a": "$.input.nothing", "b": 1}"#) == .object(["b": 1]))
        #expect(try render(#"{"$path": "$.input.nothing", "$default": "x"}"#) == "x")
    }

    @Test("a value with no entry in $map is an error naming the path and the value")
    func unmappedValue() throws {
        #expect(throws: (any Error).self) { try render(#"{"$path": "$.input.uscc", "$map": {"a": "b"}}"#) }
        do {
            _ = try render(#"{"$path": "$.input.seals[1]", "$map": {"company": "01"}}"#)
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("$.input.seals[1]") && "\(error)".contains("'invoice'"))
        }
    }

    @Test("a bad template is refused with where it is")
    func badTemplates() {
        #expect(throws: MappingError("f: $.x.$slice", "expected [from, to] with 0 <= from < to")) {
            try Template(try JSONValue.parse(#"{"$path": "$.a", "$slice": [3, 1]}"#), at: "f: $.x")
        }
        #expect(throws: MappingError("f: $.x", "unknown key '$mapp' next to $path")) {
            try Template(try JSONValue.parse(#"{"$path": "$.a", "$mapp": {}}"#), at: "f: $.x")
        }
    }

    @Test("a native field at fault traces back to the canonical input field")
    func sourceFields() throws {
        let t = try Template(try JSONValue.parse("""
            {"fddbr": {"xm": "$.input.legalRepresentative.name", "zjhm": "$.input.legalRepresentative.idNumber", "zjlx": "10"},
             "gdxx": {"$each": "$.input.shareholders", "$item": {"zjhm": "@.idNumber"}}, "qylx": {"$path": "$.input.entityType", "$map": {}}}
            """), at: "t")
        #expect(t.sourceField(of: "fddbr.zjhm") == "legalRepresentative.idNumber")
        #expect(t.sourceField(of: "gdxx[2].zjhm") == "shareholders[2].idNumber")
        #expect(t.sourceField(of: "qylx") == "entityType")
        #expect(t.sourceField(of: "fddbr.zjlx") == nil)  // a literal: nothing the applicant wrote
        #expect(t.sourceField(of: "nope") == nil)
    }
}

@Suite("Agency mappings: canonical commands to native messages and back")
struct MappingTests {
    @Test("every agency's mapping loads against its catalogue and covers every action")
    func allLoad() throws {
        let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
        let mappings = try AgencyMapping.loadAll(directory: repoRoot.appendingPathComponent("adapters"), catalogues: catalogues)
        #expect(Set(mappings.keys) == Set(catalogues.ids) && Set(Agency.builtIn.map(\.rawValue)).isSubset(of: mappings.keys))
        for (agency, mapping) in mappings {
            #expect(Set(mapping.actions.keys) == Set(catalogues.agencies[agency]!.actions.map(\.id)), "\(agency)")
        }
    }

    @Test("a mapping naming an unknown catalogue error code is refused with file and path")
    func badErrorCode() throws {
        let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
        var json = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("adapters/tax/mapping.json"))).objectValue!
        json["errors"] = .object(["9001": "NO_SUCH_CODE"])
        #expect(throws: MappingError("m.json: $.errors.9001", "'NO_SUCH_CODE' is not an error code of the tax catalogue")) {
            try AgencyMapping(.object(json), file: "m.json", catalogue: catalogues.agencies["tax"]!)
        }
        json = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("adapters/tax/mapping.json"))).objectValue!
        var actions = json["actions"]!.objectValue!
        actions["register-taxpayer"] = nil
        json["actions"] = .object(actions)
        #expect(throws: (any Error).self) { try AgencyMapping(.object(json), file: "m.json", catalogue: catalogues.agencies["tax"]!) }
    }

    /// Runs a command through the adapter and the real department simulator until a canonical event comes out.
    func roundTrip(_ t: Translator, _ department: inout any DepartmentEndpoint, _ command: JSONValue,
                   at now: Date = Date(timeIntervalSince1970: 1_772_413_200)) throws -> (event: CanonicalEvent, calls: [String]) {
        var outcome = t.start(command: command)
        var calls: [String] = []
        while case .request(let request) = outcome {
            calls.append(request.action)
            let handling = department.receive(Data(request.message.text().utf8), at: now)
            let reply = try JSONValue.parse(try #require(handling.reply))
            outcome = try t.finish(reply: reply, context: request.context)
        }
        guard case .event(let event) = outcome else { throw SetupError("no event") }
        return (event, calls)
    }

    @Test("tax: 票种核定 then UKey are one canonical action; the context carries the first reply to the second call")
    func taxSequence() throws {
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        var tax = makeDepartment(.tax, reference: reference, preset: .noFaults, seed: 1)!
        let t = try translator("tax")
        let uscc = USCC.generate(region: "330106", sequence: 7, category: "1")
        let registered = try roundTrip(t, &tax, command("register-taxpayer", step: "tax-registration", payload: .object([
            "uscc": .string(uscc), "approvedName": "杭州云栖茶饮有限公司", "address": "杭州市西湖区文三路 1 号",
            "legalRepresentativeName": "张三", "legalRepresentativeIdNumber": "11010519491231002X", "taxpayerType": "small-scale",
            "industryCode": "F5212", "entityType": "limited-liability", "region": "330106"])))
        #expect(registered.event.type == MessageType.stepSucceeded, "\(registered.event.payload.text())")
        let outputs = try #require(registered.event.payload["outputs"])
        #expect(outputs["taxpayerId"] == .string(uscc))
        let seq = try #require(outputs["taxRegistrationSeq"]?.stringValue)
        #expect(seq.count == 20)

        let issued = try roundTrip(t, &tax, command("issue-invoices-and-ukey", step: "invoices-ukey", payload: .object([
            "taxpayerId": .string(uscc), "taxRegistrationSeq": .string(seq), "invoiceTypes": ["digital-general"],
            "invoiceSealCode": "x", "contactPhone": "13800138000"])))
        #expect(issued.calls == ["PZHD", "UKFF"])
        #expect(issued.event.type == MessageType.stepSucceeded)
        #expect(issued.event.payload["outputs"]?["ukeyId"]?.stringValue?.count == 12)
        #expect(issued.event.payload["outputs"]?["invoiceQuota"]?.arrayValue?.first?["fpzldm"] == "82")
        #expect(issued.event.payload["requestId"] == "APP-1/invoices-ukey/r1" && issued.event.payload["attempt"] == 1)
    }

    @Test("business registration: a bad ID check digit is a rejection naming the canonical input field")
    func rejectionNamesField() throws {
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        var registration = makeDepartment(.businessRegistration, reference: reference, preset: .noFaults, seed: 1)!
        let t = try translator("business-registration")
        let reserved = try roundTrip(t, &registration, command("reserve-name", step: "name-reservation", payload: .object([
            "proposedName": "杭州云栖茶饮有限公司", "tradeName": "云栖", "industryWord": "茶饮", "organizationForm": "有限公司",
            "region": "330106", "industryCode": "F5123", "entityType": "limited-liability"])))
        #expect(reserved.event.type == MessageType.stepSucceeded, "\(reserved.event.payload.text())")
        let reservation = try #require(reserved.event.payload["outputs"]?["reservationId"])
        let person: JSONValue = .object(["name": "张三", "idNumber": "110105194912310021", "phone": "13800138000"])
        let rejected = try roundTrip(t, &registration, command("register-enterprise", step: "registration", payload: .object([
            "reservationId": reservation, "approvedName": "杭州云栖茶饮有限公司", "entityType": "limited-liability",
            "registeredCapital": 100000, "address": "杭州市西湖区文三路 1 号", "businessScope": "茶饮", "region": "330106",
            "industryCode": "F5123", "legalRepresentative": person,
            "shareholders": .array([.object(["name": "张三", "idNumber": "110105194912310021", "contribution": 100000])]),
            "materials": .array([])])))
        #expect(rejected.event.type == MessageType.stepRejected)
        #expect(rejected.event.payload["code"] == "INVALID_ID_NUMBER")
        #expect(rejected.event.payload["field"] == "$.legalRepresentative.idNumber")
        #expect(rejected.event.payload["reason"]?.stringValue?.contains("E3004") == true)
    }

    @Test("a missing material the department accepts as 容缺 becomes supplement-needed; the supplement makes it provided")
    func supplement() throws {
        let payload: JSONValue = .object(["materials": .array([.object(["type": "lease-contract", "provided": false])]),
                                          "supplements": .object(["lease-contract": "补正"])])
        let prepared = Translator.withSupplements(payload)
        #expect(prepared["materials"]?.arrayValue?.first?["provided"] == true)
        // A reply with the 容缺 code names the missing material.
        let t = try translator("business-registration")
        let cmd = command("register-enterprise", step: "registration", payload: .object([
            "materials": .array([.object(["type": "lease-contract", "provided": false])])]))
        guard case .request(let request) = t.start(command: cmd) else { Issue.record("no request"); return }
        let reply: JSONValue = .object(["qqlsh": .string(request.requestId), "jgdm": "E3101", "jgms": "材料容缺", "cwzd": "clqd[0].sftj"])
        guard case .event(let event) = try t.finish(reply: reply, context: request.context) else { Issue.record("no event"); return }
        #expect(event.type == MessageType.supplementNeeded)
        #expect(event.payload["materials"] == .array(["lease-contract"]))
    }

    @Test("容缺: the applicant is asked for the materials the department named, not those the form marked missing; the supplement satisfies the department")
    func supplementAsksForWhatTheDepartmentNamed() throws {
        let t = try translator("business-registration")
        var dept = RunningDepartment(DepartmentSimulator(model: BusinessRegistration(reference: try ReferenceData.load(
            from: repoRoot.appendingPathComponent("seeds/departments"))), preset: .noFaults))
        // The enterprise the permit is for: reserve the name and register it at the same department.
        let monday = Date(timeIntervalSince1970: 1_772_413_200)
        let form = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "restaurant-opening" })
        func run(_ action: String, step: String, payload: JSONValue, revision: Int = 0) throws -> CanonicalEvent {
            var cmd = command(action, step: step, payload: payload)
            if case .object(var o) = cmd { o["requestId"] = .string("APP-1/\(step)/r\(revision)"); o["revision"] = .number(Double(revision)); cmd = .object(o) }
            guard case .request(let request) = t.start(command: cmd) else { throw SetupError("no request for \(action)") }
            let handling = dept.receive(Data(request.message.text().utf8), at: monday)
            let reply = try JSONValue.parse(try #require(handling.reply))
            guard case .event(let event) = try t.finish(reply: reply, context: request.context) else { throw SetupError("no event for \(action)") }
            return event
        }
        let company = try #require(form["company"])
        let reserved = try run("reserve-name", step: "name-reservation", payload: .object([
            "proposedName": company["proposedName"]!, "tradeName": company["tradeName"]!, "industryWord": company["industryWord"]!,
            "organizationForm": company["organizationForm"]!, "region": form["region"]!, "industryCode": company["industryCode"]!,
            "entityType": company["entityType"]!]))
        let names = try #require(reserved.payload["outputs"])
        let registered = try run("register-enterprise", step: "registration", payload: .object([
            "reservationId": names["reservationId"]!, "approvedName": names["approvedName"]!, "entityType": company["entityType"]!,
            "registeredCapital": company["registeredCapital"]!, "address": company["address"]!, "businessScope": company["businessScope"]!,
            "region": form["region"]!, "industryCode": company["industryCode"]!, "legalRepresentative": form["legalRepresentative"]!,
            "shareholders": form["shareholders"]!,
            "materials": .array(["articles-of-association", "lease-contract", "id-copy-legal-representative"].map { .object(["type": .string($0), "provided": true]) })]))
        let uscc = try #require(registered.payload["outputs"]?["uscc"])
        // The form says the floor plan is missing; the department needs the premises layout.
        var permit: [String: JSONValue] = [
            "uscc": uscc, "approvedName": names["approvedName"]!, "address": company["address"]!,
            "legalRepresentativeName": form["legalRepresentative"]!["name"]!, "businessScope": company["businessScope"]!,
            "materials": .array([.object(["type": "lease-contract", "provided": true]), .object(["type": "floor-plan", "provided": false])])]
        let asked = try run("issue-food-business-permit", step: "food-business-permit", payload: .object(permit))
        #expect(asked.type == MessageType.supplementNeeded)
        #expect(asked.payload["materials"] == .array(["premises-layout"]), "asked for \(asked.payload["materials"] ?? .null)")
        // The applicant hands in what was asked for; the department then issues the permit.
        permit["supplements"] = .object(["premises-layout": "补正材料已在窗口提交"])
        let issued = try run("issue-food-business-permit", step: "food-business-permit", payload: .object(permit), revision: 1)
        #expect(issued.type == MessageType.stepSucceeded, "\(issued.payload)")
    }

    @Test("a name reservation whose answer never came back: the keyless release the hub sends frees the name at the registry")
    func keylessReleaseThroughTheAdapter() throws {
        let t = try translator("business-registration")
        var dept = RunningDepartment(DepartmentSimulator(model: BusinessRegistration(reference: try ReferenceData.load(
            from: repoRoot.appendingPathComponent("seeds/departments"))), preset: .noFaults))
        let monday = Date(timeIntervalSince1970: 1_772_413_200)
        let form = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        let company = try #require(form["company"])
        let reserve = command("reserve-name", step: "name-reservation", payload: .object([
            "proposedName": company["proposedName"]!, "tradeName": company["tradeName"]!, "industryWord": company["industryWord"]!,
            "organizationForm": company["organizationForm"]!, "region": form["region"]!, "industryCode": company["industryCode"]!,
            "entityType": company["entityType"]!]))
        guard case .request(let first) = t.start(command: reserve) else { Issue.record("no request"); return }
        // The registry reserves the name; its answer never reaches the hub.
        #expect(dept.receive(Data(first.message.text().utf8), at: monday).outcome == .completed)
        // The hub undoes the step without knowing the reservation number.
        var undo = command("release-name", step: "name-reservation", payload: .object([:]), kind: "compensation")
        if case .object(var o) = undo { o["requestId"] = "APP-1/name-reservation/undo"; undo = .object(o) }
        guard case .request(let release) = t.start(command: undo) else { Issue.record("no release request"); return }
        #expect(release.message["mcblh"] == nil && release.message["cxyy"] != nil)
        let released = dept.receive(Data(release.message.text().utf8), at: monday.addingTimeInterval(3600))
        #expect(released.outcome == .completed && released.effects.map(\.kind) == ["name-released"])
        guard case .event(let event) = try t.finish(reply: try JSONValue.parse(try #require(released.reply)), context: release.context) else {
            Issue.record("no event"); return
        }
        #expect(event.type == MessageType.compensationSucceeded)
        // A new application for the same company gets the name.
        var again = reserve
        if case .object(var o) = again { o["sagaId"] = "APP-2"; o["requestId"] = "APP-2/name-reservation/r0"; again = .object(o) }
        guard case .request(let second) = t.start(command: again) else { Issue.record("no request"); return }
        #expect(dept.receive(Data(second.message.text().utf8), at: monday.addingTimeInterval(7200)).outcome == .completed)
    }

    @Test("a reply for another request id is refused, not turned into an event")
    func foreignReply() throws {
        let t = try translator("social-security")
        guard case .request(let request) = t.start(command: command("register-employer", step: "social-security", payload: .object([:]))) else {
            Issue.record("no request"); return
        }
        #expect(throws: (any Error).self) {
            try t.finish(reply: .object(["serialNo": "someone-else", "errcode": "0"]), context: request.context)
        }
    }
}

/// A reply's echoed `yishi-adapter-context` comes from the department's side: any `call` in it
/// is answered with a MappingError (dead letter), never an out-of-range index (issue 10, kind 2).
@Suite("Poison adapter contexts")
struct PoisonContextTests {
    @Test(arguments: [-1, Int.min, 1, Int.max])
    func callOutOfRange(call: Int) throws {
        let t = try translator("bank")
        // As the adapter reads it: the header's JSON.
        let header = JSONValue.object(["command": command("open-basic-account", step: "bank-account", payload: .object([:])),
                                       "call": .number(Double(call)), "replies": .object([:])]).text()
        guard let context = try? JSONDecoder().decode(AdapterContext.self, from: Data(header.utf8)) else { return }  // not even an Int: dead-lettered as bad-header
        do {
            _ = try t.finish(reply: .object([:]), context: context)
            Issue.record("a context naming call \(call) was accepted")
        } catch {
            #expect(error.at == AdapterContext.header)
        }
    }
}
