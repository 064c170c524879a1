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
        if (PeakLine(report) is { } peak) console.Profile.Out.Writer.WriteLine(peak);
        console.Write(LayerTable(report));
        console.WriteLine();
        if (report.Layers.Any(l => l.Flops > 0))
        {
            console.Write(ThroughputTable(report));
            console.WriteLine();
        }
        if (report.Config.Backends.Count > 1)
        {
            console.Write(KindTable(report));
            console.WriteLine();
        }
        console.Write(StepTable(report));
    }

    /// <summary>
    /// "peak: 174.2 GFLOP/s before the run, 229.4 after the warm-ups, 231.0 after the rounds; shares against 231.0",
    /// with a warning where the samples lie more than 10% apart; null with fewer than two samples.
    /// </summary>
    public static string? PeakLine(CompareReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var samples = report.Machine.PeakSamplesGflops;
        if (samples.Count < 2 || report.Machine.PeakGflops is not { } peak) return null;
        string[] when = [" GFLOP/s before the run", " after the warm-ups", " after the rounds"];
        var parts = samples.Select((g, i) => G(g) + (i < when.Length ? when[i] : ""));
        string line = $"peak: {string.Join(", ", parts)}; shares against {G(peak)}";
        return samples.Min() < 0.9 * peak ? line + " (the samples lie more than 10% apart: the machine was busy for part of the run)" : line;

        static string G(double g) => g.ToString("0.0", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Per layer: each backend's median forward, backward-data and backward-weights time (min–max below), the other
    /// backends' time ÷ the first's, and the agreement. Throughput is a table of its own (<see cref="ThroughputTable"/>),
    /// so that neither needs more than a wide terminal.
    /// </summary>
    private static Table LayerTable(CompareReport report)
    {
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        var table = new Table().Title($"per layer, batch {report.Config.Batch}, {report.Config.Dtype}: median ms (min–max)");
        table.AddColumn("layer").AddColumn("kind").AddColumn("output");
        foreach (string name in names)
        {
            table.AddColumn(new TableColumn($"{name}\nfwd ms").RightAligned());
            table.AddColumn(new TableColumn($"{name}\nbwd-data ms").RightAligned());
            table.AddColumn(new TableColumn($"{name}\nbwd-weights ms").RightAligned());
        }
        foreach (string other in names.Skip(1))
        {
            table.AddColumn(new TableColumn($"{other}÷{names[0]}\nfwd / bd / bw").RightAligned());
        }
        if (names.Length > 1) table.AddColumn(new TableColumn("max rel diff\n(worst of)").RightAligned());

        foreach (var layer in report.Layers)
        {
            var cells = new List<string> { layer.Name, layer.Kind, Markup.Escape("[" + string.Join(", ", layer.OutputShape) + "]") };
            foreach (string name in names)
            {
                var r = layer.Results[name];
                cells.Add($"{Ms(r.ForwardMs)}\n[dim]{Ms(r.ForwardMinMs)}–{Ms(r.ForwardMaxMs)}[/]");
                cells.Add($"{(r.BackwardDataMs is { } data ? Ms(data) : "[dim]< noise[/]")}\n[dim]bwd {Ms(r.BackwardMinMs)}–{Ms(r.BackwardMaxMs)}[/]");
                cells.Add(r.BackwardWeightsMs > 0 ? $"{Ms(r.BackwardWeightsMs)}\n[dim]{Ms(r.BackwardWeightsMinMs)}–{Ms(r.BackwardWeightsMaxMs)}[/]" : "–");
            }
            foreach (string other in names.Skip(1))
            {
                var u = layer.SpeedUp.GetValueOrDefault(other);
                cells.Add(u is null ? "–" : $"{Ratio(u.Forward)} / {Ratio(u.BackwardData)} / {Ratio(u.BackwardWeights)}");
            }
            if (names.Length > 1) cells.Add(Difference(layer, report.Config.Tolerance));
            table.AddRow(cells.ToArray());
        }

        var total = new List<string> { "sum", "", "" };
        foreach (string name in names)
        {
            total.Add(Ms(report.Layers.Sum(l => l.Results[name].ForwardMs)));
            total.Add(Ms(report.Layers.Sum(l => l.Results[name].BackwardDataMs ?? 0)));
            total.Add(Ms(report.Layers.Sum(l => l.Results[name].BackwardWeightsMs)));
        }
        foreach (string other in names.Skip(1))
        {
            double Sum(string n, Func<LayerResult, double> f) => report.Layers.Sum(l => f(l.Results[n]));
            total.Add($"{Ratio(Sum(other, r => r.ForwardMs) / Sum(names[0], r => r.ForwardMs))} / " +
                      $"{Ratio(Sum(other, r => r.BackwardDataMs ?? 0) / Sum(names[0], r => r.BackwardDataMs ?? 0))} / " +
                      $"{Ratio(Sum(other, r => r.BackwardWeightsMs) / Sum(names[0], r => r.BackwardWeightsMs))}");
        }
        if (names.Length > 1) total.Add("");
        table.AddRow(total.ToArray());
        return table;
    }

    /// <summary>
    /// Per layer with counted operations (CONV, FC): each backend's GFLOP/s forward / backward-data / backward-weights
    /// and its share of the measured peak, and where a backend reports it, the GEMM phase's (its products alone).
    /// </summary>
    private static Table ThroughputTable(CompareReport report)
    {
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        double? peak = report.Machine.PeakGflops;
        string of = peak is { } p ? $", share of the peak {p.ToString("0.0", CultureInfo.InvariantCulture)}" : "";
        var table = new Table().Title($"per layer: GFLOP/s{of}");
        table.AddColumn("layer").AddColumn("kind");
        var gemm = names.Where(n => report.Layers.Any(l => l.Results[n].GemmForwardGflops is not null)).ToHashSet();
        foreach (string name in names)
        {
            table.AddColumn(new TableColumn($"{name}\nf / bd / bw").RightAligned());
            if (gemm.Contains(name)) table.AddColumn(new TableColumn($"{name}\nGEMM f / b").RightAligned());
        }
        foreach (var layer in report.Layers.Where(l => l.Flops > 0))
        {
            var cells = new List<string> { layer.Name, layer.Kind };
            foreach (string name in names)
            {
                var r = layer.Results[name];
                cells.Add(Gflops([r.ForwardGflops, r.BackwardDataGflops, r.BackwardWeightsGflops], peak));
                if (gemm.Contains(name)) cells.Add(Gflops([r.GemmForwardGflops, r.GemmBackwardGflops], peak));
            }
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    /// <summary>Per layer type (CONV, POOL, FC, RELU): summed forward and backward time per backend and the speed-ups.</summary>
    private static Table KindTable(CompareReport report)
    {
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        var table = new Table().Title("per layer type: summed median ms, forward + backward");
        table.AddColumn("kind");
        foreach (string name in names) table.AddColumn(new TableColumn($"{name}\nfwd / bwd ms").RightAligned());
        foreach (string other in names.Skip(1)) table.AddColumn(new TableColumn($"{other}÷{names[0]}\nfwd / bwd / both").RightAligned());
        foreach (var kind in report.Layers.GroupBy(l => l.Kind))
        {
            var cells = new List<string> { kind.Key };
            double F(string n) => kind.Sum(l => l.Results[n].ForwardMs);
            double B(string n) => kind.Sum(l => l.Results[n].BackwardMs);
            foreach (string name in names) cells.Add($"{Ms(F(name))} / {Ms(B(name))}");
            foreach (string other in names.Skip(1))
            {
                cells.Add($"{Ratio(F(other) / F(names[0]))} / {Ratio(B(other) / B(names[0]))} / {Ratio((F(other) + B(other)) / (F(names[0]) + B(names[0])))}");
            }
            table.AddRow(cells.ToArray());
        }
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
        if (names.Length > 1) table.AddColumn(new TableColumn($"{names[0]} throughput ÷ backend's").RightAligned());
        foreach (string name in names)
        {
            var t = report.Totals[name];
            var cells = new List<string>
            {
                name, Ms(t.StepMs), $"{Ms(t.StepMinMs)}–{Ms(t.StepMaxMs)}",
                t.ImagesPerSecond.ToString("0", CultureInfo.InvariantCulture),
                t.Loss.ToString("0.000000", CultureInfo.InvariantCulture),
            };
            if (names.Length > 1) cells.Add(Ratio(t.FirstBackendSpeedUp));
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    /// <summary>Milliseconds with about three significant digits.</summary>
    public static string Ms(double ms) => ms.ToString(
        ms < 0.01 ? "0.0000" : ms < 1 ? "0.000" : ms < 100 ? "0.00" : "0.0", CultureInfo.InvariantCulture);

    private static string Ratio(double? r) =>
        r is { } v && double.IsFinite(v) && v > 0 ? v.ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–";

    private static string Gflops(double?[] rates, double? peak)
    {
        if (rates.All(r => r is null)) return "–";
        static string G(double? g) => g is { } v ? v.ToString(v < 10 ? "0.00" : "0", CultureInfo.InvariantCulture) : "–";
        static string P(double? g, double p) => g is { } v ? (100 * v / p).ToString("0", CultureInfo.InvariantCulture) + "%" : "–";
        string text = string.Join(" / ", rates.Select(G));
        return peak is { } p && p > 0 ? $"{text}\n[dim]{string.Join(" / ", rates.Select(r => P(r, p)))} of peak[/]" : text;
    }

    private static string Difference(LayerReport layer, double tolerance)
    {
        if (layer.MaxRelDiff is not { } d || layer.RelDiff is null) return "–";
        string worst = layer.RelDiff.MaxBy(p => p.Value).Key;
        string text = d == 0 ? "0 (exact)" : $"{d.ToString("0.0e+0", CultureInfo.InvariantCulture)} ({worst})";
        return d <= tolerance ? text : $"[red]{text} > tolerance[/]";
    }
}
