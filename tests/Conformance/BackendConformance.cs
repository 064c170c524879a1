using System.Runtime.CompilerServices;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// A candidate against a reference backend on the same inputs and weights: every op of <see cref="IBackend"/>,
/// forward and every gradient, float32 and float64. Random cases (<c>Op_Random</c>: CsCheck generators, 300 per op
/// and dtype by default, shrunk and replayable on failure) and a fixed grid of the notes' geometries and edge cases.
/// Derive with two backends:
/// <code>public sealed class MyBackendConformance() : BackendConformance(new MyBackend(), new NaiveBackend());</code>
/// Bounds (<see cref="Tolerance"/>): float64 ≤ 1e-12 relative; a float32 result within c·ε·√K of the reference's
/// float64 result on the same inputs and within 2·c·ε·√K of its float32 result; results with no summation bit for bit.
/// </summary>
public abstract partial class BackendConformance : IDisposable
{
    protected BackendConformance(IBackend candidate, IBackend reference)
    {
        Candidate = candidate ?? throw new ArgumentNullException(nameof(candidate));
        Reference = reference ?? throw new ArgumentNullException(nameof(reference));
    }

    protected IBackend Candidate { get; }
    protected IBackend Reference { get; }

    public static IEnumerable<object[]> Dtypes => [[DType.Float32], [DType.Float64]];

    public static IEnumerable<object[]> ConvGrid =>
        from c in ConvCase.Grid() from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.ToString(), d };

    public static IEnumerable<object[]> WideConvGrid =>
        from c in WideConvCases.Grid() from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.ToString(), d };

    public static IEnumerable<object[]> PoolGrid =>
        from c in PoolCase.Grid() from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.ToString(), d };

    public static IEnumerable<object[]> LinearGrid =>
        from n in new[] { 1, 2, 5, 8 } from d in new[] { DType.Float32, DType.Float64 }
        select new object[] { n, 17 + 13 * n, 3 + 2 * n, d };

    [Theory, MemberData(nameof(Dtypes))]
    public void Conv2d_Random(DType dtype) => CheckRandom(ConformanceOp.Conv2d, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void Pool2d_Random(DType dtype) => CheckRandom(ConformanceOp.Pool2d, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void Linear_Random(DType dtype) => CheckRandom(ConformanceOp.Linear, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void Relu_Random(DType dtype) => CheckRandom(ConformanceOp.Relu, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void SoftmaxCrossEntropy_Random(DType dtype) => CheckRandom(ConformanceOp.SoftmaxCrossEntropy, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void MulticlassSvm_Random(DType dtype) => CheckRandom(ConformanceOp.MulticlassSvm, dtype);

    [Theory, MemberData(nameof(Dtypes))]
    public void SgdStep_Random(DType dtype) => CheckRandom(ConformanceOp.SgdStep, dtype);

    /// <summary>
    /// <c>LOCKSTEP_CONFORMANCE_CASES</c> random cases of <paramref name="op"/> (default 300) from a fixed seed, or the
    /// one case <c>LOCKSTEP_CONFORMANCE_SEED</c> names. The first failure is shrunk and reported with the worst
    /// element of each output that disagrees, its seed and the command that replays it.
    /// </summary>
    protected void CheckRandom(ConformanceOp op, DType dtype, [CallerMemberName] string test = "")
    {
        var settings = ConformanceSettings.FromEnvironment();
        var result = Sweep.Run(Candidate, Reference, op, dtype, settings.Cases, settings.RunSeed, settings.CaseSeed);
        if (result.Failure is { } failure)
        {
            Assert.Fail($"{failure.Describe()}\n  replay: {Replay.Command(failure.Seed ?? "", GetType(), test)}");
        }
        Assert.Equal(settings.CaseSeed is null ? settings.Cases : 1, result.Cases);
    }

    [Theory, MemberData(nameof(ConvGrid))]
    public void Conv2d_MatchesReference(string geometry, DType dtype) => CheckConv(geometry, dtype);

    [Theory, MemberData(nameof(WideConvGrid))]
    public void Conv2d_Wide_MatchesReference(string geometry, DType dtype) => CheckConv(geometry, dtype);

    private void CheckConv(string geometry, DType dtype)
    {
        var c = ConvCase.Parse(geometry);
        int seed = Seed(geometry);
        var x = HostData.RoundTo(HostData.Random(seed, c.Input.Count), dtype);
        var w = HostData.RoundTo(HostData.Random(seed + 1, c.Weights.Count), dtype);
        var b = HostData.RoundTo(HostData.Random(seed + 2, c.K), dtype);
        var (ho, wo) = c.Spec.OutputSize(c.H, c.W);
        var dy = HostData.RoundTo(HostData.Random(seed + 3, (long)c.N * c.K * ho * wo), dtype);
        Check("Conv2d", geometry, dtype, seed, (backend, dt) =>
        {
            using var xt = backend.Upload(x, c.Input, dt);
            using var wt = backend.Upload(w, c.Weights, dt);
            using var bt = backend.Upload(b, new Shape(c.K), dt);
            using var y = backend.Conv2d(xt, wt, bt, c.Spec);
            using var dyt = backend.Upload(dy, y.Shape, dt);
            using var g = backend.Conv2dBackward(dyt, xt, wt, c.Spec, needDx: true);
            long perFilter = (long)c.N * ho * wo, overlap = (c.F + c.S - 1) / c.S;
            // Every operand is uniform in [−1, 1): each product summed has magnitude at most 1.
            return [Result.Of("y", y, reduction: (long)c.C * c.F * c.F + 1, scale: 1), Result.Of("dx", g.Dx!, reduction: c.K * overlap * overlap, scale: 1),
                Result.Of("dw", g.Dw, reduction: perFilter, scale: 1), Result.Of("db", g.Db, reduction: perFilter, scale: 1)];
        });
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Conv2d_WithoutDx_ReturnsNullDxAndSameWeightGradients(DType dtype)
    {
        var c = new ConvCase(3, 1, 1, 5, 6, 2, 4, 2);
        var x = HostData.RoundTo(HostData.Random(11, c.Input.Count), dtype);
        var w = HostData.RoundTo(HostData.Random(12, c.Weights.Count), dtype);
        var dy = HostData.RoundTo(HostData.Random(13, (long)c.N * c.K * c.H * c.W), dtype);
        Check("Conv2dBackward(needDx: false)", c.ToString(), dtype, 11, (backend, dt) =>
        {
            using var xt = backend.Upload(x, c.Input, dt);
            using var wt = backend.Upload(w, c.Weights, dt);
            using var dyt = backend.Upload(dy, Shape.Nchw(c.N, c.K, c.H, c.W), dt);
            using var g = backend.Conv2dBackward(dyt, xt, wt, c.Spec, needDx: false);
            Assert.Null(g.Dx);
            long perFilter = (long)c.N * c.H * c.W;
            return [Result.Of("dw", g.Dw, reduction: perFilter, scale: 1), Result.Of("db", g.Db, reduction: perFilter, scale: 1)];
        });
    }

    [Theory, MemberData(nameof(PoolGrid))]
    public void Pool2d_MatchesReference(string geometry, DType dtype) => CheckPool(geometry, dtype, InputKind.Generic);

    /// <summary>After a ReLU many window elements are equal: the switches (first maximum wins) and the routed gradient must be identical.</summary>
    [Theory]
    [InlineData("Max F2 S2 P0 8x8 C3 N2", DType.Float32)]
    [InlineData("Max F2 S2 P0 8x8 C3 N2", DType.Float64)]
    [InlineData("Max F3 S2 P0 9x7 C4 N2", DType.Float32)]
    [InlineData("Max F3 S2 P0 9x7 C4 N2", DType.Float64)]
    public void Pool2d_TiesAfterRelu_RouteGradientIdentically(string geometry, DType dtype) => CheckPool(geometry, dtype, InputKind.TieHeavy);

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Pool2d_Max_PropagatesNaN(DType dtype)
    {
        var shape = Shape.Nchw(1, 1, 4, 4);
        var x = HostData.RoundTo(HostData.Random(5, shape.Count), dtype);
        x[1] = double.NaN;   // window (0, 0)
        x[10] = double.NaN;  // window (1, 1), with x[11] a number after it
        x[15] = double.NaN;
        var spec = PoolSpec.Square(PoolMode.Max, 2, name: "pool");
        Check("Pool2d(NaN)", spec.ToString(), dtype, 5, (backend, dt) =>
        {
            using var xt = backend.Upload(x, shape, dt);
            using var r = backend.Pool2d(xt, spec);
            var y = r.Y.ToDoubles();
            Assert.True(double.IsNaN(y[0]) && double.IsNaN(y[3]), $"{backend.Name}: a window holding NaN must give NaN, got {y[0]}, {y[3]}");
            Assert.False(double.IsNaN(y[1]) || double.IsNaN(y[2]), $"{backend.Name}: windows without NaN must not give NaN");
            return [Result.Of("y", r.Y, exact: true), Result.Of("switches", r.Switches!, exact: true)];
        });
    }

    private void CheckPool(string geometry, DType dtype, InputKind kind)
    {
        var c = PoolCase.Parse(geometry);
        int seed = Seed(geometry) + (int)kind;
        var x = HostData.RoundTo(HostData.Random(seed, c.Input.Count, kind), dtype);
        var (ho, wo) = c.Spec.OutputSize(c.H, c.W);
        var dy = HostData.RoundTo(HostData.Random(seed + 1, (long)c.N * c.C * ho * wo), dtype);
        bool max = c.Mode == PoolMode.Max;
        // Without overlap each input gets at most one gradient term, so max pooling's backward is exact too.
        bool exactBackward = max && c.S >= c.F;
        Check("Pool2d", geometry + (kind == InputKind.Generic ? "" : $" ({kind})"), dtype, seed, (backend, dt) =>
        {
            using var xt = backend.Upload(x, c.Input, dt);
            using var r = backend.Pool2d(xt, c.Spec);
            using var dyt = backend.Upload(dy, r.Y.Shape, dt);
            using var dx = backend.Pool2dBackward(dyt, xt, r, c.Spec);
            long overlap = (long)((c.F + c.S - 1) / c.S) * ((c.F + c.S - 1) / c.S);
            var results = new List<Result>
            {
                Result.Of("y", r.Y, exact: max, reduction: (long)c.F * c.F + 1),
                Result.Of("dx", dx, exact: exactBackward, reduction: overlap),
            };
            if (max) results.Add(Result.Of("switches", r.Switches!, exact: true));
            return results;
        });
    }

    [Theory, MemberData(nameof(LinearGrid))]
    public void Linear_MatchesReference(int batch, int inputs, int outputs, DType dtype)
    {
        string geometry = $"N{batch} in{inputs} out{outputs}";
        int seed = Seed(geometry);
        var xShape = new Shape(batch, inputs);
        var wShape = new Shape(outputs, inputs);
        var x = HostData.RoundTo(HostData.Random(seed, xShape.Count), dtype);
        var w = HostData.RoundTo(HostData.Random(seed + 1, wShape.Count), dtype);
        var b = HostData.RoundTo(HostData.Random(seed + 2, outputs), dtype);
        var dy = HostData.RoundTo(HostData.Random(seed + 3, (long)batch * outputs), dtype);
        Check("Linear", geometry, dtype, seed, (backend, dt) =>
        {
            using var xt = backend.Upload(x, xShape, dt);
            using var wt = backend.Upload(w, wShape, dt);
            using var bt = backend.Upload(b, new Shape(outputs), dt);
            using var y = backend.Linear(xt, wt, bt);
            using var dyt = backend.Upload(dy, y.Shape, dt);
            using var g = backend.LinearBackward(dyt, xt, wt, needDx: true);
            return [Result.Of("y", y, reduction: inputs + 1, scale: 1), Result.Of("dx", g.Dx!, reduction: outputs, scale: 1),
                Result.Of("dw", g.Dw, reduction: batch, scale: 1), Result.Of("db", g.Db, reduction: batch, scale: 1)];
        });
    }

    /// <summary>FC after a CONV volume: the input [N, C, H, W] is flattened to [N, C·H·W], and dx comes back in its shape.</summary>
    [Theory, MemberData(nameof(Dtypes))]
    public void Linear_FlattensVolumeInput(DType dtype)
    {
        var xShape = Shape.Nchw(3, 4, 5, 6);
        var wShape = new Shape(10, 120);
        var x = HostData.RoundTo(HostData.Random(31, xShape.Count), dtype);
        var w = HostData.RoundTo(HostData.Random(32, wShape.Count), dtype);
        var dy = HostData.RoundTo(HostData.Random(33, 30), dtype);
        Check("Linear(volume)", "N3 [4, 5, 6] -> 10", dtype, 31, (backend, dt) =>
        {
            using var xt = backend.Upload(x, xShape, dt);
            using var wt = backend.Upload(w, wShape, dt);
            using var y = backend.Linear(xt, wt, null);
            using var dyt = backend.Upload(dy, y.Shape, dt);
            using var g = backend.LinearBackward(dyt, xt, wt, needDx: true);
            Assert.Equal(xShape, g.Dx!.Shape);
            return [Result.Of("y", y, reduction: 120, scale: 1), Result.Of("dx", g.Dx, reduction: 10, scale: 1),
                Result.Of("dw", g.Dw, reduction: 3, scale: 1), Result.Of("db", g.Db, reduction: 3, scale: 1)];
        });
    }

    [Theory]
    [InlineData(DType.Float32, InputKind.Generic)]
    [InlineData(DType.Float64, InputKind.Generic)]
    [InlineData(DType.Float32, InputKind.TieHeavy)]
    [InlineData(DType.Float64, InputKind.TieHeavy)]
    public void Relu_IsBitExact(DType dtype, InputKind kind)
    {
        var shape = Shape.Nchw(2, 3, 5, 7);
        var x = HostData.RoundTo(HostData.Random(41, shape.Count, kind), dtype);
        x[0] = double.NaN;
        x[1] = -0.0;
        x[2] = double.NegativeInfinity;
        x[3] = double.PositiveInfinity;
        var dy = HostData.RoundTo(HostData.Random(42, shape.Count), dtype);
        Check("Relu", kind.ToString(), dtype, 41, (backend, dt) =>
        {
            using var xt = backend.Upload(x, shape, dt);
            using var y = backend.Relu(xt);
            using var dyt = backend.Upload(dy, shape, dt);
            using var dx = backend.ReluBackward(dyt, xt);
            Assert.True(double.IsNaN(y.ToDoubles()[0]), $"{backend.Name}: relu(NaN) must be NaN");
            return [Result.Of("y", y, exact: true), Result.Of("dx", dx, exact: true)];
        });
    }

    [Theory]
    [InlineData(DType.Float32, 1, 10)]
    [InlineData(DType.Float64, 1, 10)]
    [InlineData(DType.Float32, 16, 10)]
    [InlineData(DType.Float64, 16, 10)]
    [InlineData(DType.Float64, 7, 1000)]
    public void SoftmaxCrossEntropy_MatchesReference(DType dtype, int batch, int classes) =>
        CheckLoss("SoftmaxCrossEntropy", (b, s, l) => b.SoftmaxCrossEntropy(s, l), dtype, batch, classes, scale: 20);

    [Theory]
    [InlineData(DType.Float32, 1, 10)]
    [InlineData(DType.Float64, 1, 10)]
    [InlineData(DType.Float32, 16, 10)]
    [InlineData(DType.Float64, 16, 10)]
    public void MulticlassSvm_MatchesReference(DType dtype, int batch, int classes) =>
        CheckLoss("MulticlassSvm", (b, s, l) => b.MulticlassSvm(s, l), dtype, batch, classes, scale: 3);

    private delegate LossResult LossOp(IBackend backend, ITensor scores, int[] labels);

    private void CheckLoss(string op, LossOp loss, DType dtype, int batch, int classes, double scale)
    {
        var shape = new Shape(batch, classes);
        int seed = Seed(op) + batch;
        // Large scores test the stable form (exp of 20 is fine, of 2000 is not without the max subtracted).
        var s = HostData.RoundTo(Array.ConvertAll(HostData.Random(seed, shape.Count), v => v * scale + (op.StartsWith("Softmax", StringComparison.Ordinal) ? 1000 : 0)), dtype);
        var labels = HostData.Labels(seed + 1, batch, classes);
        Check(op, $"N{batch} classes{classes}", dtype, seed, (backend, dt) =>
        {
            using var st = backend.Upload(s, shape, dt);
            using var r = loss(backend, st, labels);
            Assert.True(double.IsFinite(r.Loss), $"{backend.Name}: {op} loss is {r.Loss}");
            return [new Result("loss", new Shape(1), [r.Loss], Reduction: (long)batch * classes, Scale: 2 * scale + 1),
                Result.Of("dscores", r.DScores, reduction: classes, scale: 1.0 / batch)];
        });
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void SgdStep_MatchesReference(DType dtype)
    {
        var shape = new Shape(6, 7);
        var p = HostData.RoundTo(HostData.Random(51, shape.Count), dtype);
        var g = HostData.RoundTo(HostData.Random(52, shape.Count), dtype);
        var v = HostData.RoundTo(HostData.Random(53, shape.Count), dtype);
        Check("SgdStep", "lr 0.1 momentum 0.9 wd 5e-4, 3 steps", dtype, 51, (backend, dt) =>
        {
            using var pt = backend.Upload(p, shape, dt);
            using var gt = backend.Upload(g, shape, dt);
            using var vt = backend.Upload(v, shape, dt);
            for (int i = 0; i < 3; i++) backend.SgdStep(pt, gt, vt, 0.1, 0.9, 5e-4);
            return [Result.Of("param", pt, reduction: 12), Result.Of("velocity", vt, reduction: 12)];
        });
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void UploadDownload_RoundTripsExactly(DType dtype)
    {
        var shape = Shape.Nchw(2, 3, 4, 5);
        var x = HostData.RoundTo(HostData.Random(61, shape.Count), dtype);
        using var t = Candidate.Upload(x, shape, dtype);
        Assert.Equal(dtype, t.DType);
        Assert.Equal(shape, t.Shape);
        Assert.Equal(x, t.ToDoubles());
        using var z = Candidate.Zeros(shape, dtype);
        Assert.All(z.ToDoubles(), v => Assert.Equal(0.0, v));
    }

    /// <summary>
    /// Runs <paramref name="run"/> on both backends with the same host inputs and compares every result under
    /// <see cref="Tolerance"/>; for float32, the reference also runs in float64 on the same (float32-rounded) inputs.
    /// </summary>
    protected void Check(string op, string context, DType dtype, int seed, Func<IBackend, DType, IReadOnlyList<Result>> run,
        [CallerMemberName] string test = "")
    {
        var report = CaseComparer.Compare(op, context, dtype, Candidate, Reference, run);
        if (!report.Passed)
        {
            Assert.Fail($"{report.Describe()}\n  data seed {seed}; replay: ./build.sh exec -- dotnet test --filter \"FullyQualifiedName~{GetType().FullName}.{test}\" (case '{context}')");
        }
    }

    /// <summary>A stable seed from the case's text, printed in failures.</summary>
    protected static int Seed(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int h = 17;
        foreach (char ch in text) h = unchecked(h * 31 + ch);
        return h & 0x7fffffff;
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        Candidate.Dispose();
        Reference.Dispose();
    }
}
