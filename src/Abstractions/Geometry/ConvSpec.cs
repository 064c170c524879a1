namespace Lockstep;

/// <summary>
/// CONV hyperparameters (the notes' F, S, P, per axis): kernel F_h×F_w, stride S, zero padding P, and the options
/// real networks add: padding that differs per side (<see cref="Padding"/>), dilation D (the kernel's taps D apart,
/// spanning D·(F − 1) + 1 inputs), and groups G (input and output channels split into G independent convolutions,
/// weights [K, C/G, F_h, F_w]; G = C = K is a depthwise convolution). The defaults (D = 1, G = 1, symmetric P) are
/// the notes' convolution. <see cref="Name"/> is the layer's name, used in every error about it.
/// </summary>
public sealed record ConvSpec
{
    public ConvSpec(int kernelH, int kernelW, int strideH = 1, int strideW = 1, int padH = 0, int padW = 0,
        SizeRule rule = SizeRule.Exact, string name = "CONV", int dilationH = 1, int dilationW = 1, int groups = 1)
        : this(kernelH, kernelW, strideH, strideW, Padding2d.Symmetric(padH, padW), rule, name, dilationH, dilationW, groups)
    {
    }

    /// <summary>A convolution with per-side padding (e.g. ONNX's pads or auto_pad SAME_UPPER / SAME_LOWER).</summary>
    public ConvSpec(int kernelH, int kernelW, int strideH, int strideW, Padding2d padding,
        SizeRule rule = SizeRule.Exact, string name = "CONV", int dilationH = 1, int dilationW = 1, int groups = 1)
    {
        Name = name;
        KernelH = kernelH; KernelW = kernelW;
        StrideH = strideH; StrideW = strideW;
        Padding = padding;
        DilationH = dilationH; DilationW = dilationW;
        Groups = groups;
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
    public Padding2d Padding { get; }
    /// <summary>Rows of zeros above the input (the notes' P_h when the padding is symmetric).</summary>
    public int PadH => Padding.Top;
    /// <summary>Columns of zeros left of the input (the notes' P_w when the padding is symmetric).</summary>
    public int PadW => Padding.Left;
    public int DilationH { get; }
    public int DilationW { get; }
    public int Groups { get; }
    public SizeRule Rule { get; }

    /// <summary>Input rows a window spans: D_h·(F_h − 1) + 1.</summary>
    public int EffectiveKernelH => Lockstep.OutputSize.EffectiveKernel(KernelH, DilationH);
    /// <summary>Input columns a window spans: D_w·(F_w − 1) + 1.</summary>
    public int EffectiveKernelW => Lockstep.OutputSize.EffectiveKernel(KernelW, DilationW);

    /// <summary>Output height and width for an input of <paramref name="h"/>×<paramref name="w"/>.</summary>
    public (int H, int W) OutputSize(int h, int w) =>
        (Lockstep.OutputSize.Compute(Name, 'H', h, KernelH, StrideH, Padding.Top, Padding.Bottom, DilationH, Rule),
         Lockstep.OutputSize.Compute(Name, 'W', w, KernelW, StrideW, Padding.Left, Padding.Right, DilationW, Rule));

    private void Validate()
    {
        if (KernelH < 1 || KernelW < 1) throw new ArgumentException($"{Name}: kernel must be at least 1×1, got {KernelH}×{KernelW}");
        if (StrideH < 1 || StrideW < 1) throw new ArgumentException($"{Name}: stride must be at least 1, got {StrideH}×{StrideW}");
        if (DilationH < 1 || DilationW < 1) throw new ArgumentException($"{Name}: dilation must be at least 1, got {DilationH}×{DilationW}");
        if (Groups < 1) throw new ArgumentException($"{Name}: groups must be at least 1, got {Groups}");
        var p = Padding;
        if (p.Top < 0 || p.Left < 0 || p.Bottom < 0 || p.Right < 0) throw new ArgumentException($"{Name}: padding must be non-negative, got {p}");
        // With dilation the window spans D·(F − 1) + 1 inputs, and padding up to that is still meaningful (atrous convolutions).
        Lockstep.OutputSize.CheckWindow(Name, KernelH, KernelW, DilationH, DilationW);
        int fh = EffectiveKernelH, fw = EffectiveKernelW;
        if (Math.Max(p.Top, p.Bottom) >= fh || Math.Max(p.Left, p.Right) >= fw)
        {
            string kernel = DilationH == 1 && DilationW == 1 ? $"F={fh}×{fw}" : $"the dilated kernel D·(F - 1) + 1 = {fh}×{fw}";
            throw new ArgumentException(
                $"{Name}: padding must be smaller than the kernel (P < F), got P={p} for {kernel}; " +
                "such padding only adds outputs that see nothing but zeros");
        }
        if (Rule == SizeRule.Ceil)
        {
            throw new ArgumentException($"{Name}: SizeRule.Ceil applies to pooling only; a convolution takes Exact or Floor");
        }
    }

    public override string ToString()
    {
        string text = KernelH == KernelW && StrideH == StrideW && PadH == PadW && Padding.IsSymmetric
            ? $"{Name} F={KernelH} S={StrideH} P={PadH}"
            : $"{Name} F={KernelH}x{KernelW} S={StrideH}x{StrideW} P={Padding}";
        if (DilationH != 1 || DilationW != 1) text += DilationH == DilationW ? $" D={DilationH}" : $" D={DilationH}x{DilationW}";
        if (Groups != 1) text += $" G={Groups}";
        return text;
    }
}
