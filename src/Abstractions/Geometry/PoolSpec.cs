namespace Lockstep;

public enum PoolMode
{
    /// <summary>Maximum over the window; backward routes through the recorded switches.</summary>
    Max,
    /// <summary>Mean over the window elements inside the input (or over all, with CountIncludePad).</summary>
    Average,
    /// <summary>sqrt of the sum of squares over the window.</summary>
    L2,
}

/// <summary>
/// POOL hyperparameters: window F_h×F_w, stride S, padding P (the notes: F=2 S=2 or F=3 S=2), and the options the
/// ONNX corpus and real networks add: padding that differs per side (<see cref="Padding"/>), dilation D (the
/// window's taps D apart, spanning D·(F − 1) + 1 inputs; every mode), <see cref="SizeRule.Ceil"/> (ceil_mode),
/// <see cref="CountIncludePad"/>, and global pooling (<see cref="Global(PoolMode, int, int, string)"/>).
/// Padding is never read: max ignores it, average divides by the window elements inside the input unless
/// <see cref="CountIncludePad"/> (then by those inside the padded extent), L2 adds nothing for it.
/// </summary>
public sealed record PoolSpec
{
    public PoolSpec(PoolMode mode, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0,
        SizeRule rule = SizeRule.Exact, bool countIncludePad = false, string name = "POOL", int dilationH = 1, int dilationW = 1)
        : this(mode, kernelH, kernelW, strideH, strideW, Padding2d.Symmetric(padH, padW), rule, countIncludePad, name, dilationH, dilationW)
    {
    }

    /// <summary>A pooling with per-side padding (e.g. ONNX's pads or auto_pad SAME_UPPER / SAME_LOWER).</summary>
    public PoolSpec(PoolMode mode, int kernelH, int kernelW, int strideH, int strideW, Padding2d padding,
        SizeRule rule = SizeRule.Exact, bool countIncludePad = false, string name = "POOL", int dilationH = 1, int dilationW = 1)
    {
        Mode = mode;
        Name = name;
        KernelH = kernelH; KernelW = kernelW;
        StrideH = strideH; StrideW = strideW;
        Padding = padding;
        DilationH = dilationH; DilationW = dilationW;
        Rule = rule;
        CountIncludePad = countIncludePad;
        Validate();
    }

    /// <summary>A square window F with stride S (default S = F) and padding P.</summary>
    public static PoolSpec Square(PoolMode mode, int f, int? s = null, int p = 0, SizeRule rule = SizeRule.Exact, string name = "POOL") =>
        new(mode, f, f, s ?? f, s ?? f, p, p, rule, name: name);

    /// <summary>Global pooling: one window as large as the <paramref name="h"/>×<paramref name="w"/> input plane, one output per channel.</summary>
    public static PoolSpec Global(PoolMode mode, int h, int w, string name = "POOL") => new(mode, h, w, 1, 1, name: name);

    /// <summary>Global pooling over the planes of <paramref name="input"/> [N, C, H, W].</summary>
    public static PoolSpec Global(PoolMode mode, Shape input, string name = "POOL")
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4) throw new ArgumentException($"{name}: global pooling needs an input [N, C, H, W], got {input}");
        return Global(mode, input.H, input.W, name);
    }

    public PoolMode Mode { get; }
    public string Name { get; init; }
    public int KernelH { get; }
    public int KernelW { get; }
    public int StrideH { get; }
    public int StrideW { get; }
    public Padding2d Padding { get; }
    /// <summary>Rows of padding above the input (the notes' P_h when the padding is symmetric).</summary>
    public int PadH => Padding.Top;
    /// <summary>Columns of padding left of the input (the notes' P_w when the padding is symmetric).</summary>
    public int PadW => Padding.Left;
    public int DilationH { get; }
    public int DilationW { get; }
    public SizeRule Rule { get; }
    public bool CountIncludePad { get; }

    /// <summary>Input rows a window spans: D_h·(F_h − 1) + 1.</summary>
    public int EffectiveKernelH => Lockstep.OutputSize.EffectiveKernel(KernelH, DilationH);
    /// <summary>Input columns a window spans: D_w·(F_w − 1) + 1.</summary>
    public int EffectiveKernelW => Lockstep.OutputSize.EffectiveKernel(KernelW, DilationW);

    /// <summary>Output height and width for an input of <paramref name="h"/>×<paramref name="w"/>; every window must hold an input element.</summary>
    public (int H, int W) OutputSize(int h, int w)
    {
        int outH = Lockstep.OutputSize.Compute(Name, 'H', h, KernelH, StrideH, Padding.Top, Padding.Bottom, DilationH, Rule);
        int outW = Lockstep.OutputSize.Compute(Name, 'W', w, KernelW, StrideW, Padding.Left, Padding.Right, DilationW, Rule);
        if (DilationH > 1) EveryWindowSeesInput('H', h, KernelH, StrideH, Padding.Top, DilationH, outH);
        if (DilationW > 1) EveryWindowSeesInput('W', w, KernelW, StrideW, Padding.Left, DilationW, outW);
        return (outH, outW);
    }

    /// <summary>
    /// Without dilation, P &lt; F already puts an input element in every window; a dilated window can straddle the
    /// input with its taps on padding only (an empty max, an average over nothing), which is rejected here. Only
    /// windows that start in the padding before the input can miss it (the size rules keep every start below the
    /// input's end); each is tested in O(1): its first tap at or after the input's start must still be inside it.
    /// </summary>
    private void EveryWindowSeesInput(char axis, int input, int kernel, int stride, int padBegin, int dilation, int outSize)
    {
        for (long o = 0; o < outSize && o * stride < padBegin; o++)
        {
            long start = o * stride - padBegin;
            long first = (-start + dilation - 1) / dilation;
            if (first >= kernel || start + first * dilation >= input)
            {
                throw new ArgumentException(
                    $"{Name}: output {o} along {axis}: its window (F={kernel}, D={dilation}) starts at {start} and has taps " +
                    $"only on padding, none in the {input} inputs; use less padding or a smaller dilation");
            }
        }
    }

    private void Validate()
    {
        if (!Enum.IsDefined(Mode)) throw new ArgumentException($"{Name}: unknown pooling mode {(int)Mode}");
        if (KernelH < 1 || KernelW < 1) throw new ArgumentException($"{Name}: window must be at least 1×1, got {KernelH}×{KernelW}");
        if (StrideH < 1 || StrideW < 1) throw new ArgumentException($"{Name}: stride must be at least 1, got {StrideH}×{StrideW}");
        if (DilationH < 1 || DilationW < 1) throw new ArgumentException($"{Name}: dilation must be at least 1, got {DilationH}×{DilationW}");
        var p = Padding;
        if (p.Top < 0 || p.Left < 0 || p.Bottom < 0 || p.Right < 0) throw new ArgumentException($"{Name}: padding must be non-negative, got {p}");
        // P < F: the first window still holds an input element (ONNX allows P up to F − 1, e.g. F=3 P=2; libtorch's
        // own kernels stop at F/2, and the torch backend pads explicitly beyond that).
        Lockstep.OutputSize.CheckWindow(Name, KernelH, KernelW, DilationH, DilationW);
        int fh = EffectiveKernelH, fw = EffectiveKernelW;
        if (Math.Max(p.Top, p.Bottom) >= fh || Math.Max(p.Left, p.Right) >= fw)
        {
            string window = DilationH == 1 && DilationW == 1 ? $"F={fh}×{fw}" : $"the dilated window D·(F - 1) + 1 = {fh}×{fw}";
            throw new ArgumentException(
                $"{Name}: padding must be smaller than the window (P < F), got P={p} for {window}; a window over padding alone has nothing to pool");
        }
    }

    public override string ToString()
    {
        string mode = Mode switch { PoolMode.Max => "max", PoolMode.Average => "avg", _ => "l2" };
        string text = KernelH == KernelW && StrideH == StrideW && PadH == PadW && Padding.IsSymmetric
            ? $"{Name} {mode} F={KernelH} S={StrideH} P={PadH}"
            : $"{Name} {mode} F={KernelH}x{KernelW} S={StrideH}x{StrideW} P={Padding}";
        if (DilationH != 1 || DilationW != 1) text += DilationH == DilationW ? $" D={DilationH}" : $" D={DilationH}x{DilationW}";
        if (Rule != SizeRule.Exact) text += $" {Rule.ToString().ToLowerInvariant()}";
        if (CountIncludePad) text += " count_include_pad";
        return text;
    }
}
