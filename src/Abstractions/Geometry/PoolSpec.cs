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

/// <summary>POOL hyperparameters: window F_h×F_w, stride S, padding P (the notes: F=2 S=2 or F=3 S=2).</summary>
public sealed record PoolSpec
{
    public PoolSpec(PoolMode mode, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0,
        SizeRule rule = SizeRule.Exact, bool countIncludePad = false, string name = "POOL")
    {
        Mode = mode;
        Name = name;
        KernelH = kernelH; KernelW = kernelW;
        StrideH = strideH; StrideW = strideW;
        PadH = padH; PadW = padW;
        Rule = rule;
        CountIncludePad = countIncludePad;
        Validate();
    }

    /// <summary>A square window F with stride S (default S = F) and padding P.</summary>
    public static PoolSpec Square(PoolMode mode, int f, int? s = null, int p = 0, SizeRule rule = SizeRule.Exact, string name = "POOL") =>
        new(mode, f, f, s ?? f, s ?? f, p, p, rule, name: name);

    public PoolMode Mode { get; }
    public string Name { get; init; }
    public int KernelH { get; }
    public int KernelW { get; }
    public int StrideH { get; }
    public int StrideW { get; }
    public int PadH { get; }
    public int PadW { get; }
    public SizeRule Rule { get; }
    public bool CountIncludePad { get; }

    public (int H, int W) OutputSize(int h, int w) =>
        (Lockstep.OutputSize.Compute(Name, 'H', h, KernelH, StrideH, PadH, Rule),
         Lockstep.OutputSize.Compute(Name, 'W', w, KernelW, StrideW, PadW, Rule));

    private void Validate()
    {
        if (!Enum.IsDefined(Mode)) throw new ArgumentException($"{Name}: unknown pooling mode {(int)Mode}");
        if (KernelH < 1 || KernelW < 1) throw new ArgumentException($"{Name}: window must be at least 1×1, got {KernelH}×{KernelW}");
        if (StrideH < 1 || StrideW < 1) throw new ArgumentException($"{Name}: stride must be at least 1, got {StrideH}×{StrideW}");
        if (PadH < 0 || PadW < 0) throw new ArgumentException($"{Name}: padding must be non-negative, got {PadH}×{PadW}");
        // Every window must see at least one input element, so the padding is at most half the window (libtorch's rule too).
        if (2 * PadH > KernelH || 2 * PadW > KernelW)
        {
            throw new ArgumentException(
                $"{Name}: padding must be at most half the window (P ≤ F/2), got P={PadH}×{PadW} for F={KernelH}×{KernelW}");
        }
    }

    public override string ToString()
    {
        string mode = Mode switch { PoolMode.Max => "max", PoolMode.Average => "avg", _ => "l2" };
        return KernelH == KernelW && StrideH == StrideW && PadH == PadW
            ? $"{Name} {mode} F={KernelH} S={StrideH} P={PadH}"
            : $"{Name} {mode} F={KernelH}x{KernelW} S={StrideH}x{StrideW} P={PadH}x{PadW}";
    }
}
