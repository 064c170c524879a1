using Lockstep.Backends.Managed;
using Lockstep.Conformance.Reference;
using Lockstep.Layers;

namespace Lockstep.Bench.Tests;

/// <summary>What <see cref="CompareTables"/>, <see cref="CompareReport.ToJson"/> and <see cref="ComparePlot"/> make of a report.</summary>
public sealed class CompareReportTests
{
    private const string Spec = "INPUT 16x16x32 -> CONV3-32 -> RELU -> POOL2 -> FC-3";

    /// <summary>
    /// A backward-data time below the rounds' noise (Comparison.BackwardDataMs: null) reads as not measured in every
    /// output: "< noise" in the table, null in the JSON, no speed-up for that phase, and the plot still drawn.
    /// </summary>
    [Fact]
    public void UnresolvedBackwardData_ReadsAsNotMeasured()
    {
        using var managed = new ManagedBackend("managed", 1);
        using var naive = new NaiveBackend();
        var settings = new ComparisonSettings(NetworkSpec.Parse(Spec), [managed, naive], Batch: 2, DType.Float32, Seed: 1,
            Repeats: 1, new WarmUp(1, TimeSpan.Zero), Tolerance: 1e-4, PeakGflops: 100);
        var (layers, totals) = new Comparison(settings).Run();
        var conv = layers[0];
        var unresolved = conv with
        {
            Results = new Dictionary<string, LayerResult>(conv.Results) { [naive.Name] = conv.Results[naive.Name] with { BackwardDataMs = null, BackwardDataGflops = null } },
            SpeedUp = new Dictionary<string, SpeedUp> { [naive.Name] = conv.SpeedUp[naive.Name] with { BackwardData = null } },
        };
        var report = new CompareReport(new MachineReport("cpu", 2, 100) { PeakSamplesGflops = [100] },
            new ConfigReport("net", [1, 1, 1], 2, "Float32", 1, 1, "warm", 1e-4, [new BackendInfo(managed.Name, "managed"), new BackendInfo(naive.Name, "naive")]),
            [unresolved, .. layers.Skip(1)], totals);

        var text = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(text),
            Ansi = Spectre.Console.AnsiSupport.No,
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 250;
        CompareTables.Print(console, report);
        Assert.Contains("< noise", text.ToString(), StringComparison.Ordinal);

        string json = report.ToJson();
        Assert.Contains("\"backward_data_ms\": null", json, StringComparison.Ordinal);
        Assert.Null(CompareReport.FromJson(json).Layers[0].Results[naive.Name].BackwardDataMs);

        string png = Path.Combine(Path.GetTempPath(), $"lockstep-unresolved-{Environment.ProcessId}.png");
        try
        {
            ComparePlot.Save(report, png);
            Assert.True(new FileInfo(png).Length > 0, "the plot was not written");
        }
        finally
        {
            File.Delete(png);
        }
    }
}
