using CsCheck;

namespace Lockstep.Conformance;

/// <summary>
/// CsCheck generators of valid random cases, small enough for the naive oracle, shrinking towards small sizes,
/// generic inputs and the notes' usual settings. Geometries satisfy the notes' exact size rule by construction:
/// the output size is drawn and the input size derived, H = (H' − 1)·S + F − 2P.
/// </summary>
public static class Generators
{
    private static readonly Gen<InputKind> Inputs = Gen.Int[0, 2].Select(i => (InputKind)i);
    private static readonly Gen<int> DataSeed = Gen.Int[0, 1_000_000];

    /// <summary>
    /// CONV: F ∈ {1, 2, 3, 5, 7, 11} (1×1 often, AlexNet's F=11 with S up to 4), S ≤ 4, P &lt; F, outputs of 1–5 per
    /// axis (so non-square inputs) — but a quarter of the rows 12–40 outputs wide, as first layers' rows are (kernels
    /// that vectorise along a row, the managed backend's direct convolution among them, take only such rows) —
    /// C and K 1–4 a group, batch 1–3; one case in six dilated (D 2–3, kernels up to 5), one in six in 2–3 groups.
    /// </summary>
    public static readonly Gen<ConvCase> ConvGeometry =
        from f in Gen.Frequency((3, Gen.Const(3)), (3, Gen.Const(1)), (2, Gen.Const(5)), (1, Gen.Const(2)), (1, Gen.Const(7)), (2, Gen.Const(11)))
        from d in f is > 1 and <= 5 ? Gen.Frequency((5, Gen.Const(1)), (1, Gen.Int[2, 3])) : Gen.Const(1)
        from s in Gen.Int[1, f == 1 ? 2 : 4]
        from p in Gen.Int[0, Math.Min(d * (f - 1), 3)]
        from ho in Gen.Int[1, f >= 7 ? 3 : 5]
        from wo in Gen.Frequency((3, Gen.Int[1, f >= 7 ? 4 : 5]), (1, Gen.Int[12, 40]))
        from g in Gen.Frequency((5, Gen.Const(1)), (1, Gen.Int[2, 3]))
        from c in Gen.Int[1, 4]
        from k in Gen.Int[1, 4]
        from n in Gen.Int[1, 3]
        select new ConvCase(f, s, p, InputSize(ho, d * (f - 1) + 1, s, p), InputSize(wo, d * (f - 1) + 1, s, p), c * g, k * g, n, d, g);

    /// <summary>POOL: max (twice as often), average, L2; F 1–5 with 2 and 3 favoured, S ≤ F (overlapping when S &lt; F,
    /// e.g. the notes' F=3 S=2), P ≤ F/2, outputs of 1–5 per axis, C 1–4, batch 1–3.</summary>
    public static readonly Gen<PoolCase> PoolGeometry =
        from mode in Gen.Frequency((2, Gen.Const(PoolMode.Max)), (1, Gen.Const(PoolMode.Average)), (1, Gen.Const(PoolMode.L2)))
        from f in Gen.Frequency((4, Gen.Const(2)), (4, Gen.Const(3)), (1, Gen.Const(1)), (1, Gen.Const(4)), (1, Gen.Const(5)))
        from s in Gen.Int[1, f]
        from p in Gen.Int[0, f / 2]
        from ho in Gen.Int[1, 5]
        from wo in Gen.Int[1, 5]
        from c in Gen.Int[1, 4]
        from n in Gen.Int[1, 3]
        select new PoolCase(mode, f, s, p, InputSize(ho, f, s, p), InputSize(wo, f, s, p), c, n);

    public static readonly Gen<LinearCase> LinearGeometry =
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 48], Gen.Int[1, 12], (n, i, o) => new LinearCase(n, i, o));

    public static readonly Gen<VolumeCase> VolumeGeometry =
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 6], Gen.Int[1, 6], (n, c, h, w) => new VolumeCase(n, c, h, w));

    /// <summary>N 1–8 rows, 1–12 classes, scores u·{1, 4, 20} + {0, 1000} (large offsets test the stable softmax).</summary>
    public static Gen<LossCase> LossGeometry(LossKind kind) =>
        Gen.Select(Gen.Int[1, 8], Gen.Int[1, 12], Gen.OneOf(1.0, 4.0, 20.0), Gen.OneOf(0.0, 0.0, 1000.0),
            (n, classes, scale, offset) => new LossCase(kind, n, classes, scale, offset));

    public static readonly Gen<SgdCase> SgdGeometry =
        Gen.Select(Gen.Int[1, 6], Gen.Int[1, 8], Gen.OneOf(0.1, 0.01, 0.5, 1.0), Gen.OneOf(0.9, 0.0, 0.5, 0.99),
            Gen.OneOf(5e-4, 0.0, 1e-2), Gen.Int[1, 4], (r, c, lr, mu, wd, steps) => new SgdCase(r, c, lr, mu, wd, steps));

    /// <summary>Cases of <paramref name="op"/>: a geometry, an input kind (generic, tie-heavy, kink-free) and a data seed.</summary>
    public static Gen<OpCase> For(ConformanceOp op) => op switch
    {
        ConformanceOp.Conv2d => Gen.Select(ConvGeometry, Inputs, DataSeed, (g, k, s) => (OpCase)new ConvOpCase(g, k, s)),
        ConformanceOp.Pool2d => Gen.Select(PoolGeometry, Inputs, DataSeed, (g, k, s) => (OpCase)new PoolOpCase(g, k, s)),
        ConformanceOp.Linear => Gen.Select(LinearGeometry, Inputs, DataSeed, (g, k, s) => (OpCase)new LinearOpCase(g, k, s)),
        ConformanceOp.Relu => Gen.Select(VolumeGeometry, Inputs, DataSeed, (g, k, s) => (OpCase)new ReluOpCase(g, k, s)),
        ConformanceOp.SoftmaxCrossEntropy =>
            Gen.Select(LossGeometry(LossKind.SoftmaxCrossEntropy), Inputs, DataSeed, (g, k, s) => (OpCase)new LossOpCase(g, k, s)),
        ConformanceOp.MulticlassSvm =>
            Gen.Select(LossGeometry(LossKind.MulticlassSvm), Inputs, DataSeed, (g, k, s) => (OpCase)new LossOpCase(g, k, s)),
        ConformanceOp.SgdStep => Gen.Select(SgdGeometry, Inputs, DataSeed, (g, k, s) => (OpCase)new SgdOpCase(g, k, s)),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    /// <summary>The case a printed seed stands for (CsCheck's seed format).</summary>
    public static OpCase Replay(ConformanceOp op, string seed) => For(op).Generate(PCG.Parse(seed), null!, out _);

    /// <summary>The input size that gives <paramref name="output"/> outputs exactly; at least 1 (more outputs if need be).</summary>
    private static int InputSize(int output, int f, int s, int p)
    {
        int size = (output - 1) * s + f - 2 * p;
        while (size < 1) size += s;
        return size;
    }
}
