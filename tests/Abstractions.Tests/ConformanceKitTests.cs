using System.Globalization;
using System.Text.RegularExpressions;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;
using Xunit.Sdk;

namespace Lockstep.Tests;

/// <summary>The kit itself: it must fail on a broken backend, say where, and replay what it printed.</summary>
public sealed partial class ConformanceKitTests
{
    /// <summary>Not public, so xunit does not run it as a suite of its own: the tests below call it.</summary>
    internal sealed class BrokenConformance() : BackendConformance(new PerturbedBackend(new NaiveBackend()), new NaiveBackend());

    internal sealed class BrokenGradients() : GradientChecks(new PerturbedBackend(new NaiveBackend()));

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void BrokenBackend_FailsNamingOpElementAndSeed(DType dtype)
    {
        using var kit = new BrokenConformance();
        var e = Assert.ThrowsAny<XunitException>(() => kit.Conv2d_Random(dtype));

        Assert.Contains($"Conv2d {dtype}: broken(naive) disagrees with naive, seed ", e.Message);
        // The perturbed element, found and named: dw's first element, off by the perturbation.
        Assert.Matches(@"dw \[\d+, \d+, \d+, \d+\] vs naive", e.Message);
        Assert.Contains("worst element [0, 0, 0, 0]", e.Message);
        // Off by the perturbation as float32 rounds it: the shrunk case (CsCheck draws it at random) decides dw[0]'s
        // magnitude, and with it how far dw[0] + 0.001 lands from 0.001 above dw[0] (0.000999 when dw[0] is near 16).
        var diff = double.Parse(DiffPattern().Match(e.Message).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(diff, 0.95 * PerturbedBackend.Perturbation, 1.05 * PerturbedBackend.Perturbation);
        Assert.Contains("ulp", e.Message);
        Assert.Contains("replay: LOCKSTEP_CONFORMANCE_SEED=", e.Message);
        Assert.Contains("--filter \"FullyQualifiedName~Lockstep.Tests.ConformanceKitTests+BrokenConformance.Conv2d_Random\"", e.Message);
        Assert.DoesNotMatch(@"(?m)^  (y|dx|db) \[", e.Message);   // only dw disagrees

        // The printed seed regenerates a case that fails again.
        string seed = SeedPattern().Match(e.Message).Groups[1].Value;
        var replayed = Generators.Replay(ConformanceOp.Conv2d, seed);
        using var broken = new PerturbedBackend(new NaiveBackend());
        using var naive = new NaiveBackend();
        Assert.False(CaseComparer.Compare(broken, naive, replayed, dtype).Passed, $"seed {seed} ({replayed}) passes when replayed");
    }

    [Fact]
    public void BrokenBackend_FailsGradientCheck()
    {
        using var kit = new BrokenGradients();
        var e = Assert.ThrowsAny<XunitException>(kit.Conv2d_Random);
        Assert.Contains("broken(naive): Conv2d gradient disagrees with central differences, seed ", e.Message);
        Assert.Contains("dw[0]: analytic", e.Message);
        Assert.Contains("replay: LOCKSTEP_CONFORMANCE_SEED=", e.Message);
    }

    [Fact]
    public void BrokenBackend_OtherOpsStillAgree()
    {
        using var kit = new BrokenConformance();
        kit.Linear_Random(DType.Float32);
    }

    [Fact]
    public void Sweep_CaseSeedRegeneratesTheSameCase()
    {
        foreach (var op in Enum.GetValues<ConformanceOp>())
        {
            foreach (var (seed, c) in Sweep.Cases(op, 3, 20))
            {
                Assert.Equal(c.ToString(), Generators.Replay(op, seed).ToString());
            }
        }
    }

    [Fact]
    public void Generators_DrawTheNotesUnusualGeometries()
    {
        var conv = Sweep.Cases(ConformanceOp.Conv2d, 1, 300).Select(c => ((ConvOpCase)c.Case).Case).ToArray();
        Assert.Contains(conv, c => c.F == 11 && c.S == 4);
        Assert.Contains(conv, c => c.F == 1);
        Assert.Contains(conv, c => c.H != c.W);
        Assert.Contains(conv, c => c.N == 1);
        var pool = Sweep.Cases(ConformanceOp.Pool2d, 1, 300).Select(c => ((PoolOpCase)c.Case).Case).ToArray();
        Assert.Contains(pool, c => c.F == 3 && c.S == 2);
        Assert.All(Enum.GetValues<InputKind>(), kind => Assert.Contains(Sweep.Cases(ConformanceOp.Relu, 1, 300), c => c.Case.Inputs == kind));
    }

    [Theory]
    [InlineData(1, 4 * Tolerance.Epsilon32)]
    [InlineData(100, 40 * Tolerance.Epsilon32)]
    public void Tolerance_Float32ScalesWithSqrtOfReductionLength(long k, double expected)
    {
        var result = new Result("y", new Shape(1), [0], Reduction: k);
        Assert.Equal(expected * Tolerance.C / 4, Tolerance.For(result, DType.Float32, versusFloat64: true).Limit, 1e-20);
        Assert.Equal(2 * expected * Tolerance.C / 4, Tolerance.For(result, DType.Float32, versusFloat64: false).Limit, 1e-20);
        Assert.Equal(Tolerance.Float64, Tolerance.For(result, DType.Float64, versusFloat64: false).Limit);
        Assert.Equal(BoundKind.Exact, Tolerance.For(result with { Exact = true }, DType.Float32, versusFloat64: true).Kind);
    }

    [Fact]
    public void HostData_TieHeavyHasConstantPlanesAndIntegers()
    {
        var data = HostData.Random(3, Shape.Nchw(2, 8, 4, 4), InputKind.TieHeavy);
        Assert.All(data, v => Assert.True(v >= 0 && v == Math.Floor(v), $"{v} is not a ReLU'd integer"));
        var planes = data.Chunk(16).ToArray();
        Assert.Contains(planes, p => p.Distinct().Count() == 1);
        Assert.Contains(planes, p => p.Distinct().Count() > 1);
    }

    [GeneratedRegex(@"\|diff\| (\S+) \(")]
    private static partial Regex DiffPattern();

    [GeneratedRegex(@"seed (\S+)")]
    private static partial Regex SeedPattern();
}
