/// Writes series in Prometheus's text exposition format (version 0.0.4) for what the registry does not render
/// itself: the hot-path histograms.
public enum PrometheusText {
    /// The `Content-Type` of a scrape answer.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Appends a histogram family: `# HELP`, `# TYPE`, then per series its buckets, `+Inf`, `_sum` and `_count`.
    /// `scale` turns the recorded unit into the exposed one (1e9 for nanoseconds → seconds). Series without
    /// observations are left out; the family's HELP and TYPE lines are written regardless.
    public static func appendHistogram(
        _ name: String,
        help: String,
        bounds: [Int],
        scale: Double,
        series: [(labels: [(String, String)], snapshot: AtomicHistogram.Snapshot)],
        to text: inout String
    ) {
        text += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) histogram\n"
        let les = bounds.map { String(Double($0) / scale) }
        for (labels, snapshot) in series where snapshot.count > 0 {
            let prefix = labels.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"," }.joined()
            for (le, count) in zip(les, snapshot.cumulative) {
                text += "\(name)_bucket{\(prefix)le=\"\(le)\"} \(count)\n"
            }
            text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(snapshot.count)\n"
            let braces = labels.isEmpty ? "" : "{\(prefix.dropLast())}"
            text += "\(name)_sum\(braces) \(Double(snapshot.sum) / scale)\n"
            text += "\(name)_count\(braces) \(snapshot.count)\n"
        }
    }

    /// A label value as the format wants it: backslash, double quote and line feed escaped.
    public static func escapeLabelValue(_ value: String) -> String { escape(value, quotes: true) }

    /// HELP text escapes only backslash and line feed.
    private static func escapeHelp(_ help: String) -> String { escape(help, quotes: false) }

    private static func escape(_ text: String, quotes: Bool) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"" where quotes: escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
