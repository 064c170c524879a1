using System.Text.Json;

namespace Lockstep.Bench.Tests;

/// <summary>The commands that succeed: info, summary and compare, on what they print and write.</summary>
public sealed class CliCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lockstep-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("compare", "usage: lockstep compare [--net NAME|SPEC]")]
    [InlineData("summary", "usage: lockstep summary NAME|SPEC")]
    [InlineData("train", "usage: lockstep train [--net NAME|SPEC]")]
    [InlineData("info", "usage: lockstep info")]
    public void Help_PrintsTheUsage(string command, string usage)
    {
        var result = CliRunner.Run(command, "--help");
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        Assert.StartsWith(usage, result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Info_PrintsBackendAndGemmLines()
    {
        var result = CliRunner.Run("info", "--backend", "managed", "--gemm", "managed");
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Contains("backend: managed", lines);
        Assert.Contains(lines, l => l.StartsWith("gemm: managed", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("torch: ", StringComparison.Ordinal));
    }

    [Fact]
    public void Summary_Vgg16_PrintsTheNotesParameterCount()
    {
        var result = CliRunner.Run("summary", "vgg16");
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        Assert.Contains("parameters: 138,357,544 (138,344,128 weights + 13,416 biases)", result.Output, StringComparison.Ordinal);
        Assert.Contains("activations: 15,237,608", result.Output, StringComparison.Ordinal);
        Assert.Contains("fc1 (FC)", result.Output, StringComparison.Ordinal);
        Assert.Empty(result.Error);
    }

    [Fact]
    public void Summary_Spec_PrintsItsTable()
    {
        var result = CliRunner.Run("summary", "INPUT 32x32x3 -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10", "--batch", "2");
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        // conv1 432 + 16, conv2 2,304 + 16, fc1 8·8·16·10 = 10,240 + 10.
        Assert.Contains("parameters: 13,018 (12,976 weights + 42 biases)", result.Output, StringComparison.Ordinal);
        Assert.Contains("16×16×16", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3.0, 2, true)]
    [InlineData(2.99, 2, false)]
    [InlineData(6.5, 4, true)]
    [InlineData(0.2, 1, false)]
    public void Compare_BusyWarning_FromOneAndAHalfLoadPerCore(double load, int cores, bool warns)
    {
        string? warning = CompareCommand.BusyWarning(load, cores);
        Assert.Equal(warns, warning is not null);
        if (warns) Assert.Contains(FormattableString.Invariant($"load {load:0.00} on {cores} logical cores"), warning!, StringComparison.Ordinal);
        Assert.Null(CompareCommand.BusyWarning(null, cores));
    }

    [Fact]
    public void Compare_TinySpecOnNaiveAndManaged_WritesTheReportShape()
    {
        string json = Path.Combine(_dir, "report.json");
        var result = CliRunner.Run("compare", "--net", "INPUT 8x8x1 -> CONV3-2 -> RELU -> POOL2 -> FC-3", "--backends", "naive,managed",
            "--gemm", "managed", "--batch", "2", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json", json);
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        Assert.Contains("report: ", result.Output, StringComparison.Ordinal);
        // Four tables: times per layer; GFLOP/s of the layers with counted operations (CONV, FC) alone; per kind; the step.
        int times = result.Output.IndexOf("median ms (min–max)", StringComparison.Ordinal);
        int throughput = result.Output.IndexOf("per layer: GFLOP/s", StringComparison.Ordinal);
        int kinds = result.Output.IndexOf("per layer type", StringComparison.Ordinal);
        int step = result.Output.IndexOf("training step", StringComparison.Ordinal);
        Assert.True(times >= 0 && times < throughput && throughput < kinds && kinds < step, result.Output);
        string rates = result.Output[throughput..kinds];
        Assert.Contains("conv1", rates, StringComparison.Ordinal);
        Assert.Contains("fc1", rates, StringComparison.Ordinal);
        Assert.DoesNotContain("relu1", rates, StringComparison.Ordinal);
        Assert.DoesNotContain("pool1", rates, StringComparison.Ordinal);

        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var root = report.RootElement;
        var machine = root.GetProperty("machine");
        Assert.False(string.IsNullOrEmpty(machine.GetProperty("cpu").GetString()));
        Assert.True(machine.TryGetProperty("peak_gflops", out var peak), "machine.peak_gflops is missing");
        var samples = machine.GetProperty("peak_samples_gflops").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        if (peak.ValueKind == JsonValueKind.Number)
        {
            // Before the run, then after each of the two backends; the highest counts.
            Assert.Equal(3, samples.Length);
            Assert.Equal(samples.Max(), peak.GetDouble());
        }
        else
        {
            Assert.Empty(samples);
        }

        var layers = root.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal(["conv1", "relu1", "pool1", "fc1"], layers.Select(l => l.GetProperty("name").GetString()));
        Assert.Equal(["CONV", "RELU", "POOL", "FC"], layers.Select(l => l.GetProperty("kind").GetString()));
        // conv1: 2·(8·8·2 outputs)·(3·3·1) multiply-adds = 2,304 flops per image, 4,608 for the batch.
        Assert.Equal(4608, layers[0].GetProperty("flops").GetDouble());
        foreach (var layer in layers)
        {
            var results = layer.GetProperty("results");
            foreach (string backend in new[] { "naive", "managed" })
            {
                var r = results.GetProperty(backend);
                foreach (string key in new[] { "forward_ms", "backward_data_ms", "backward_weights_ms" })
                {
                    // backward-data may be unresolved (null: below the rounds' noise) on a layer with weights only.
                    var value = r.GetProperty(key);
                    bool unresolved = key == "backward_data_ms" && value.ValueKind == JsonValueKind.Null && r.GetProperty("backward_weights_ms").GetDouble() > 0;
                    Assert.True(unresolved || value.GetDouble() >= 0, $"{layer.GetProperty("name")}.{backend}.{key}");
                }
            }
            double diff = layer.GetProperty("max_rel_diff").GetDouble();
            Assert.True(diff <= 1e-4, $"{layer.GetProperty("name")}: naive and managed differ by {diff}");
        }
        var totals = root.GetProperty("totals");
        foreach (string backend in new[] { "naive", "managed" })
        {
            Assert.True(totals.GetProperty(backend).GetProperty("step_ms").GetDouble() > 0, $"totals.{backend}.step_ms");
        }
    }

    [Fact]
    public void Soak_TinyNetOnManaged_PassesAndNamesItsLearningRate()
    {
        string json = Path.Combine(_dir, "soak.json");
        var result = CliRunner.Run("soak", "--net", "INPUT 8x8x1 -> CONV3-2 -> RELU -> POOL2 -> FC-3", "--backends", "managed",
            "--batch", "2", "--steps", "40", "--every", "10", "--warmup", "10", "--lr", "0.005", "--json", json);
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(0.005, report.RootElement.GetProperty("lr").GetDouble());
        Assert.True(report.RootElement.GetProperty("backends")[0].GetProperty("passed").GetBoolean());
    }

    [Fact]
    public void Soak_LossThatDiverges_FailsNamingStepAndLearningRate()
    {
        var result = CliRunner.Run("soak", "--net", "INPUT 8x8x1 -> CONV3-2 -> RELU -> POOL2 -> FC-3", "--backends", "managed",
            "--batch", "2", "--steps", "40", "--every", "10", "--warmup", "10", "--lr", "1e30");
        Assert.True(result.ExitCode == Cli.Failure, result.ToString());
        Assert.Contains("soak: managed: the loss became", result.Error, StringComparison.Ordinal);
        Assert.Contains("at --lr 1E+30; a smaller --lr keeps it finite", result.Error, StringComparison.Ordinal);
    }
}
