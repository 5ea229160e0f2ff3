import Foundation

/// A Tansu broker of a test's own on durable storage: `scripts/with-broker.sh --storage s3`
/// (Tansu's `s3://` storage on a local moto S3 server, each on a free loopback port), so that the
/// broker can be SIGKILLed and restarted on the same storage and port mid-run. The suite's own
/// broker (YISHI_BOOTSTRAP) stays on memory storage and is not touched.
///
/// The script runs a command that prints the broker's address and waits on its standard input;
/// `stop()` (or this process ending) closes that input, and the script then stops the broker,
/// the S3 server and everything else it started.
public final class DurableBroker: @unchecked Sendable {
    /// The broker's `host:port`; the same after `restart()`.
    public let bootstrap: String
    /// The broker's process id, also its process group id (the broker runs under setsid).
    public private(set) var pid: Int32
    private let control: String
    private let restartCommand: String
    private let python: URL
    /// The S3 server's URL (moto), bucket `tansu`.
    public let s3Endpoint: String
    private let script = Process()
    private let input = Pipe()
    private let output = Recorder<Data>()

    /// Starts it; waits up to `timeout` for the broker to answer metadata.
    /// Throws `SetupError` with the script's output when it does not.
    public init(repoRoot: URL, timeout: Duration = .seconds(90)) throws {
        script.executableURL = repoRoot.appendingPathComponent("scripts/with-broker.sh")
        python = repoRoot.appendingPathComponent(".venv/bin/python")
        script.currentDirectoryURL = repoRoot
        script.arguments = ["--storage", "s3", "/bin/bash", "-c",
                            #"echo "durable-broker $YISHI_BOOTSTRAP $YISHI_BROKER_PID $YISHI_BROKER_CONTROL $YISHI_BROKER_RESTART $YISHI_BROKER_S3_ENDPOINT"; read -r _ || true"#]
        let out = Pipe()
        script.standardInput = input
        script.standardOutput = out
        script.standardError = out
        let sink = output
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil } else { sink.append(data) }  // empty: end of file
        }
        try script.run()
        let deadline = ContinuousClock.now + timeout
        var fields: [Substring] = []
        while ContinuousClock.now < deadline && script.isRunning {
            let text = String(decoding: output.all.reduce(Data(), +), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("durable-broker ") }) {
                fields = line.split(separator: " ")
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        guard fields.count == 6, let pid = Int32(fields[2]) else {
            if script.isRunning { script.terminate() }
            throw SetupError("scripts/with-broker.sh --storage s3 gave no broker within \(timeout):\n\(String(decoding: output.all.reduce(Data(), +), as: UTF8.self))")
        }
        bootstrap = String(fields[1])
        self.pid = pid
        control = String(fields[3])
        restartCommand = String(fields[4])
        s3Endpoint = String(fields[5])
    }

    deinit { stop() }

    /// Everything the script and the broker's start-up printed so far.
    public var log: String { String(decoding: output.all.reduce(Data(), +), as: UTF8.self) }

    /// SIGKILLs the broker if it still runs and starts it again with the same arguments, storage
    /// and port (`scripts/restart-broker.sh`); returns once it answers metadata, with its new pid.
    /// Throws `SetupError` when it did not come back within the script's 60 s.
    @discardableResult
    public func restart() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: restartCommand)
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BROKER_CONTROL"] = control
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SetupError("the broker did not come back (restart-broker.sh exit \(p.terminationStatus), \(text)):\n\(log)")
        }
        self.pid = pid
        return pid
    }

    /// An object Tansu stored, e.g. `clusters/tansu_cluster/meta.json` (producers, transactions
    /// and their states); nil when there is none. Read with boto3 (installed with moto in .venv:
    /// moto refuses unsigned reads of objects), with the dummy keys with-broker.sh gives Tansu.
    public func object(_ key: String) -> Data? {
        let p = Process()
        p.executableURL = python
        p.arguments = ["-c", """
            import sys, boto3
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                              aws_access_key_id="yishi-test", aws_secret_access_key="yishi-test")
            sys.stdout.buffer.write(s3.get_object(Bucket="tansu", Key=sys.argv[2])["Body"].read())
            """, s3Endpoint, key]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? data : nil
    }

    /// Transactions Tansu's storage holds open: every (transactional id, producer epoch) whose
    /// state is neither Committed nor Aborted, or that ended but still lists records produced,
    /// with its state and those partitions (`topic/partition@first..last`). Tansu holds each
    /// such open partition's last stable offset at the transaction's first offset (read_committed
    /// consumers see nothing past it), and commits a transaction only once every other one that
    /// lists records on the same partitions is prepared (a PrepareCommit or PrepareAbort).
    public func openTransactions() -> [String] {
        guard let data = object("clusters/tansu_cluster/meta.json"),
              let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let transactions = meta["transactions"] as? [String: Any] else { return ["meta.json unreadable"] }
        var open: [String] = []
        for (id, value) in transactions.sorted(by: { $0.key < $1.key }) {
            guard let epochs = (value as? [String: Any])?["epochs"] as? [String: Any] else { continue }
            for (epoch, detail) in epochs {
                guard let detail = detail as? [String: Any], let state = detail["state"] as? String else { continue }
                let produces = (detail["produces"] as? [String: Any]) ?? [:]
                // An ended transaction normally holds no produces (Tansu clears them at the end).
                guard (state != "Committed" && state != "Aborted") || !produces.isEmpty else { continue }
                var produced: [String] = []
                for (topic, partitions) in produces {
                    for (partition, range) in (partitions as? [String: Any]) ?? [:] {
                        let r = range as? [String: Any]
                        produced.append("\(topic)/\(partition)@\(r?["offset_start"] ?? "?")..\(r?["offset_end"] ?? "?")")
                    }
                }
                open.append("\(id) epoch \(epoch): \(state) \(produced.sorted())")
            }
        }
        return open
    }

    /// Stops the broker and the S3 server (closes the script's input and waits up to 15 s for it).
    public func stop() {
        guard script.isRunning else { return }
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(15)
        while script.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if script.isRunning { script.terminate(); script.waitUntilExit() }
    }
}
