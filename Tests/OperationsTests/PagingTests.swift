import Foundation
import Orchestrator
import SagaEngine
import Testing
@testable import Operations

/// Merging one `list` reply per partition when a partition's page was cut (by the limit, or to
/// fit one ops-replies record under message.max.bytes): the merged page must never skip a saga
/// that partition has not sent yet.
@Suite struct ListPagingTests {
    func saga(_ id: String, _ ms: Int64) -> SagaState {
        var s = SagaState(sagaId: id, bundle: library.newest("enterprise-opening")!)
        s.submittedAt = Instant(ms: ms)
        return s
    }

    func reply(_ partition: Int32, _ sagas: [SagaState], more: Bool) -> OpsReply {
        var r = OpsReply(requestId: "r", ok: true, partition: partition, sagas: sagas)
        r.more = more
        return r
    }

    @Test("a partition cut short bounds the merged page; the cursor continues after the page's last saga")
    func cutPartitionBoundsThePage() {
        // Partition 0 had room for three sagas only (its fourth, at 35, is still unsent).
        let p0 = reply(0, [saga("a", 10), saga("b", 20), saga("c", 30)], more: true)
        let p1 = reply(1, [saga("x", 15), saga("y", 40), saga("z", 50)], more: false)
        let (page, next) = SagaSource.merge([p0, p1], limit: 1000)
        #expect(page.map(\.sagaId) == ["a", "x", "b", "c"], "sagas after partition 0's last one would skip its unsent sagas")
        #expect(next == SagaCursor(submittedAt: Instant(ms: 30), sagaId: "c"))
    }

    @Test("without a cut partition the merge is the first `limit` of all")
    func noCut() {
        let p0 = reply(0, [saga("a", 10), saga("c", 30)], more: false)
        let p1 = reply(1, [saga("x", 15), saga("y", 40)], more: false)
        let (all, none) = SagaSource.merge([p0, p1], limit: 1000)
        #expect(all.map(\.sagaId) == ["a", "x", "c", "y"] && none == nil)
        let (two, next) = SagaSource.merge([p0, p1], limit: 2)
        #expect(two.map(\.sagaId) == ["a", "x"] && next == SagaCursor(submittedAt: Instant(ms: 15), sagaId: "x"))
    }
}

/// A decodable saga-state record whose steps do not match its bundle version (more steps than
/// the bundle has) is listed and filtered as far as it matches, never an index trap.
@Suite struct MismatchedStateTests {
    @Test func moreStepsThanTheBundle() {
        let bundle = library.newest("enterprise-opening")!
        var s = SagaState(sagaId: "APP-ODD", bundle: bundle)
        s.status = .running
        var extra = s.steps[0]
        extra.status = .running
        s.steps.append(extra)
        #expect(!SagaFilter(agency: "tax").matches(s, bundle: bundle))
        let summary = SagaSummary(s, bundle: bundle, calendar: library.calendar(for: bundle), now: Instant(ms: 0), revealPII: false)
        #expect(summary.blockedAt.isEmpty)
    }
}
