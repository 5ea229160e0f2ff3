import SagaEngine

/// Deadlines of the owned sagas, soonest first. In memory only: it is rebuilt
/// from the restored saga states on assignment, so it needs no changelog.
struct TimerIndex {
    struct Entry: Comparable {
        let due: Instant
        let sagaId: String
        let key: TimerKey
        static func < (a: Entry, b: Entry) -> Bool { (a.due, a.sagaId) < (b.due, b.sagaId) }
        static func == (a: Entry, b: Entry) -> Bool { a.due == b.due && a.sagaId == b.sagaId && a.key == b.key }
    }

    /// A timer's identity (saga and key), as `TimerCommand.id` names it, without building that
    /// string: a restore schedules several timers per saga.
    private struct Ref: Hashable {
        let sagaId: String
        let key: TimerKey
    }

    private var heap: [Entry] = []
    /// Live timers with their due instant; heap entries not matching are stale (lazy deletion).
    private var live: [Ref: (due: Instant, sagaId: String)] = [:]

    var count: Int { live.count }

    /// Room for `count` more timers (a restore schedules several per saga).
    mutating func reserve(_ count: Int) {
        live.reserveCapacity(live.count + count)
        heap.reserveCapacity(heap.count + count)
    }

    /// Adds every timer of `other` (built apart, e.g. by a restore on another thread): the same
    /// index as scheduling them here after the ones already in it.
    mutating func merge(_ other: TimerIndex) {
        if live.isEmpty && heap.isEmpty {
            self = other
            return
        }
        live.merge(other.live) { _, new in new }
        heap.append(contentsOf: other.heap)
        // Bottom-up heap construction, O(n).
        var i = heap.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    mutating func schedule(_ timer: TimerCommand) {
        live[Ref(sagaId: timer.sagaId, key: timer.key)] = (timer.due, timer.sagaId)
        push(Entry(due: timer.due, sagaId: timer.sagaId, key: timer.key))
    }

    mutating func cancel(_ timer: TimerCommand) { live[Ref(sagaId: timer.sagaId, key: timer.key)] = nil }

    /// Forgets every timer of the given sagas (revoked partitions).
    mutating func removeAll(where sagaMatches: (String) -> Bool) {
        live = live.filter { !sagaMatches($0.value.sagaId) }
        heap.removeAll { sagaMatches($0.sagaId) }
        heap.sort()  // a sorted array is a valid min-heap
    }

    /// Removes and returns the timers due at or before `now`, soonest first.
    mutating func popDue(now: Instant, limit: Int = .max) -> [TimerCommand] {
        var due: [TimerCommand] = []
        while due.count < limit, let top = heap.first, top.due <= now {
            pop()
            let id = Ref(sagaId: top.sagaId, key: top.key)
            guard live[id]?.due == top.due else { continue }  // cancelled or rescheduled
            live[id] = nil
            due.append(TimerCommand(sagaId: top.sagaId, key: top.key, due: top.due))
        }
        return due
    }

    /// The soonest live deadline (drops stale entries from the top on the way).
    mutating func nextDue() -> Instant? {
        while let top = heap.first {
            if live[Ref(sagaId: top.sagaId, key: top.key)]?.due == top.due { return top.due }
            pop()
        }
        return nil
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && heap[left] < heap[smallest] { smallest = left }
            if right < heap.count && heap[right] < heap[smallest] { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
