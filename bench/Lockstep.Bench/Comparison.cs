using Lockstep.Backends.Managed;
using Lockstep.Layers;

namespace Lockstep.Bench;

/// <summary>
/// What to compare: a network, a batch, a dtype, the backends (the first is the reference) and the timing method.
/// <paramref name="PeakGflops"/> is the machine's peak measured before the run; <paramref name="PeakProbe"/>, when
/// given, measures it again after the warm-ups and after the rounds (see <see cref="Comparison.PeakSamples"/>).
/// </summary>
public sealed record ComparisonSettings(
    NetworkDefinition Net,
    IReadOnlyList<IBackend> Backends,
    int Batch,
    DType DType,
    int Seed,
    int Repeats,
    WarmUp WarmUp,
    double Tolerance,
    double? PeakGflops = null,
    Func<double?>? PeakProbe = null);

/// <summary>
/// Runs a network layer by layer on several backends in one process, and measures for each layer forward and backward
/// time per backend and how far the backends' results lie apart.
/// Agreement first: every backend gets the same inputs — the network's weights from one seed, and for each layer the
/// same host input (the first backend's output of the layer before) and the same upstream gradient — so that it
/// measures the layer alone, not the drift accumulated before it. Then the timing: each backend's layers warmed up,
/// then rounds, in each round every backend in turn over all its layers in network order — one forward, one whole
/// backward (dx, dw, db) and one weights-only backward (needDx: false, dw and db) per layer — so that the backends are
/// timed side by side, through the same minutes of a shared machine; backward-data is the median of the rounds'
/// differences whole − weights-only. A layer without parameters has only backward-data.
/// </summary>
public sealed class Comparison
{
    private readonly ComparisonSettings _settings;
    private readonly List<double> _peaks = [];

    public Comparison(ComparisonSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Backends.Count == 0) throw new ArgumentException("compare: at least one backend is needed");
        _settings = settings;
        if (settings.PeakGflops is { } peak) _peaks.Add(peak);
    }

    /// <summary>
    /// The peak measured before the run, then after the warm-ups and after the rounds (with <see cref="ComparisonSettings.PeakProbe"/>).
    /// A peak is a physical limit that noise only lowers: on a shared machine one probe of a second read 174 GFLOP/s
    /// where the others read 229–232, and every share of peak came out 1.3× too high (GEMM phases of 117%).
    /// </summary>
    public IReadOnlyList<double> PeakSamples => _peaks;

    /// <summary>The peak the shares are taken against: the highest of <see cref="PeakSamples"/>, null when none was measured.</summary>
    public double? Peak => _peaks.Count > 0 ? _peaks.Max() : null;

    /// <summary>
    /// Steps the run reports to its progress callback: each layer's agreement; per backend each layer's warm-up, its
    /// share of each round and the training step; the two peak probes (when given).
    /// </summary>
    public int Steps => _settings.Net.Layers.Count
        + _settings.Backends.Count * (_settings.Net.Layers.Count + _settings.Repeats + 1) + (_settings.PeakProbe is null ? 0 : 2);

    /// <summary>Runs everything; <paramref name="progress"/> is told before each step.</summary>
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

            // Agreement, layer by layer: every backend on the same input (the first backend's output of the layer
            // before) and the same upstream gradient. The inputs are kept on the host for the timing below.
            var inputs = new double[net.Layers.Count][];
            var inputShapes = new Shape[net.Layers.Count];
            var agreements = new List<(double? Max, Dictionary<string, double>? ByResult)>(net.Layers.Count);
            double[] x = input;
            var xShape = inputShape;
            for (int i = 0; i < net.Layers.Count; i++)
            {
                progress?.Invoke($"agreement: {net.LayerNames[i]}");
                (inputs[i], inputShapes[i]) = (x, xShape);
                double[] dy = Gradient(i, shapes[i]);
                var results = networks.Select(network => LayerResults(network.Layers[i], x, xShape, dy, shapes[i])).ToList();
                agreements.Add(Agree(results));
                x = results[0]["y"];
                xShape = shapes[i];
            }

            var timings = TimeLayers(networks, inputs, inputShapes, shapes, progress);
            var layers = new List<LayerReport>(net.Layers.Count);
            for (int i = 0; i < net.Layers.Count; i++)
            {
                layers.Add(Report(net.LayerNames[i], networks[0].Layers[i], inputShapes[i], shapes[i], [.. timings.Select(t => t[i])], agreements[i]));
            }

            Settle();
            var totals = MeasureSteps(networks, input, inputShape, labels, progress);
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

    // The upstream gradient of layer i: normal, from a seed of its own, so that it can be drawn again.
    private double[] Gradient(int layer, Shape shape) => Normal(new Random(HashCode.Combine(_settings.Seed, layer)), shape.Count);

    // A full, blocking collection: the host copies made before (tens of MB of doubles on VGG16) are garbage by then,
    // and a background collection of them on a 2-core machine takes a core from whatever is being timed.
    private static void Settle()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    /// <summary>One backend's timings of a layer.</summary>
    private sealed record LayerOutcome(string Backend, Timing Forward, Timing Backward, Timing? BackwardWeights, Timing? BackwardData,
        double? GemmForwardGflops, double? GemmBackwardGflops);

    // A layer's results on the host: "y", "dx", and each parameter's gradient.
    private Dictionary<string, double[]> LayerResults(Layer layer, double[] xHost, Shape xShape, double[] dyHost, Shape yShape)
    {
        var backend = layer.Backend;
        using var x = backend.Upload(xHost, xShape, _settings.DType);
        using var dy = backend.Upload(dyHost, yShape, _settings.DType);
        using var y = layer.Forward(x);
        var results = new Dictionary<string, double[]>(StringComparer.Ordinal) { ["y"] = y.ToDoubles() };
        using (var dx = layer.Backward(dy, needDx: true))
        {
            if (dx is not null) results["dx"] = dx.ToDoubles();
        }
        foreach (var p in layer.Parameters)
        {
            if (p.Grad is { } grad) results[GradientName(p.Name)] = grad.ToDoubles();
        }
        return results;
    }

    // max|a − b| / max|b| per result between the first backend's results and each other's, and the worst of them.
    private static (double? Max, Dictionary<string, double>? ByResult) Agree(List<Dictionary<string, double[]>> results)
    {
        if (results.Count < 2) return (null, null);
        var relDiff = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var other in results.Skip(1))
        {
            foreach (var (key, b) in results[0])
            {
                double d = other.TryGetValue(key, out var a) ? Agreement.RelativeDifference(a, b) : double.PositiveInfinity;
                relDiff[key] = Math.Max(relDiff.GetValueOrDefault(key), d);
            }
        }
        return (relDiff.Values.Max(), relDiff);
    }

    /// <summary>
    /// Every backend's timings of every layer, in rounds: each backend's layers warmed up in turn, then round after
    /// round every backend in turn — the first of a round taking turns — a call of each of its layers in network
    /// order: forward, whole backward, weights-only backward. The backends are timed side by side: on this project's
    /// VM the speed swings up to 2× from minute to minute, and while one backend's rounds all ran before the other's,
    /// a slow minute could land on one backend's whole measurement. A layer's samples spread over the whole run (a noisy
    /// minute touches a few rounds of every layer, not all of one layer's), and each call finds the caches as a
    /// training step leaves them: each turn starts with an untimed round of the same backend's layers (the other
    /// backend's round before it had pushed this one's data out — cifar's training step, whose data fit the L3 cache,
    /// read 5.1 ms against 3.4 so), after a pause of <see cref="Handover"/>, so that the threads of the backend before
    /// (libtorch's OpenMP workers spin-wait after each parallel region) have gone idle.
    /// </summary>
    private List<List<LayerOutcome>> TimeLayers(List<Network> networks, double[][] inputs, Shape[] inputShapes, IReadOnlyList<Shape> shapes,
        Action<string>? progress)
    {
        var s = _settings;
        var calls = new List<LayerCalls[]>(networks.Count);
        try
        {
            foreach (var network in networks) calls.Add(Prepare(network, inputs, inputShapes, shapes));
            Settle();
            for (int b = 0; b < networks.Count; b++)
            {
                var gemm = networks[b].Backend as ManagedBackend;
                foreach (var c in calls[b])
                {
                    progress?.Invoke($"{networks[b].Backend.Name}: warm-up {c.Layer.Name}");
                    Measure.Warm(() => c.Round(gemm, record: -1), s.WarmUp);
                }
            }
            ProbePeak(progress, "peak after the warm-ups");
            for (int round = 0; round < s.Repeats; round++)
            {
                for (int turn = 0; turn < networks.Count; turn++)
                {
                    int b = (round + turn) % networks.Count;
                    var backend = networks[b].Backend;
                    progress?.Invoke($"{backend.Name}: round {round + 1} of {s.Repeats}");
                    if (networks.Count > 1)
                    {
                        // The other backend's threads idle, then this one's data back in the caches, untimed.
                        Thread.Sleep(Handover);
                        foreach (var c in calls[b]) c.Round(backend as ManagedBackend, record: -1);
                    }
                    foreach (var c in calls[b]) c.Round(backend as ManagedBackend, round);
                }
            }
            ProbePeak(progress, "peak after the rounds");
            return [.. calls.Select((c, b) => c.Select(l => l.Outcome(networks[b].Backend.Name)).ToList())];
        }
        finally
        {
            foreach (var c in calls.SelectMany(c => c)) c?.Dispose();
        }
    }

    /// <summary>The pause before each backend's turn in a round (see <see cref="TimeLayers"/>).</summary>
    public static readonly TimeSpan Handover = TimeSpan.FromMilliseconds(20);

    private void ProbePeak(Action<string>? progress, string step)
    {
        if (_settings.PeakProbe is null) return;
        progress?.Invoke(step);
        if (_settings.PeakProbe() is { } peak) _peaks.Add(peak);
    }

    // Each layer's input and upstream gradient on the network's backend.
    private LayerCalls[] Prepare(Network network, double[][] inputs, Shape[] inputShapes, IReadOnlyList<Shape> shapes)
    {
        var s = _settings;
        var backend = network.Backend;
        var calls = new LayerCalls[network.Layers.Count];
        try
        {
            for (int i = 0; i < calls.Length; i++)
            {
                var x = backend.Upload(inputs[i], inputShapes[i], s.DType);
                try
                {
                    calls[i] = new LayerCalls(network.Layers[i], x, backend.Upload(Gradient(i, shapes[i]), shapes[i], s.DType), s.Repeats);
                }
                catch
                {
                    x.Dispose();   // the layer's dy did not upload: its x is not yet the calls' to dispose
                    throw;
                }
            }
            return calls;
        }
        catch
        {
            foreach (var c in calls) c?.Dispose();
            throw;
        }
    }

    /// <summary>A layer's input and upstream gradient on one backend, and the samples of its calls.</summary>
    private sealed class LayerCalls(Layer layer, ITensor x, ITensor dy, int repeats) : IDisposable
    {
        private readonly double[] _forward = new double[repeats], _whole = new double[repeats], _weights = new double[repeats];

        // The GEMM phase's GFLOP/s of each round's forward and whole backward (managed only; NaN where a call ran no product).
        private readonly double[] _forwardGemm = new double[repeats], _backwardGemm = new double[repeats];

        public Layer Layer => layer;

        /// <summary>Forward, whole backward and weights-only backward once each; samples kept at index <paramref name="record"/> (≥ 0).</summary>
        public TimeSpan Round(ManagedBackend? gemm, int record)
        {
            var backend = layer.Backend;
            ITensor? y = null;
            try
            {
                gemm?.ResetGemmStatistics();
                var forward = Measure.Once(backend, () => y = layer.Forward(x));
                var forwardGemm = gemm?.GemmStatistics;
                // The layer keeps this forward's state (its input, pooling switches) for the backward calls.
                ITensor? dx = null;
                gemm?.ResetGemmStatistics();
                var whole = Measure.Once(backend, () => dx = layer.Backward(dy, needDx: true));
                var backwardGemm = gemm?.GemmStatistics;
                dx?.Dispose();
                var weights = layer.Parameters.Count > 0 ? Measure.Once(backend, () => layer.Backward(dy, needDx: false)) : TimeSpan.Zero;
                if (record >= 0)
                {
                    (_forward[record], _whole[record], _weights[record]) = (forward.TotalMilliseconds, whole.TotalMilliseconds, weights.TotalMilliseconds);
                    _forwardGemm[record] = Rate(forwardGemm);
                    _backwardGemm[record] = Rate(backwardGemm);
                }
                return forward + whole + weights;
            }
            finally
            {
                y?.Dispose();
            }
        }

        public LayerOutcome Outcome(string backend)
        {
            bool hasWeights = layer.Parameters.Count > 0;
            var data = _whole.Zip(_weights, (w, p) => w - p).ToArray();
            return new LayerOutcome(backend, Timing.Of(_forward), Timing.Of(_whole), hasWeights ? Timing.Of(_weights) : null,
                hasWeights ? Timing.Of(data) : null, Median(_forwardGemm), Median(_backwardGemm));
        }

        private static double Rate((double Flops, TimeSpan Elapsed)? gemm) =>
            gemm is var (flops, elapsed) && flops > 0 && elapsed > TimeSpan.Zero ? flops / elapsed.TotalSeconds / 1e9 : double.NaN;

        // The median over the rounds, as every other figure of the run (a loud minute's rounds pulled a sum over all
        // rounds down with them); null where no round ran a product.
        private static double? Median(double[] rates)
        {
            var ran = rates.Where(r => !double.IsNaN(r)).ToArray();
            return ran.Length > 0 ? Timing.Of(ran).MedianMs : null;
        }

        public void Dispose()
        {
            x.Dispose();
            dy.Dispose();
        }
    }

    // "conv1.weight" → "dw", "conv1.bias" → "db"; anything else keeps its own name.
    private static string GradientName(string parameter) =>
        parameter.EndsWith(".weight", StringComparison.Ordinal) ? "dw"
        : parameter.EndsWith(".bias", StringComparison.Ordinal) ? "db"
        : "d" + parameter;

    // The whole training step per backend, side by side as the layers: each backend warmed up, then the repeats, in
    // each every backend in turn (the first taking turns), each turn an untimed step after the hand-over pause first.
    private Dictionary<string, StepReport> MeasureSteps(List<Network> networks, double[] input, Shape inputShape, int[] labels,
        Action<string>? progress)
    {
        var s = _settings;
        var inputs = new List<ITensor>(networks.Count);
        try
        {
            foreach (var network in networks) inputs.Add(network.Backend.Upload(input, inputShape, s.DType));
            var losses = new double[networks.Count];
            TimeSpan Step(int b) => Measure.Once(networks[b].Backend, () =>
            {
                networks[b].Forward(inputs[b]);
                losses[b] = networks[b].ComputeLoss(labels);
                networks[b].Backward();
            });
            var samples = new double[networks.Count][];
            for (int b = 0; b < networks.Count; b++)
            {
                progress?.Invoke($"{networks[b].Backend.Name}: training step");
                int backend = b;
                Measure.Warm(() => Step(backend), s.WarmUp);
                samples[b] = new double[s.Repeats];
            }
            for (int r = 0; r < s.Repeats; r++)
            {
                for (int turn = 0; turn < networks.Count; turn++)
                {
                    int b = (r + turn) % networks.Count;
                    if (networks.Count > 1)
                    {
                        Thread.Sleep(Handover);
                        Step(b);
                    }
                    samples[b][r] = Step(b).TotalMilliseconds;
                }
            }
            var totals = new Dictionary<string, StepReport>(StringComparer.Ordinal);
            for (int b = 0; b < networks.Count; b++)
            {
                var t = Timing.Of(samples[b]);
                totals[networks[b].Backend.Name] = new StepReport(t.MedianMs, t.MinMs, t.MaxMs, losses[b]);
            }
            return totals;
        }
        finally
        {
            foreach (var x in inputs) x.Dispose();
        }
    }

    private LayerReport Report(string name, Layer layer, Shape xShape, Shape yShape, List<LayerOutcome> outcomes,
        (double? Max, Dictionary<string, double>? ByResult) agreement)
    {
        var (flops, backwardFlops) = Flops(layer, xShape, yShape);
        var results = new Dictionary<string, LayerResult>(StringComparer.Ordinal);
        foreach (var o in outcomes)
        {
            double weightsMs = o.BackwardWeights?.MedianMs ?? 0;
            double? dataMs = BackwardDataMs(o.BackwardData, o.Backward);
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
                BackwardDataGflops = o.BackwardWeights is null || dataMs is not { } data ? null : Gflops(half, data),
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

        return new LayerReport(name, layer.Kind, [.. yShape.Dims], flops, backwardFlops, results,
            agreement.Max, agreement.ByResult) { SpeedUp = speedups };
    }

    private static double? Gflops(double flops, double ms) => flops > 0 && ms > 0 ? flops / (ms * 1e6) : null;

    private double? Share(double? gflops) => gflops is { } g && Peak is { } p && p > 0 ? g / p : null;

    private static double? Over(double? other, double? first) => first > 0 && other > 0 ? other / first : null;

    /// <summary>
    /// A layer's backward-data time: the whole backward for a layer without weights, else the median over the rounds of
    /// (whole backward − weights-only backward), taken pair by pair — null where that median is not above zero: the
    /// weights-only call took as long as the whole, and the data part is below the rounds' noise (libtorch's VGG16 fc2
    /// read 0 ms so), a figure not measured rather than a time of zero.
    /// </summary>
    public static double? BackwardDataMs(Timing? data, Timing whole) => data is null ? whole.MedianMs : data.MedianMs > 0 ? data.MedianMs : null;

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
