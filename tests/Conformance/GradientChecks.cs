using System.Globalization;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Central-difference gradient checks in float64 on one backend (Caffe's GradientChecker idea): for a scalar
/// L = Σ r ⊙ op(inputs) with fixed random r, each analytic gradient from the backward op must match
/// (L(v + h) − L(v − h)) / 2h within 1e-6 · max(|analytic|, |numeric|, 1). Inputs avoid kinks (ReLU's 0,
/// max-pool near-ties, SVM margins at 0), so the function is smooth within ±h.
/// Derive with one backend: <code>public sealed class MyGradients() : GradientChecks(new MyBackend());</code>
/// </summary>
public abstract partial class GradientChecks : IDisposable
{
    private const double Step = 1e-5;
    private const double Threshold = 1e-6;
    private const int Samples = 24;

    protected GradientChecks(IBackend backend) => Backend = backend ?? throw new ArgumentNullException(nameof(backend));

    protected IBackend Backend { get; }

    public static IEnumerable<object[]> ConvCases =>
        new[] { "F3 S1 P1 5x6 C2 K3 N2", "F3 S2 P1 7x5 C3 K2 N1", "F1 S1 P0 4x3 C4 K5 N2", "F5 S2 P2 9x7 C2 K2 N1", "F11 S4 P0 15x19 C1 K2 N1" }
            .Select(c => new object[] { c });

    public static IEnumerable<object[]> PoolCases =>
        new[] { "Max F2 S2 P0 6x4 C2 N2", "Max F3 S2 P1 7x5 C2 N1", "Average F2 S2 P0 6x4 C2 N2", "Average F3 S2 P1 7x5 C2 N1", "L2 F2 S2 P0 6x4 C2 N2", "L2 F3 S2 P0 7x5 C2 N1" }
            .Select(c => new object[] { c });

    [Theory, MemberData(nameof(ConvCases))]
    public void Conv2d_GradientsMatchFiniteDifferences(string geometry)
    {
        var c = ConvCase.Parse(geometry);
        var x = HostData.Random(1, c.Input.Count);
        var w = HostData.Random(2, c.Weights.Count);
        var b = HostData.Random(3, c.K);
        var (ho, wo) = c.Spec.OutputSize(c.H, c.W);
        var r = HostData.Random(4, (long)c.N * c.K * ho * wo);

        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var xt = Upload(xv, c.Input);
            using var wt = Upload(wv, c.Weights);
            using var bt = Upload(bv, new Shape(c.K));
            using var y = Backend.Conv2d(xt, wt, bt, c.Spec);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = Upload(x, c.Input);
        using var wt = Upload(w, c.Weights);
        using var dy = Upload(r, Shape.Nchw(c.N, c.K, ho, wo));
        using var g = Backend.Conv2dBackward(dy, xt, wt, c.Spec, needDx: true);
        Verify("Conv2d", geometry, "dx", x, g.Dx!.ToDoubles(), v => Loss(v, w, b));
        Verify("Conv2d", geometry, "dw", w, g.Dw.ToDoubles(), v => Loss(x, v, b));
        Verify("Conv2d", geometry, "db", b, g.Db.ToDoubles(), v => Loss(x, w, v));
    }

    [Theory, MemberData(nameof(PoolCases))]
    public void Pool2d_GradientMatchesFiniteDifferences(string geometry)
    {
        var c = PoolCase.Parse(geometry);
        var x = HostData.Random(5, c.Input.Count, InputKind.KinkFree);
        var (ho, wo) = c.Spec.OutputSize(c.H, c.W);
        var r = HostData.Random(6, (long)c.N * c.C * ho * wo);

        double Loss(double[] xv)
        {
            using var xt = Upload(xv, c.Input);
            using var p = Backend.Pool2d(xt, c.Spec);
            return Dot(p.Y.ToDoubles(), r);
        }

        using var xt = Upload(x, c.Input);
        using var p = Backend.Pool2d(xt, c.Spec);
        using var dy = Upload(r, p.Y.Shape);
        using var dx = Backend.Pool2dBackward(dy, xt, p, c.Spec);
        Verify("Pool2d", geometry, "dx", x, dx.ToDoubles(), Loss);
    }

    [Fact]
    public void Linear_GradientsMatchFiniteDifferences()
    {
        var xShape = Shape.Nchw(3, 2, 2, 3);
        var wShape = new Shape(5, 12);
        var x = HostData.Random(7, xShape.Count);
        var w = HostData.Random(8, wShape.Count);
        var b = HostData.Random(9, 5);
        var r = HostData.Random(10, 15);

        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var xt = Upload(xv, xShape);
            using var wt = Upload(wv, wShape);
            using var bt = Upload(bv, new Shape(5));
            using var y = Backend.Linear(xt, wt, bt);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = Upload(x, xShape);
        using var wt = Upload(w, wShape);
        using var dy = Upload(r, new Shape(3, 5));
        using var g = Backend.LinearBackward(dy, xt, wt, needDx: true);
        Verify("Linear", "N3 in12 out5", "dx", x, g.Dx!.ToDoubles(), v => Loss(v, w, b));
        Verify("Linear", "N3 in12 out5", "dw", w, g.Dw.ToDoubles(), v => Loss(x, v, b));
        Verify("Linear", "N3 in12 out5", "db", b, g.Db.ToDoubles(), v => Loss(x, w, v));
    }

    [Fact]
    public void Relu_GradientMatchesFiniteDifferences()
    {
        var shape = Shape.Nchw(2, 3, 4, 5);
        var x = HostData.Random(11, shape.Count, InputKind.KinkFree);
        var r = HostData.Random(12, shape.Count);

        double Loss(double[] xv)
        {
            using var xt = Upload(xv, shape);
            using var y = Backend.Relu(xt);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = Upload(x, shape);
        using var dy = Upload(r, shape);
        using var dx = Backend.ReluBackward(dy, xt);
        Verify("Relu", "kink-free", "dx", x, dx.ToDoubles(), Loss);
    }

    [Fact]
    public void SoftmaxCrossEntropy_GradientMatchesFiniteDifferences()
    {
        var shape = new Shape(4, 7);
        var s = Array.ConvertAll(HostData.Random(13, shape.Count), v => 4 * v);
        var labels = HostData.Labels(14, 4, 7);
        CheckLoss("SoftmaxCrossEntropy", shape, s, labels, (t, l) => Backend.SoftmaxCrossEntropy(t, l));
    }

    [Fact]
    public void MulticlassSvm_GradientMatchesFiniteDifferences()
    {
        var shape = new Shape(4, 7);
        // Scores on a 0.3 grid: a margin s_j − s_y + 1 is then never within 0.1 of the hinge's kink.
        var rng = new Random(15);
        var s = Enumerable.Range(0, (int)shape.Count).Select(_ => 0.3 * rng.Next(-10, 11)).ToArray();
        var labels = HostData.Labels(16, 4, 7);
        CheckLoss("MulticlassSvm", shape, s, labels, (t, l) => Backend.MulticlassSvm(t, l));
    }

    private void CheckLoss(string op, Shape shape, double[] s, int[] labels, Func<ITensor, int[], LossResult> loss)
    {
        double Loss(double[] sv)
        {
            using var t = Upload(sv, shape);
            using var r = loss(t, labels);
            return r.Loss;
        }

        using var st = Upload(s, shape);
        using var result = loss(st, labels);
        Verify(op, $"N{shape[0]} classes{shape[1]}", "dscores", s, result.DScores.ToDoubles(), Loss);
    }

    private ITensor Upload(double[] data, Shape shape) => Backend.Upload<double>(data, shape);

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Compares analytic[i] with the central difference of <paramref name="loss"/> at up to <see cref="Samples"/> elements.</summary>
    private void Verify(string op, string geometry, string name, double[] values, double[] analytic, Func<double[], double> loss)
    {
        Assert.Equal(values.Length, analytic.Length);
        var v = (double[])values.Clone();
        var rng = new Random(values.Length);
        var indices = v.Length <= Samples ? Enumerable.Range(0, v.Length) : Enumerable.Range(0, Samples).Select(_ => rng.Next(v.Length));
        foreach (int i in indices)
        {
            double original = v[i];
            v[i] = original + Step;
            double plus = loss(v);
            v[i] = original - Step;
            double minus = loss(v);
            v[i] = original;
            double numeric = (plus - minus) / (2 * Step);
            double scale = Math.Max(1, Math.Max(Math.Abs(analytic[i]), Math.Abs(numeric)));
            double error = Math.Abs(analytic[i] - numeric) / scale;
            Assert.True(error <= Threshold, string.Create(CultureInfo.InvariantCulture,
                $"{Backend.Name} {op} [{geometry}] {name}[{i}]: analytic {analytic[i]:R}, central difference {numeric:R}, " +
                $"relative error {error:G3} > {Threshold:G2} (step {Step:G2})"));
        }
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}
