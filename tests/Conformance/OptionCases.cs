namespace Lockstep.Conformance;

/// <summary>A convolution with the options beyond the notes (per-side padding, dilation, groups); <see cref="Name"/> is its key in test names.</summary>
public sealed record ConvOptionsCase(string Name, ConvSpec Spec, Shape Input, int K)
{
    public Shape Weights => new(K, Input.C / Spec.Groups, Spec.KernelH, Spec.KernelW);

    public override string ToString() => $"{Name}: {Spec} on {Input}, K={K}";

    /// <summary>Rectangular, asymmetric (SAME_UPPER / SAME_LOWER-like), dilated, grouped, depthwise and pointwise-grouped cases.</summary>
    public static IReadOnlyList<ConvOptionsCase> All { get; } =
    [
        new("asymmetric padding", new ConvSpec(3, 3, 1, 1, new Padding2d(0, 1, 1, 2), name: "conv"), Shape.Nchw(2, 3, 6, 7), 4),
        new("same upper F2", new ConvSpec(2, 2, 1, 1, new Padding2d(0, 0, 1, 1), name: "conv"), Shape.Nchw(1, 2, 5, 5), 3),
        new("same lower F2 S2", new ConvSpec(2, 2, 2, 2, new Padding2d(1, 1, 0, 0), name: "conv"), Shape.Nchw(2, 2, 5, 7), 2),
        new("dilation 2", new ConvSpec(3, 3, 1, 1, 2, 2, name: "conv", dilationH: 2, dilationW: 2), Shape.Nchw(2, 2, 9, 8), 3),
        new("rectangular dilation 2x3", new ConvSpec(3, 2, 2, 1, 1, 1, name: "conv", dilationH: 2, dilationW: 3), Shape.Nchw(1, 3, 11, 7), 5),
        new("atrous D4 P4", new ConvSpec(3, 3, 1, 1, 4, 4, name: "conv", dilationH: 4, dilationW: 4), Shape.Nchw(1, 2, 10, 9), 2),
        new("groups 2", new ConvSpec(3, 3, 1, 1, 1, 1, name: "conv", groups: 2), Shape.Nchw(2, 4, 6, 6), 6),
        new("depthwise", new ConvSpec(3, 3, 2, 2, 1, 1, name: "conv", groups: 8), Shape.Nchw(1, 8, 7, 7), 8),
        new("depthwise multiplier 2 dilated", new ConvSpec(5, 5, 1, 1, 4, 4, name: "conv", dilationH: 2, dilationW: 2, groups: 4), Shape.Nchw(2, 4, 10, 9), 8),
        new("pointwise groups 3", new ConvSpec(1, 1, name: "conv", groups: 3), Shape.Nchw(2, 6, 5, 4), 9),
        new("floor, dilated, asymmetric, grouped",
            new ConvSpec(3, 3, 3, 3, new Padding2d(2, 1, 0, 1), SizeRule.Floor, "conv", 2, 2, groups: 3), Shape.Nchw(1, 6, 13, 12), 3),
    ];

    public static ConvOptionsCase Named(string name) => All.Single(c => c.Name == name);
}

/// <summary>A pooling with the options beyond the notes (per-side padding, padding over F/2, dilation, ceil mode, count_include_pad, global).</summary>
public sealed record PoolOptionsCase(string Name, PoolSpec Spec, Shape Input)
{
    public override string ToString() => $"{Name}: {Spec} on {Input}";

    /// <summary>Whether no two windows share an input element (then max pooling's backward is exact too).</summary>
    public bool WindowsDisjoint => Spec.StrideH >= Spec.EffectiveKernelH && Spec.StrideW >= Spec.EffectiveKernelW;

    public static IReadOnlyList<PoolOptionsCase> All { get; } =
    [
        new("max same upper", new PoolSpec(PoolMode.Max, 2, 2, 1, 1, new Padding2d(0, 0, 1, 1), name: "pool"), Shape.Nchw(2, 3, 6, 5)),
        new("max pad over half the window", new PoolSpec(PoolMode.Max, 3, 3, 1, 1, 2, 2, name: "pool"), Shape.Nchw(1, 2, 6, 6)),
        new("max dilation 2 ceil", new PoolSpec(PoolMode.Max, 2, 2, 1, 1, rule: SizeRule.Ceil, name: "pool", dilationH: 2, dilationW: 2), Shape.Nchw(2, 2, 5, 6)),
        new("max dilated asymmetric", new PoolSpec(PoolMode.Max, 3, 2, 2, 2, new Padding2d(1, 0, 2, 1), SizeRule.Floor, name: "pool", dilationH: 2, dilationW: 3), Shape.Nchw(1, 3, 9, 10)),
        new("avg same lower", new PoolSpec(PoolMode.Average, 2, 2, 1, 1, new Padding2d(1, 1, 0, 0), name: "pool"), Shape.Nchw(2, 2, 5, 6)),
        new("avg asymmetric count_include_pad ceil",
            new PoolSpec(PoolMode.Average, 3, 3, 2, 2, new Padding2d(1, 0, 2, 1), SizeRule.Ceil, countIncludePad: true, name: "pool"), Shape.Nchw(1, 3, 8, 7)),
        new("avg pad over half the window", new PoolSpec(PoolMode.Average, 3, 3, 1, 1, 2, 2, name: "pool"), Shape.Nchw(1, 2, 5, 6)),
        new("avg dilation 2 ceil", new PoolSpec(PoolMode.Average, 3, 3, 2, 2, 1, 1, SizeRule.Ceil, name: "pool", dilationH: 2, dilationW: 2), Shape.Nchw(2, 2, 9, 8)),
        new("avg dilation 2 count_include_pad ceil",
            new PoolSpec(PoolMode.Average, 3, 3, 2, 2, 2, 2, SizeRule.Ceil, countIncludePad: true, name: "pool", dilationH: 2, dilationW: 2), Shape.Nchw(1, 2, 8, 8)),
        new("l2 dilation 3", new PoolSpec(PoolMode.L2, 2, 2, 2, 2, rule: SizeRule.Floor, name: "pool", dilationH: 3, dilationW: 3), Shape.Nchw(1, 2, 8, 9)),
        new("l2 asymmetric", new PoolSpec(PoolMode.L2, 3, 3, 1, 1, new Padding2d(2, 0, 1, 2), name: "pool"), Shape.Nchw(2, 1, 5, 6)),
        new("global max", PoolSpec.Global(PoolMode.Max, 5, 7, "pool"), Shape.Nchw(2, 3, 5, 7)),
        new("global avg", PoolSpec.Global(PoolMode.Average, 6, 4, "pool"), Shape.Nchw(2, 3, 6, 4)),
        new("global l2", PoolSpec.Global(PoolMode.L2, 3, 3, "pool"), Shape.Nchw(1, 4, 3, 3)),
    ];

    public static PoolOptionsCase Named(string name) => All.Single(c => c.Name == name);
}
