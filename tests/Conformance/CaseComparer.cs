using System.Globalization;
using System.Text;

namespace Lockstep.Conformance;

/// <summary>One result of a candidate compared with a reference's, under the bound that applies to it.</summary>
public sealed record OutputCheck(string Name, Shape Shape, string Against, Bound Bound, Agreement Agreement, bool Passed)
{
    /// <summary>For a float32 comparison, the relative error in units of ε·√K (the quantity the constant c bounds); else NaN.</summary>
    public double EpsilonUnits => Bound.Kind is BoundKind.Float32VersusFloat64 or BoundKind.Float32Pair
        ? Tolerance.InEpsilonSqrtK(Agreement.RelativeError, Bound.Reduction)
        : double.NaN;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} {Shape} vs {Against} (must agree {Bound}): {Agreement.Describe(Shape)}");
}

/// <summary>
/// Everything known about one case on a pair of backends: what ran (op, spec and shapes, dtype, seed) and each
/// output's comparison. <see cref="Describe"/> is the failure message; the caller adds how to replay it.
/// </summary>
public sealed record CaseReport(string Op, string Case, DType DType, string Candidate, string Reference, IReadOnlyList<OutputCheck> Outputs)
{
    /// <summary>The seed that regenerates the case (CsCheck's format), when it came from a generator.</summary>
    public string? Seed { get; init; }

    /// <summary>An exception a backend threw instead of giving a result.</summary>
    public string? Error { get; init; }

    /// <summary>How the case was found: e.g. "shrunk in 4 steps from seed 0000000000e3".</summary>
    public string? Origin { get; init; }

    public bool Passed => Error is null && Outputs.All(o => o.Passed);

    public double WorstRelativeError => Outputs.Count == 0 ? 0 : Outputs.Max(o => o.Agreement.RelativeError);

    /// <summary>The largest error in units of ε·√K among the comparisons of <paramref name="kind"/> (NaN when none).</summary>
    public double WorstEpsilonUnits(BoundKind kind) =>
        Outputs.Where(o => o.Bound.Kind == kind).Select(o => o.EpsilonUnits).DefaultIfEmpty(double.NaN).Max();

    public string Describe()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Op} {DType}: {Candidate} disagrees with {Reference}");
        if (Seed is not null) text.Append(CultureInfo.InvariantCulture, $", seed {Seed}");
        if (Origin is not null) text.Append(CultureInfo.InvariantCulture, $" ({Origin})");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"  case: {Case}");
        if (Error is not null) text.AppendLine(CultureInfo.InvariantCulture, $"  error: {Error}");
        foreach (var o in Outputs.Where(o => !o.Passed)) text.AppendLine(CultureInfo.InvariantCulture, $"  {o}");
        return text.ToString().TrimEnd();
    }
}

/// <summary>
/// Runs a case on a candidate and a reference backend and compares every result under <see cref="Tolerance"/>.
/// For float32 the reference also runs in float64 on the same (float32-rounded) inputs, and the candidate must be
/// within c·ε·√K of that, and within 2·c·ε·√K of the reference's float32 result.
/// </summary>
public static class CaseComparer
{
    public static CaseReport Compare(IBackend candidate, IBackend reference, OpCase c, DType dtype, string? seed = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        try
        {
            return Compare(c.Op.ToString(), c.ToString(), dtype, candidate, reference, (backend, dt) => c.Run(backend, dt, dtype)) with { Seed = seed };
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new CaseReport(c.Op.ToString(), c.ToString(), dtype, candidate.Name, reference.Name, []) { Seed = seed, Error = e.ToString() };
        }
    }

    /// <summary>
    /// Compares <paramref name="run"/> on both backends. <paramref name="run"/> gets the backend and the dtype to
    /// compute in; its host inputs must already be rounded to <paramref name="dtype"/>.
    /// </summary>
    public static CaseReport Compare(string op, string context, DType dtype, IBackend candidate, IBackend reference,
        Func<IBackend, DType, IReadOnlyList<Result>> run)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(run);
        var a = run(candidate, dtype);
        var b = run(reference, dtype);
        var outputs = Outputs(a, b, dtype, $"{reference.Name} {dtype}", versusFloat64: false).ToList();
        if (dtype == DType.Float32)
        {
            outputs.AddRange(Outputs(a, run(reference, DType.Float64), dtype, $"{reference.Name} Float64", versusFloat64: true));
        }
        return new CaseReport(op, context, dtype, candidate.Name, reference.Name, outputs);
    }

    /// <summary>Compares two lists of results, output by output.</summary>
    public static IEnumerable<OutputCheck> Outputs(IReadOnlyList<Result> candidate, IReadOnlyList<Result> reference, DType dtype,
        string against, bool versusFloat64)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(reference);
        if (candidate.Count != reference.Count)
        {
            throw new InvalidOperationException($"the candidate gave {candidate.Count} results, {against} gave {reference.Count}");
        }
        for (int i = 0; i < candidate.Count; i++)
        {
            var (a, b) = (candidate[i], reference[i]);
            var bound = Tolerance.For(a, dtype, versusFloat64);
            if (a.Shape != b.Shape)
            {
                var none = new Agreement(double.PositiveInfinity, -1, 0, 0, double.PositiveInfinity, long.MaxValue, 0, 0);
                yield return new OutputCheck($"{a.Name} (shape {a.Shape}, {against} has {b.Shape})", a.Shape, against, bound, none, false);
                continue;
            }
            bool switches = a.Name == "switches";
            var agreement = Agreement.Of(a.Values, b.Values, switches ? DType.Int64 : dtype, a.Floor);
            bool ok = bound.Kind == BoundKind.Exact
                ? agreement.IsExact && Bitwise(a.Values, b.Values, dtype)
                : agreement.RelativeError <= bound.Limit;
            yield return new OutputCheck(a.Name, a.Shape, against, bound, agreement, ok);
        }
    }

    /// <summary>Equal including the sign of zero, NaN for NaN.</summary>
    public static bool Bitwise(double[] a, double[] b, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            bool same = double.IsNaN(a[i]) ? double.IsNaN(b[i])
                : dtype == DType.Float32 ? BitConverter.SingleToInt32Bits((float)a[i]) == BitConverter.SingleToInt32Bits((float)b[i])
                : BitConverter.DoubleToInt64Bits(a[i]) == BitConverter.DoubleToInt64Bits(b[i]);
            if (!same) return false;
        }
        return true;
    }
}
