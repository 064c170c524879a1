using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>
/// How far a candidate's values are from a reference's: the norm-wise relative error
/// ‖a − b‖∞ / max(‖b‖∞, floor, tiny), and the worst element with its index, both values, errors and ULP distance.
/// </summary>
public sealed record Agreement(
    double RelativeError, long WorstIndex, double Candidate, double Reference, double AbsoluteError, long Ulps, int Mismatches, long Count)
{
    private const double Tiny = 1e-300;

    /// <summary>Compares element by element; NaN agrees only with NaN, ±∞ only with the same infinity.
    /// <paramref name="floor"/>: the smallest denominator (see <see cref="Result.Scale"/>).</summary>
    public static Agreement Of(ReadOnlySpan<double> candidate, ReadOnlySpan<double> reference, DType dtype, double floor = 0)
    {
        if (candidate.Length != reference.Length)
        {
            throw new ArgumentException($"cannot compare {candidate.Length} candidate values with {reference.Length} reference values");
        }
        double scale = 0;
        foreach (double r in reference) if (double.IsFinite(r)) scale = Math.Max(scale, Math.Abs(r));
        scale = Math.Max(Math.Max(scale, floor), Tiny);

        double worstAbs = -1;
        long worst = -1;
        int mismatches = 0;
        bool worstIsSpecial = false;
        for (int i = 0; i < candidate.Length; i++)
        {
            double a = candidate[i], b = reference[i];
            bool special = !double.IsFinite(a) || !double.IsFinite(b);
            double abs;
            if (special)
            {
                bool same = (double.IsNaN(a) && double.IsNaN(b)) || a.Equals(b);
                abs = same ? 0 : double.PositiveInfinity;
            }
            else
            {
                abs = Math.Abs(a - b);
            }
            if (abs != 0) mismatches++;
            if (abs > worstAbs)
            {
                worstAbs = abs;
                worst = i;
                worstIsSpecial = special;
            }
        }
        if (candidate.Length == 0) return new Agreement(0, -1, 0, 0, 0, 0, 0, 0);
        double ca = candidate[(int)worst], re = reference[(int)worst];
        return new Agreement(
            worstIsSpecial && worstAbs > 0 ? double.PositiveInfinity : worstAbs / scale,
            worst, ca, re, worstAbs, UlpDistance(ca, re, dtype), mismatches, candidate.Length);
    }

    /// <summary>Distance in units in the last place of <paramref name="dtype"/> (0 when bitwise equal).</summary>
    public static long UlpDistance(double a, double b, DType dtype)
    {
        if (double.IsNaN(a) || double.IsNaN(b)) return double.IsNaN(a) && double.IsNaN(b) ? 0 : long.MaxValue;
        if (dtype == DType.Float32)
        {
            int ia = Ordered32(BitConverter.SingleToInt32Bits((float)a)), ib = Ordered32(BitConverter.SingleToInt32Bits((float)b));
            return Math.Abs((long)ia - ib);
        }
        long la = Ordered64(BitConverter.DoubleToInt64Bits(a)), lb = Ordered64(BitConverter.DoubleToInt64Bits(b));
        return la >= lb ? (long)Math.Min((ulong)(la - lb), long.MaxValue) : (long)Math.Min((ulong)(lb - la), long.MaxValue);

        static int Ordered32(int bits) => bits < 0 ? int.MinValue - bits : bits;
        static long Ordered64(long bits) => bits < 0 ? long.MinValue - bits : bits;
    }

    public bool IsExact => Mismatches == 0;

    /// <summary>The worst element as [n, c, h, w] (or flat) for messages.</summary>
    public string Describe(Shape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return string.Create(CultureInfo.InvariantCulture,
            $"relative error {RelativeError:G3}; worst element {Index(shape, WorstIndex)}: candidate {Candidate:R}, reference {Reference:R}, " +
            $"|diff| {AbsoluteError:G3} (relative to the element {ElementRelativeError:G3}), {Ulps} ulp; {Mismatches} of {Count} elements differ");
    }

    /// <summary>|candidate − reference| / |reference| at the worst element (∞ when the reference is 0 and they differ).</summary>
    public double ElementRelativeError =>
        AbsoluteError == 0 ? 0 : Reference == 0 ? double.PositiveInfinity : AbsoluteError / Math.Abs(Reference);

    /// <summary>A flat index as [n, c, h, w] (or the shape's own rank).</summary>
    public static string Index(Shape shape, long flat)
    {
        if (flat < 0) return "[]";
        var idx = new long[shape.Rank];
        for (int d = shape.Rank - 1; d >= 0; d--)
        {
            idx[d] = flat % Math.Max(1, shape[d]);
            flat /= Math.Max(1, shape[d]);
        }
        return "[" + string.Join(", ", idx) + "]";
    }
}
