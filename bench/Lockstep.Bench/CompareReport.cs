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
/// <param name="PeakGflops">Measured FMA peak for the run's dtype on all cores, the highest of <see cref="PeakSamplesGflops"/>; null where not measured.</param>
public sealed record MachineReport(string Cpu, int Cores, double? PeakGflops)
{
    /// <summary>Each measurement of the peak: before the run, then after the warm-ups and after the rounds (noise only lowers a peak).</summary>
    public IReadOnlyList<double> PeakSamplesGflops { get; init; } = [];

    /// <summary>The 1-minute load average when the run started and when it ended (/proc/loadavg; the machine may be shared).</summary>
    public double? LoadAverageStart { get; init; }
    public double? LoadAverageEnd { get; init; }

    /// <summary>Settings that change the native libraries' speed: GLIBC_TUNABLES, OPENBLAS_*, MKL_*, OMP_*, KMP_*.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Date and time of the run, UTC.</summary>
    public string Date { get; init; } = "";
}

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

/// <param name="Gemm">The managed backend's GEMM provider and why it was chosen; null for other backends.</param>
public sealed record BackendInfo(string Name, string Description, string? Gemm = null, int? Threads = null);

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
    IReadOnlyDictionary<string, double>? RelDiff)
{
    /// <summary>Per backend after the first: its time ÷ the first backend's (above 1: the first is faster).</summary>
    public IReadOnlyDictionary<string, SpeedUp> SpeedUp { get; init; } = new Dictionary<string, SpeedUp>();
}

/// <summary>
/// One backend's times for a layer (medians, with min–max). Backward is dx, dw and db; backward-weights is dw and db
/// alone (needDx: false), both once a round; backward-data is the median over the rounds of their difference, null
/// where that is not above zero (below the rounds' noise). Peak shares are fractions of the measured peak; the GEMM
/// figures are the products alone inside the managed kernels, a median over the rounds (null elsewhere).
/// </summary>
public sealed record LayerResult(
    double ForwardMs,
    double BackwardMs,
    double ForwardMinMs,
    double ForwardMaxMs,
    double BackwardMinMs,
    double BackwardMaxMs,
    double? ForwardGflops,
    double? BackwardGflops)
{
    public double? BackwardDataMs { get; init; }
    public double BackwardWeightsMs { get; init; }
    public double BackwardWeightsMinMs { get; init; }
    public double BackwardWeightsMaxMs { get; init; }
    public double? BackwardDataGflops { get; init; }
    public double? BackwardWeightsGflops { get; init; }
    public double? ForwardPeakShare { get; init; }
    public double? BackwardPeakShare { get; init; }
    public double? GemmForwardGflops { get; init; }
    public double? GemmBackwardGflops { get; init; }
    public double? GemmForwardPeakShare { get; init; }
    public double? GemmBackwardPeakShare { get; init; }
}

/// <summary>Another backend's time ÷ the first backend's, per phase (null where a phase is not timed).</summary>
public sealed record SpeedUp(double? Forward, double? Backward, double? BackwardData, double? BackwardWeights, double? ForwardBackward);

/// <param name="StepMs">Median of a whole training step: Network.Forward, ComputeLoss and Backward.</param>
/// <param name="Loss">The loss of that step (the same weights and data on every backend).</param>
public sealed record StepReport(double StepMs, double StepMinMs, double StepMaxMs, double Loss)
{
    /// <summary>Images per second at the median.</summary>
    public double ImagesPerSecond { get; init; }

    /// <summary>Throughput of the first backend over this one: this step's time ÷ the first's (1 for the first).</summary>
    public double? FirstBackendSpeedUp { get; init; }
}
