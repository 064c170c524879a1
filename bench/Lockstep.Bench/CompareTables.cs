using System.Globalization;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>The tables of <c>lockstep compare</c>: one row per layer, then the whole training step.</summary>
public static class CompareTables
{
    public static void Print(IAnsiConsole console, CompareReport report)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(report);
        console.Write(LayerTable(report));
        console.WriteLine();
        console.Write(StepTable(report));
    }

    private static Table LayerTable(CompareReport report)
    {
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        double? peak = report.Machine.PeakGflops;
        var table = new Table().Title($"per layer, batch {report.Config.Batch}, {report.Config.Dtype}: median ms (min–max)");
        table.AddColumn("layer").AddColumn("kind").AddColumn("output");
        foreach (string name in names)
        {
            table.AddColumn(new TableColumn($"{name}\nfwd ms").RightAligned());
            table.AddColumn(new TableColumn($"{name}\nbwd ms").RightAligned());
            table.AddColumn(new TableColumn($"{name}\nGFLOP/s f/b").RightAligned());
        }
        foreach (string other in names.Skip(1))
        {
            table.AddColumn(new TableColumn($"{names[0]}/{other}\nfwd").RightAligned());
            table.AddColumn(new TableColumn($"{names[0]}/{other}\nbwd").RightAligned());
        }
        if (names.Length > 1) table.AddColumn(new TableColumn("max rel diff\n(worst of)").RightAligned());

        foreach (var layer in report.Layers)
        {
            var cells = new List<string> { layer.Name, layer.Kind, Markup.Escape("[" + string.Join(", ", layer.OutputShape) + "]") };
            foreach (string name in names)
            {
                var r = layer.Results[name];
                cells.Add($"{Ms(r.ForwardMs)}\n[dim]{Ms(r.ForwardMinMs)}–{Ms(r.ForwardMaxMs)}[/]");
                cells.Add($"{Ms(r.BackwardMs)}\n[dim]{Ms(r.BackwardMinMs)}–{Ms(r.BackwardMaxMs)}[/]");
                cells.Add(Gflops(r.ForwardGflops, r.BackwardGflops, peak));
            }
            foreach (string other in names.Skip(1))
            {
                cells.Add(Ratio(layer.Results[names[0]].ForwardMs, layer.Results[other].ForwardMs));
                cells.Add(Ratio(layer.Results[names[0]].BackwardMs, layer.Results[other].BackwardMs));
            }
            if (names.Length > 1) cells.Add(Difference(layer, report.Config.Tolerance));
            table.AddRow(cells.ToArray());
        }

        var total = new List<string> { "sum", "", "" };
        foreach (string name in names)
        {
            total.Add(Ms(report.Layers.Sum(l => l.Results[name].ForwardMs)));
            total.Add(Ms(report.Layers.Sum(l => l.Results[name].BackwardMs)));
            total.Add("");
        }
        foreach (string other in names.Skip(1))
        {
            total.Add(Ratio(report.Layers.Sum(l => l.Results[names[0]].ForwardMs), report.Layers.Sum(l => l.Results[other].ForwardMs)));
            total.Add(Ratio(report.Layers.Sum(l => l.Results[names[0]].BackwardMs), report.Layers.Sum(l => l.Results[other].BackwardMs)));
        }
        if (names.Length > 1) total.Add("");
        table.AddRow(total.ToArray());
        return table;
    }

    private static Table StepTable(CompareReport report)
    {
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        var table = new Table().Title("training step (Forward + ComputeLoss + Backward)");
        table.AddColumn("backend")
            .AddColumn(new TableColumn("step ms").RightAligned())
            .AddColumn(new TableColumn("min–max").RightAligned())
            .AddColumn(new TableColumn("images/s").RightAligned())
            .AddColumn(new TableColumn("loss").RightAligned());
        if (names.Length > 1) table.AddColumn(new TableColumn($"{names[0]}/backend").RightAligned());
        double first = report.Totals[names[0]].StepMs;
        foreach (string name in names)
        {
            var t = report.Totals[name];
            var cells = new List<string>
            {
                name, Ms(t.StepMs), $"{Ms(t.StepMinMs)}–{Ms(t.StepMaxMs)}",
                (report.Config.Batch / (t.StepMs / 1000)).ToString("0", CultureInfo.InvariantCulture),
                t.Loss.ToString("0.000000", CultureInfo.InvariantCulture),
            };
            if (names.Length > 1) cells.Add(Ratio(first, t.StepMs));
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    /// <summary>Milliseconds with about three significant digits.</summary>
    public static string Ms(double ms) => ms.ToString(
        ms < 0.01 ? "0.0000" : ms < 1 ? "0.000" : ms < 100 ? "0.00" : "0.0", CultureInfo.InvariantCulture);

    private static string Ratio(double a, double b) =>
        b > 0 ? (a / b).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–";

    private static string Gflops(double? forward, double? backward, double? peak)
    {
        if (forward is null && backward is null) return "–";
        static string G(double? g) => g is { } v ? v.ToString(v < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) : "–";
        static string P(double? g, double p) => g is { } v ? (100 * v / p).ToString("0", CultureInfo.InvariantCulture) + "%" : "–";
        string text = $"{G(forward)} / {G(backward)}";
        return peak is { } p && p > 0 ? $"{text}\n[dim]{P(forward, p)} / {P(backward, p)} of peak[/]" : text;
    }

    private static string Difference(LayerReport layer, double tolerance)
    {
        if (layer.MaxRelDiff is not { } d || layer.RelDiff is null) return "–";
        string worst = layer.RelDiff.MaxBy(p => p.Value).Key;
        string text = d == 0 ? "0 (exact)" : $"{d.ToString("0.0e+0", CultureInfo.InvariantCulture)} ({worst})";
        return d <= tolerance ? text : $"[red]{text} > tolerance[/]";
    }
}
