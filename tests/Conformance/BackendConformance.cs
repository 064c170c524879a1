using System.Globalization;
using System.Text;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// The cross-backend grid: a candidate and a reference backend, the same inputs and weights, every op of
/// <see cref="IBackend"/>, forward and every gradient, float32 and float64. Derive with two backends:
/// <code>public sealed class MyBackendConformance() : BackendConformance(new MyBackend(), new NaiveBackend());</code>
/// Each float32 result must agree with the reference's float32 result (≤ 2e-5) and with its float64 result on the
/// same (widened) inputs (≤ 1e-5); float64 results to 1e-12; results with no summation bit for bit.
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

    public static IEnumerable<object[]> PoolGrid =>
        from c in PoolCase.Grid() from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.ToString(), d };

    public static IEnumerable<object[]> LinearGrid =>
        from n in new[] { 1, 2, 5, 8 } from d in new[] { DType.Float32, DType.Float64 }
        select new object[] { n, 17 + 13 * n, 3 + 2 * n, d };

    [Theory, MemberData(nameof(ConvGrid))]
    public void Conv2d_MatchesReference(string geometry, DType dtype)
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
            return [Result.Of("y", y), Result.Of("dx", g.Dx!), Result.Of("dw", g.Dw), Result.Of("db", g.Db)];
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
            return [Result.Of("dw", g.Dw), Result.Of("db", g.Db)];
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
            var results = new List<Result> { Result.Of("y", r.Y, exact: max), Result.Of("dx", dx, exact: exactBackward) };
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
            return [Result.Of("y", y), Result.Of("dx", g.Dx!), Result.Of("dw", g.Dw), Result.Of("db", g.Db)];
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
            return [Result.Of("y", y), Result.Of("dx", g.Dx), Result.Of("dw", g.Dw), Result.Of("db", g.Db)];
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
            return [new Result("loss", new Shape(1), [r.Loss]), Result.Of("dscores", r.DScores)];
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
            return [Result.Of("param", pt), Result.Of("velocity", vt)];
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
    /// Runs <paramref name="run"/> on both backends with the same host inputs and compares every result.
    /// For float32, the reference also runs in float64 on the same (float32-rounded) inputs.
    /// </summary>
    protected void Check(string op, string context, DType dtype, int seed, Func<IBackend, DType, IReadOnlyList<Result>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var candidate = run(Candidate, dtype);
        var reference = run(Reference, dtype);
        var failures = new StringBuilder();
        Compare(candidate, reference, Tolerance.Between(dtype), $"{Reference.Name} {dtype}", dtype, failures);
        if (dtype == DType.Float32)
        {
            // The float64 reference sees exactly the float32 inputs: every test rounds its host inputs to the case's dtype.
            var wide = run(Reference, DType.Float64);
            Compare(candidate, wide, Tolerance.Float32VersusFloat64, $"{Reference.Name} Float64", dtype, failures, exactAllowed: false);
        }
        if (failures.Length > 0)
        {
            Assert.Fail(string.Create(CultureInfo.InvariantCulture,
                $"{op} [{context}] {dtype} seed {seed}: {Candidate.Name} disagrees with {Reference.Name}\n{failures}" +
                $"replay: ./build.sh exec -- dotnet test tests --filter \"DisplayName~{op.Split('(')[0]}\" (case '{context}')"));
        }
    }

    private void Compare(IReadOnlyList<Result> candidate, IReadOnlyList<Result> reference, double tolerance, string against,
        DType dtype, StringBuilder failures, bool exactAllowed = true)
    {
        Assert.Equal(reference.Count, candidate.Count);
        for (int i = 0; i < candidate.Count; i++)
        {
            var (a, b) = (candidate[i], reference[i]);
            if (a.Shape != b.Shape)
            {
                failures.AppendLine(CultureInfo.InvariantCulture, $"  {a.Name}: shape {a.Shape}, {against} has {b.Shape}");
                continue;
            }
            bool exact = a.Exact && exactAllowed;
            var agreement = Agreement.Of(a.Values, b.Values, a.Name == "switches" ? DType.Int64 : dtype);
            bool ok = exact ? agreement.IsExact && Bitwise(a.Values, b.Values, dtype) : agreement.RelativeError <= tolerance;
            if (!ok)
            {
                string bound = exact ? "bit for bit" : $"≤ {tolerance:G2}";
                failures.AppendLine(CultureInfo.InvariantCulture, $"  {a.Name} {a.Shape} vs {against} (must agree {bound}): {agreement.Describe(a.Shape)}");
            }
        }
    }

    /// <summary>Equal including the sign of zero and NaN for NaN.</summary>
    private static bool Bitwise(double[] a, double[] b, DType dtype)
    {
        for (int i = 0; i < a.Length; i++)
        {
            bool same = double.IsNaN(a[i]) ? double.IsNaN(b[i])
                : dtype == DType.Float32 ? BitConverter.SingleToInt32Bits((float)a[i]) == BitConverter.SingleToInt32Bits((float)b[i])
                : BitConverter.DoubleToInt64Bits(a[i]) == BitConverter.DoubleToInt64Bits(b[i]);
            if (!same) return false;
        }
        return true;
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
