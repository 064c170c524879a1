namespace Lockstep;

/// <summary>
/// CONV hyperparameters (the notes' F, S, P, per axis): kernel F_h×F_w, stride S, zero padding P.
/// <see cref="Name"/> is the layer's name, used in every error about it.
/// </summary>
public sealed record ConvSpec
{
    public ConvSpec(int kernelH, int kernelW, int strideH = 1, int strideW = 1, int padH = 0, int padW = 0,
        SizeRule rule = SizeRule.Exact, string name = "CONV")
    {
        Name = name;
        KernelH = kernelH; KernelW = kernelW;
        StrideH = strideH; StrideW = strideW;
        PadH = padH; PadW = padW;
        Rule = rule;
        Validate();
    }

    /// <summary>A square kernel F with stride S and padding P, as the notes write it.</summary>
    public static ConvSpec Square(int f, int s = 1, int p = 0, SizeRule rule = SizeRule.Exact, string name = "CONV") =>
        new(f, f, s, s, p, p, rule, name);

    public string Name { get; init; }
    public int KernelH { get; }
    public int KernelW { get; }
    public int StrideH { get; }
    public int StrideW { get; }
    public int PadH { get; }
    public int PadW { get; }
    public SizeRule Rule { get; }

    /// <summary>Output height and width for an input of <paramref name="h"/>×<paramref name="w"/>.</summary>
    public (int H, int W) OutputSize(int h, int w) =>
        (Lockstep.OutputSize.Compute(Name, 'H', h, KernelH, StrideH, PadH, Rule),
         Lockstep.OutputSize.Compute(Name, 'W', w, KernelW, StrideW, PadW, Rule));

    private void Validate()
    {
        if (KernelH < 1 || KernelW < 1) throw new ArgumentException($"{Name}: kernel must be at least 1×1, got {KernelH}×{KernelW}");
        if (StrideH < 1 || StrideW < 1) throw new ArgumentException($"{Name}: stride must be at least 1, got {StrideH}×{StrideW}");
        if (PadH < 0 || PadW < 0) throw new ArgumentException($"{Name}: padding must be non-negative, got {PadH}×{PadW}");
        if (PadH >= KernelH || PadW >= KernelW)
        {
            throw new ArgumentException(
                $"{Name}: padding must be smaller than the kernel (P < F), got P={PadH}×{PadW} for F={KernelH}×{KernelW}; " +
                "such padding only adds outputs that see nothing but zeros");
        }
        if (Rule == SizeRule.Ceil)
        {
            throw new ArgumentException($"{Name}: SizeRule.Ceil applies to pooling only; a convolution takes Exact or Floor");
        }
    }

    public override string ToString() =>
        KernelH == KernelW && StrideH == StrideW && PadH == PadW
            ? $"{Name} F={KernelH} S={StrideH} P={PadH}"
            : $"{Name} F={KernelH}x{KernelW} S={StrideH}x{StrideW} P={PadH}x{PadW}";
}
