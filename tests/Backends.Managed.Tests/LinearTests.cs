using Lockstep.Backends.Managed;

namespace Lockstep.Tests;

public sealed class LinearTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    [Theory]
    [InlineData(DType.Float32, false)]
    [InlineData(DType.Float64, false)]
    [InlineData(DType.Float32, true)]
    [InlineData(DType.Float64, true)]
    public void Linear_MatchesNaiveProduct(DType dtype, bool rank4)
    {
        const int n = 3, outputs = 5;
        var xs = rank4 ? Shape.Nchw(n, 2, 3, 4) : new Shape(n, 24);
        const int inputs = 24;
        double[] x = TestSupport.Input(n * inputs, 51, dtype), w = TestSupport.Input(outputs * inputs, 52, dtype),
            b = TestSupport.Input(outputs, 53, dtype), dy = TestSupport.Input(n * outputs, 54, dtype);
        using var tx = _backend.Upload(x, xs, dtype);
        using var tw = _backend.Upload(w, new Shape(outputs, inputs), dtype);
        using var tb = _backend.Upload(b, new Shape(outputs), dtype);
        using var tdy = _backend.Upload(dy, new Shape(n, outputs), dtype);
        using var y = _backend.Linear(tx, tw, tb);
        using var grads = _backend.LinearBackward(tdy, tx, tw, needDx: true);

        var ey = new double[n * outputs];
        var edx = new double[n * inputs];
        var edw = new double[outputs * inputs];
        var edb = new double[outputs];
        for (int i = 0; i < n; i++)
        for (int o = 0; o < outputs; o++)
        {
            double sum = b[o];
            for (int k = 0; k < inputs; k++)
            {
                sum += x[i * inputs + k] * w[o * inputs + k];
                edx[i * inputs + k] += dy[i * outputs + o] * w[o * inputs + k];
                edw[o * inputs + k] += dy[i * outputs + o] * x[i * inputs + k];
            }
            ey[i * outputs + o] = sum;
            edb[o] += dy[i * outputs + o];
        }
        double tol = TestSupport.Tolerance(dtype);
        Assert.Equal(new Shape(n, outputs), y.Shape);
        Assert.Equal(xs, grads.Dx!.Shape);
        TestSupport.Close(y.ToDoubles(), ey, tol, "y");
        TestSupport.Close(grads.Dx.ToDoubles(), edx, tol, "dx");
        TestSupport.Close(grads.Dw.ToDoubles(), edw, tol, "dw");
        TestSupport.Close(grads.Db.ToDoubles(), edb, tol, "db");
    }

    /// <summary>
    /// dx = dy·W and dw = dyᵀ·x at few outputs (the fixed-order kernel, not a GEMM): the naive products within
    /// tolerance, and the same bits on one worker and on two; widths that leave vector tails, a product too small to
    /// split, and a batch past SmallBatch (dw by GEMM). The last three: a small batch with a W of over 1M elements, dx by
    /// the streaming kernel (StreamJob: outputs not a multiple of its four rows a pass, rows with and without a scalar
    /// tail) and dw by the outer-product kernel with non-temporal stores (OuterJob), rows not multiples of a vector, and
    /// rows of x 4 KB and 8 KB long (copied apart first).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 64, 10, 4133)]
    [InlineData(DType.Float64, 64, 10, 4133)]
    [InlineData(DType.Float32, 5, 16, 77)]
    [InlineData(DType.Float32, 65, 3, 301)]
    [InlineData(DType.Float64, 3, 1, 1000)]
    [InlineData(DType.Float32, 8, 1100, 1031)]
    [InlineData(DType.Float64, 16, 1024, 1030)]
    [InlineData(DType.Float32, 2, 1027, 1040)]
    [InlineData(DType.Float32, 12, 1024, 1024)]
    [InlineData(DType.Float64, 3, 1024, 1024)]
    public void LinearBackward_FewOutputsMatchNaiveOnAnyThreadCount(DType dtype, int n, int outputs, int inputs)
    {
        using var two = new ManagedBackend("auto", 2);
        double[] x = TestSupport.Input(n * inputs, 81, dtype), w = TestSupport.Input(outputs * inputs, 82, dtype),
            dy = TestSupport.Input(n * outputs, 83, dtype);
        var edx = new double[n * inputs];
        var edw = new double[outputs * inputs];
        for (int i = 0; i < n; i++)
        for (int o = 0; o < outputs; o++)
        for (int k = 0; k < inputs; k++)
        {
            edx[i * inputs + k] += dy[i * outputs + o] * w[o * inputs + k];
            edw[o * inputs + k] += dy[i * outputs + o] * x[i * inputs + k];
        }
        double[]? first = null, firstDw = null;
        foreach (var backend in new[] { _backend, two })
        {
            using var tx = backend.Upload(x, new Shape(n, inputs), dtype);
            using var tw = backend.Upload(w, new Shape(outputs, inputs), dtype);
            using var tdy = backend.Upload(dy, new Shape(n, outputs), dtype);
            using var grads = backend.LinearBackward(tdy, tx, tw, needDx: true);
            double[] dx = grads.Dx!.ToDoubles();
            TestSupport.Close(dx, edx, TestSupport.Tolerance(dtype), $"dx on {backend.Threads} worker(s), N{n} out{outputs} in{inputs} {dtype}");
            double[] dw = grads.Dw.ToDoubles();
            TestSupport.Close(dw, edw, TestSupport.Tolerance(dtype), $"dw on {backend.Threads} worker(s), N{n} out{outputs} in{inputs} {dtype}");
            first ??= dx;
            firstDw ??= dw;
            Assert.True(first.AsSpan().SequenceEqual(dx), $"dx on two workers differs from one (N{n} out{outputs} in{inputs} {dtype})");
            Assert.True(firstDw.AsSpan().SequenceEqual(dw), $"dw on two workers differs from one (N{n} out{outputs} in{inputs} {dtype})");
        }
    }

    /// <summary>
    /// The forward at batch ≤ 16 (Linear.DotBatch): input rows eight at a time on shared loads of W where at least five
    /// remain, the rest dot by dot — 4 and 3 rows (dots only), 5 (a group of five), 8, 12 (eight, then four dots), 13
    /// (eight, then five), 16 (two groups) — over widths with a scalar tail (1031) and without (1024), and a width below
    /// a vector (7): the naive products within tolerance, and the same bits on one, two and three workers.
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 4, 77, 1031)]
    [InlineData(DType.Float64, 3, 77, 1031)]
    [InlineData(DType.Float32, 5, 77, 1031)]
    [InlineData(DType.Float32, 8, 130, 1024)]
    [InlineData(DType.Float64, 8, 77, 1031)]
    [InlineData(DType.Float32, 12, 77, 1031)]
    [InlineData(DType.Float64, 13, 77, 1024)]
    [InlineData(DType.Float32, 16, 130, 1031)]
    [InlineData(DType.Float32, 8, 77, 7)]
    public void Linear_SmallBatchMatchesNaiveOnAnyThreadCount(DType dtype, int n, int outputs, int inputs)
    {
        double[] x = TestSupport.Input(n * inputs, 91, dtype), w = TestSupport.Input(outputs * inputs, 92, dtype);
        var ey = new double[n * outputs];
        for (int i = 0; i < n; i++)
        for (int o = 0; o < outputs; o++)
        for (int k = 0; k < inputs; k++) ey[i * outputs + o] += x[i * inputs + k] * w[o * inputs + k];
        double[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var backend = new ManagedBackend("auto", threads);
            using var tx = backend.Upload(x, new Shape(n, inputs), dtype);
            using var tw = backend.Upload(w, new Shape(outputs, inputs), dtype);
            using var y = backend.Linear(tx, tw, null);
            double[] values = y.ToDoubles();
            TestSupport.Close(values, ey, TestSupport.Tolerance(dtype), $"y on {threads} worker(s), N{n} out{outputs} in{inputs} {dtype}");
            first ??= values;
            Assert.True(first.AsSpan().SequenceEqual(values), $"y on {threads} workers differs from one (N{n} out{outputs} in{inputs} {dtype})");
        }
    }

    [Fact]
    public void LinearBackward_SkipsDxWhenNotNeeded()
    {
        using var x = _backend.Zeros(new Shape(2, 3), DType.Float64);
        using var w = _backend.Zeros(new Shape(4, 3), DType.Float64);
        using var dy = _backend.Zeros(new Shape(2, 4), DType.Float64);
        using var grads = _backend.LinearBackward(dy, x, w, needDx: false);
        Assert.Null(grads.Dx);
    }

    [Fact]
    public void Linear_ThrowsForFeatureMismatch()
    {
        using var x = _backend.Zeros(new Shape(2, 3), DType.Float64);
        using var w = _backend.Zeros(new Shape(4, 5), DType.Float64);
        var e = Assert.Throws<ArgumentException>(() => _backend.Linear(x, w, null));
        Assert.Contains("input features", e.Message);
    }
}

public sealed class ActivationTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    [Fact]
    public void Relu_NaNStaysNaN()
    {
        float[] x = [-2f, -0f, 0f, 0.5f, float.NaN, float.NegativeInfinity, float.PositiveInfinity, 3f];
        using var tx = _backend.Upload<float>(x, new Shape(8));
        using var y = _backend.Relu(tx);
        float[] result = y.ToArray<float>();
        Assert.Equal([0f, 0f, 0f, 0.5f], result[..4]);
        Assert.True(float.IsNaN(result[4]), $"relu(NaN) = {result[4]}");
        Assert.Equal([0f, float.PositiveInfinity, 3f], result[5..]);
        Assert.False(float.IsNegative(result[1]), "relu(−0) should be +0");
    }

    [Fact]
    public void ReluBackward_PassesGradientWhereInputIsPositive()
    {
        double[] x = [-1, 0, 2, double.NaN, 1e-300];
        double[] dy = [10, 20, 30, 40, 50];
        using var tx = _backend.Upload<double>(x, new Shape(5));
        using var tdy = _backend.Upload<double>(dy, new Shape(5));
        using var dx = _backend.ReluBackward(tdy, tx);
        Assert.Equal([0.0, 0, 30, 0, 50], dx.ToDoubles());
    }

    [Fact]
    public void Relu_SplitOverWorkersCoversEveryElement()
    {
        // Several 64K-element chunks and a ragged last one, on two workers.
        using var backend = new ManagedBackend("auto", 2);
        int n = 3 * 65536 + 123;
        double[] x = TestSupport.Random(n, 61), dy = TestSupport.Random(n, 62);
        using var tx = backend.Upload<double>(x, new Shape(n));
        using var tdy = backend.Upload<double>(dy, new Shape(n));
        using var y = backend.Relu(tx);
        using var dx = backend.ReluBackward(tdy, tx);
        Assert.Equal(x.Select(v => Math.Max(v, 0)), y.ToDoubles());
        Assert.Equal(x.Zip(dy, (v, g) => v > 0 ? g : 0), dx.ToDoubles());
    }

    [Fact]
    public void ReluBackward_ThrowsForShapeMismatch()
    {
        using var x = _backend.Zeros(new Shape(5), DType.Float32);
        using var dy = _backend.Zeros(new Shape(4), DType.Float32);
        Assert.Throws<ArgumentException>(() => _backend.ReluBackward(dy, x));
    }
}

public sealed class LossTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void SoftmaxCrossEntropy_MatchesDefinition(DType dtype)
    {
        const int n = 4, classes = 6;
        double[] s = TestSupport.Random(n * classes, 61).Select(v => 5 * v).ToArray();
        if (dtype == DType.Float32) s = TestSupport.RoundToSingle(s);
        int[] labels = [0, 5, 2, 2];
        using var scores = _backend.Upload(s, new Shape(n, classes), dtype);
        using var result = _backend.SoftmaxCrossEntropy(scores, labels);

        double loss = 0;
        var ds = new double[n * classes];
        for (int i = 0; i < n; i++)
        {
            double z = 0;
            for (int j = 0; j < classes; j++) z += Math.Exp(s[i * classes + j]);
            loss -= Math.Log(Math.Exp(s[i * classes + labels[i]]) / z);
            for (int j = 0; j < classes; j++) ds[i * classes + j] = (Math.Exp(s[i * classes + j]) / z - (j == labels[i] ? 1 : 0)) / n;
        }
        Assert.Equal(loss / n, result.Loss, 1e-12);
        TestSupport.Close(result.DScores.ToDoubles(), ds, dtype == DType.Float64 ? 1e-12 : 1e-6, "dS");
    }

    [Fact]
    public void SoftmaxCrossEntropy_IsStableForLargeScores()
    {
        using var scores = _backend.Upload<double>([1000, 1001, 1002], new Shape(1, 3));
        using var result = _backend.SoftmaxCrossEntropy(scores, [2]);
        double expected = Math.Log(Math.Exp(-2) + Math.Exp(-1) + 1);
        Assert.Equal(expected, result.Loss, 1e-14);
        Assert.All(result.DScores.ToDoubles(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void MulticlassSvm_MatchesTheNotesExample()
    {
        // The notes' example: scores [13, −7, 11], correct class 0, Δ = 1 → max(0, −20 + 1) + max(0, −2 + 1) = 0;
        // and with the CS231n linear-classifier scores [3.2, 5.1, −1.7] for "cat": max(0, 2.9) + max(0, −3.9) = 2.9.
        using var scores = _backend.Upload<double>([13, -7, 11, 3.2, 5.1, -1.7], new Shape(2, 3));
        using var result = _backend.MulticlassSvm(scores, [0, 0]);
        Assert.Equal((0 + 2.9) / 2, result.Loss, 1e-12);
        Assert.Equal([0.0, 0, 0, -0.5, 0.5, 0], result.DScores.ToDoubles());
    }

    [Fact]
    public void SoftmaxCrossEntropy_ThrowsForLabelOutOfRange()
    {
        using var scores = _backend.Zeros(new Shape(2, 3), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => _backend.SoftmaxCrossEntropy(scores, [0, 3]));
        Assert.Contains("label 1 is 3", e.Message);
    }
}

public sealed class SgdTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    [Fact]
    public void SgdStep_FollowsTheDocumentedFormulaBitForBit()
    {
        float[] p = [0.5f, -1.25f, 3f, 0.1f], g = [0.2f, 0.3f, -0.7f, 1e-3f], v = [0.01f, -0.02f, 0f, 0.3f];
        const double lr = 0.05, momentum = 0.9, decay = 5e-4;
        using var tp = _backend.Upload<float>(p, new Shape(4));
        using var tg = _backend.Upload<float>(g, new Shape(4));
        using var tv = _backend.Upload<float>(v, new Shape(4));
        for (int step = 0; step < 3; step++)
        {
            _backend.SgdStep(tp, tg, tv, lr, momentum, decay);
            for (int i = 0; i < 4; i++)
            {
                v[i] = (float)momentum * v[i] - (float)lr * (g[i] + (float)decay * p[i]);
                p[i] = p[i] + v[i];
            }
        }
        Assert.Equal(p, tp.ToArray<float>());
        Assert.Equal(v, tv.ToArray<float>());
    }

    [Fact]
    public void SgdStep_WithoutMomentumIsPlainDescent()
    {
        using var p = _backend.Upload<double>([1, 2], new Shape(2));
        using var g = _backend.Upload<double>([0.5, -1], new Shape(2));
        using var v = _backend.Zeros(new Shape(2), DType.Float64);
        _backend.SgdStep(p, g, v, 0.1, 0, 0);
        Assert.Equal([1 - 0.1 * 0.5, 2 + 0.1], p.ToDoubles());
    }

    [Fact]
    public void SgdStep_ThrowsForMomentumOutOfRange()
    {
        using var p = _backend.Zeros(new Shape(2), DType.Float64);
        var e = Assert.Throws<ArgumentException>(() => _backend.SgdStep(p, p, p, 0.1, 1.5, 0));
        Assert.Contains("momentum", e.Message);
    }
}
