using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>A convolution case: geometry, channels, batch. Its text form is the test's name and its replay key.</summary>
public sealed record ConvCase(int F, int S, int P, int H, int W, int C, int K, int N, int D = 1, int G = 1)
{
    public ConvSpec Spec => new(F, F, S, S, P, P, name: "conv", dilationH: D, dilationW: D, groups: G);
    public Shape Input => Shape.Nchw(N, C, H, W);
    public Shape Weights => new(K, C / G, F, F);

    /// <summary>"F3 S1 P1 5x6 C2 K4 N2", with " D2" and " G2" after it where the dilation or the groups are not 1.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"F{F} S{S} P{P} {H}x{W} C{C} K{K} N{N}")
        + (D != 1 ? string.Create(CultureInfo.InvariantCulture, $" D{D}") : "") + (G != 1 ? string.Create(CultureInfo.InvariantCulture, $" G{G}") : "");

    public static ConvCase Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = text.Split(' ');
        var hw = p[3].Split('x');
        int d = 1, g = 1;
        foreach (string option in p.Skip(7))
        {
            if (option.StartsWith('D')) d = Int(option);
            else if (option.StartsWith('G')) g = Int(option);
            else throw new FormatException($"'{text}': unknown part '{option}' (expected D<dilation> or G<groups>)");
        }
        return new ConvCase(Int(p[0]), Int(p[1]), Int(p[2]), int.Parse(hw[0], CultureInfo.InvariantCulture),
            int.Parse(hw[1], CultureInfo.InvariantCulture), Int(p[4]), Int(p[5]), Int(p[6]), d, g);
        static int Int(string s) => int.Parse(s.AsSpan(1), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The skeleton's grid: every valid (F, S, P) with F ∈ {1, 3, 5, 11}, S ∈ {1, 2, 4}, P ∈ {0, 1, 2} (P &lt; F),
    /// a non-square input sized so that the notes' rule gives an integer, C and K from 1 to 64, batch 1–4.
    /// </summary>
    public static IEnumerable<ConvCase> Grid()
    {
        int[] channels = [1, 3, 8, 16, 64];
        int i = 0;
        foreach (int f in new[] { 1, 3, 5, 11 })
        foreach (int s in new[] { 1, 2, 4 })
        foreach (int p in new[] { 0, 1, 2 })
        {
            if (p >= f) continue;
            int outH = 2 + i % 3, outW = outH + 1 + i % 2;
            int h = (outH - 1) * s + f - 2 * p, w = (outW - 1) * s + f - 2 * p;
            if (h < 1 || w < 1) continue;
            int c = channels[i % channels.Length], k = channels[(i * 2 + 1) % channels.Length];
            if (f == 11 && c * k > 256) (c, k) = (3, 16);   // keep the naive oracle's loops short
            yield return new ConvCase(f, s, p, h, w, c, k, 1 + i % 4);
            i++;
        }
    }
}

public static class WideConvCases
{
    /// <summary>
    /// 3×3 and 5×5 stride-1 convolutions with many channels both ways (C, K ≥ 32 and hundreds of output pixels: VGG's
    /// and AlexNet's deeper layers, scaled down), where a backend may switch to a fast algorithm such as Winograd's
    /// F(2×2, 3×3) and F(2×2, 5×5): every padding up to F − 1, odd and even output sizes (a partial last tile),
    /// non-square inputs, rows several vectors wide, a 1×1 input padded to 3×3, and few tiles (98 and 72 of 2×2: a
    /// backend may then take Winograd for y and dx but not dw); the last case stays below such thresholds.
    /// </summary>
    public static IEnumerable<ConvCase> Grid() =>
    [
        new(3, 1, 1, 32, 32, 32, 32, 1),
        new(3, 1, 1, 21, 23, 32, 40, 2),
        new(3, 1, 0, 26, 34, 40, 32, 2),
        new(3, 1, 2, 13, 14, 32, 48, 4),
        new(3, 1, 1, 3, 301, 32, 32, 1),
        new(3, 1, 0, 140, 5, 33, 35, 2),
        new(3, 1, 2, 1, 1, 32, 32, 128),
        new(5, 1, 2, 27, 27, 48, 64, 2),
        new(5, 1, 0, 20, 17, 32, 32, 6),
        new(5, 1, 4, 3, 9, 32, 40, 10),
        new(5, 1, 1, 12, 30, 40, 33, 4),
        new(5, 1, 3, 1, 1, 32, 32, 64),
        new(3, 1, 1, 14, 14, 64, 48, 2),
        new(3, 1, 0, 17, 19, 40, 32, 1),
        new(3, 1, 1, 13, 13, 16, 24, 2),
    ];
}

/// <summary>A pooling case.</summary>
public sealed record PoolCase(PoolMode Mode, int F, int S, int P, int H, int W, int C, int N)
{
    public PoolSpec Spec => PoolSpec.Square(Mode, F, S, P, name: "pool");
    public Shape Input => Shape.Nchw(N, C, H, W);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Mode} F{F} S{S} P{P} {H}x{W} C{C} N{N}");

    public static PoolCase Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = text.Split(' ');
        var hw = p[4].Split('x');
        return new PoolCase(Enum.Parse<PoolMode>(p[0]), Int(p[1]), Int(p[2]), Int(p[3]),
            int.Parse(hw[0], CultureInfo.InvariantCulture), int.Parse(hw[1], CultureInfo.InvariantCulture), Int(p[5]), Int(p[6]));
        static int Int(string s) => int.Parse(s.AsSpan(1), CultureInfo.InvariantCulture);
    }

    /// <summary>Max, average and L2 with the notes' usual settings F=2 S=2 and F=3 S=2 (overlapping), square and not.</summary>
    public static IEnumerable<PoolCase> Grid()
    {
        foreach (var mode in new[] { PoolMode.Max, PoolMode.Average, PoolMode.L2 })
        {
            yield return new PoolCase(mode, 2, 2, 0, 8, 8, 3, 2);
            yield return new PoolCase(mode, 2, 2, 0, 6, 10, 5, 1);
            yield return new PoolCase(mode, 3, 2, 0, 9, 7, 4, 2);
            yield return new PoolCase(mode, 3, 2, 1, 7, 11, 2, 3);
        }
    }
}

/// <summary>A fully connected case: batch N, in inputs, out outputs.</summary>
public sealed record LinearCase(int N, int In, int Out)
{
    public Shape Input => new(N, In);
    public Shape Weights => new(Out, In);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"N{N} in{In} out{Out}");
}

/// <summary>An element-wise case over an NCHW volume (ReLU).</summary>
public sealed record VolumeCase(int N, int C, int H, int W)
{
    public Shape Shape => Shape.Nchw(N, C, H, W);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{H}x{W} C{C} N{N}");
}

public enum LossKind
{
    SoftmaxCrossEntropy,
    MulticlassSvm,
}

/// <summary>A loss case: N rows of scores over classes, drawn as scale·u + offset (u from the input kind).</summary>
public sealed record LossCase(LossKind Kind, int N, int Classes, double Scale, double Offset)
{
    public Shape Scores => new(N, Classes);

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"N{N} classes{Classes} scores {Scale:G3}·u{(Offset == 0 ? "" : $" + {Offset:G3}")}");
}

/// <summary>An SGD case: a Rows×Cols parameter updated <paramref name="Steps"/> times with the same gradient.</summary>
public sealed record SgdCase(int Rows, int Cols, double LearningRate, double Momentum, double WeightDecay, int Steps)
{
    public Shape Shape => new(Rows, Cols);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"[{Rows}, {Cols}] lr {LearningRate:G3} momentum {Momentum:G3} wd {WeightDecay:G3}, {Steps} step{(Steps == 1 ? "" : "s")}");
}
