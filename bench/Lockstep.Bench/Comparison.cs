using Lockstep.Backends.Managed;
using Lockstep.Layers;

namespace Lockstep.Bench;

/// <summary>What to compare: a network, a batch, a dtype, the backends (the first is the reference) and the timing method.</summary>
public sealed record ComparisonSettings(
    NetworkDefinition Net,
    IReadOnlyList<IBackend> Backends,
    int Batch,
    DType DType,
    int Seed,
    int Repeats,
    WarmUp WarmUp,
    double Tolerance,
    double? PeakGflops = null);

/// <summary>
/// Runs a network layer by layer on several backends, side by side in one process, and measures for each layer
/// forward and backward time per backend and how far the backends' results lie apart.
/// Every backend gets the same inputs: the network's weights from one seed, and for each layer the same host input
/// (the first backend's output of the layer before) and the same upstream gradient, so that the agreement
/// measures the layer alone, not the drift accumulated before it. Backward is timed twice, the calls alternating: whole
/// (dx, dw, db) and for the weights alone (needDx: false, dw and db); backward-data is the median of the differences of
/// the pairs. A layer without parameters has only backward-data.
/// </summary>
public sealed class Comparison
{
    private readonly ComparisonSettings _settings;

    public Comparison(ComparisonSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Backends.Count == 0) throw new ArgumentException("compare: at least one backend is needed");
        _settings = settings;
    }

    /// <summary>Timed measurements the run makes: forward and backward (whole and weights-only, alternating) per layer and backend, and one step per backend.</summary>
    public int Steps => _settings.Backends.Count * (2 * _settings.Net.Layers.Count + 1);

    /// <summary>Runs everything; <paramref name="progress"/> is told before each measurement.</summary>
    public (IReadOnlyList<LayerReport> Layers, IReadOnlyDictionary<string, StepReport> Totals) Run(Action<string>? progress = null)
    {
        var s = _settings;
        var net = s.Net;
        var rng = new Random(s.Seed);
        var inputShape = net.InputShape(s.Batch);
        var shapes = net.Shapes(s.Batch);
        double[] input = Normal(rng, inputShape.Count);
        int[] labels = Enumerable.Range(0, s.Batch).Select(_ => rng.Next(net.Classes)).ToArray();

        var networks = new List<Network>(s.Backends.Count);
        try
        {
            foreach (var backend in s.Backends) networks.Add(net.Build(backend, s.DType, s.Seed));

            var layers = new List<LayerReport>(net.Layers.Count);
            double[] x = input;
            var xShape = inputShape;
            for (int i = 0; i < net.Layers.Count; i++)
            {
                double[] dy = Normal(rng, shapes[i].Count);
                var outcomes = new List<LayerOutcome>(s.Backends.Count);
                foreach (var network in networks)
                {
                    Settle();
                    outcomes.Add(MeasureLayer(network.Layers[i], x, xShape, dy, shapes[i], progress));
                }
                layers.Add(Report(net.LayerNames[i], network: networks[0], i, xShape, shapes[i], outcomes));
                x = outcomes[0].Results["y"];
                xShape = shapes[i];
            }

            var totals = new Dictionary<string, StepReport>(StringComparer.Ordinal);
            foreach (var network in networks)
            {
                progress?.Invoke($"{network.Backend.Name}: training step");
                Settle();
                totals[network.Backend.Name] = MeasureStep(network, input, inputShape, labels);
            }
            double firstMs = totals[networks[0].Backend.Name].StepMs;
            foreach (var (name, t) in totals.ToArray())
            {
                totals[name] = t with { ImagesPerSecond = s.Batch / (t.StepMs / 1000), FirstBackendSpeedUp = firstMs > 0 ? t.StepMs / firstMs : null };
            }
            return (layers, totals);
        }
        finally
        {
            foreach (var network in networks) network.Dispose();
        }
    }

    // A full, blocking collection before each measurement: the host copies of the layers before (tens of MB of doubles
    // each on VGG16) are garbage by then, and a background collection of them on a 2-core machine takes a core from
    // whichever layer is being timed (AlexNet's conv5 forward read 13.6–13.9 ms in about half the runs, 10.1–10.5
    // alone).
    private static void Settle()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    /// <summary>One backend's timings of a layer and its results on the host: "y", "dx", and each parameter's gradient.</summary>
    private sealed record LayerOutcome(string Backend, Timing Forward, Timing Backward, Timing? BackwardWeights, Timing? BackwardData,
        double? GemmForwardGflops, double? GemmBackwardGflops, Dictionary<string, double[]> Results);

    private LayerOutcome MeasureLayer(Layer layer, double[] xHost, Shape xShape, double[] dyHost, Shape yShape, Action<string>? progress)
    {
        var backend = layer.Backend;
        var s = _settings;
        using var x = backend.Upload(xHost, xShape, s.DType);
        using var dy = backend.Upload(dyHost, yShape, s.DType);

        progress?.Invoke($"{backend.Name}: {layer.Name} forward");
        var gemm = backend as ManagedBackend;
        gemm?.ResetGemmStatistics();
        var forward = Measure.Repeat(() =>
        {
            ITensor? y = null;
            var elapsed = Measure.Once(backend, () => y = layer.Forward(x));
            y!.Dispose();
            return elapsed;
        }, s.WarmUp, s.Repeats);
        double? gemmForward = GemmGflops(gemm);

        // The layer keeps this forward's state (its input, pooling switches) for every backward call below.
        using var kept = layer.Forward(x);
        progress?.Invoke($"{backend.Name}: {layer.Name} backward");
        gemm?.ResetGemmStatistics();
        Func<TimeSpan> whole = () =>
        {
            ITensor? dx = null;
            var elapsed = Measure.Once(backend, () => dx = layer.Backward(dy, needDx: true));
            dx?.Dispose();
            return elapsed;
        };
        Timing backward;
        Timing? weights = null, data = null;
        if (layer.Parameters.Count > 0)
        {
            // Whole and weights-only calls alternate; backward-data is the median of their differences, pair by pair.
            (backward, weights, data) = Measure.Pairs(whole, () => Measure.Once(backend, () => layer.Backward(dy, needDx: false)), s.WarmUp, s.Repeats);
        }
        else
        {
            backward = Measure.Repeat(whole, s.WarmUp, s.Repeats);
        }
        double? gemmBackward = GemmGflops(gemm);

        var results = new Dictionary<string, double[]>(StringComparer.Ordinal) { ["y"] = kept.ToDoubles() };
        using (var dx = layer.Backward(dy, needDx: true))
        {
            if (dx is not null) results["dx"] = dx.ToDoubles();
        }
        foreach (var p in layer.Parameters)
        {
            if (p.Grad is { } grad) results[GradientName(p.Name)] = grad.ToDoubles();
        }
        return new LayerOutcome(backend.Name, forward, backward, weights, data, gemmForward, gemmBackward, results);
    }

    // The rate of the products alone over a measurement (warm-up calls included), where the backend reports it.
    private static double? GemmGflops(ManagedBackend? backend)
    {
        if (backend is null) return null;
        var (flops, elapsed) = backend.GemmStatistics;
        return flops > 0 && elapsed > TimeSpan.Zero ? flops / elapsed.TotalSeconds / 1e9 : null;
    }

    // "conv1.weight" → "dw", "conv1.bias" → "db"; anything else keeps its own name.
    private static string GradientName(string parameter) =>
        parameter.EndsWith(".weight", StringComparison.Ordinal) ? "dw"
        : parameter.EndsWith(".bias", StringComparison.Ordinal) ? "db"
        : "d" + parameter;

    private StepReport MeasureStep(Network network, double[] input, Shape inputShape, int[] labels)
    {
        var backend = network.Backend;
        using var x = backend.Upload(input, inputShape, _settings.DType);
        double loss = double.NaN;
        var step = Measure.Repeat(() => Measure.Once(backend, () =>
        {
            network.Forward(x);
            loss = network.ComputeLoss(labels);
            network.Backward();
        }), _settings.WarmUp, _settings.Repeats);
        return new StepReport(step.MedianMs, step.MinMs, step.MaxMs, loss);
    }

    private LayerReport Report(string name, Network network, int index, Shape xShape, Shape yShape, List<LayerOutcome> outcomes)
    {
        var layer = network.Layers[index];
        var (flops, backwardFlops) = Flops(layer, xShape, yShape);
        var results = new Dictionary<string, LayerResult>(StringComparer.Ordinal);
        foreach (var o in outcomes)
        {
            // Backward-data: the whole backward less the weights' part, pair by pair; a layer without weights is all data.
            double weightsMs = o.BackwardWeights?.MedianMs ?? 0;
            double dataMs = Math.Max(0, o.BackwardData?.MedianMs ?? o.Backward.MedianMs);
            double half = backwardFlops / 2;
            results[o.Backend] = new LayerResult(
                o.Forward.MedianMs, o.Backward.MedianMs,
                o.Forward.MinMs, o.Forward.MaxMs, o.Backward.MinMs, o.Backward.MaxMs,
                Gflops(flops, o.Forward.MedianMs), Gflops(backwardFlops, o.Backward.MedianMs))
            {
                BackwardDataMs = dataMs,
                BackwardWeightsMs = weightsMs,
                BackwardWeightsMinMs = o.BackwardWeights?.MinMs ?? 0,
                BackwardWeightsMaxMs = o.BackwardWeights?.MaxMs ?? 0,
                BackwardDataGflops = o.BackwardWeights is null ? null : Gflops(half, dataMs),
                BackwardWeightsGflops = o.BackwardWeights is null ? null : Gflops(half, weightsMs),
                GemmForwardGflops = o.GemmForwardGflops,
                GemmBackwardGflops = o.GemmBackwardGflops,
                ForwardPeakShare = Share(Gflops(flops, o.Forward.MedianMs)),
                BackwardPeakShare = Share(Gflops(backwardFlops, o.Backward.MedianMs)),
                GemmForwardPeakShare = Share(o.GemmForwardGflops),
                GemmBackwardPeakShare = Share(o.GemmBackwardGflops),
            };
        }
        // Throughput of the first backend over each other one: the other's time ÷ the first's (above 1: the first is faster).
        var speedups = new Dictionary<string, SpeedUp>(StringComparer.Ordinal);
        var first = results[outcomes[0].Backend];
        foreach (var o in outcomes.Skip(1))
        {
            var r = results[o.Backend];
            speedups[o.Backend] = new SpeedUp(
                Over(r.ForwardMs, first.ForwardMs), Over(r.BackwardMs, first.BackwardMs),
                Over(r.BackwardDataMs, first.BackwardDataMs), Over(r.BackwardWeightsMs, first.BackwardWeightsMs),
                Over(r.ForwardMs + r.BackwardMs, first.ForwardMs + first.BackwardMs));
        }

        Dictionary<string, double>? relDiff = null;
        if (outcomes.Count > 1)
        {
            relDiff = new Dictionary<string, double>(StringComparer.Ordinal);
            var reference = outcomes[0].Results;
            foreach (var other in outcomes.Skip(1))
            {
                foreach (var (key, b) in reference)
                {
                    double d = other.Results.TryGetValue(key, out var a) ? Agreement.RelativeDifference(a, b) : double.PositiveInfinity;
                    relDiff[key] = Math.Max(relDiff.GetValueOrDefault(key), d);
                }
            }
        }
        return new LayerReport(name, layer.Kind, [.. yShape.Dims], flops, backwardFlops, results,
            relDiff?.Values.Max(), relDiff) { SpeedUp = speedups };
    }

    private static double? Gflops(double flops, double ms) => flops > 0 && ms > 0 ? flops / (ms * 1e6) : null;

    private double? Share(double? gflops) => gflops is { } g && _settings.PeakGflops is { } p && p > 0 ? g / p : null;

    private static double? Over(double other, double first) => first > 0 && other > 0 ? other / first : null;

    /// <summary>
    /// Floating-point operations of one forward and one backward call, counting a multiply-add as two:
    /// CONV 2·N·K·C·F_h·F_w·H'·W' forward, twice that backward (dx and dw); FC 2·N·in·out, twice backward.
    /// POOL and RELU are not counted: they move memory, and GFLOP/s would say nothing about them.
    /// </summary>
    public static (double Forward, double Backward) Flops(Layer layer, Shape x, Shape y)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        double forward = layer switch
        {
            Conv2d conv => 2.0 * y.N * y.C * (x.C / conv.Spec.Groups) * conv.Spec.KernelH * conv.Spec.KernelW * y.H * y.W,
            Linear => 2.0 * x[0] * x.PerItem * y.PerItem,
            _ => 0,
        };
        return (forward, 2 * forward);
    }

    private static double[] Normal(Random rng, long count)
    {
        var data = new double[count];
        for (long i = 0; i < count; i++)
        {
            // Box–Muller; one normal per pair of uniforms is plenty for test data.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            data[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return data;
    }
}

/// <summary>How far two results lie apart, norm-wise: max|a − b| / max(max|b|, 1e-30).</summary>
public static class Agreement
{
    /// <summary>0 for identical data; +∞ for different lengths or a NaN in one but not the other.</summary>
    public static double RelativeDifference(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) return double.PositiveInfinity;
        double maxDiff = 0, maxB = 0;
        for (int i = 0; i < a.Length; i++)
        {
            bool nanA = double.IsNaN(a[i]), nanB = double.IsNaN(b[i]);
            if (nanA || nanB)
            {
                if (nanA != nanB) return double.PositiveInfinity;
                continue;
            }
            maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - b[i]));
            maxB = Math.Max(maxB, Math.Abs(b[i]));
        }
        return maxDiff / Math.Max(maxB, 1e-30);
    }
}
