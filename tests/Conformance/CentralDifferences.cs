using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>
/// Caffe's GradientChecker in float64: each analytic gradient element must match the central difference
/// (L(v + h) − L(v − h)) / 2h within <see cref="Threshold"/> · max(|analytic|, |numeric|, 1).
/// Kink-aware: where the one-sided differences (L(v + h) − L(v)) / h and (L(v) − L(v − h)) / h disagree by more than
/// <see cref="KinkThreshold"/> (relative), L is not smooth within ±h of v (ReLU at 0, a max-pool tie, a hinge at
/// its margin) and the element is skipped and counted, not compared: a subgradient there is any value between the two.
/// </summary>
public static class CentralDifferences
{
    public const double Step = 1e-5;
    public const double Threshold = 1e-6;

    /// <summary>A smooth L has |forward − backward| ≈ h·|L''| ≈ 1e-5·|L''|; a kink gives the change of slope, ≈ 1.</summary>
    public const double KinkThreshold = 1e-3;

    /// <summary>What a check of one gradient found.</summary>
    public sealed record Outcome(string Name, int Checked, int Kinks, string? Mismatch);

    /// <summary>Checks <paramref name="samples"/> elements of <paramref name="probe"/> (all when it has no more),
    /// chosen with <paramref name="rng"/>.</summary>
    public static Outcome Check(GradientProbe probe, int samples, Random rng)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(rng);
        var v = (double[])probe.Values.Clone();
        if (probe.Analytic.Length != v.Length)
        {
            return new Outcome(probe.Name, 0, 0, $"{probe.Name}: the analytic gradient has {probe.Analytic.Length} elements, the input {v.Length}");
        }
        var indices = v.Length <= samples ? Enumerable.Range(0, v.Length) : Enumerable.Range(0, samples).Select(_ => rng.Next(v.Length));
        double centre = probe.Loss(v);
        int done = 0, kinks = 0;
        foreach (int i in indices)
        {
            double original = v[i];
            v[i] = original + Step;
            double plus = probe.Loss(v);
            v[i] = original - Step;
            double minus = probe.Loss(v);
            v[i] = original;
            double forward = (plus - centre) / Step, backward = (centre - minus) / Step;
            if (Math.Abs(forward - backward) > KinkThreshold * Math.Max(1, Math.Max(Math.Abs(forward), Math.Abs(backward))))
            {
                kinks++;
                continue;
            }
            double numeric = (plus - minus) / (2 * Step);
            double analytic = probe.Analytic[i];
            double error = Math.Abs(analytic - numeric) / Math.Max(1, Math.Max(Math.Abs(analytic), Math.Abs(numeric)));
            done++;
            if (!(error <= Threshold))
            {
                return new Outcome(probe.Name, done, kinks, string.Create(CultureInfo.InvariantCulture,
                    $"{probe.Name}[{i}]: analytic {analytic:R}, central difference {numeric:R}, relative error {error:G3} > {Threshold:G2} " +
                    $"(step {Step:G2}; against max(|analytic|, |numeric|, 1))"));
            }
        }
        return new Outcome(probe.Name, done, kinks, null);
    }
}
