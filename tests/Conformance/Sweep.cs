using System.Globalization;
using System.Text.RegularExpressions;
using CsCheck;

namespace Lockstep.Conformance;

/// <summary>What a sweep of random cases of one op and dtype found.</summary>
public sealed record SweepResult(ConformanceOp Op, DType DType, int Cases, double WorstRelativeError,
    double WorstVersusFloat64, double WorstPair, CaseReport? Failure)
{
    public bool Passed => Failure is null;
}

/// <summary>
/// Runs random cases of one op on a candidate and a reference backend, with no test framework: the xunit classes
/// and <c>lockstep check</c> both call it. Case i of a sweep with seed S is the generator's i-th draw from
/// CsCheck's PCG (stream: the op, seed: S); each case's own seed is printed, and regenerates it alone. The first
/// failing case is shrunk with CsCheck (smaller geometries, simpler inputs that still fail) before it is reported.
/// </summary>
public static partial class Sweep
{
    /// <summary>How many smaller candidates CsCheck tries when shrinking a failure.</summary>
    public const int ShrinkIterations = 300;

    /// <summary>The seed of each of <paramref name="count"/> cases of a sweep, and the case.</summary>
    public static IEnumerable<(string Seed, OpCase Case)> Cases(ConformanceOp op, ulong seed, int count)
    {
        var gen = Generators.For(op);
        var pcg = new PCG((uint)op + 1, seed);
        for (int i = 0; i < count; i++)
        {
            string caseSeed = pcg.ToString();
            yield return (caseSeed, gen.Generate(pcg, null!, out _));
        }
    }

    /// <summary>Runs <paramref name="count"/> cases from <paramref name="seed"/>, or only the case
    /// <paramref name="caseSeed"/> when given; stops at the first failure and shrinks it.</summary>
    public static SweepResult Run(IBackend candidate, IBackend reference, ConformanceOp op, DType dtype, int count, ulong seed,
        string? caseSeed = null, Action? progress = null, bool shrink = true)
    {
        var cases = caseSeed is null ? Cases(op, seed, count) : [(caseSeed, Generators.Replay(op, caseSeed))];
        int run = 0;
        double worst = 0, worst64 = double.NaN, worstPair = double.NaN;
        foreach (var (s, c) in cases)
        {
            var report = CaseComparer.Compare(candidate, reference, c, dtype, s);
            run++;
            progress?.Invoke();
            worst = Max(worst, report.WorstRelativeError);
            worst64 = Max(worst64, report.WorstEpsilonUnits(BoundKind.Float32VersusFloat64));
            worstPair = Max(worstPair, report.WorstEpsilonUnits(BoundKind.Float32Pair));
            if (!report.Passed)
            {
                var failure = shrink ? Shrink(candidate, reference, op, dtype, report) : report;
                return new SweepResult(op, dtype, run, worst, worst64, worstPair, failure);
            }
        }
        return new SweepResult(op, dtype, run, worst, worst64, worstPair, null);
    }

    /// <summary>
    /// Looks for a smaller failing case with CsCheck's shrinking, starting from <paramref name="failure"/>'s seed:
    /// CsCheck draws further cases and keeps those that are smaller and still fail. Returns the smallest found.
    /// </summary>
    public static CaseReport Shrink(IBackend candidate, IBackend reference, ConformanceOp op, DType dtype, CaseReport failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (failure.Seed is null) return failure;
        var shrunk = Shrink(Generators.For(op), failure.Seed, c =>
        {
            var report = CaseComparer.Compare(candidate, reference, c, dtype);
            return report.Passed ? null : report;
        });
        return shrunk switch
        {
            // The case passed when run again: that matters more than the case.
            null => failure with { Origin = "passed when run again: the candidate or the reference is not deterministic" },
            var (seed, origin, report) when seed != failure.Seed => report with { Seed = seed, Origin = origin },
            _ => failure,
        };
    }

    /// <summary>
    /// CsCheck's shrinking around a failing case: starting at <paramref name="seed"/>, CsCheck draws further cases from
    /// <paramref name="gen"/> and keeps the smaller ones that still fail (<paramref name="fails"/> returns non-null).
    /// Returns the smallest failing case's seed, how it was found, and its failure; null when even
    /// <paramref name="seed"/> passes.
    /// </summary>
    public static (string Seed, string Origin, T Failure)? Shrink<T>(Gen<OpCase> gen, string seed, Func<OpCase, T?> fails) where T : class
    {
        ArgumentNullException.ThrowIfNull(gen);
        ArgumentNullException.ThrowIfNull(fails);
        try
        {
            // One thread: backends need not be thread-safe.
            gen.Sample(c =>
            {
                if (fails(c) is { } failure) throw new CaseFailedException(failure, c.ToString());
            }, seed: seed, iter: ShrinkIterations, threads: 1, print: c => c.ToString());
            return null;
        }
        catch (CsCheckException e) when (e.InnerException is CaseFailedException { Failure: T failure })
        {
            var found = SeedPattern().Match(e.Message);
            var shrinks = ShrinksPattern().Match(e.Message);
            string smallest = found.Success ? found.Groups[1].Value : seed;
            string origin = smallest == seed
                ? "no smaller failing case found"
                : string.Create(CultureInfo.InvariantCulture, $"shrunk{(shrinks.Success ? $" in {shrinks.Groups[1].Value} steps" : "")} from seed {seed}");
            return (smallest, origin, failure);
        }
    }

    /// <summary>Runs <paramref name="c"/> twice on <paramref name="backend"/>; null when both runs agree bit for bit,
    /// else the first output that differs.</summary>
    public static string? Determinism(IBackend backend, OpCase c, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(c);
        var first = c.Run(backend, dtype, dtype);
        var second = c.Run(backend, dtype, dtype);
        for (int i = 0; i < first.Count; i++)
        {
            if (CaseComparer.Bitwise(first[i].Values, second[i].Values, first[i].Name == "switches" ? DType.Float64 : dtype)) continue;
            var agreement = Agreement.Of(first[i].Values, second[i].Values, dtype);
            return string.Create(CultureInfo.InvariantCulture,
                $"{c.Op} {first[i].Name} differs run to run ({agreement.Mismatches} of {agreement.Count} elements, up to {agreement.Ulps} ulp)");
        }
        return null;
    }

    private static double Max(double a, double b) => double.IsNaN(a) ? b : double.IsNaN(b) ? a : Math.Max(a, b);

    [GeneratedRegex("Set seed: \"([^\"]+)\"")]
    private static partial Regex SeedPattern();

    [GeneratedRegex(@"\((\d+) shrinks")]
    private static partial Regex ShrinksPattern();
}

/// <summary>A case that failed inside CsCheck's sampling, carrying its failure out.</summary>
public sealed class CaseFailedException : Exception
{
    public CaseFailedException(object failure, string message) : base(message) => Failure = failure;

    public object Failure { get; }
}
