import Foundation
import Messaging
import SagaEngine

/// 统一出件: the step outputs that are numbers and licences handed to the applicant at the one
/// pickup window, with their Chinese labels, in pickup order. Read from the agency catalogues'
/// action outputs (adapters/*/catalogue.json): a name not listed here (approvedName, validUntil,
/// registeredAt, licenceUrl, …) is not an issued number. Bank account numbers are masked
/// before they are kept (`PersonalData.maskAccount`): the package never holds a full account number.
public enum IssuedNumbers {
    /// Output name → label; `masked` outputs are kept masked.
    public static let table: [(name: String, label: String, masked: Bool)] = [
        ("uscc", "统一社会信用代码", false),
        ("licenceId", "电子营业执照编号", false),
        ("permitNumber", "许可证编号", false),
        ("filingNumber", "备案编号", false),
        ("sealSetId", "印章备案编号", false),
        ("companySealCode", "公章备案码", false),
        ("financeSealCode", "财务专用章备案码", false),
        ("invoiceSealCode", "发票专用章备案码", false),
        ("electronicSealIds", "电子印章编号", false),
        ("taxpayerId", "纳税人识别号（税务登记）", false),
        ("taxRegistrationSeq", "税务登记序号", false),
        ("ukeyId", "税务UKey编号（发票领用）", false),
        ("accountNumber", "基本存款账户账号", true),
        ("merchantId", "收单商户号", false),
        ("employerSocialSecurityNo", "社会保险单位编号", false),
        ("medicalInsuranceNo", "医疗保险单位编号", false),
    ]
    static let index: [String: Int] = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1.name, $0) })

    /// The issued numbers among a step's success outputs (masked where the table says so).
    public static func pick(_ outputs: [String: JSONValue]) -> [String: JSONValue] {
        var kept: [String: JSONValue] = [:]
        for (name, value) in outputs {
            guard let i = index[name], value != .null else { continue }
            kept[name] = table[i].masked ? mask(value) : value
        }
        return kept
    }

    static func mask(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(PersonalData.maskAccount(s))
        case .array(let a): return .array(a.map(mask))
        default: return .string("****")
        }
    }
}

/// The result package of a completed saga (`cn.gov.yishi.progress.result-package` on the `progress`
/// topic, and what `yishi sagas results` prints): every number and licence issued, by step, as the
/// one pickup window hands them out. Holds no personal data (bank accounts masked).
public struct ResultPackage: Codable, Equatable, Sendable {
    public struct Item: Codable, Equatable, Sendable {
        public var step: String
        public var stepTitle: String
        public var agency: String
        /// The output's name in the agency catalogue (`uscc`, `accountNumber`, …).
        public var name: String
        public var label: String
        public var value: JSONValue
    }
    public var applicationId: String
    public var bundle: String
    public var bundleTitle: String
    /// RFC 3339 (+08:00) instant the saga completed; nil when unknown (built from a state without it).
    public var completedAt: String?
    public var items: [Item]

    /// The package of `state` (nil unless the saga completed). Items in step order, then in
    /// `IssuedNumbers.table` order.
    public static func make(_ state: SagaState, bundle: CompiledBundle, completedAt: Instant? = nil) -> ResultPackage? {
        guard state.status == .completed else { return nil }
        var items: [Item] = []
        for step in bundle.steps {
            guard let issued = state.issued?[step.id] else { continue }
            for (name, label, _) in IssuedNumbers.table {
                guard let value = issued[name] else { continue }
                let title = bundle.definition.steps.first { $0.id == step.id }?.title ?? step.id
                items.append(Item(step: step.id, stepTitle: title, agency: step.agency, name: name, label: label, value: value))
            }
        }
        return ResultPackage(applicationId: state.sagaId, bundle: bundle.id, bundleTitle: bundle.definition.title,
                             completedAt: completedAt?.description, items: items)
    }

    /// As the pickup window prints it (plain Chinese, one line per number).
    public func render() -> String {
        var lines = ["统一出件 · \(bundleTitle)", "申请编号：\(applicationId)"]
        if let completedAt { lines.append("办结时间：\(completedAt)") }
        var lastStep = ""
        for item in items {
            if item.step != lastStep { lines.append("【\(item.stepTitle)】"); lastStep = item.step }
            let value: String
            switch item.value {
            case .string(let s): value = s
            case .array(let a): value = a.map { $0.stringValue ?? $0.text() }.joined(separator: "、")
            default: value = item.value.text()
            }
            lines.append("  \(item.label)：\(value)")
        }
        if items.isEmpty { lines.append("（本事项未出具证照或编号）") }
        lines.append("以上证照、编号一次领取；银行账号已部分隐藏，完整账号请凭营业执照向开户银行查询。")
        return lines.joined(separator: "\n")
    }
}

/// 进度查询: what an applicant may see of their application, in plain Chinese and without personal
/// data (no ID numbers, no names, no phone numbers; department names and step titles only).
public struct ProgressReport: Codable, Equatable, Sendable {
    public struct Line: Codable, Equatable, Sendable {
        public var step: String
        public var title: String
        /// The department's title from its agency catalogue.
        public var department: String
        /// Plain Chinese: 已办结, 办理中, 待补材料, 待办理, 转人工办理, …
        public var state: String
        /// 容缺: the materials this department still needs (their Chinese names).
        public var materials: [String]?
    }
    public var applicationId: String
    public var bundleTitle: String
    /// The saga's status in plain Chinese.
    public var status: String
    public var done: [Line]
    public var inProgress: [Line]
    public var notStarted: [Line]
    /// 容缺: what the applicant must still hand in, per department.
    public var materialsNeeded: [Line]
    public var submittedAt: String
    /// The SLA deadline (承诺办结时限), RFC 3339 +08:00.
    public var slaDeadline: String
    /// Expected finish, RFC 3339 +08:00: now plus the longest chain of remaining steps, each at its
    /// bundle timeout in working time (a running step: the time left to its timeout), on the
    /// bundle's business calendar; nil once the saga has ended.
    public var expectedFinish: String?
    /// Remarks (materials to hand in first, a manual case, an ended saga).
    public var notes: [String]

    /// Plain Chinese names of 容缺 materials; an unknown one is shown by its code.
    public static let materialNames: [String: String] = [
        "lease-contract": "经营场所租赁合同", "premises-layout": "经营场所平面布局图",
        "articles-of-association": "公司章程", "id-copy-legal-representative": "法定代表人身份证件复印件",
    ]

    public static func statusText(_ s: SagaStatus) -> String {
        switch s {
        case .new, .running: return "办理中"
        case .manual: return "办理中（部分事项转人工办理）"
        case .compensating: return "正在撤回已办事项"
        case .completed: return "已办结，请到统一出件窗口领取"
        case .failed: return "未能办结"
        case .compensated: return "未能办结，已办事项已撤回"
        case .cancelled: return "已撤销"
        }
    }

    /// The report of `state` at `now` (hub time).
    public static func make(_ state: SagaState, bundle: CompiledBundle, calendar: BusinessCalendar,
                            catalogues: CatalogueSet, now: Instant) -> ProgressReport {
        var done: [Line] = [], running: [Line] = [], waiting: [Line] = [], materials: [Line] = []
        var notes: [String] = []
        var remaining = [Int64](repeating: 0, count: bundle.steps.count)  // working ms until step i is done
        for (i, step) in bundle.steps.enumerated() where i < state.steps.count {
            let s = state.steps[i]
            let title = bundle.definition.steps.first { $0.id == step.id }?.title ?? step.id
            // A wait step (a public notice) is no department's: the hub counts the period.
            let dept = step.isWait ? "公示期（系统计时）" : catalogues.agencies[step.agency]?.title ?? step.agency
            func line(_ text: String, _ m: [String]? = nil) -> Line { Line(step: step.id, title: title, department: dept, state: text, materials: m) }
            let before = step.predecessors.map { remaining[$0] }.max() ?? 0
            // The department's typical handling time when its catalogue gives one (never more
            // than the step's timeout), else the timeout: an upper estimate.
            // A wait step takes its whole period (in working time from now, for natural days).
            let typical = step.wait.map { $0.working ? $0.ms : calendar.workingTime(from: now, to: now + $0.ms) }
                ?? catalogues.agencies[step.agency]?.action(step.action)?.typicalWorkingMinutes
                .map { min(Int64($0) * 60_000, step.timeoutMs) } ?? step.timeoutMs
            switch s.status {
            case .succeeded: done.append(line("已办结"))
            case .skipped: done.append(line("无需办理"))
            case .running where step.isWait:
                running.append(line("公示中，\(calendar.localText(s.due)) 期满"))
                remaining[i] = before + max(0, calendar.workingTime(from: now, to: s.due))
            case .running:
                running.append(line(s.isPaused ? "办理中（暂缓）" : "办理中"))
                // Sent at due − timeout: what is left of the typical time, or, once that has
                // passed, the time left until the hub stops waiting.
                let left = max(0, calendar.workingTime(from: now, to: s.due))
                let typicalLeft = typical - (step.timeoutMs - left)
                remaining[i] = before + (typicalLeft > 0 ? typicalLeft : left)
            case .backoff:
                running.append(line("办理中（系统正在重新发送）"))
                remaining[i] = before + typical
            case .waitingSupplement:
                let names = s.missing.map { materialNames[$0] ?? $0 }
                running.append(line("待补材料", names))
                materials.append(line("待补材料", names))
                remaining[i] = before + typical
            case .pending:
                waiting.append(line(s.isPaused ? "待办理（暂缓）" : "待办理"))
                remaining[i] = before + typical
            case .failed:
                running.append(line("转人工办理"))
                remaining[i] = before + typical
            case .cancelled: waiting.append(line("未办理"))
            case .compensating, .compensationBackoff, .compensationFailed: running.append(line("正在撤回"))
            case .compensated: done.append(line("已撤回"))
            }
        }
        if !materials.isEmpty {
            notes.append("请尽快补交上列材料（容缺受理）：材料补齐后相关部门继续办理，预计办结时间自补齐时起算。")
        }
        if state.status == .manual { notes.append("有事项转人工（办不成事窗口）办理，工作人员会与您联系。") }
        var expected: String?
        if !state.status.isFinal {
            expected = calendar.addWorkingTime(now, remaining.max() ?? 0).description
        } else if state.status != .completed {
            notes.append("本申请已终止办理；如有疑问请到综合窗口咨询。")
        }
        return ProgressReport(applicationId: state.sagaId, bundleTitle: bundle.definition.title, status: statusText(state.status),
                              done: done, inProgress: running, notStarted: waiting, materialsNeeded: materials,
                              submittedAt: state.submittedAt.description, slaDeadline: state.deadline.description,
                              expectedFinish: expected, notes: notes)
    }

    /// Plain Chinese, as read out at the window or shown on a portal.
    public func render() -> String {
        var lines = ["进度查询 · \(bundleTitle)", "申请编号：\(applicationId)", "当前状态：\(status)", "受理时间：\(submittedAt)",
                     "承诺办结时限：\(slaDeadline)"]
        if let expectedFinish { lines.append("预计办结时间：\(expectedFinish)") }
        func section(_ title: String, _ items: [Line]) {
            guard !items.isEmpty else { return }
            lines.append(title)
            for l in items {
                var text = "  · \(l.title)（\(l.department)）：\(l.state)"
                if let m = l.materials, !m.isEmpty { text += "，需补交：" + m.joined(separator: "、") }
                lines.append(text)
            }
        }
        section("已办事项：", done)
        section("正在办理：", inProgress)
        section("尚未开始：", notStarted)
        section("需要您补交的材料：", materialsNeeded)
        lines += notes
        return lines.joined(separator: "\n")
    }
}

/// Progress events for portals and SMS gateways, on the `progress` topic (keyed by application
/// id), mapped from the engine's outputs in the orchestrator layer and written in the same
/// transaction as the saga's other outputs. None carries personal data: ids, step and department
/// titles, material names, instants, and (result package) issued numbers with bank accounts masked.
enum ProgressEvents {
    /// The progress records one accepted input leads to, and the issued numbers it adds to `saga`
    /// (`SagaState.issued`, kept for the result package).
    static func map(_ input: SagaInput, outputs: [SagaOutput], saga: inout SagaState, bundle: CompiledBundle,
                    calendar: BusinessCalendar) -> [SagaHost.Outbound] {
        var out: [SagaHost.Outbound] = []
        func emit(_ type: String, step: String?, _ fields: [String: JSONValue]) {
            var body = fields
            body["applicationId"] = .string(saga.sagaId)
            body["bundle"] = .string(bundle.id)
            let payload = JSONValue.object(body)
            out.append(SagaHost.Outbound(topic: "progress", key: saga.sagaId, sagaId: saga.sagaId, type: type, subject: saga.sagaId,
                                         step: step, attempt: nil, payload: payload))
        }
        func stepFields(_ id: String) -> [String: JSONValue] {
            guard let i = bundle.stepIndex(of: id) else { return ["step": .string(id)] }
            return ["step": .string(id), "stepTitle": .string(bundle.definition.steps[i].title ?? id), "agency": .string(bundle.steps[i].agency)]
        }
        for output in outputs {
            switch output {
            case .audit(let event):
                switch event.kind {
                case .submitted:
                    emit(MessageType.progressAccepted, step: nil, ["bundleTitle": .string(bundle.definition.title), "at": .string(event.at.description),
                                                                   "slaDeadline": .string(saga.deadline.description)])
                case .stepSucceeded, .stepResolvedManually:
                    guard let step = event.step, let i = bundle.stepIndex(of: step), i < saga.steps.count, saga.steps[i].status == .succeeded else { continue }
                    var produced: [String: JSONValue] = [:]
                    switch input.event {
                    case .stepSucceeded(let s, _, let outputs) where s == step: produced = outputs
                    case .operatorCommand(let c):
                        if case .resolveManually(let s, let outputs, _) = c.action, s == step { produced = outputs }
                    default: break
                    }
                    let issued = IssuedNumbers.pick(produced)
                    if !issued.isEmpty { saga.issued = (saga.issued ?? [:]).merging([step: issued]) { _, new in new } }
                    var fields = stepFields(step)
                    fields["at"] = .string(event.at.description)
                    fields["issued"] = .array(IssuedNumbers.table.filter { issued[$0.name] != nil }.map { .string($0.label) })
                    emit(MessageType.progressDepartmentDone, step: step, fields)
                case .supplementRequested:
                    guard let step = event.step, let i = bundle.stepIndex(of: step), i < saga.steps.count,
                          saga.steps[i].status == .waitingSupplement else { continue }
                    var fields = stepFields(step)
                    fields["at"] = .string(event.at.description)
                    fields["materials"] = .array(saga.steps[i].missing.map { .string($0) })
                    fields["materialTitles"] = .array(saga.steps[i].missing.map { .string(ProgressReport.materialNames[$0] ?? $0) })
                    emit(MessageType.progressMaterialsNeeded, step: step, fields)
                default: continue
                }
            case .finished(_, let status, let at) where status == .completed:
                emit(MessageType.progressReadyForPickup, step: nil, ["bundleTitle": .string(bundle.definition.title), "at": .string(at.description)])
                if let package = ResultPackage.make(saga, bundle: bundle, completedAt: at) {
                    let payload = OutboundPayload.resultPackage(package)
                    out.append(SagaHost.Outbound(topic: "progress", key: saga.sagaId, sagaId: saga.sagaId, type: MessageType.progressResultPackage,
                                                 subject: saga.sagaId, step: nil, attempt: nil, payload: payload))
                }
            default: continue
            }
        }
        return out
    }
}
