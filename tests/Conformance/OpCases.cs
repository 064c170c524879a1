using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>The ops the random sweep covers, one generator each. The CLI's names: conv, pool, fc, relu, loss (both
/// losses), sgd.</summary>
public enum ConformanceOp
{
    Conv2d,
    Pool2d,
    Linear,
    Relu,
    SoftmaxCrossEntropy,
    MulticlassSvm,
    SgdStep,
}

/// <summary>
/// One runnable random case: a geometry, how its inputs are drawn and the seed of its data. <see cref="Run"/> gives
/// the op's forward result and every gradient, each with its reduction length (the K of the float32 bound);
/// <see cref="Gradients"/> gives what a central-difference check needs, in float64.
/// </summary>
public abstract record OpCase(InputKind Inputs, int DataSeed)
{
    public abstract ConformanceOp Op { get; }

    /// <summary>The spec and the shapes, e.g. "conv F=3 S=2 P=1; x [1, 2, 5, 7], w [3, 2, 3, 3], b [3] → y [1, 3, 3, 4]".</summary>
    public abstract string Geometry { get; }

    /// <summary>Runs the op on <paramref name="backend"/> in <paramref name="dtype"/>, with host data rounded to
    /// <paramref name="inputs"/> (so that a float64 run can see exactly a float32 run's inputs).</summary>
    public abstract IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs);

    /// <summary>In float64: each gradient the op's backward gives, with the scalar L = Σ r ⊙ op(…) it is the gradient of.</summary>
    public virtual IReadOnlyList<GradientProbe> Gradients(IBackend backend) => [];

    public sealed override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Op} {Geometry}; {Inputs} inputs, data seed {DataSeed}");

    /// <summary>Host data for one operand (<paramref name="stream"/> numbers the operands of a case).</summary>
    protected double[] Data(int stream, Shape shape, InputKind kind, DType inputs) =>
        HostData.RoundTo(HostData.Random(unchecked(DataSeed + 7919 * stream), shape, kind), inputs);

    protected static ITensor Up(IBackend backend, double[] data, Shape shape, DType dtype) => backend.Upload(data, shape, dtype);

    protected static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    protected static long CeilDiv(int a, int b) => (a + b - 1) / b;
}

/// <summary>An analytic gradient and the scalar function it is the gradient of, at <paramref name="Values"/>.</summary>
public sealed record GradientProbe(string Name, double[] Values, double[] Analytic, Func<double[], double> Loss);

/// <summary>CONV: y = conv(x, w) + b; dx, dw, db. Shapes: N batch, C channels, H×W input, K filters, F kernel.</summary>
public sealed record ConvOpCase(ConvCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => ConformanceOp.Conv2d;

    private Shape Output
    {
        get
        {
            var (ho, wo) = Case.Spec.OutputSize(Case.H, Case.W);
            return Shape.Nchw(Case.N, Case.K, ho, wo);
        }
    }

    public override string Geometry => $"{Case.Spec}; x {Case.Input}, w {Case.Weights}, b [{Case.K}] → y {Output}";

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var c = Case;
        var y0 = Output;
        var x = Data(0, c.Input, Inputs, inputs);
        var w = Data(1, c.Weights, InputKind.Generic, inputs);
        var b = Data(2, new Shape(c.K), InputKind.Generic, inputs);
        var dy = Data(3, y0, InputKind.Generic, inputs);
        using var xt = Up(backend, x, c.Input, dtype);
        using var wt = Up(backend, w, c.Weights, dtype);
        using var bt = Up(backend, b, new Shape(c.K), dtype);
        using var y = backend.Conv2d(xt, wt, bt, c.Spec);
        using var dyt = Up(backend, dy, y.Shape, dtype);
        using var g = backend.Conv2dBackward(dyt, xt, wt, c.Spec, needDx: true);
        long perFilter = (long)y0.N * y0.H * y0.W;
        double mx = Result.MaxAbs(x), mw = Result.MaxAbs(w), mdy = Result.MaxAbs(dy);
        return
        [
            // y: C/G·F·F products and the bias; dx: each input meets the K/G filters of its group at ⌈F/S⌉² kernel
            // offsets per axis pair (at most F² when dilated).
            Result.Of("y", y, reduction: (long)c.C / c.G * c.F * c.F + 1, scale: Math.Max(mx * mw, Result.MaxAbs(b))),
            Result.Of("dx", g.Dx!, reduction: c.K / c.G * (c.D == 1 ? CeilDiv(c.F, c.S) * CeilDiv(c.F, c.S) : c.F * c.F), scale: mdy * mw),
            Result.Of("dw", g.Dw, reduction: perFilter, scale: mdy * mx),
            Result.Of("db", g.Db, reduction: perFilter, scale: mdy),
        ];
    }

    public override IReadOnlyList<GradientProbe> Gradients(IBackend backend)
    {
        var c = Case;
        var x = Data(0, c.Input, Inputs, DType.Float64);
        var w = Data(1, c.Weights, InputKind.Generic, DType.Float64);
        var b = Data(2, new Shape(c.K), InputKind.Generic, DType.Float64);
        var r = Data(3, Output, InputKind.Generic, DType.Float64);

        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var xt = backend.Upload<double>(xv, c.Input);
            using var wt = backend.Upload<double>(wv, c.Weights);
            using var bt = backend.Upload<double>(bv, new Shape(c.K));
            using var y = backend.Conv2d(xt, wt, bt, c.Spec);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = backend.Upload<double>(x, c.Input);
        using var wt = backend.Upload<double>(w, c.Weights);
        using var dy = backend.Upload<double>(r, Output);
        using var g = backend.Conv2dBackward(dy, xt, wt, c.Spec, needDx: true);
        return
        [
            new("dx", x, g.Dx!.ToDoubles(), v => Loss(v, w, b)),
            new("dw", w, g.Dw.ToDoubles(), v => Loss(x, v, b)),
            new("db", b, g.Db.ToDoubles(), v => Loss(x, w, v)),
        ];
    }
}

/// <summary>POOL: y = pool(x) (max also gives switches); dx.</summary>
public sealed record PoolOpCase(PoolCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => ConformanceOp.Pool2d;

    private Shape Output
    {
        get
        {
            var (ho, wo) = Case.Spec.OutputSize(Case.H, Case.W);
            return Shape.Nchw(Case.N, Case.C, ho, wo);
        }
    }

    public override string Geometry => $"{Case.Spec}; x {Case.Input} → y {Output}";

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var c = Case;
        var x = Data(0, c.Input, Inputs, inputs);
        var dy = Data(1, Output, InputKind.Generic, inputs);
        using var xt = Up(backend, x, c.Input, dtype);
        using var r = backend.Pool2d(xt, c.Spec);
        using var dyt = Up(backend, dy, r.Y.Shape, dtype);
        using var dx = backend.Pool2dBackward(dyt, xt, r, c.Spec);
        bool max = c.Mode == PoolMode.Max;
        // Each input lies in up to ⌈F/S⌉² windows; without overlap max pooling's dx is a copy, exact.
        long overlap = CeilDiv(c.F, c.S) * CeilDiv(c.F, c.S);
        // Only averages can cancel (L2 sums squares); their terms are x/F² and dy/F² (larger where padding is left out).
        double window = c.Mode == PoolMode.Average ? c.F * c.F : 1;
        var results = new List<Result>
        {
            Result.Of("y", r.Y, exact: max, reduction: (long)c.F * c.F + 1, scale: c.Mode == PoolMode.Average ? Result.MaxAbs(x) / window : 0),
            Result.Of("dx", dx, exact: max && c.S >= c.F, reduction: overlap, scale: Result.MaxAbs(dy) / window),
        };
        if (max) results.Add(Result.Of("switches", r.Switches!, exact: true));
        return results;
    }

    public override IReadOnlyList<GradientProbe> Gradients(IBackend backend)
    {
        var c = Case;
        var x = Data(0, c.Input, Inputs, DType.Float64);
        var r = Data(1, Output, InputKind.Generic, DType.Float64);

        double Loss(double[] xv)
        {
            using var xt = backend.Upload<double>(xv, c.Input);
            using var p = backend.Pool2d(xt, c.Spec);
            return Dot(p.Y.ToDoubles(), r);
        }

        using var xt = backend.Upload<double>(x, c.Input);
        using var p = backend.Pool2d(xt, c.Spec);
        using var dy = backend.Upload<double>(r, p.Y.Shape);
        using var dx = backend.Pool2dBackward(dy, xt, p, c.Spec);
        return [new("dx", x, dx.ToDoubles(), Loss)];
    }
}

/// <summary>FC: y = x·Wᵀ + b; dx, dw, db.</summary>
public sealed record LinearOpCase(LinearCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => ConformanceOp.Linear;

    public override string Geometry => $"FC; x {Case.Input}, w {Case.Weights}, b [{Case.Out}] → y [{Case.N}, {Case.Out}]";

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var c = Case;
        var yShape = new Shape(c.N, c.Out);
        var x = Data(0, c.Input, Inputs, inputs);
        var w = Data(1, c.Weights, InputKind.Generic, inputs);
        var b = Data(2, new Shape(c.Out), InputKind.Generic, inputs);
        var dy = Data(3, yShape, InputKind.Generic, inputs);
        using var xt = Up(backend, x, c.Input, dtype);
        using var wt = Up(backend, w, c.Weights, dtype);
        using var bt = Up(backend, b, new Shape(c.Out), dtype);
        using var y = backend.Linear(xt, wt, bt);
        using var dyt = Up(backend, dy, y.Shape, dtype);
        using var g = backend.LinearBackward(dyt, xt, wt, needDx: true);
        double mx = Result.MaxAbs(x), mw = Result.MaxAbs(w), mdy = Result.MaxAbs(dy);
        return
        [
            Result.Of("y", y, reduction: c.In + 1, scale: Math.Max(mx * mw, Result.MaxAbs(b))),
            Result.Of("dx", g.Dx!, reduction: c.Out, scale: mdy * mw),
            Result.Of("dw", g.Dw, reduction: c.N, scale: mdy * mx),
            Result.Of("db", g.Db, reduction: c.N, scale: mdy),
        ];
    }

    public override IReadOnlyList<GradientProbe> Gradients(IBackend backend)
    {
        var c = Case;
        var x = Data(0, c.Input, Inputs, DType.Float64);
        var w = Data(1, c.Weights, InputKind.Generic, DType.Float64);
        var b = Data(2, new Shape(c.Out), InputKind.Generic, DType.Float64);
        var r = Data(3, new Shape(c.N, c.Out), InputKind.Generic, DType.Float64);

        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var xt = backend.Upload<double>(xv, c.Input);
            using var wt = backend.Upload<double>(wv, c.Weights);
            using var bt = backend.Upload<double>(bv, new Shape(c.Out));
            using var y = backend.Linear(xt, wt, bt);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = backend.Upload<double>(x, c.Input);
        using var wt = backend.Upload<double>(w, c.Weights);
        using var dy = backend.Upload<double>(r, new Shape(c.N, c.Out));
        using var g = backend.LinearBackward(dy, xt, wt, needDx: true);
        return
        [
            new("dx", x, g.Dx!.ToDoubles(), v => Loss(v, w, b)),
            new("dw", w, g.Dw.ToDoubles(), v => Loss(x, v, b)),
            new("db", b, g.Db.ToDoubles(), v => Loss(x, w, v)),
        ];
    }
}

/// <summary>RELU: y = max(0, x); dx = dy where x &gt; 0. Both bit for bit.</summary>
public sealed record ReluOpCase(VolumeCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => ConformanceOp.Relu;

    public override string Geometry => $"RELU; x {Case.Shape}";

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var shape = Case.Shape;
        var x = Data(0, shape, Inputs, inputs);
        var dy = Data(1, shape, InputKind.Generic, inputs);
        using var xt = Up(backend, x, shape, dtype);
        using var y = backend.Relu(xt);
        using var dyt = Up(backend, dy, shape, dtype);
        using var dx = backend.ReluBackward(dyt, xt);
        return [Result.Of("y", y, exact: true), Result.Of("dx", dx, exact: true)];
    }

    public override IReadOnlyList<GradientProbe> Gradients(IBackend backend)
    {
        var shape = Case.Shape;
        var x = Data(0, shape, Inputs, DType.Float64);
        var r = Data(1, shape, InputKind.Generic, DType.Float64);

        double Loss(double[] xv)
        {
            using var xt = backend.Upload<double>(xv, shape);
            using var y = backend.Relu(xt);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = backend.Upload<double>(x, shape);
        using var dy = backend.Upload<double>(r, shape);
        using var dx = backend.ReluBackward(dy, xt);
        return [new("dx", x, dx.ToDoubles(), Loss)];
    }
}

/// <summary>Softmax cross-entropy or the multiclass SVM: the mean loss and dscores.</summary>
public sealed record LossOpCase(LossCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => Case.Kind == LossKind.SoftmaxCrossEntropy ? ConformanceOp.SoftmaxCrossEntropy : ConformanceOp.MulticlassSvm;

    public override string Geometry => $"{(Case.Kind == LossKind.SoftmaxCrossEntropy ? "SOFTMAX" : "SVM")}; scores {Case}";

    private double[] Scores(DType inputs)
    {
        var u = Data(0, Case.Scores, Inputs, DType.Float64);
        if (Case.Kind == LossKind.MulticlassSvm && Inputs == InputKind.KinkFree)
        {
            // Distinct values are not enough for the hinge: its kink is at s_j − s_y = −1. On a grid of 0.3/scale,
            // every margin scale·(u_j − u_y) + 1 is at least 0.1 from 0 for the scales drawn (1, 4, 20).
            var rng = new Random(DataSeed);
            u = Array.ConvertAll(u, _ => 0.3 * rng.Next(-3, 4));
        }
        return HostData.RoundTo(Array.ConvertAll(u, v => Case.Scale * v + Case.Offset), inputs);
    }

    private int[] Labels => HostData.Labels(unchecked(DataSeed + 1), Case.N, Case.Classes);

    private LossResult Loss(IBackend backend, ITensor scores) =>
        Case.Kind == LossKind.SoftmaxCrossEntropy ? backend.SoftmaxCrossEntropy(scores, Labels) : backend.MulticlassSvm(scores, Labels);

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var scores = Scores(inputs);
        using var st = Up(backend, scores, Case.Scores, dtype);
        using var r = Loss(backend, st);
        // The loss sums N·classes terms (exponentials or margins), each of the size of a score difference plus 1, and
        // can cancel (a margin just above 0); each dscores row sums over the classes, terms up to 1/N (p − 1 cancels).
        double spread = Result.MaxAbs(Array.ConvertAll(scores, v => v - Case.Offset));
        return
        [
            new Result("loss", new Shape(1), [r.Loss], Reduction: (long)Case.N * Case.Classes, Scale: 2 * spread + 1),
            Result.Of("dscores", r.DScores, reduction: Case.Classes, scale: 1.0 / Case.N),
        ];
    }

    public override IReadOnlyList<GradientProbe> Gradients(IBackend backend)
    {
        var s = Scores(DType.Float64);

        double Value(double[] sv)
        {
            using var t = backend.Upload<double>(sv, Case.Scores);
            using var r = Loss(backend, t);
            return r.Loss;
        }

        using var st = backend.Upload<double>(s, Case.Scores);
        using var result = Loss(backend, st);
        return [new("dscores", s, result.DScores.ToDoubles(), Value)];
    }
}

/// <summary>SGD with momentum and weight decay, several steps in place: param and velocity.</summary>
public sealed record SgdOpCase(SgdCase Case, InputKind Inputs, int DataSeed) : OpCase(Inputs, DataSeed)
{
    public override ConformanceOp Op => ConformanceOp.SgdStep;

    public override string Geometry => $"SGD; {Case}";

    public override IReadOnlyList<Result> Run(IBackend backend, DType dtype, DType inputs)
    {
        var shape = Case.Shape;
        double[] p0 = Data(0, shape, Inputs, inputs), g0 = Data(1, shape, InputKind.Generic, inputs), v0 = Data(2, shape, InputKind.Generic, inputs);
        using var p = Up(backend, p0, shape, dtype);
        using var g = Up(backend, g0, shape, dtype);
        using var v = Up(backend, v0, shape, dtype);
        for (int i = 0; i < Case.Steps; i++) backend.SgdStep(p, g, v, Case.LearningRate, Case.Momentum, Case.WeightDecay);
        // No sums: a chain of four rounded operations per element and step, whose terms (p, v, lr·g) can cancel.
        double scale = Result.MaxAbs(p0) + Result.MaxAbs(v0) + Case.Steps * Case.LearningRate * (Result.MaxAbs(g0) + Case.WeightDecay * Result.MaxAbs(p0));
        return [Result.Of("param", p, reduction: 4L * Case.Steps, scale: scale), Result.Of("velocity", v, reduction: 4L * Case.Steps, scale: scale)];
    }
}
