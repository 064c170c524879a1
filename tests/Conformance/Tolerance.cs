using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>Which rule a comparison used.</summary>
public enum BoundKind
{
    /// <summary>Bit for bit (sign of zero included; NaN matches NaN): no summation is involved.</summary>
    Exact,
    /// <summary>Float64: ≤ 1e-12 relative, norm-wise.</summary>
    Float64,
    /// <summary>A float32 result against the float64 result on the same inputs: ≤ c·ε·√K.</summary>
    Float32VersusFloat64,
    /// <summary>Two float32 results (each within c·ε·√K of the exact one): ≤ 2·c·ε·√K.</summary>
    Float32Pair,
    /// <summary>A float32 result whose reduction length was not given: the design's fixed 1e-5 / 2e-5.</summary>
    Float32Fixed,
}

/// <summary>The bound one comparison must meet, and how it was derived (for messages).</summary>
public sealed record Bound(BoundKind Kind, double Limit, long Reduction)
{
    public override string ToString() => Kind switch
    {
        BoundKind.Exact => "bit for bit",
        BoundKind.Float64 => string.Create(CultureInfo.InvariantCulture, $"≤ {Limit:G2}"),
        BoundKind.Float32VersusFloat64 => string.Create(CultureInfo.InvariantCulture,
            $"≤ {Limit:G2} = {Tolerance.C:G3}·ε·√{Reduction}"),
        BoundKind.Float32Pair => string.Create(CultureInfo.InvariantCulture,
            $"≤ {Limit:G2} = 2·{Tolerance.C:G3}·ε·√{Reduction}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"≤ {Limit:G2}, fixed: no reduction length given"),
    };
}

/// <summary>
/// What "identical" means, as code (README.md, "The tolerance model"). Errors are norm-wise,
/// ‖a − b‖∞ / max(‖b‖∞, tiny) (<see cref="Agreement"/>):
/// <list type="bullet">
/// <item>results that involve no summation (max pooling and its switches, ReLU, max pooling's gradient without
/// overlapping windows): bit for bit;</item>
/// <item>float64: ≤ 1e-12;</item>
/// <item>float32 against float64 on the same inputs: ≤ c·ε·√K, ε = 2⁻²³, K the reduction length of that output
/// (conv y: C·F_h·F_w; conv dx: K·F_h·F_w; conv dw, db: N·H'·W'; FC y: in; FC dx: out; FC dw, db: N; …);
/// two float32 results: ≤ 2·c·ε·√K. The constant <see cref="C"/> is measured, not guessed (README).</item>
/// </list>
/// </summary>
public static class Tolerance
{
    public const double Float64 = 1e-12;

    /// <summary>Machine epsilon of float32, 2⁻²³ (the gap between 1 and the next float).</summary>
    public const double Epsilon32 = 1.0 / (1 << 23);

    /// <summary>
    /// The constant of the float32 bound c·ε·√K. Measured with <c>lockstep check --backends naive,managed,torch
    /// --dtype f32</c> over 25,000 random cases per op (README, "Measuring c"): the largest observed error/(ε·√K)
    /// against float64 was 1.12 (average pooling); c = 4 leaves a margin of 3.5×.
    /// </summary>
    public const double C = 4;

    /// <summary>The design's fixed float32 bounds, used only for a result that gives no reduction length.</summary>
    public const double Float32VersusFloat64 = 1e-5;
    public const double Float32 = 2e-5;

    /// <summary>
    /// The bound for <paramref name="result"/> computed in <paramref name="dtype"/>, against a reference computed in
    /// the same dtype, or (<paramref name="versusFloat64"/>) in float64 on the same inputs.
    /// </summary>
    public static Bound For(Result result, DType dtype, bool versusFloat64)
    {
        ArgumentNullException.ThrowIfNull(result);
        // No summation means no rounding either: the float32 result equals the float64 one on the same inputs.
        if (result.Exact) return new Bound(BoundKind.Exact, 0, 0);
        if (dtype == DType.Float64) return new Bound(BoundKind.Float64, Float64, result.Reduction);
        if (result.Reduction <= 0)
        {
            return new Bound(BoundKind.Float32Fixed, versusFloat64 ? Float32VersusFloat64 : Float32, 0);
        }
        long k = Math.Max(1, result.Reduction);
        double limit = C * Epsilon32 * Math.Sqrt(k);
        return versusFloat64
            ? new Bound(BoundKind.Float32VersusFloat64, limit, k)
            : new Bound(BoundKind.Float32Pair, 2 * limit, k);
    }

    /// <summary>The measured quantity: a float32 relative error in units of ε·√K.</summary>
    public static double InEpsilonSqrtK(double relativeError, long reduction) =>
        relativeError / (Epsilon32 * Math.Sqrt(Math.Max(1, reduction)));
}
