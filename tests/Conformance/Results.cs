namespace Lockstep.Conformance;

/// <summary>
/// One named result of an op, copied to the host. <paramref name="Exact"/>: no summation is involved, so two
/// backends must agree bit for bit. <paramref name="Reduction"/>: the number of terms summed into each element
/// (the K of the float32 bound c·ε·√K); 0 when unknown (the design's fixed float32 bounds then apply).
/// <paramref name="Scale"/>: the largest magnitude of those terms (e.g. max|x|·max|w| for a convolution's y); the
/// error is measured against max(‖reference‖∞, Scale·√K), so that a sum which cancels to almost nothing is held to
/// the size of its terms, where its rounding error comes from, not to its own small value. 0: no such floor.
/// </summary>
public sealed record Result(string Name, Shape Shape, double[] Values, bool Exact = false, long Reduction = 0, double Scale = 0)
{
    public static Result Of(string name, ITensor tensor, bool exact = false, long reduction = 0, double scale = 0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new Result(name, tensor.Shape, tensor.ToDoubles(), exact, reduction, scale);
    }

    /// <summary>The smallest denominator of the relative error: Scale·√K.</summary>
    public double Floor => Scale * Math.Sqrt(Math.Max(1, Reduction));

    /// <summary>max |v| over finite values: the magnitude of an operand, for <see cref="Scale"/>.</summary>
    public static double MaxAbs(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double max = 0;
        foreach (double v in values) if (double.IsFinite(v)) max = Math.Max(max, Math.Abs(v));
        return max;
    }
}
