import Adapters
import Foundation
import Messaging
import SagaEngine

/// Creates the directory of an output file named by `setting` (e.g. `--html`) and checks the
/// file can be written, before the command does its work.
/// - Throws: `ConfigError` naming the setting, the file and the problem.
func prepareOutputFile(_ url: URL, setting: String) throws {
    let parent = url.deletingLastPathComponent()
    do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
        throw ConfigError("\(setting) \(url.path): cannot create its directory \(parent.path) (\(ConfigFile.fileProblem(error, url: parent.appendingPathComponent("x"))))")
    }
    try ConfigFile.checkWritable(url, setting: setting)
}

/// A configuration error (exit 2) in one line, or nil when `error` is not one: a file, directory
/// or setting that cannot work (`ConfigError`, schema, mapping, calendar files).
func configurationProblem(_ error: Error) -> String? {
    switch error {
    case let e as ConfigError: e.description
    case let e as SchemaLoadError: e.description
    case let e as Adapters.MappingError: e.description
    case let e as LoadError: e.description
    default: nil
    }
}

/// Any other error in words: Foundation's file errors as "path: no such file" and decoding
/// errors as JSON path and problem, never their `NSCocoaErrorDomain`/`DecodingError` dumps.
func plainWords(_ error: Error) -> String {
    if error is DecodingError { return ConfigFile.describe(error, data: Data()) }
    let ns = error as NSError
    if ns.domain == NSCocoaErrorDomain {
        let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        if let path { return "\(path): " + ConfigFile.fileProblem(error, url: URL(fileURLWithPath: path)) }
        return ns.localizedDescription
    }
    return "\(error)"
}
