import KScaler
import KScalerCore

/// `kscaler backtest`'s human output and SVG chart.
enum BacktestPrinter {
    /// Actions listed per configuration in the human output; `--output json` has them all.
    static let listedActions = 20

    static func human(_ report: BacktestReport) -> String {
        let steps = report.real.timeline.count
        var lines = ["kscaler backtest: \(ReportPrinter.time(report.from)) → \(ReportPrinter.time(report.to)), step \(formatDuration(report.stepSeconds)) "
            + "(\(steps) step\(steps == 1 ? "" : "s")), history from \(report.prometheus)", ""]
        let columns = [("real", report.real.summary, "-")] + report.configs.map { ($0.label, $0.summary, formatDuration($0.bootTimeSeconds)) }
        let width = max(12, (columns.map(\.0.count).max() ?? 0) + 2)
        func row(_ name: String, _ cell: (BacktestSummary, String) -> String) -> String {
            ReportPrinter.pad(name, 34) + columns.map { column in
                let text = cell(column.1, column.2)
                return String(repeating: " ", count: max(1, width - text.count)) + text
            }.joined()
        }
        lines.append(ReportPrinter.pad("", 34) + columns.map { String(repeating: " ", count: max(1, width - $0.0.count)) + $0.0 }.joined())
        lines.append(row("launches") { summary, _ in "\(summary.launches)" })
        lines.append(row("terminations") { summary, _ in "\(summary.terminations)" })
        lines.append(row("peak nodes") { summary, _ in "\(summary.peakNodes)" })
        lines.append(row("mean nodes") { summary, _ in fixed(summary.meanNodes) })
        lines.append(row("node-hours") { summary, _ in fixed(summary.nodeHours) })
        lines.append(row("minutes with unschedulable pods") { summary, _ in fixed(summary.unschedulableMinutes, decimals: 1) })
        lines.append(row("steps without data (no action)") { summary, _ in "\(summary.stepsWithoutData)" })
        lines.append(row("boot time") { _, boot in boot })
        for replay in report.configs {
            lines.append("")
            let count = replay.actions.count
            lines.append("\(replay.label): \(count) action\(count == 1 ? "" : "s")"
                + (count > listedActions ? " (the first \(listedActions); --output json lists them all)" : ""))
            for action in replay.actions.prefix(listedActions) {
                let what = action.kind == .scaleUp ? "launch \(action.machines.count)" : "terminate \(action.machines.count)"
                lines.append("  \(ReportPrinter.time(action.time))  \(ReportPrinter.pad(what, 12))\(action.reasons.first ?? "")")
            }
        }
        lines.append("")
        lines.append("notes:")
        lines += report.notes.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }

    /// `value` with a fixed number of decimals (no locale).
    static func fixed(_ value: Double, decimals: Int = 2) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let whole = String(scaled / Int64(scale))
        let fraction = String(abs(scaled) % Int64(scale))
        return decimals == 0 ? whole : whole + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    private static let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]

    /// Nodes over time: the real cluster's (grey) and each configuration's simulated fleet, as
    /// step lines, with ▲/▼ where the simulation launched or terminated; the sandbox chart's style.
    static func svg(_ report: BacktestReport, width: Int = 960, height: Int = 320) -> String {
        let (left, right, top, bottom) = (48.0, 16.0, 40.0, 28.0)
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let start = report.from.timeIntervalSince1970, duration = max(1, report.to.timeIntervalSince1970 - start)
        let lines: [(String, [BacktestPoint], String, String)] = [("real", report.real.timeline, "#555", "6,3")]
            + report.configs.enumerated().map { index, replay in
                ("\(replay.label) (simulated)", replay.timeline, colours[index % colours.count], "")
            }
        let yMax = (lines.flatMap { $0.1.compactMap(\.nodes) }.max() ?? 0) + 1
        func px(_ time: Date) -> Double { left + plotW * (time.timeIntervalSince1970 - start) / duration }
        func py(_ value: Int) -> Double { top + plotH - plotH * Double(value) / Double(yMax) }
        func number(_ value: Double) -> String { fixed(value, decimals: 1) }
        var parts = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" "
            + "font-family=\"sans-serif\" font-size=\"12\">", "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>"]
        var x = left
        for (legend, _, colour, dash) in lines {
            parts.append("<line x1=\"\(number(x))\" y1=\"14\" x2=\"\(number(x + 24))\" y2=\"14\" stroke=\"\(colour)\" stroke-width=\"2.5\""
                + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>")
            parts.append("<text x=\"\(number(x + 30))\" y=\"18\">\(escape(legend))</text>")
            x += 40 + 7 * Double(legend.count)
        }
        parts.append("<text x=\"\(number(x))\" y=\"18\">▲ launch  ▼ terminate (simulated); nodes over time</text>")
        let tick = max(1, Int((Double(yMax) / 6).rounded()))
        for value in stride(from: 0, through: yMax, by: tick) {
            parts.append("<line x1=\"\(number(left))\" y1=\"\(number(py(value)))\" x2=\"\(number(left + plotW))\" y2=\"\(number(py(value)))\" stroke=\"#ddd\"/>")
            parts.append("<text x=\"\(number(left - 6))\" y=\"\(number(py(value) + 4))\" text-anchor=\"end\">\(value)</text>")
        }
        for index in 0...6 {
            let time = Date(timeIntervalSince1970: start + duration * Double(index) / 6)
            parts.append("<text x=\"\(number(px(time)))\" y=\"\(number(top + plotH + 16))\" text-anchor=\"middle\">\(clock(time))</text>")
        }
        parts.append("<rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(plotW))\" height=\"\(number(plotH))\" fill=\"none\" stroke=\"#999\"/>")
        for (_, timeline, colour, dash) in lines {
            var points: [String] = []
            for (point, next) in zip(timeline, timeline.dropFirst() + timeline.suffix(1)) {
                guard let nodes = point.nodes else { continue }
                points.append("\(number(px(point.time))),\(number(py(nodes)))")
                points.append("\(number(px(next.time))),\(number(py(nodes)))")
            }
            parts.append("<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\""
                + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>")
        }
        for (index, replay) in report.configs.enumerated() {
            for action in replay.actions {
                let up = action.kind == .scaleUp
                parts.append("<text x=\"\(number(px(action.time)))\" y=\"\(number(top + 14 + 14 * Double(index)))\" text-anchor=\"middle\" "
                    + "fill=\"\(colours[index % colours.count])\">\(up ? "▲" : "▼")<title>\(escape(replay.label)) \(ReportPrinter.time(action.time)): "
                    + "\(up ? "launch" : "terminate") \(escape(action.machines.joined(separator: ", ")))</title></text>")
            }
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }

    /// `HH:MM` (UTC), or `HH:MM:SS` when the seconds are not zero.
    private static func clock(_ time: Date) -> String {
        let seconds = Int(time.timeIntervalSince1970.rounded()) % 86_400
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let text = "\(two(seconds / 3600)):\(two(seconds / 60 % 60))"
        return seconds % 60 == 0 ? text : text + ":\(two(seconds % 60))"
    }

    private static func escape(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }
}
