namespace Lockstep.Conformance;

/// <summary>
/// What "identical" means (DESIGN.md, Conformance): float64 ≤ 1e-12 relative, norm-wise; float32 ≤ 1e-5 against
/// the float64 result and ≤ 2e-5 between two float32 backends; bit for bit where no summation is involved.
/// </summary>
public static class Tolerance
{
    public const double Float64 = 1e-12;
    public const double Float32VersusFloat64 = 1e-5;
    public const double Float32 = 2e-5;

    /// <summary>The bound for comparing two results of <paramref name="dtype"/> that involve summation.</summary>
    public static double Between(DType dtype) => dtype == DType.Float64 ? Float64 : Float32;
}
