using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Lockstep.Bench;

/// <summary>
/// What <c>lockstep compare</c> measured, as written by <c>--json FILE</c> (snake_case keys; backends keyed by
/// registry name). Times are milliseconds; a ratio is the first backend's time over another's.
/// </summary>
public sealed record CompareReport(
    MachineReport Machine,
    ConfigReport Config,
    IReadOnlyList<LayerReport> Layers,
    IReadOnlyDictionary<string, StepReport> Totals)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // A file for people and scripts, not for embedding in HTML: keep "≥" and "×" readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static CompareReport FromJson(string json) =>
        JsonSerializer.Deserialize<CompareReport>(json, JsonOptions) ?? throw new JsonException("empty report");
}

/// <param name="Cpu">Model name and vector ISA.</param>
/// <param name="Cores">Logical cores.</param>
/// <param name="PeakGflops">Measured FMA peak for the run's dtype on all cores; null where not measured.</param>
public sealed record MachineReport(string Cpu, int Cores, double? PeakGflops);

public sealed record ConfigReport(
    string Net,
    int[] InputShape,
    int Batch,
    string Dtype,
    int Seed,
    int Repeats,
    string Warmup,
    double Tolerance,
    IReadOnlyList<BackendInfo> Backends);

public sealed record BackendInfo(string Name, string Description);

/// <param name="Flops">Floating-point operations of one forward call (0 where not counted: POOL, RELU).</param>
/// <param name="BackwardFlops">Of one backward call (dx and dw: about twice the forward).</param>
/// <param name="MaxRelDiff">The largest of <paramref name="RelDiff"/>: max|a − b| / max(max|b|, 1e-30) between the
/// first backend (b) and each other one (a); null with a single backend.</param>
/// <param name="RelDiff">Per result: "y", "dx", and each parameter's gradient ("dw", "db").</param>
public sealed record LayerReport(
    string Name,
    string Kind,
    int[] OutputShape,
    double Flops,
    double BackwardFlops,
    IReadOnlyDictionary<string, LayerResult> Results,
    double? MaxRelDiff,
    IReadOnlyDictionary<string, double>? RelDiff);

public sealed record LayerResult(
    double ForwardMs,
    double BackwardMs,
    double ForwardMinMs,
    double ForwardMaxMs,
    double BackwardMinMs,
    double BackwardMaxMs,
    double? ForwardGflops,
    double? BackwardGflops);

/// <param name="StepMs">Median of a whole training step: Network.Forward, ComputeLoss and Backward.</param>
/// <param name="Loss">The loss of that step (the same weights and data on every backend).</param>
public sealed record StepReport(double StepMs, double StepMinMs, double StepMaxMs, double Loss);
