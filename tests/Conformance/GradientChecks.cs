using System.Globalization;
using System.Runtime.CompilerServices;
using CsCheck;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Central-difference gradient checks in float64 on one backend (Caffe's GradientChecker idea, kink-aware: see
/// <see cref="CentralDifferences"/>): for a scalar L = Σ r ⊙ op(inputs) with fixed random r, each analytic gradient
/// of the backward op must match the central difference of L. A fixed set of the notes' geometries, and random
/// cases from the same generators as <see cref="BackendConformance"/> (tie-heavy inputs drawn kink-free instead).
/// Derive with one backend: <code>public sealed class MyGradients() : GradientChecks(new MyBackend());</code>
/// </summary>
public abstract partial class GradientChecks : IDisposable
{
    private const int Samples = 24;
    private const int RandomSamples = 8;

    protected GradientChecks(IBackend backend) => Backend = backend ?? throw new ArgumentNullException(nameof(backend));

    protected IBackend Backend { get; }

    public static IEnumerable<object[]> ConvCases =>
        new[] { "F3 S1 P1 5x6 C2 K3 N2", "F3 S2 P1 7x5 C3 K2 N1", "F1 S1 P0 4x3 C4 K5 N2", "F5 S2 P2 9x7 C2 K2 N1", "F11 S4 P0 15x19 C1 K2 N1" }
            .Select(c => new object[] { c });

    public static IEnumerable<object[]> PoolCases =>
        new[] { "Max F2 S2 P0 6x4 C2 N2", "Max F3 S2 P1 7x5 C2 N1", "Average F2 S2 P0 6x4 C2 N2", "Average F3 S2 P1 7x5 C2 N1", "L2 F2 S2 P0 6x4 C2 N2", "L2 F3 S2 P0 7x5 C2 N1" }
            .Select(c => new object[] { c });

    [Theory, MemberData(nameof(ConvCases))]
    public void Conv2d_GradientsMatchFiniteDifferences(string geometry) =>
        Verify(new ConvOpCase(ConvCase.Parse(geometry), InputKind.Generic, 1), Samples);

    [Theory, MemberData(nameof(PoolCases))]
    public void Pool2d_GradientMatchesFiniteDifferences(string geometry) =>
        Verify(new PoolOpCase(PoolCase.Parse(geometry), InputKind.KinkFree, 5), Samples);

    [Fact]
    public void Linear_GradientsMatchFiniteDifferences() => Verify(new LinearOpCase(new LinearCase(3, 12, 5), InputKind.Generic, 7), Samples);

    [Fact]
    public void Relu_GradientMatchesFiniteDifferences() => Verify(new ReluOpCase(new VolumeCase(2, 3, 4, 5), InputKind.KinkFree, 11), Samples);

    [Fact]
    public void SoftmaxCrossEntropy_GradientMatchesFiniteDifferences() =>
        Verify(new LossOpCase(new LossCase(LossKind.SoftmaxCrossEntropy, 4, 7, 4, 0), InputKind.Generic, 13), Samples);

    [Fact]
    public void MulticlassSvm_GradientMatchesFiniteDifferences() =>
        Verify(new LossOpCase(new LossCase(LossKind.MulticlassSvm, 4, 7, 3, 0), InputKind.KinkFree, 15), Samples);

    [Fact]
    public void Conv2d_Random() => VerifyRandom(ConformanceOp.Conv2d);

    [Fact]
    public void Pool2d_Random() => VerifyRandom(ConformanceOp.Pool2d);

    [Fact]
    public void Linear_Random() => VerifyRandom(ConformanceOp.Linear);

    [Fact]
    public void Relu_Random() => VerifyRandom(ConformanceOp.Relu);

    [Fact]
    public void SoftmaxCrossEntropy_Random() => VerifyRandom(ConformanceOp.SoftmaxCrossEntropy);

    [Fact]
    public void MulticlassSvm_Random() => VerifyRandom(ConformanceOp.MulticlassSvm);

    /// <summary>Random cases: a sixth of <c>LOCKSTEP_CONFORMANCE_CASES</c> (at least 20), or the one case
    /// <c>LOCKSTEP_CONFORMANCE_SEED</c> names; a failure is shrunk and printed with its seed and a replay command.</summary>
    protected void VerifyRandom(ConformanceOp op, [CallerMemberName] string test = "")
    {
        var settings = ConformanceSettings.FromEnvironment();
        var gen = Generators.For(op).Select(Smooth);
        var cases = settings.CaseSeed is { } one
            ? [(one, Smooth(Generators.Replay(op, one)))]
            : Sweep.Cases(op, settings.RunSeed, Math.Max(20, settings.Cases / 6)).Select(c => (c.Seed, Smooth(c.Case)));
        int run = 0;
        foreach (var (seed, c) in cases)
        {
            if (Failure(c, RandomSamples) is not { } failure)
            {
                run++;
                continue;
            }
            var (smallest, origin, message) = Sweep.Shrink(gen, seed, x => Failure(x, RandomSamples)) ?? (seed, "passed when run again", failure);
            Assert.Fail(string.Create(CultureInfo.InvariantCulture,
                $"{Backend.Name}: {op} gradient disagrees with central differences, seed {smallest} ({origin})\n  {message}\n" +
                $"  replay: {Replay.Command(smallest, GetType(), test)}"));
        }
        Assert.True(run > 0, $"{op}: no random case ran");
    }

    /// <summary>Tie-heavy inputs put every max-pool window and ReLU at a kink: finite differences need smooth ones.</summary>
    private static OpCase Smooth(OpCase c) => c.Inputs == InputKind.TieHeavy ? c with { Inputs = InputKind.KinkFree } : c;

    private void Verify(OpCase c, int samples)
    {
        if (Failure(c, samples) is { } failure) Assert.Fail($"{Backend.Name}: {failure}");
    }

    /// <summary>Null when every gradient of <paramref name="c"/> matches; else what differed, for which case.</summary>
    private string? Failure(OpCase c, int samples)
    {
        var rng = new Random(c.DataSeed);
        int compared = 0;
        foreach (var probe in c.Gradients(Backend))
        {
            var outcome = CentralDifferences.Check(probe, samples, rng);
            if (outcome.Mismatch is not null) return $"{c}: {outcome.Mismatch}";
            compared += outcome.Checked;
            if (outcome.Kinks > Math.Max(2, outcome.Checked))
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"{c}: {probe.Name}: {outcome.Kinks} of {outcome.Kinks + outcome.Checked} sampled elements sit on a kink; the inputs are not kink-free");
            }
        }
        return compared > 0 ? null : $"{c}: no gradient element was compared";
    }

    /// <summary>For hand-written checks (GradientChecks.Options.cs): <paramref name="analytic"/> against central
    /// differences of <paramref name="loss"/> at up to 24 elements of <paramref name="values"/>.</summary>
    private void Verify(string op, string geometry, string name, double[] values, double[] analytic, Func<double[], double> loss)
    {
        var outcome = CentralDifferences.Check(new GradientProbe(name, values, analytic, loss), Samples, new Random(values.Length));
        if (outcome.Mismatch is not null) Assert.Fail($"{Backend.Name} {op} [{geometry}] {outcome.Mismatch}");
        Assert.True(outcome.Checked > 0, $"{Backend.Name} {op} [{geometry}] {name}: every sampled element sits on a kink");
    }

    private ITensor Upload(double[] data, Shape shape) => Backend.Upload<double>(data, shape);

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}
